# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_rule options -> canonical specs per family, validation, Desired."""

from __future__ import annotations

import pytest

from ansible_collections.ironwall.iptables.plugins.module_utils._model import Tag, parse_save
from ansible_collections.ironwall.iptables.plugins.module_utils._plan import PlanError, plan_changes
from ansible_collections.ironwall.iptables.plugins.module_utils._rules import (
    DEFAULT_PRIORITY, desired_for, pruned_names, render_specs, rule_lines, validate_exclusive_prefix, validate_rule,
    validate_rules)
from ansible_collections.ironwall.iptables.plugins.module_utils._rulespec import SpecError


def tag(name, prio=DEFAULT_PRIORITY, text=None):
    c = Tag(prio, "rule", name).comment(text)
    return '-m comment --comment "%s"' % c


def specs(params, family):
    return list(render_specs(validate_rule(dict(params)), family))


# (params, expected ipv4 specs, expected ipv6 specs)
RENDER_CASES = [
    ({"name": "lo", "in_interface": "lo", "jump": "ACCEPT", "priority": 100},
     ["-i lo %s -j ACCEPT" % tag("lo", 100)], ["-i lo %s -j ACCEPT" % tag("lo", 100)]),
    ({"name": "est", "ctstate": ["ESTABLISHED", "RELATED"], "state_match": "state", "jump": "ACCEPT"},
     ["-m state --state RELATED,ESTABLISHED %s -j ACCEPT" % tag("est")],
     ["-m state --state RELATED,ESTABLISHED %s -j ACCEPT" % tag("est")]),
    ({"name": "est", "ctstate": ["established", "related", "invalid"], "jump": "ACCEPT"},
     ["-m conntrack --ctstate INVALID,RELATED,ESTABLISHED %s -j ACCEPT" % tag("est")],
     ["-m conntrack --ctstate INVALID,RELATED,ESTABLISHED %s -j ACCEPT" % tag("est")]),
    ({"name": "icmp", "protocol": "icmp", "jump": "ACCEPT"},
     ["-p icmp %s -j ACCEPT" % tag("icmp")], ["-p ipv6-icmp %s -j ACCEPT" % tag("icmp")]),
    ({"name": "ping", "protocol": "icmp", "icmp_type": "echo-request", "jump": "ACCEPT"},
     ["-p icmp -m icmp --icmp-type 8 %s -j ACCEPT" % tag("ping")],
     ["-p ipv6-icmp -m icmp6 --icmpv6-type 128 %s -j ACCEPT" % tag("ping")]),
    ({"name": "t", "protocol": "icmp", "icmp_type": 3, "ip_version": "ipv4", "jump": "ACCEPT"},
     ["-p icmp -m icmp --icmp-type 3 %s -j ACCEPT" % tag("t")], []),
    ({"name": "http", "protocol": "tcp", "dports": [80], "ctstate": ["NEW"], "state_match": "state",
      "jump": "ACCEPT"},
     ["-p tcp -m tcp --dport 80 -m state --state NEW %s -j ACCEPT" % tag("http")],
     ["-p tcp -m tcp --dport 80 -m state --state NEW %s -j ACCEPT" % tag("http")]),
    ({"name": "web", "protocol": "TCP", "dports": [80, "443", "8000-8100"], "jump": "ACCEPT"},
     ["-p tcp -m multiport --dports 80,443,8000:8100 %s -j ACCEPT" % tag("web")],
     ["-p tcp -m multiport --dports 80,443,8000:8100 %s -j ACCEPT" % tag("web")]),
    ({"name": "dns", "protocol": "udp", "sports": [53], "dports": ["1024:65535"], "jump": "ACCEPT"},
     ["-p udp -m udp --sport 53 --dport 1024:65535 %s -j ACCEPT" % tag("dns")],
     ["-p udp -m udp --sport 53 --dport 1024:65535 %s -j ACCEPT" % tag("dns")]),
    ({"name": "n6", "protocol": "6", "dports": [22], "jump": "ACCEPT"},
     ["-p tcp -m tcp --dport 22 %s -j ACCEPT" % tag("n6")],
     ["-p tcp -m tcp --dport 22 %s -j ACCEPT" % tag("n6")]),
    ({"name": "all", "protocol": "all", "jump": "DROP"},
     ["%s -j DROP" % tag("all")], ["%s -j DROP" % tag("all")]),
    ({"name": "ssh", "protocol": "tcp", "dports": [22], "jump": "ACCEPT",
      "source": ["198.51.100.7/24", "2001:db8:1::5", "203.0.113.9"]},
     ["-s 198.51.100.0/24 -p tcp -m tcp --dport 22 %s -j ACCEPT" % tag("ssh"),
      "-s 203.0.113.9/32 -p tcp -m tcp --dport 22 %s -j ACCEPT" % tag("ssh")],
     ["-s 2001:db8:1::5/128 -p tcp -m tcp --dport 22 %s -j ACCEPT" % tag("ssh")]),
    ({"name": "x", "source": ["198.51.100.1", "198.51.100.2"], "destination": ["203.0.113.0/24", "2001:db8::/32"],
      "jump": "DROP"},
     ["-s 198.51.100.1/32 -d 203.0.113.0/24 %s -j DROP" % tag("x"),
      "-s 198.51.100.2/32 -d 203.0.113.0/24 %s -j DROP" % tag("x")], []),
    ({"name": "v6only", "destination": ["2001:db8::1"], "jump": "ACCEPT"},
     [], ["-d 2001:db8::1/128 %s -j ACCEPT" % tag("v6only")]),
    ({"name": "fwd", "chain": "FORWARD", "in_interface": "eth0", "out_interface": "!eth1", "jump": "ACCEPT"},
     ["-i eth0 ! -o eth1 %s -j ACCEPT" % tag("fwd")], ["-i eth0 ! -o eth1 %s -j ACCEPT" % tag("fwd")]),
    ({"name": "log", "jump": "log", "log_prefix": "IN drop: ", "log_level": "info"},
     ['%s -j LOG --log-prefix "IN drop: " --log-level 6' % tag("log")],
     ['%s -j LOG --log-prefix "IN drop: " --log-level 6' % tag("log")]),
    ({"name": "log", "jump": "LOG", "log_prefix": "plain", "log_level": 4},
     ["%s -j LOG --log-prefix plain" % tag("log")], ["%s -j LOG --log-prefix plain" % tag("log")]),
    ({"name": "rej", "jump": "REJECT"},
     ["%s -j REJECT --reject-with icmp-port-unreachable" % tag("rej")],
     ["%s -j REJECT --reject-with icmp6-port-unreachable" % tag("rej")]),
    ({"name": "rej", "jump": "REJECT", "reject_with": "icmp-admin-prohibited"},
     ["%s -j REJECT --reject-with icmp-admin-prohibited" % tag("rej")],
     ["%s -j REJECT --reject-with icmp6-adm-prohibited" % tag("rej")]),
    ({"name": "rst", "protocol": "tcp", "jump": "REJECT", "reject_with": "tcp-reset"},
     ["-p tcp %s -j REJECT --reject-with tcp-reset" % tag("rst")],
     ["-p tcp %s -j REJECT --reject-with tcp-reset" % tag("rst")]),
    ({"name": "c", "jump": "RETURN", "comment": "kept beside"},
     ['-m comment --comment "ironwall:500:rule:c kept beside" -j RETURN'],
     ['-m comment --comment "ironwall:500:rule:c kept beside" -j RETURN']),
    ({"name": "lite", "protocol": "udplite", "dports": [9999], "jump": "ACCEPT"},  # no -m udplite exists
     ["-p udplite -m multiport --dports 9999 %s -j ACCEPT" % tag("lite")],
     ["-p udplite -m multiport --dports 9999 %s -j ACCEPT" % tag("lite")]),
    ({"name": "any", "source": ["0.0.0.0/0", "::/0"], "jump": "ACCEPT"},  # iptables-save omits them
     ["%s -j ACCEPT" % tag("any")], ["%s -j ACCEPT" % tag("any")]),
    ({"name": "u", "jump": "MYCHAIN", "ip_version": "ipv6"},
     [], ["%s -j MYCHAIN" % tag("u")]),
]


@pytest.mark.parametrize("params,v4,v6", RENDER_CASES, ids=[str(i) for i in range(len(RENDER_CASES))])
def test_render(params, v4, v6):
    assert specs(params, "ipv4") == v4
    assert specs(params, "ipv6") == v6


# (params, option named in the error, words in the message)
BAD = [
    ({"name": "a", "source": ["198.51.100.0/33"], "jump": "ACCEPT"}, "source", "198.51.100.0/33"),
    ({"name": "a", "source": ["198.51.100"], "jump": "ACCEPT"}, "source", "198.51.100"),
    ({"name": "a", "destination": ["2001:db8::g"], "jump": "ACCEPT"}, "destination", "2001:db8::g"),
    ({"name": "a", "source": ["2001:db8::1"], "ip_version": "ipv4", "jump": "ACCEPT"}, "source", "IPv6"),
    ({"name": "a", "source": ["198.51.100.1"], "destination": ["2001:db8::1"], "jump": "ACCEPT"},
     "destination", "no address family in common"),
    ({"name": "a", "protocol": "tcp", "dports": [0], "jump": "ACCEPT"}, "dports", "outside 1-65535"),
    ({"name": "a", "protocol": "tcp", "dports": [65536], "jump": "ACCEPT"}, "dports", "outside 1-65535"),
    ({"name": "a", "protocol": "tcp", "dports": ["abc"], "jump": "ACCEPT"}, "dports", "abc"),
    ({"name": "a", "protocol": "tcp", "sports": ["2000:1000"], "jump": "ACCEPT"}, "sports", "reversed"),
    ({"name": "a", "dports": [80], "jump": "ACCEPT"}, "dports", "protocol"),
    ({"name": "a", "protocol": "icmp", "dports": [80], "jump": "ACCEPT"}, "dports", "protocol"),
    ({"name": "a", "protocol": "tcp", "dports": list(range(1, 17)), "jump": "ACCEPT"}, "dports", "15"),
    ({"name": "a", "icmp_type": "echo-request", "jump": "ACCEPT"}, "icmp_type", "protocol icmp"),
    ({"name": "a", "protocol": "tcp", "icmp_type": 8, "jump": "ACCEPT"}, "icmp_type", "protocol icmp"),
    ({"name": "a", "protocol": "icmp", "icmp_type": "bogus", "jump": "ACCEPT"}, "icmp_type", "bogus"),
    ({"name": "a", "protocol": "icmp", "icmp_type": "timestamp-request", "jump": "ACCEPT"}, "icmp_type",
     "ICMPv6"),
    ({"name": "a", "jump": "ACCEPT", "log_prefix": "x"}, "log_prefix", "jump: LOG"),
    ({"name": "a", "jump": "DROP", "log_level": 3}, "log_level", "jump: LOG"),
    ({"name": "a", "jump": "LOG", "log_level": "loud"}, "log_level", "syslog"),
    ({"name": "a", "jump": "LOG", "log_prefix": "x" * 30}, "log_prefix", "29"),
    ({"name": "a", "jump": "DROP", "reject_with": "tcp-reset"}, "reject_with", "jump: REJECT"),
    ({"name": "a", "jump": "REJECT", "reject_with": "tcp-reset"}, "reject_with", "protocol: tcp"),
    ({"name": "a", "jump": "REJECT", "reject_with": "icmp-proto-unreachable"}, "reject_with", "IPv6"),
    ({"name": "a", "jump": "REJECT", "reject_with": "nonsense"}, "reject_with", "REJECT type"),
    ({"name": "a", "jump": "ACCEPT", "priority": 1000}, "priority", "0 to 999"),
    ({"name": "a", "jump": "ACCEPT", "priority": -1}, "priority", "0 to 999"),
    ({"name": "a"}, "jump", "required"),
    ({"name": "a", "jump": "-bad"}, "jump", "must not start"),
    ({"name": "a", "jump": "A" * 29}, "jump", "at most 28"),
    ({"name": "a", "jump": "INPUT"}, "jump", "built-in"),
    ({"name": "a", "chain": "X" * 29, "jump": "ACCEPT"}, "chain", "at most 28"),
    ({"name": "bad name", "jump": "ACCEPT"}, "name", "characters"),
    ({"name": "a", "ctstate": ["BOGUS"], "jump": "ACCEPT"}, "ctstate", "BOGUS"),
    ({"name": "a", "ctstate": ["DNAT"], "state_match": "state", "jump": "ACCEPT"}, "ctstate", "conntrack"),
    ({"name": "a", "in_interface": "this-name-is-too-long", "jump": "ACCEPT"}, "in_interface", "15"),
    ({"name": "a", "chain": "OUTPUT", "in_interface": "eth0", "jump": "ACCEPT"}, "in_interface", "OUTPUT"),
    ({"name": "a", "out_interface": "eth0", "jump": "ACCEPT"}, "out_interface", "INPUT"),
    ({"name": "a", "protocol": "t c p", "jump": "ACCEPT"}, "protocol", "protocol"),
    ({"name": "a", "protocol": "300", "jump": "ACCEPT"}, "protocol", "0-255"),
    ({"name": "a", "comment": "x" * 250, "jump": "ACCEPT"}, "comment", "at most"),
    ({"name": "a", "comment": "two\nlines", "jump": "ACCEPT"}, "comment", "one line"),
    ({"name": "a", "jump": "ACCEPT", "table": "nope"}, "table", "nope"),
]


@pytest.mark.parametrize("params,option,words", BAD, ids=["%s-%d" % (b[1], i) for i, b in enumerate(BAD)])
def test_bad_input_names_the_option(params, option, words):
    with pytest.raises(SpecError) as err:
        validate_rule(params)
    assert err.value.option == option
    assert str(err.value).startswith(option + ": ")
    assert words in str(err.value)


def test_list_errors_name_the_item():
    with pytest.raises(SpecError) as err:
        validate_rules({"rules": [{"name": "a", "jump": "ACCEPT"},
                                  {"name": "b", "protocol": "tcp", "dports": [0], "jump": "ACCEPT"}]})
    assert err.value.option == "rules[1].dports"


def test_duplicate_names_in_rules():
    with pytest.raises(SpecError) as err:
        validate_rules({"rules": [{"name": "a", "jump": "ACCEPT"}, {"name": "b", "jump": "DROP"},
                                  {"name": "a", "jump": "DROP"}]})
    assert err.value.option == "rules[2].name"
    assert "duplicate" in str(err.value) and "rules[0]" in str(err.value)


@pytest.mark.parametrize("params,option", [
    ({"rules": [{"name": "a", "jump": "ACCEPT"}], "name": "b"}, "name"),
    ({"rules": [{"name": "a", "jump": "ACCEPT"}], "jump": "DROP"}, "jump"),
    ({"rules": [{"name": "a", "jump": "ACCEPT"}], "dports": [22]}, "dports"),
    ({"rules": ["a"]}, "rules[0]"),
    ({"rules": [{"name": "a", "jump": "ACCEPT", "bogus": 1}]}, "rules[0].bogus"),
])
def test_list_form_misuse(params, option):
    with pytest.raises(SpecError) as err:
        validate_rules(params)
    assert err.value.option == option


def test_list_items_inherit_top_level_defaults_and_may_override():
    rules = validate_rules({"chain": "FORWARD", "priority": 300, "state_match": "state", "ip_version": "ipv4",
                            "rules": [{"name": "a", "ctstate": ["NEW"], "jump": "ACCEPT"},
                                      {"name": "b", "chain": "OUTPUT", "priority": 7, "state_match": "conntrack",
                                       "ctstate": ["NEW"], "jump": "ACCEPT"}]},
                           module_families=("ipv4",))
    assert (rules[0].chain, rules[0].priority, rules[0].families) == ("FORWARD", 300, ("ipv4",))
    assert (rules[1].chain, rules[1].priority) == ("OUTPUT", 7)
    assert rule_lines(rules, "ipv4") == [  # in priority order
        "-A OUTPUT -m conntrack --ctstate NEW %s -j ACCEPT" % tag("b", 7),
        "-A FORWARD -m state --state NEW %s -j ACCEPT" % tag("a", 300),
    ]


def test_item_ip_version_may_only_narrow():
    with pytest.raises(SpecError) as err:
        validate_rules({"ip_version": "ipv4", "rules": [{"name": "a", "ip_version": "ipv6", "jump": "DROP"}]},
                       module_families=("ipv4",))
    assert err.value.option == "rules[0].ip_version"


def test_absent_needs_only_the_name():
    (rule,) = validate_rules({"name": "gone", "state": "absent"})
    d = desired_for((rule,), "ipv4")
    assert d.groups == () and d.absent == (("filter", "rule", "gone"),)


def test_family_without_lines_removes_the_rule_there():
    rules = validate_rules({"name": "a", "source": ["198.51.100.1"], "jump": "ACCEPT"})
    assert len(desired_for(rules, "ipv4").groups) == 1
    d6 = desired_for(rules, "ipv6")
    assert d6.groups == () and d6.absent == (("filter", "rule", "a"),)


BASE = [
    {"name": "loopback", "priority": 100, "in_interface": "lo", "jump": "ACCEPT"},
    {"name": "established", "priority": 110, "ctstate": ["ESTABLISHED", "RELATED"], "state_match": "state",
     "jump": "ACCEPT"},
    {"name": "icmp", "priority": 120, "protocol": "icmp", "jump": "ACCEPT"},
    {"name": "http", "protocol": "tcp", "dports": [80], "ctstate": ["NEW"], "state_match": "state",
     "jump": "ACCEPT"},
]


def dump(*lines, chains=()):
    head = ["*filter", ":INPUT DROP [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    head += [":%s - [0:0]" % c for c in chains]
    return parse_save("\n".join(head + list(lines) + ["COMMIT"]) + "\n")


def test_base_rules_plan_in_priority_order_around_foreign_rules():
    rules = validate_rules({"rules": list(reversed(BASE))})
    current = dump("-A INPUT -s 203.0.113.5/32 -j DROP", "-A INPUT -j f2b-sshd", chains=("f2b-sshd",))
    plan = plan_changes(current, desired_for(rules, "ipv4"), "ipv4")
    inserts = [c for c in plan.tables[0].commands if c.startswith("-I INPUT")]
    assert [c.split()[2] for c in inserts] == ["3", "4", "5", "6"]
    assert "loopback" in inserts[0] and "http" in inserts[3]
    # Converged: the same rules planned against the result change nothing.
    after = dump("-A INPUT -s 203.0.113.5/32 -j DROP", "-A INPUT -j f2b-sshd",
                 *rule_lines(rules, "ipv4"), chains=("f2b-sshd",))
    assert not plan_changes(after, desired_for(rules, "ipv4"), "ipv4").changed


def test_changed_option_replaces_in_place():
    old = validate_rules({"rules": BASE})
    current = dump("-A INPUT -s 203.0.113.9/32 -j ACCEPT", *rule_lines(old, "ipv4"))
    new_base = [dict(r) for r in BASE]
    new_base[3]["dports"] = [8080]
    new = validate_rules({"rules": new_base})
    plan = plan_changes(current, desired_for(new, "ipv4"), "ipv4")
    cmds = plan.tables[0].commands
    assert cmds == ("-D INPUT %s" % render_specs(old[3], "ipv4")[0],
                    "-I INPUT 5 %s" % render_specs(new[3], "ipv4")[0])


def test_jump_to_missing_chain_is_a_plan_error_naming_jump():
    rules = validate_rules({"name": "to-wl", "jump": "WHITELIST"})
    with pytest.raises(PlanError) as err:
        plan_changes(dump(), desired_for(rules, "ipv4"), "ipv4")
    assert err.value.option == "jump" and "WHITELIST" in str(err.value)
    plan = plan_changes(dump(chains=("WHITELIST",)), desired_for(rules, "ipv4"), "ipv4")
    assert plan.changed


def test_missing_chain_is_a_plan_error_naming_chain():
    rules = validate_rules({"name": "a", "chain": "NOPE", "jump": "ACCEPT"})
    with pytest.raises(PlanError) as err:
        plan_changes(dump(), desired_for(rules, "ipv4"), "ipv4")
    assert err.value.option == "chain"


def test_quoted_minus_j_in_log_prefix_or_comment_is_not_the_target():
    rules = validate_rules({"rules": [{"name": "l", "jump": "LOG", "log_prefix": "a -j X"},
                                      {"name": "c", "jump": "ACCEPT", "comment": "x -j Y -g Z"}]})
    plan = plan_changes(dump(), desired_for(rules, "ipv4"), "ipv4")
    assert len([c for c in plan.tables[0].commands if c.startswith("-I INPUT")]) == 2


def _two_tables(filter_lines=(), mangle_lines=()):
    text = ["*mangle", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]"] + list(mangle_lines)
    text += ["COMMIT", "*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    return parse_save("\n".join(text + list(filter_lines) + ["COMMIT"]) + "\n")


def test_changed_table_moves_the_rule_out_of_its_old_table():
    old = validate_rules({"name": "mark", "in_interface": "eth0", "jump": "ACCEPT"})
    current = _two_tables(filter_lines=["-A INPUT -s 203.0.113.9/32 -j DROP"] + rule_lines(old, "ipv4"))
    new = validate_rules({"name": "mark", "table": "mangle", "in_interface": "eth0", "jump": "ACCEPT"})
    plan = plan_changes(current, desired_for(new, "ipv4", current), "ipv4")
    by_table = dict((tp.table, tp.commands) for tp in plan.tables)
    assert [c for c in by_table["filter"] if c.startswith("-D ")] == [rule_lines(old, "ipv4")[0].replace("-A", "-D", 1)]
    assert [c.split()[:3] for c in by_table["mangle"]] == [["-I", "INPUT", "1"]]
    # Converged: nothing left to do, and the foreign filter rule stays.
    after = _two_tables(filter_lines=["-A INPUT -s 203.0.113.9/32 -j DROP"], mangle_lines=rule_lines(new, "ipv4"))
    assert not plan_changes(after, desired_for(new, "ipv4", after), "ipv4").changed


def test_absent_removes_the_name_from_every_table_holding_it():
    placed = validate_rules({"name": "gone", "table": "mangle", "jump": "ACCEPT"})
    current = _two_tables(mangle_lines=rule_lines(placed, "ipv4"))
    (rule,) = validate_rules({"name": "gone", "state": "absent"})
    d = desired_for((rule,), "ipv4", current)
    assert d.absent == (("filter", "rule", "gone"), ("mangle", "rule", "gone"))
    plan = plan_changes(current, d, "ipv4")
    assert [tp.table for tp in plan.tables] == ["mangle"]


def test_exclusive_prefix_removes_unlisted_rules_of_its_namespace_only():
    placed = validate_rules({"rules": [
        {"name": "fw-port-80", "protocol": "tcp", "dports": [80], "jump": "ACCEPT"},
        {"name": "fw-port-8080", "protocol": "tcp", "dports": [8080], "jump": "ACCEPT"},
        {"name": "other", "protocol": "tcp", "dports": [9090], "jump": "ACCEPT"}]})
    mangle = validate_rules({"name": "fw-mark", "table": "mangle", "jump": "ACCEPT"})
    current = _two_tables(filter_lines=["-A INPUT -s 203.0.113.9/32 -j DROP"] + rule_lines(placed, "ipv4"),
                          mangle_lines=rule_lines(mangle, "ipv4"))
    params = {"exclusive_prefix": "fw-", "rules": [{"name": "fw-port-80", "protocol": "tcp", "dports": [80],
                                                   "jump": "ACCEPT"}]}
    rules = validate_rules(params)
    prefix = validate_exclusive_prefix(params, rules)
    d = desired_for(rules, "ipv4", current, prefix)
    assert pruned_names(rules, d) == ["fw-mark", "fw-port-8080"]
    assert sorted(a for a in d.absent) == [("filter", "rule", "fw-port-8080"), ("mangle", "rule", "fw-mark")]
    plan = plan_changes(current, d, "ipv4")
    deleted = [c for tp in plan.tables for c in tp.commands if c.startswith("-D ")]
    assert len(deleted) == 2 and not any("other" in c or "203.0.113.9" in c for c in deleted)
    # Without the prefix nothing unlisted is touched.
    assert plan_changes(current, desired_for(rules, "ipv4", current), "ipv4").changed is False


@pytest.mark.parametrize("params,option,words", [
    ({"name": "a", "jump": "ACCEPT", "exclusive_prefix": "fw-"}, "exclusive_prefix", "rules list form"),
    ({"rules": [{"name": "fw-a", "jump": "ACCEPT"}, {"name": "b", "jump": "ACCEPT"}], "exclusive_prefix": "fw-"},
     "rules[1].name", "does not start with exclusive_prefix 'fw-'"),
    ({"rules": [{"name": "fw-a", "jump": "ACCEPT"}], "exclusive_prefix": "fw /"}, "exclusive_prefix", "characters"),
])
def test_exclusive_prefix_bad_input_names_the_option(params, option, words):
    with pytest.raises(SpecError) as err:
        validate_exclusive_prefix(params, validate_rules(params) if "rules" in params else ())
    assert err.value.option == option and words in str(err.value)


# --- the limit match: one entry of the option table ---------------------------------------

@pytest.mark.parametrize("given,printed", [
    ({"limit": "3/minute"}, "-m limit --limit 3/min"),
    ({"limit": "3/minute", "limit_burst": 5}, "-m limit --limit 3/min"),
    ({"limit": "25/second", "limit_burst": 100}, "-m limit --limit 25/sec --limit-burst 100"),
    ({"limit": "1/h", "limit_burst": 1}, "-m limit --limit 1/hour --limit-burst 1"),
    ({"limit": "7/minute"}, "-m limit --limit 7/min"),
])
def test_limit_renders_as_iptables_save_prints_it(given, printed):
    spec = render_specs(validate_rule(dict(given, name="l", ctstate=["NEW"], jump="ACCEPT")), "ipv4")[0]
    assert spec == "-m conntrack --ctstate NEW %s -m comment --comment \"ironwall:500:rule:l\" -j ACCEPT" % printed


@pytest.mark.parametrize("given,option", [
    ({"limit": "3/fortnight"}, "limit"),
    ({"limit": "0/second"}, "limit"),
    ({"limit": "20000/second"}, "limit"),
    ({"limit": True}, "limit"),
    ({"limit_burst": 5}, "limit_burst"),
    ({"limit": "3/minute", "limit_burst": 0}, "limit_burst"),
    ({"limit": "3/minute", "limit_burst": 10001}, "limit_burst"),
    # xt_limit's u32 credit counter overflows: iptables-legacy refuses it, so both backends do
    ({"limit": "5/day", "limit_burst": 8}, "limit_burst"),
])
def test_limit_bad_input_names_the_option(given, option):
    with pytest.raises(SpecError) as err:
        validate_rule(dict(given, name="l", jump="ACCEPT"))
    assert err.value.option == option
    with pytest.raises(SpecError) as err:
        validate_rules({"rules": [{"name": "ok", "jump": "ACCEPT"}, dict(given, name="l", jump="ACCEPT")]})
    assert err.value.option == "rules[1]." + option


def test_limit_is_read_back_and_unknown_to_the_guard():
    from ansible_collections.ironwall.iptables.plugins.module_utils._guard import ssh_packet, verdict
    from ansible_collections.ironwall.iptables.plugins.module_utils._options import read_rule
    spec = render_specs(validate_rule({"name": "l", "limit": "3/minute", "limit_burst": 9, "protocol": "tcp",
                                       "jump": "ACCEPT"}), "ipv4")[0]
    current = dump("-A INPUT " + spec).table("filter")
    values, complete = read_rule(current.chain("INPUT").rules[0].parts)
    assert complete and values["limit"] == "3/min" and values["limit_burst"] == 9
    # an ACCEPT behind a rate limit does not prove the operator gets through (policy DROP)
    operator = ssh_packet("198.51.100.7 51234 198.51.100.1 22")
    assert verdict(current, operator) == "DROP"
    without_limit = spec.replace("-m limit --limit 3/min --limit-burst 9 ", "")
    assert verdict(dump("-A INPUT " + without_limit).table("filter"), operator) == "ACCEPT"
