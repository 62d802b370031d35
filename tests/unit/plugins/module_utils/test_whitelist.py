# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_whitelist: options -> Whitelist -> Desired, planned against real-looking saves."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.ironwall.iptables.plugins.module_utils import _whitelist as w
from ansible_collections.ironwall.iptables.plugins.module_utils._model import Ruleset, parse_save, render_save
from ansible_collections.ironwall.iptables.plugins.module_utils._plan import PlanError, plan_changes
from ansible_collections.ironwall.iptables.plugins.module_utils._rulespec import SpecError, split_addresses

TAG = '-m comment --comment "ironwall:500:whitelist:MYSQL_WHITELIST"'
JUMP = "-p tcp -m tcp --dport 3306 -m conntrack --ctstate NEW %s -j MYSQL_WHITELIST" % TAG
DROP = "-p tcp -m tcp --dport 3306 -m conntrack --ctstate NEW %s -j DROP" % TAG
# The ownership marker that opens the whitelist's chain.
MARK = '-m comment --comment "ironwall:chain:whitelist:MYSQL_WHITELIST"'
EMPTY = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"


def params(**kw):
    base = dict(name="MYSQL_WHITELIST", sources=[], ports=["3306"], protocol="tcp", chain="INPUT",
                priority=500, ctstate=["NEW"], state_match="conntrack", fallback="DROP", state="present",
                ip_version="both")
    base.update(kw)
    return base


# --- validation: every bad input names its option --------------------------------------

BAD = [
    ("sources", dict(sources=["10.3.0.0/33"])),
    ("sources", dict(sources=["192.168.3"])),
    ("sources", dict(sources=["::g"])),
    ("sources", dict(sources=["2001:db8::1%eth0"])),
    ("sources", dict(sources=["198.51.100.1", "not-an-address"])),
    ("sources", dict(sources=["2001:db8::1"], ip_version="ipv4")),
    ("sources", dict(sources=["198.51.100.1"], ip_version="ipv6")),
    ("name", dict(name="A_WHITELIST_NAME_LONGER_THAN_28")),
    ("name", dict(name="ACCEPT")),
    ("name", dict(name="DROP")),
    ("name", dict(name="RETURN")),
    ("name", dict(name="INPUT")),
    ("name", dict(name="-BAD")),
    ("name", dict(name="HAS SPACE")),
    ("name", dict(name="")),
    ("ports", dict(ports=["0"])),
    ("ports", dict(ports=["65536"])),
    ("ports", dict(ports=["3306", "70000"])),
    ("ports", dict(ports=["2000:1000"])),
    ("ports", dict(ports=["mysql"])),
    ("ports", dict(ports=[])),
    ("ports", dict(ports=["3306"], protocol="icmp")),
    ("ports", dict(ports=["3306"], protocol="all")),
    ("ports", dict(ports=[str(p) for p in range(1, 17)])),
    ("protocol", dict(protocol="gre")),
    ("protocol", dict(protocol="t c p")),
    ("chain", dict(chain="MYSQL_WHITELIST")),
    ("chain", dict(chain="OUTPUT")),
    ("chain", dict(chain="X" * 29)),
    ("priority", dict(priority=1000)),
    ("priority", dict(priority=-1)),
    ("ctstate", dict(ctstate=["NEWISH"])),
    ("ctstate", dict(ctstate=["DNAT"], state_match="state")),
    ("fallback", dict(fallback="ACCEPT")),
    ("state", dict(state="gone")),
    ("ip_version", dict(ip_version="ipv5")),
]


@pytest.mark.parametrize("option,overrides", BAD, ids=["%s-%d" % (b[0], i) for i, b in enumerate(BAD)])
def test_bad_input_names_the_option(option, overrides):
    with pytest.raises(SpecError) as err:
        w.validate(params(**overrides))
    assert err.value.option == option
    assert str(err.value).startswith(option + ": ")


@pytest.mark.parametrize("value,family,canonical", [
    ("198.51.100.7", "ipv4", "198.51.100.7/32"),
    (" 198.51.100.7 ", "ipv4", "198.51.100.7/32"),
    ("203.0.113.77/24", "ipv4", "203.0.113.0/24"),
    ("198.51.100.0/24", "ipv4", "198.51.100.0/24"),
    ("2001:db8::1", "ipv6", "2001:db8::1/128"),
    ("2001:DB8:0:0::5/64", "ipv6", "2001:db8::/64"),
    ("2001:db8:100::/64", "ipv6", "2001:db8:100::/64"),
    # As ip6tables-save prints them (inet_ntop), checked against iptables 1.8.9 nft and legacy.
    ("::ffff:198.51.100.7", "ipv6", "::ffff:198.51.100.7/128"),
    ("::ffff:c633:6407", "ipv6", "::ffff:198.51.100.7/128"),
    ("::ffff:0:0", "ipv6", "::ffff:0.0.0.0/128"),
    ("::198.51.100.7", "ipv6", "::198.51.100.7/128"),
    ("64:ff9b::198.51.100.7", "ipv6", "64:ff9b::c633:6407/128"),
    ("::ffff:198.51.100.0/120", "ipv6", "::ffff:198.51.100.0/120"),
])
def test_sources_normalized_like_iptables_save(value, family, canonical):
    wl = w.validate(params(sources=[value]))
    assert wl.sources_of(family) == (canonical,)
    other = "ipv6" if family == "ipv4" else "ipv4"
    assert wl.sources_of(other) == ()


def test_sources_split_by_family_deduplicated_order_kept():
    wl = w.validate(params(sources=["203.0.113.9", "2001:db8::2", "198.51.100.1", "203.0.113.9/32",
                                    "2001:db8::2/128", "198.51.100.0/24"]))
    assert wl.sources_of("ipv4") == ("203.0.113.9/32", "198.51.100.1/32", "198.51.100.0/24")
    assert wl.sources_of("ipv6") == ("2001:db8::2/128",)


# --- rendering -------------------------------------------------------------------------

@pytest.mark.parametrize("overrides,family,expected", [
    ({}, "ipv4", (JUMP, DROP)),
    ({}, "ipv6", (JUMP, DROP)),
    (dict(fallback="REJECT"), "ipv4",
     (JUMP, DROP.replace("-j DROP", "-j REJECT --reject-with icmp-port-unreachable"))),
    (dict(fallback="REJECT"), "ipv6",
     (JUMP, DROP.replace("-j DROP", "-j REJECT --reject-with icmp6-port-unreachable"))),
    (dict(fallback="none"), "ipv4", (JUMP,)),
    (dict(ports=["3306", "33060", "4000-4010"]), "ipv4",
     (JUMP.replace("-m tcp --dport 3306", "-m multiport --dports 3306,33060,4000:4010"),
      DROP.replace("-m tcp --dport 3306", "-m multiport --dports 3306,33060,4000:4010"))),
    (dict(ports=["3306", "3306"]), "ipv4", (JUMP, DROP)),
    (dict(protocol="udp"), "ipv4",
     (JUMP.replace("tcp", "udp"), DROP.replace("tcp", "udp"))),
    (dict(ctstate=["ESTABLISHED", "NEW"]), "ipv4",
     (JUMP.replace("--ctstate NEW", "--ctstate NEW,ESTABLISHED"),
      DROP.replace("--ctstate NEW", "--ctstate NEW,ESTABLISHED"))),
    (dict(state_match="state"), "ipv4",
     (JUMP.replace("-m conntrack --ctstate", "-m state --state"),
      DROP.replace("-m conntrack --ctstate", "-m state --state"))),
    (dict(ctstate=[]), "ipv4",
     (JUMP.replace(" -m conntrack --ctstate NEW", ""), DROP.replace(" -m conntrack --ctstate NEW", ""))),
    (dict(priority=40), "ipv4", (JUMP.replace(":500:", ":040:"), DROP.replace(":500:", ":040:"))),
    (dict(protocol="icmp", ports=[]), "ipv6",
     ("-p ipv6-icmp -m conntrack --ctstate NEW %s -j MYSQL_WHITELIST" % TAG,
      "-p ipv6-icmp -m conntrack --ctstate NEW %s -j DROP" % TAG)),
    (dict(protocol="all", ports=None), "ipv4",
     ("-m conntrack --ctstate NEW %s -j MYSQL_WHITELIST" % TAG, "-m conntrack --ctstate NEW %s -j DROP" % TAG)),
])
def test_group_specs(overrides, family, expected):
    assert w.group_specs(w.validate(params(**overrides)), family) == expected


def test_chain_specs_one_accept_per_source_in_order():
    wl = w.validate(params(sources=["203.0.113.0/24", "198.51.100.25", "2001:db8::/48"]))
    assert w.chain_specs(wl, "ipv4") == (MARK, "-s 203.0.113.0/24 -j ACCEPT", "-s 198.51.100.25/32 -j ACCEPT")
    assert w.chain_specs(wl, "ipv6") == (MARK, "-s 2001:db8::/48 -j ACCEPT")


def test_any_address_renders_as_iptables_save_prints_it():
    wl = w.validate(params(sources=["198.51.100.25", "0.0.0.0/0", "::/0"]))
    assert w.chain_specs(wl, "ipv4") == (MARK, "-s 198.51.100.25/32 -j ACCEPT", "-j ACCEPT")
    assert w.chain_specs(wl, "ipv6") == (MARK, "-j ACCEPT")
    from ansible_collections.ironwall.iptables.plugins.module_utils._model import Chain, Rule
    for fam, want in (("ipv4", ["198.51.100.25/32", "0.0.0.0/0"]), ("ipv6", ["::/0"])):
        chain = Chain(w.TABLE, None, tuple(Rule(w.TABLE, s) for s in w.chain_specs(wl, fam)))
        assert w.chain_sources(chain, fam) == want


# --- planning against a save -------------------------------------------------------------

def test_first_run_creates_chain_jump_and_fallback_in_one_script():
    wl = w.validate(params(sources=["198.51.100.25", "203.0.113.0/24"]))
    plan = plan_changes(parse_save(EMPTY), w.desired_for(wl, "ipv4"), "ipv4")
    assert plan.script.splitlines() == [
        "*filter",
        ":MYSQL_WHITELIST - [0:0]",
        "-A MYSQL_WHITELIST " + MARK,
        "-A MYSQL_WHITELIST -s 198.51.100.25/32 -j ACCEPT",
        "-A MYSQL_WHITELIST -s 203.0.113.0/24 -j ACCEPT",
        "-I INPUT 1 " + JUMP,
        "-I INPUT 2 " + DROP,
        "COMMIT",
    ]


def current_save(sources, extra_input=(), jump=JUMP, drop=DROP, legacy=False):
    """The whitelist in place with these sources; ``legacy``: its chain as made before ownership
    markers existed (no marker)."""
    lines = ["*filter", ":INPUT DROP [10:600]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":MYSQL_WHITELIST - [0:0]", ":f2b-sshd - [0:0]"]
    lines += ["-A INPUT " + x for x in extra_input]
    lines += ["[5:300] -A INPUT " + jump, "-A INPUT " + drop]
    lines += [] if legacy else ["-A MYSQL_WHITELIST " + MARK]
    lines += ["-A MYSQL_WHITELIST -s %s -j ACCEPT" % s for s in sources]
    lines += ["-A f2b-sshd -j RETURN", "COMMIT"]
    return "\n".join(lines) + "\n"


def test_unchanged_whitelist_plans_nothing():
    wl = w.validate(params(sources=["198.51.100.25", "203.0.113.0/24", "2001:db8::1"]))
    save = current_save(["198.51.100.25/32", "203.0.113.0/24"],
                        extra_input=["-i lo -j ACCEPT", "-p tcp -m tcp --dport 22 -j f2b-sshd"])
    assert not plan_changes(parse_save(save), w.desired_for(wl, "ipv4"), "ipv4").changed


@pytest.mark.parametrize("current,wanted", [
    (["198.51.100.25/32", "203.0.113.0/24"], ["203.0.113.0/24"]),              # removal
    (["198.51.100.25/32"], ["198.51.100.25", "198.51.100.26"]),                 # addition
    (["198.51.100.25/32", "203.0.113.0/24"], ["203.0.113.0/24", "198.51.100.25"]),  # order
    (["198.51.100.25/32", "198.51.100.99/32"], []),                             # emptied
])
def test_changed_list_replaces_only_the_owned_chain(current, wanted):
    wl = w.validate(params(sources=wanted))
    save = current_save(current, extra_input=["-i lo -j ACCEPT"])
    plan = plan_changes(parse_save(save), w.desired_for(wl, "ipv4"), "ipv4")
    want = wl.sources_of("ipv4")
    assert plan.script.splitlines() == (["*filter", ":MYSQL_WHITELIST - [0:0]", "-A MYSQL_WHITELIST " + MARK]
                                        + ["-A MYSQL_WHITELIST -s %s -j ACCEPT" % s for s in want]
                                        + ["COMMIT"])
    before, after = plan.diff()
    for s in current:
        assert "-A MYSQL_WHITELIST -s %s -j ACCEPT" % s in before
    assert after.count("-A MYSQL_WHITELIST") == 1 + len(want)


def test_changed_option_replaces_the_tagged_pair_in_place():
    wl = w.validate(params(sources=["198.51.100.25"], ports=["3307"]))
    save = current_save(["198.51.100.25/32"], extra_input=["-i lo -j ACCEPT"])
    plan = plan_changes(parse_save(save), w.desired_for(wl, "ipv4"), "ipv4")
    lines = plan.script.splitlines()
    assert "-D INPUT " + JUMP in lines and "-D INPUT " + DROP in lines
    assert "-I INPUT 2 " + JUMP.replace("3306", "3307") in lines
    assert "-I INPUT 3 " + DROP.replace("3306", "3307") in lines
    assert not any(x.startswith(":MYSQL_WHITELIST") for x in lines)


@pytest.mark.parametrize("legacy", [False, True], ids=["marked", "legacy"])
def test_absent_removes_pair_and_drops_chain_in_one_table_block(legacy):
    wl = w.validate(params(state="absent", ports=None))
    save = current_save(["198.51.100.25/32"], extra_input=["-i lo -j ACCEPT"], legacy=legacy)
    plan = plan_changes(parse_save(save), w.desired_for(wl, "ipv4"), "ipv4")
    assert plan.script.splitlines() == [
        "*filter", "-D INPUT " + JUMP, "-D INPUT " + DROP, "-F MYSQL_WHITELIST", "-X MYSQL_WHITELIST", "COMMIT"]
    # ... and nothing once it is gone.
    assert not plan_changes(parse_save(EMPTY), w.desired_for(wl, "ipv4"), "ipv4").changed


def test_family_without_sources_gets_empty_chain_jump_and_fallback():
    wl = w.validate(params(sources=["198.51.100.25"]))
    desired = w.desired_for(wl, "ipv6")
    assert desired.chains[0].specs == (MARK,)
    assert desired.groups[0].specs == (JUMP, DROP)


@pytest.mark.parametrize("specs,expected", [
    ((), []),
    (("-s 198.51.100.1/32 -j ACCEPT", "-s 2001:db8::/32 -j ACCEPT"), ["198.51.100.1/32", "2001:db8::/32"]),
    (("-s 198.51.100.1/32 -p tcp -j ACCEPT",), ["-s 198.51.100.1/32 -p tcp -j ACCEPT"]),
    (("-j LOG",), ["-j LOG"]),
    # the marker opening the chain is not a source
    ((MARK,), []),
    ((MARK, "-s 198.51.100.1/32 -j ACCEPT", "-j ACCEPT"), ["198.51.100.1/32", "0.0.0.0/0"]),
    # ... only where it is a marker: first, alone; elsewhere it is a foreign rule like any other
    (("-s 198.51.100.1/32 -j ACCEPT", MARK), ["198.51.100.1/32", MARK]),
    (('-j LOG --log-prefix "ironwall:chain:whitelist:X"', "-s 198.51.100.1/32 -j ACCEPT"),
     ['-j LOG --log-prefix "ironwall:chain:whitelist:X"', "198.51.100.1/32"]),
    (('-m comment --comment "ironwall:chain:whitelist:MYSQL_WHITELIST" -j ACCEPT',),
     ['-m comment --comment "ironwall:chain:whitelist:MYSQL_WHITELIST" -j ACCEPT']),
])
def test_chain_sources(specs, expected):
    from ansible_collections.ironwall.iptables.plugins.module_utils._model import Chain, Rule
    chain = Chain("MYSQL_WHITELIST", None, tuple(Rule("MYSQL_WHITELIST", s) for s in specs))
    assert w.chain_sources(chain) == expected


def test_chain_sources_of_missing_chain():
    assert w.chain_sources(None) == []


@pytest.mark.parametrize("current,wanted,added,removed", [
    ([], ["a", "b"], ["a", "b"], []),
    (["a", "b"], ["b"], [], ["a"]),
    (["a", "b"], ["b", "a"], [], []),
    (["a", "x"], ["b", "a"], ["b"], ["x"]),
])
def test_source_changes(current, wanted, added, removed):
    assert w.source_changes(current, wanted) == (added, removed)


# --- ownership: a chain that exists and is not ours is never filled, flushed or deleted ---

FOREIGN_CHAINS = [
    # fail2ban's chain with a ban and its RETURN, jumped to from INPUT
    ("f2b-sshd", ("-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd",),
     ("-A f2b-sshd -s 203.0.113.50/32 -j REJECT --reject-with icmp-port-unreachable", "-A f2b-sshd -j RETURN")),
    # Docker's user hook
    ("DOCKER-USER", ("-A FORWARD -j DOCKER-USER",), ("-A DOCKER-USER -j RETURN",)),
    # an admin's chain, still empty, not jumped to
    ("MYSQL_WHITELIST", (), ()),
    # an admin's hand-made whitelist under the same name, with an untagged jump
    ("MYSQL_WHITELIST", ("-A INPUT -p tcp -m tcp --dport 3306 -j MYSQL_WHITELIST",),
     ("-A MYSQL_WHITELIST -s 198.51.100.25/32 -j ACCEPT",)),
]


def foreign_save(chain, jumps, rules):
    return "\n".join(["*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]",
                      ":%s - [0:0]" % chain, "-A INPUT -i lo -j ACCEPT"] + list(jumps) + list(rules)
                     + ["COMMIT"]) + "\n"


def assert_refused(save, wl, chain):
    for family in ("ipv4", "ipv6"):
        with pytest.raises(PlanError) as err:
            plan_changes(parse_save(save), w.desired_for(wl, family), family)
        assert err.value.option == "name"
        assert str(err.value).startswith("name: ") and repr(chain) in str(err.value)


@pytest.mark.parametrize("chain,jumps,rules", FOREIGN_CHAINS,
                         ids=["fail2ban", "docker", "admin-empty", "admin-same-name"])
@pytest.mark.parametrize("state", ["present", "absent"])
def test_whitelist_named_like_a_foreign_chain_is_refused(chain, jumps, rules, state):
    wl = w.validate(params(name=chain, sources=["198.51.100.25"], state=state))
    assert_refused(foreign_save(chain, jumps, rules), wl, chain)


@pytest.mark.parametrize("first_rule", [
    '-m comment --comment "ironwall:chain:whitelist:OTHER_WHITELIST"',   # another whitelist's chain
    '-m comment --comment "ironwall:chain:ratelimit:MYSQL_WHITELIST"',   # a rate limit's, same name
    '-m comment --comment "was ironwall:chain:whitelist:MYSQL_WHITELIST"',  # the text, inside a longer comment
    '-m comment --comment "ironwall:chain:whitelist:MYSQL_WHITELIST" -j ACCEPT',  # a comment on a rule that acts
    '-s 198.51.100.25/32 -m comment --comment "ironwall:chain:whitelist:MYSQL_WHITELIST"',
    '-m string --string "ironwall:chain:whitelist:MYSQL_WHITELIST" --algo bm --to 65535',
])
@pytest.mark.parametrize("state", ["present", "absent"])
def test_chain_whose_first_rule_is_not_our_marker_is_refused(first_rule, state):
    save = foreign_save("MYSQL_WHITELIST", (), ("-A MYSQL_WHITELIST " + first_rule,
                                                "-A MYSQL_WHITELIST -s 198.51.100.25/32 -j ACCEPT"))
    assert_refused(save, w.validate(params(sources=["198.51.100.25"], state=state)), "MYSQL_WHITELIST")


def test_log_prefix_holding_the_marker_text_does_not_claim_a_chain():
    save = foreign_save("WL", (), ('-A WL -j LOG --log-prefix "ironwall:chain:whitelist:WL"',))
    assert_refused(save, w.validate(params(name="WL", sources=["198.51.100.25"])), "WL")


def test_tagged_jump_of_another_resource_does_not_adopt_a_chain():
    # An iptables_rule of ours jumps to fail2ban's chain: it is still fail2ban's.
    save = foreign_save("f2b-sshd", ('-A INPUT -p tcp -m tcp --dport 22 -m comment --comment '
                                     '"ironwall:100:rule:to-f2b" -j f2b-sshd',), FOREIGN_CHAINS[0][2])
    assert_refused(save, w.validate(params(name="f2b-sshd", ports=["22"])), "f2b-sshd")


def test_foreign_chain_refusal_leaves_other_resources_unplanned():
    # One refused resource fails the whole plan (as in iptables_ruleset): the other one is not
    # planned either.
    mine = w.validate(params(name="MINE", sources=["198.51.100.25"], ports=["5432"]))
    theirs = w.validate(params(name="f2b-sshd", sources=["198.51.100.25"], ports=["22"]))
    desired = w.desired_for(mine, "ipv4") + w.desired_for(theirs, "ipv4")
    with pytest.raises(PlanError) as err:
        plan_changes(parse_save(foreign_save(*FOREIGN_CHAINS[0])), desired, "ipv4")
    assert err.value.option == "name" and "'f2b-sshd'" in str(err.value)


@pytest.mark.parametrize("sources", [["198.51.100.25/32", "203.0.113.0/24"], []])
def test_legacy_chain_with_our_tagged_jump_is_adopted_and_marked(sources):
    wl = w.validate(params(sources=sources))
    current = parse_save(current_save(sources, extra_input=["-i lo -j ACCEPT"], legacy=True))
    assert current.table("filter").chain("MYSQL_WHITELIST").owner is None
    assert w.chain_sources(current.table("filter").chain("MYSQL_WHITELIST")) == sources
    plan = plan_changes(current, w.desired_for(wl, "ipv4"), "ipv4")
    assert plan.script.splitlines() == (["*filter", ":MYSQL_WHITELIST - [0:0]", "-A MYSQL_WHITELIST " + MARK]
                                        + ["-A MYSQL_WHITELIST -s %s -j ACCEPT" % s for s in sources]
                                        + ["COMMIT"])
    now = Ruleset((plan.table_after(current.table("filter")),))
    assert now.table("filter").chain("MYSQL_WHITELIST").owner == ("whitelist", "MYSQL_WHITELIST")
    assert now.table("filter").chain("INPUT").specs == ("-i lo -j ACCEPT", JUMP, DROP)
    assert now.table("filter").chain("f2b-sshd").specs == ("-j RETURN",)
    assert w.chain_sources(now.table("filter").chain("MYSQL_WHITELIST")) == sources
    assert not plan_changes(now, w.desired_for(wl, "ipv4"), "ipv4").changed
    assert render_save(now, counters=False) == render_save(parse_save(current_save(
        sources, extra_input=["-i lo -j ACCEPT"])), counters=False)


def test_legacy_chain_with_changed_options_is_adopted_in_the_same_plan():
    # The first run after the upgrade also changes the port: one script marks the chain and
    # replaces the tagged pair.
    wl = w.validate(params(sources=["198.51.100.25"], ports=["3307"]))
    current = parse_save(current_save(["198.51.100.25/32"], legacy=True))
    plan = plan_changes(current, w.desired_for(wl, "ipv4"), "ipv4")
    now = Ruleset((plan.table_after(current.table("filter")),))
    chains = now.table("filter")
    assert chains.chain("MYSQL_WHITELIST").specs == (MARK, "-s 198.51.100.25/32 -j ACCEPT")
    assert chains.chain("INPUT").specs == (JUMP.replace("3306", "3307"), DROP.replace("3306", "3307"))
    assert not plan_changes(now, w.desired_for(wl, "ipv4"), "ipv4").changed


# --- scale: 10,000 sources ---------------------------------------------------------------

def test_ten_thousand_sources_validate_and_plan_noop_fast():
    sources = ["2001:db8:%x::%x" % (i // 4096, i % 4096 + 1) for i in range(10000)]
    wl = w.validate(params(sources=sources, ip_version="ipv6"))
    assert len(wl.sources_of("ipv6")) == 10000
    save = current_save(wl.sources_of("ipv6"))
    ruleset = parse_save(save)
    # CPU time of this process, not wall time: another busy process slows the clock on the
    # wall, not the work done here.
    start = time.process_time()
    again = w.validate(params(sources=sources, ip_version="ipv6"))
    plan = plan_changes(ruleset, w.desired_for(again, "ipv6"), "ipv6")
    elapsed = time.process_time() - start
    assert not plan.changed
    assert elapsed < 0.5, "validate + plan of an unchanged 10,000-source list used %.3f CPU s" % elapsed
    # One entry changed -> the whole chain is rewritten in one script, nothing else.
    plan = plan_changes(ruleset, w.desired_for(w.validate(params(sources=sources[1:], ip_version="ipv6")),
                                               "ipv6"), "ipv6")
    lines = plan.script.splitlines()
    assert len(lines) == 2 + 1 + 1 + 9999 and lines[1] == ":MYSQL_WHITELIST - [0:0]"
    assert lines[2] == "-A MYSQL_WHITELIST " + MARK and lines[3] == "-A MYSQL_WHITELIST -s %s -j ACCEPT" % \
        wl.sources_of("ipv6")[1]
    assert render_save(ruleset).count("-A MYSQL_WHITELIST") == 1 + 10000


# --- the fast address path agrees with _rulespec.parse_address ---------------------------

SAMPLES = ["198.51.100.7", "203.0.113.0/24", "203.0.113.77/25", "0.0.0.0", "255.255.255.255", "2001:db8::1",
           "2001:DB8:0:0:1:0:0:1", "2001:db8:0:1:1:1:1:1", "2001:db8::/32", "::", "::1", "::ffff:198.51.100.7",
           "2001:db8:1:0:0:0:0:0", "1:0:2:0:3:0:4:0", " 198.51.100.8 ", "2001:db8::5/128", "198.51.100.9/32"]
BAD_SAMPLES = ["01.2.3.4", "198.51.100.256", "198.51.100", "::g", "2001:db8::1%eth0", "", "198.51.100.0/33",
               "2001:db8::/129", "198.51.100.1/", "x"]


@pytest.mark.parametrize("value", SAMPLES)
def test_split_sources_matches_split_addresses(value):
    assert w.split_sources([value], ("ipv4", "ipv6")) == split_addresses([value], "sources", ("ipv4", "ipv6"))


@pytest.mark.parametrize("value", BAD_SAMPLES)
def test_split_sources_rejects_like_split_addresses(value):
    with pytest.raises(SpecError) as fast:
        w.split_sources([value], ("ipv4", "ipv6"))
    with pytest.raises(SpecError) as slow:
        split_addresses([value], "sources", ("ipv4", "ipv6"))
    assert str(fast.value) == str(slow.value)


@pytest.mark.parametrize("value,allowed", [("198.51.100.1", ("ipv6",)), ("2001:db8::1", ("ipv4",))])
def test_split_sources_family_outside_ip_version(value, allowed):
    with pytest.raises(SpecError, match="^sources: .* address but ip_version allows only"):
        w.split_sources([value], allowed)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.ip_addresses().map(str),
                 st.tuples(st.ip_addresses(v=4), st.integers(0, 32)).map(lambda t: "%s/%d" % t),
                 st.tuples(st.ip_addresses(v=6), st.integers(0, 128)).map(lambda t: "%s/%d" % t)))
def test_split_sources_property(value):
    assert w.split_sources([value], ("ipv4", "ipv6")) == split_addresses([value], "sources", ("ipv4", "ipv6"))


def test_split_sources_is_faster_than_ipaddress():
    values = ["2001:db8:%x::%x" % (i // 4096, i % 4096 + 1) for i in range(10000)]
    # CPU time of this process: a busy machine stretches one measurement's wall time and not the other's.
    start = time.process_time()
    fast = w.split_sources(values, ("ipv4", "ipv6"))
    t_fast = time.process_time() - start
    start = time.process_time()
    slow = split_addresses(values, "sources", ("ipv4", "ipv6"))
    t_slow = time.process_time() - start
    assert fast == slow
    assert t_fast < t_slow / 2, (t_fast, t_slow)
