# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_ruleset: the lists validated into resources (errors named inside the lists), Item, Exclusive,
and the whole declaration planned together against rulesets holding Docker's and fail2ban's chains."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from ansible_collections.ironwall.iptables.plugins.module_utils import _ratelimit, _rules, _ruleset, _whitelist
from ansible_collections.ironwall.iptables.plugins.module_utils._errors import PlanError, SpecError
from ansible_collections.ironwall.iptables.plugins.module_utils._model import TAG_WORD, parse_save, render_save
from ansible_collections.ironwall.iptables.plugins.module_utils._persist import after
from ansible_collections.ironwall.iptables.plugins.module_utils._plan import plan_changes
from ansible_collections.ironwall.iptables.plugins.module_utils._policy import PolicyResource
from ansible_collections.ironwall.iptables.plugins.module_utils._transaction import _desired

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "fixtures")
EMPTY = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
WL = {"name": "MYSQL_WL", "ports": [3306], "sources": ["198.51.100.25", "2001:db8::25"]}
RL = {"name": "ssh", "ports": [22], "hitcount": 4, "seconds": 60}


def params(**kw):
    """The module's params as AnsibleModule leaves them (defaults filled in)."""
    out = dict(ip_version="both", wait=5, force=False, rollback_timeout=0, policies=None, purge=False, keep=[],
               state_match="conntrack", rules=[], exclusive_prefix=None, whitelists=[], ratelimits=[], sets=[],
               exclusive=False, save=None)
    out.update(kw)
    return out


def refused(**kw):
    with pytest.raises(SpecError) as err:
        _ruleset.validate(params(**kw))
    return err.value


def converge(resources, ruleset, family="ipv4"):
    """(plan, ruleset after it): every resource planned together, as _transaction.converge does."""
    plan = plan_changes(ruleset, _desired(resources, family, ruleset), family)
    return plan, after(ruleset, plan)


def state(text_or_ruleset, *declarations, family="ipv4"):
    """The ruleset once each declaration (params kwargs) was converged in turn."""
    rs = parse_save(text_or_ruleset) if isinstance(text_or_ruleset, str) else text_or_ruleset
    for kw in declarations:
        _plan, rs = converge(_ruleset.validate(params(**kw)), rs, family)
    return parse_save(render_save(rs, counters=False))


def lines(ruleset, table="filter"):
    return ["-A %s %s" % (c.name, r.spec) for c in ruleset.table(table).chains for r in c.rules]


def untagged(ruleset, table="filter", chains=None):
    """Every line without the collection's tag or ownership marker, in order; only of ``chains``
    (names) when given, else of the chains without an ownership marker."""
    out = []
    for chain in ruleset.table(table).chains:
        if (chain.name in chains) if chains is not None else chain.owner is None:
            out.extend("-A %s %s" % (chain.name, r.spec) for r in chain.rules if r.tag is None)
    return out


def tags(ruleset, table="filter"):
    """The (kind, name) of every tagged rule, in order."""
    return [r.tag.key for c in ruleset.table(table).chains for r in c.rules if r.tag is not None]


def chain_names(ruleset, table="filter"):
    return [c.name for c in ruleset.table(table).chains]


def item_of(resources, section, name):
    [item] = [r for r in resources if isinstance(r, _ruleset.Item) and r.section == section and r.name == name]
    return item


# --- validation: each item by its module's code, errors named inside the list -------------------

W1 = {"name": "W1", "ports": [1001]}
W2 = {"name": "W2", "ports": [1002]}
R_OK = {"name": "ok", "jump": "ACCEPT"}


@pytest.mark.parametrize("kw,option", [
    (dict(whitelists=[W1, W2, {"name": "W3", "ports": [70000]}]), "whitelists[2].ports"),
    (dict(whitelists=[W1, dict(W2, sources=["198.51.100.0/33"])]), "whitelists[1].sources"),
    (dict(whitelists=[dict(W1, chain="OUTPUT")]), "whitelists[0].chain"),
    (dict(whitelists=[dict(W1, name="ACCEPT")]), "whitelists[0].name"),
    (dict(whitelists=[dict(W1, fallback="ACCEPT")]), "whitelists[0].fallback"),
    (dict(whitelists=[{"name": "W1"}]), "whitelists[0].ports"),
    (dict(ratelimits=[dict(RL, hitcount=0)]), "ratelimits[0].hitcount"),
    (dict(ratelimits=[RL, {"name": "web", "ports": [80], "log_prefix": "p" * 30}]), "ratelimits[1].log_prefix"),
    (dict(ratelimits=[dict(RL, exempt_sources=["bogus"])]), "ratelimits[0].exempt_sources"),
    (dict(ratelimits=[dict(RL, seconds=0)]), "ratelimits[0].seconds"),
    (dict(ratelimits=[dict(RL, action="ACCEPT")]), "ratelimits[0].action"),
    (dict(rules=[R_OK, {"name": "b"}]), "rules[1].jump"),
    (dict(rules=[R_OK, {"name": "b", "protocol": "tcp", "dports": [70000], "jump": "ACCEPT"}]), "rules[1].dports"),
    (dict(rules=[{"name": "a b", "jump": "ACCEPT"}]), "rules[0].name"),
])
def test_an_item_error_is_named_inside_its_list(kw, option):
    err = refused(**kw)
    assert err.option == option
    assert str(err).startswith(option + ": ")


@pytest.mark.parametrize("item,module_params", [
    (dict(W1, ports=[70000]), dict(W1, ports=[70000])),
    (dict(W1, ctstate=["NEWISH"]), dict(W1, ctstate=["NEWISH"])),
    (dict(W1, sources=["2001:db8::1"], ip_version="ipv4"), dict(W1, sources=["2001:db8::1"], ip_version="ipv4")),
])
def test_a_whitelist_item_gets_the_message_of_iptables_whitelist(item, module_params):
    err = refused(whitelists=[item])
    with pytest.raises(SpecError) as alone:
        _whitelist.validate(module_params)
    assert err.option == "whitelists[0]." + alone.value.option
    assert err.message == alone.value.message


@pytest.mark.parametrize("item", [dict(RL, hitcount=300), dict(RL, log_level="info"),
                                  dict(RL, reject_with="tcp-reset")])
def test_a_ratelimit_item_gets_the_message_of_iptables_ratelimit(item):
    err = refused(ratelimits=[item])
    with pytest.raises(SpecError) as alone:
        _ratelimit.validate(item)
    assert err.option == "ratelimits[0]." + alone.value.option
    assert err.message == alone.value.message


def test_a_rule_jumping_to_a_missing_chain_is_refused_by_the_plan_naming_the_item():
    resources = _ruleset.validate(params(rules=[R_OK, {"name": "b", "jump": "NO_SUCH_CHAIN"}]))
    with pytest.raises(PlanError) as err:
        converge(resources, parse_save(EMPTY))
    assert err.value.option == "rules[1].jump" and "NO_SUCH_CHAIN" in str(err.value)


def test_a_whitelist_in_a_missing_chain_is_refused_by_the_plan_naming_the_item():
    resources = _ruleset.validate(params(whitelists=[W1, dict(W2, chain="NO_SUCH_CHAIN")]))
    with pytest.raises(PlanError) as err:
        converge(resources, parse_save(EMPTY))
    assert err.value.option == "whitelists[1].chain"


@pytest.mark.parametrize("kw,option,also", [
    (dict(whitelists=[W1, dict(W2), dict(W1, ports=[9])]), "whitelists[2].name", "whitelists[0]"),
    (dict(ratelimits=[RL, {"name": "web", "ports": [80]}, dict(RL, chain_name="RL_OTHER")]),
     "ratelimits[2].name", "ratelimits[0]"),
    (dict(rules=[R_OK, dict(R_OK, jump="DROP")]), "rules[1].name", "rules[0]"),
])
def test_duplicate_names_are_refused(kw, option, also):
    err = refused(**kw)
    assert err.option == option and also in err.message


@pytest.mark.parametrize("kw,option,other", [
    # the derived chain name of rate limit "ssh" is RATELIMIT_SSH
    (dict(whitelists=[dict(W1, name="RATELIMIT_SSH")], ratelimits=[RL]), "ratelimits[0].chain_name",
     "whitelists[0].name"),
    (dict(whitelists=[W1, dict(W2, name="RL_X")], ratelimits=[dict(RL, chain_name="RL_X")]),
     "ratelimits[0].chain_name", "whitelists[1].name"),
    (dict(ratelimits=[dict(RL, chain_name="RL_X"), {"name": "web", "ports": [80], "chain_name": "RL_X"}]),
     "ratelimits[1].chain_name", "ratelimits[0].chain_name"),
])
def test_two_resources_cannot_own_one_chain(kw, option, other):
    err = refused(**kw)
    assert err.option == option and other in err.message and "two resources cannot own one chain" in err.message


def test_a_whitelist_and_a_rate_limit_may_share_a_name_when_their_chains_differ():
    resources = _ruleset.validate(params(whitelists=[dict(W1, name="ssh")], ratelimits=[RL]))
    assert item_of(resources, "whitelists", "ssh") and item_of(resources, "ratelimits", "ssh")


@pytest.mark.parametrize("kw,option", [
    (dict(whitelists=[W1, dict(W2, table="filter")]), "whitelists[1].table"),
    (dict(whitelists=[dict(W1, comment="x")]), "whitelists[0].comment"),
    (dict(ratelimits=[dict(RL, sources=["198.51.100.1"])]), "ratelimits[0].sources"),
    (dict(ratelimits=[dict(RL, jump="DROP")]), "ratelimits[0].jump"),
    (dict(rules=[R_OK, dict(R_OK, name="b", bogus=1)]), "rules[1].bogus"),
])
def test_unknown_item_keys_are_refused(kw, option):
    err = refused(**kw)
    assert err.option == option and "unknown" in err.message


def test_an_unknown_key_left_unset_is_ignored_like_an_unset_option():
    resources = _ruleset.validate(params(whitelists=[dict(W1, table=None)]))
    assert item_of(resources, "whitelists", "W1")


@pytest.mark.parametrize("kw,option", [
    (dict(whitelists=[W1, "W2"]), "whitelists[1]"),
    (dict(whitelists=[["W1"]]), "whitelists[0]"),
    (dict(ratelimits=[5]), "ratelimits[0]"),
    (dict(ratelimits=[RL, None]), "ratelimits[1]"),
    (dict(rules=[R_OK, "b"]), "rules[1]"),
])
def test_an_item_that_is_not_a_dictionary_is_refused(kw, option):
    err = refused(**kw)
    assert err.option == option and "dictionary" in err.message


@pytest.mark.parametrize("task,kw,option", [
    ("ipv4", dict(whitelists=[dict(W1, ip_version="both")]), "whitelists[0].ip_version"),
    ("ipv4", dict(whitelists=[W1, dict(W2, ip_version="ipv6")]), "whitelists[1].ip_version"),
    ("ipv6", dict(ratelimits=[dict(RL, ip_version="ipv4")]), "ratelimits[0].ip_version"),
    ("ipv4", dict(rules=[dict(R_OK, ip_version="both")]), "rules[0].ip_version"),
    ("both", dict(whitelists=[dict(W1, ip_version="ipv5")]), "whitelists[0].ip_version"),
    ("both", dict(ratelimits=[dict(RL, ip_version=["ipv4"])]), "ratelimits[0].ip_version"),
])
def test_an_item_ip_version_outside_the_task_is_refused(task, kw, option):
    err = refused(ip_version=task, **kw)
    assert err.option == option


@pytest.mark.parametrize("task,given,expected", [
    ("both", None, ("ipv4", "ipv6")),
    ("both", "ipv6", ("ipv6",)),
    ("ipv4", None, ("ipv4",)),
    ("ipv6", "ipv6", ("ipv6",)),
])
def test_an_item_ip_version_narrows_the_task_and_defaults_to_it(task, given, expected):
    resources = _ruleset.validate(params(ip_version=task, whitelists=[dict(W1, ip_version=given)],
                                         ratelimits=[dict(RL, ip_version=given)]))
    assert tuple(item_of(resources, "whitelists", "W1").families) == expected
    assert tuple(item_of(resources, "ratelimits", "ssh").families) == expected


def test_purge_without_policies_is_refused():
    err = refused(purge=True, rules=[R_OK])
    assert err.option == "purge"


def test_purge_with_policies_purges_the_named_chains_only():
    [policy] = _ruleset.validate(params(policies={"INPUT": "DROP"}, purge=True, keep=["f2b-"]))
    assert isinstance(policy, PolicyResource) and policy.purge
    desired = policy.desired("ipv4", parse_save(EMPTY))
    assert [(p.table, p.chain) for p in desired.purges] == [("filter", "INPUT")]
    assert desired.policies == (("filter", "INPUT", "DROP"),)


def test_the_task_state_match_is_the_default_of_rules_and_whitelists():
    resources = _ruleset.validate(params(state_match="state", rules=[dict(R_OK, ctstate=["NEW"])],
                                         whitelists=[W1, dict(W2, state_match="conntrack")], ip_version="ipv4"))
    _plan, rs = converge(resources, parse_save(EMPTY))
    found = lines(rs)
    assert any("-m state --state NEW" in line and ":rule:ok" in line for line in found)
    assert any("-m state --state NEW" in line and "-j W1" in line for line in found)
    assert any("-m conntrack --ctstate NEW" in line and "-j W2" in line for line in found)


def test_the_hitcount_ceiling_is_read_only_for_a_present_rate_limit():
    calls = []

    def ceiling():
        calls.append(1)
        return 5

    _ruleset.validate(params(whitelists=[W1]), ceiling=ceiling)
    _ruleset.validate(params(ratelimits=[dict(RL, state="absent")]), ceiling=ceiling)
    assert calls == []
    err = refused_with_ceiling(ceiling, ratelimits=[dict(RL, hitcount=6)])
    assert err.option == "ratelimits[0].hitcount" and "from 1 to 5" in err.message and calls == [1]


def refused_with_ceiling(ceiling, **kw):
    with pytest.raises(SpecError) as err:
        _ruleset.validate(params(**kw), ceiling=ceiling)
    return err.value


# iptables_ratelimit declares accept, rttl and update as booleans, so Ansible turns "false", "no",
# "off" and "0" into False and refuses "maybe". The items of ratelimits are plain dictionaries
# (no argument spec): their values reach _ratelimit.validate as given, which takes bool(value).
@pytest.mark.parametrize("key", ["accept", "rttl", "update"])
def test_a_ratelimit_item_boolean_means_what_iptables_ratelimit_makes_of_it(key):
    problems = []
    for text in ("false", "no", "off", "0"):
        try:
            resources = _ruleset.validate(params(ratelimits=[dict(RL, **{key: text})]))
        except SpecError as exc:  # refusing the text is acceptable too, if it names the option
            if exc.option != "ratelimits[0].%s" % key:
                problems.append("%r: refused naming %s" % (text, exc.option))
            continue
        value = getattr(item_of(resources, "ratelimits", "ssh").present.limit, key)
        if value is not False:
            problems.append("%r was taken as %r" % (text, value))
    try:
        _ruleset.validate(params(ratelimits=[dict(RL, **{key: "maybe"})]))
        problems.append("'maybe' was accepted")
    except SpecError as exc:
        if exc.option != "ratelimits[0].%s" % key:
            problems.append("'maybe': refused naming %s" % exc.option)
    assert not problems, "ratelimits[0].%s: %s" % (key, "; ".join(problems))


# --- Item: one whitelist or rate limit, absent from the families it leaves out ------------------

def test_an_item_is_absent_in_the_family_its_ip_version_leaves_out():
    resources = _ruleset.validate(params(whitelists=[dict(WL, sources=["198.51.100.25"], ip_version="ipv4")],
                                         ratelimits=[dict(RL, ip_version="ipv6")]))
    wl = item_of(resources, "whitelists", "MYSQL_WL")
    rl = item_of(resources, "ratelimits", "ssh")
    rs = parse_save(EMPTY)
    v4, v6 = wl.desired("ipv4", rs), wl.desired("ipv6", rs)
    assert [c.name for c in v4.chains] == ["MYSQL_WL"] and v4.groups and not v4.absent
    assert v6.absent == (("filter", "whitelist", "MYSQL_WL"),) and [d.name for d in v6.drop_chains] == ["MYSQL_WL"]
    assert not v6.chains and not v6.groups
    v4, v6 = rl.desired("ipv4", rs), rl.desired("ipv6", rs)
    assert v4.absent == (("filter", "ratelimit", "ssh"),) and [d.name for d in v4.drop_chains] == ["RATELIMIT_SSH"]
    assert [c.name for c in v6.chains] == ["RATELIMIT_SSH"] and not v6.absent


def test_narrowing_an_item_removes_it_from_the_other_family():
    both = state(EMPTY, dict(whitelists=[WL], ratelimits=[RL]), family="ipv6")
    assert "MYSQL_WL" in chain_names(both) and "RATELIMIT_SSH" in chain_names(both)
    resources = _ruleset.validate(params(whitelists=[dict(WL, sources=["198.51.100.25"], ip_version="ipv4")],
                                         ratelimits=[dict(RL, ip_version="ipv4")]))
    plan, rs = converge(resources, both, "ipv6")
    assert plan.changed
    assert chain_names(rs) == ["INPUT", "FORWARD", "OUTPUT"] and lines(rs) == []
    report = item_of(resources, "whitelists", "MYSQL_WL").report("ipv6", both, plan)
    assert report == {"whitelists": {"MYSQL_WL": {"count": 0, "added": [], "removed": ["2001:db8::25/128"],
                                                  "rules": []}}}


def test_item_reports_are_keyed_by_section_then_name():
    resources = _ruleset.validate(params(whitelists=[WL], ratelimits=[RL]))
    rs = parse_save(EMPTY)
    plan, _after = converge(resources, rs, "ipv6")
    wl = item_of(resources, "whitelists", "MYSQL_WL").report("ipv6", rs, plan)
    assert list(wl) == ["whitelists"] and list(wl["whitelists"]) == ["MYSQL_WL"]
    assert wl["whitelists"]["MYSQL_WL"]["added"] == ["2001:db8::25/128"]
    assert wl["whitelists"]["MYSQL_WL"]["count"] == 1 and len(wl["whitelists"]["MYSQL_WL"]["rules"]) == 2
    rl = item_of(resources, "ratelimits", "ssh").report("ipv6", rs, plan)
    assert list(rl) == ["ratelimits"] and list(rl["ratelimits"]) == ["ssh"]
    entry = rl["ratelimits"]["ssh"]
    assert entry["lists"] == "ssh_v6" and entry["chain_name"] == "RATELIMIT_SSH"
    assert entry["hitcount_ceiling"] is None  # no ceiling function given to validate
    assert entry["rules"][0].startswith("-A INPUT ") and entry["rules"][0].endswith("-j RATELIMIT_SSH")


# --- Exclusive: the declaration is complete -----------------------------------------------------

# Other software's chains: fail2ban's, Docker's (filter and nat), an admin's.
FOREIGN = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 203.0.113.0/24 ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:ADMIN_CHAIN - [0:0]
:APP_IN - [0:0]
:DOCKER-USER - [0:0]
:f2b-sshd - [0:0]
-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd
-A INPUT -s 198.51.100.0/24 -p tcp -m tcp --dport 8080 -j APP_IN
-A INPUT -m comment --comment "admin: ironwall:500:rule:old is not ours" -j ACCEPT
-A INPUT -p udp -m udp --dport 53 -m comment --comment "ironwall:500:other-kind:x" -j ACCEPT
-A FORWARD -j DOCKER-USER
-A ADMIN_CHAIN -s 203.0.113.9/32 -j ACCEPT
-A APP_IN -j ACCEPT
-A DOCKER-USER -j RETURN
-A f2b-sshd -s 203.0.113.66/32 -j REJECT --reject-with icmp-port-unreachable
-A f2b-sshd -j RETURN
COMMIT
"""
FOREIGN_CHAINS = ("ADMIN_CHAIN", "APP_IN", "DOCKER-USER", "f2b-sshd")
KEEP = dict(rules=[{"name": "keep", "priority": 100, "in_interface": "lo", "jump": "ACCEPT"}],
            whitelists=[{"name": "KEEP_WL", "ports": [5432], "sources": ["198.51.100.7"]}],
            ratelimits=[{"name": "keep", "ports": [2222], "chain_name": "RL_KEEP"}])
OLD = dict(rules=[{"name": "old", "priority": 150, "protocol": "tcp", "dports": [8081], "jump": "APP_IN"},
                  {"name": "old-docker", "chain": "DOCKER-USER", "source": ["203.0.113.0/24"], "jump": "DROP"},
                  {"name": "old-masq", "table": "nat", "chain": "POSTROUTING", "source": ["198.51.100.0/24"],
                   "out_interface": "eth0", "jump": "ACCEPT"}],
           whitelists=[{"name": "OLD_WL", "ports": [3306], "sources": ["198.51.100.9"]}],
           ratelimits=[{"name": "old", "ports": [22]}])


def without_marker(text, chain):
    """``text`` with the ownership marker of ``chain`` taken out: a chain made before markers existed."""
    marker = [line for line in text.split("\n") if line.startswith("-A %s " % chain) and ":chain:" in line]
    assert len(marker) == 1
    return text.replace(marker[0] + "\n", "")


def host_with_old_items():
    """FOREIGN, plus what KEEP declares, plus OLD's items and a legacy whitelist chain LEGACY_WL."""
    rs = state(FOREIGN, dict(rules=KEEP["rules"] + OLD["rules"], whitelists=KEEP["whitelists"] + OLD["whitelists"]
                             + [{"name": "LEGACY_WL", "ports": [6432], "sources": ["198.51.100.8"]}],
                             ratelimits=KEEP["ratelimits"] + OLD["ratelimits"]))
    return parse_save(without_marker(render_save(rs, counters=False), "LEGACY_WL"))


def test_exclusive_removes_undeclared_tagged_rules_and_their_owned_chains():
    before = host_with_old_items()
    assert before.table("filter").chain("LEGACY_WL").owner is None
    resources = _ruleset.validate(params(exclusive=True, **KEEP))
    exclusive = resources[-1]
    assert isinstance(exclusive, _ruleset.Exclusive)
    plan, rs = converge(resources, before)
    assert set(tp.table for tp in plan.tables) == {"filter", "nat"}
    # the undeclared chains are gone, the declared and the foreign ones are there
    assert sorted(c for c in chain_names(rs) if c not in ("INPUT", "FORWARD", "OUTPUT")) == \
        ["ADMIN_CHAIN", "APP_IN", "DOCKER-USER", "KEEP_WL", "RL_KEEP", "f2b-sshd"]
    assert sorted(set(tags(rs))) == [("other-kind", "x"), ("ratelimit", "keep"), ("rule", "keep"),
                                     ("whitelist", "KEEP_WL")]
    assert tags(rs, "nat") == []
    assert exclusive.report("ipv4", before, plan) == {"removed": [
        "ratelimit:old", "rule:old", "rule:old-docker", "rule:old-masq", "whitelist:LEGACY_WL", "whitelist:OLD_WL"]}
    # what the declaration names is kept as it was
    for line in lines(before):
        if any(k in line for k in (":rule:keep", "KEEP_WL", "RL_KEEP", ":ratelimit:keep")):
            assert line in lines(rs)
    # and the rerun has nothing to remove
    again, _rs = converge(_ruleset.validate(params(exclusive=True, **KEEP)), rs)
    assert not again.changed
    assert exclusive.report("ipv4", rs, again) == {"removed": []}


def test_exclusive_never_touches_untagged_rules_foreign_chains_or_other_kinds():
    before = host_with_old_items()
    _plan, rs = converge(_ruleset.validate(params(exclusive=True, **KEEP)), before)
    for table in ("filter", "nat"):
        foreign = [c.name for c in parse_save(FOREIGN).table(table).chains]
        assert untagged(rs, table, foreign) == untagged(before, table, foreign)
    for name in FOREIGN_CHAINS:
        kept = [r.spec for r in rs.table("filter").chain(name).rules]
        was = [r.spec for r in before.table("filter").chain(name).rules if ":rule:old" not in r.spec]
        assert kept == was, name
    # a tag of a kind the collection does not declare here (not rule, whitelist, ratelimit) stays
    assert any(":other-kind:x" in line for line in lines(rs))
    # the lookalike comment is not a tag
    assert any("admin: ironwall:500:rule:old" in line for line in lines(rs))


def test_exclusive_drops_a_legacy_chain_an_undeclared_whitelist_jumps_to():
    text = without_marker(render_save(state(EMPTY, dict(whitelists=[{"name": "LEGACY_WL", "ports": [6432],
                                                                     "sources": ["198.51.100.8"]}])),
                                      counters=False), "LEGACY_WL")
    before = parse_save(text)
    assert before.table("filter").chain("LEGACY_WL").owner is None
    plan, rs = converge(_ruleset.validate(params(exclusive=True)), before)
    assert plan.script.endswith("-F LEGACY_WL\n-X LEGACY_WL\nCOMMIT\n")
    assert chain_names(rs) == ["INPUT", "FORWARD", "OUTPUT"] and lines(rs) == []


def test_exclusive_keeps_a_chain_only_an_undeclared_rule_jumps_to():
    # a rule (not a chain-owning kind) jumping to another program's chain: the rule goes, the chain stays
    before = state(FOREIGN, dict(rules=OLD["rules"][:1]))
    plan, rs = converge(_ruleset.validate(params(exclusive=True)), before)
    assert plan.changed
    assert "APP_IN" in chain_names(rs) and lines(rs) == lines(parse_save(FOREIGN))


def test_exclusive_drops_an_orphaned_owned_chain_without_any_jump():
    text = render_save(state(EMPTY, dict(whitelists=[W1])), counters=False)
    text = "\n".join(line for line in text.split("\n") if not line.startswith("-A INPUT ")) + "\n"
    before = parse_save(text)
    assert [r.spec for r in before.table("filter").chain("INPUT").rules] == []
    _plan, rs = converge(_ruleset.validate(params(exclusive=True)), before)
    assert "W1" not in chain_names(rs)


def test_exclusive_keeps_an_item_declared_absent_to_its_own_resource():
    before = state(EMPTY, dict(whitelists=[W1, W2]))
    resources = _ruleset.validate(params(exclusive=True, whitelists=[W1, dict(W2, state="absent")]))
    plan, rs = converge(resources, before)
    assert chain_names(rs) == ["INPUT", "FORWARD", "OUTPUT", "W1"]
    # W2 is the item's own removal, not an undeclared one
    assert resources[-1].report("ipv4", before, plan) == {"removed": []}


def test_without_exclusive_undeclared_items_stay():
    before = host_with_old_items()
    plan, rs = converge(_ruleset.validate(params(**KEEP)), before)
    assert not plan.changed and lines(rs) == lines(before)


def test_exclusive_in_a_family_the_declaration_leaves_out_of_an_item():
    # the whitelist is declared for IPv4 only: in IPv6 it is removed by its Item, and Exclusive
    # does not report it as undeclared
    before = state(EMPTY, dict(whitelists=[WL]), family="ipv6")
    resources = _ruleset.validate(params(exclusive=True, whitelists=[dict(WL, sources=["198.51.100.25"],
                                                                          ip_version="ipv4")]))
    plan, rs = converge(resources, before, "ipv6")
    assert lines(rs) == [] and resources[-1].report("ipv6", before, plan) == {"removed": []}


def test_exclusive_renaming_a_rate_limit_that_keeps_its_chain_name():
    # ratelimit "a" owned RL_SSH; the declaration now names it "b" with the same chain_name. The
    # undeclared "a" is removed (its jump, its chain) and "b" owns RL_SSH in the same transaction.
    before = state(EMPTY, dict(ratelimits=[{"name": "a", "chain_name": "RL_SSH"}]))
    assert before.table("filter").chain("RL_SSH").owner == ("ratelimit", "a")
    resources = _ruleset.validate(params(exclusive=True, ratelimits=[{"name": "b", "chain_name": "RL_SSH"}]))
    try:
        _plan, rs = converge(resources, before)
    except PlanError as exc:
        # refusing is defensible, but not by calling the collection's own marked chain foreign
        assert exc.option == "ratelimits[0].chain_name"
        assert "no ownership marker" not in exc.message and "did not create it" not in exc.message, exc.message
        return
    assert rs.table("filter").chain("RL_SSH").owner == ("ratelimit", "b")
    assert not [line for line in lines(rs) if ":ratelimit:a" in line]


# --- one declaration, one plan: other software's chains stay byte-identical -------------------------

def fixture(name):
    with open(os.path.join(FIXTURES, name)) as fh:
        return fh.read()


FIXTURE_FILES = ["docker-like.legacy.v4.save", "docker-like.nft.v4.save", "fail2ban-like.legacy.v4.save",
                 "fail2ban-like.legacy.v6.save", "fail2ban-like.nft.v4.save", "fail2ban-like.nft.v6.save"]


def declaration(ruleset):
    rules = [{"name": "loopback", "priority": 100, "in_interface": "lo", "jump": "ACCEPT"},
             {"name": "established", "priority": 110, "ctstate": ["ESTABLISHED", "RELATED"], "jump": "ACCEPT"},
             {"name": "web", "protocol": "tcp", "dports": [80, 443], "ctstate": ["NEW"], "jump": "ACCEPT"}]
    if ruleset.table("filter").chain("DOCKER-USER") is not None:
        rules.append({"name": "block", "chain": "DOCKER-USER", "source": ["203.0.113.0/24", "2001:db8:bad::/48"],
                      "jump": "DROP"})
    return params(policies={"INPUT": "DROP", "FORWARD": "DROP", "OUTPUT": "ACCEPT"}, rules=rules,
                  whitelists=[{"name": "MYSQL_WL", "ports": [3306], "sources": ["198.51.100.25", "2001:db8::25"]}],
                  ratelimits=[dict(RL, log_prefix="ssh-limit: ")], exclusive=True)


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_a_whole_declaration_leaves_docker_and_fail2ban_chains_byte_identical(name):
    family = "ipv6" if name.endswith(".v6.save") else "ipv4"
    before = parse_save(fixture(name))
    resources = _ruleset.validate(declaration(before))
    plan, rs = converge(resources, before, family)
    # one table changes, so the whole declaration is one atomic iptables-restore
    assert [tp.table for tp in plan.tables] == ["filter"] and plan.atomic
    for table in before.tables:
        foreign = [c.name for c in table.chains]
        assert untagged(rs, table.name, foreign) == untagged(before, table.name, foreign), table.name
        for chain in table.chains:
            if not chain.builtin:
                was = render_save(parse_save("*%s\n%s\n%s\nCOMMIT\n" % (
                    table.name, chain.header(), "\n".join(r.line for r in chain.rules))))
                now_chain = rs.table(table.name).chain(chain.name)
                now = render_save(parse_save("*%s\n%s\n%s\nCOMMIT\n" % (
                    table.name, now_chain.header(), "\n".join(r.line for r in now_chain.rules
                                                              if TAG_WORD + ":" not in r.spec))))
                assert now == was, chain.name
    # the tables the declaration does not touch are the very same objects
    for table in before.tables:
        if table.name != "filter":
            assert rs.table(table.name) is before.table(table.name)
    # the declared state is in place, and a rerun plans nothing
    assert rs.table("filter").chain("INPUT").policy == "DROP"
    assert rs.table("filter").chain("MYSQL_WL").owner == ("whitelist", "MYSQL_WL")
    assert rs.table("filter").chain("RATELIMIT_SSH").owner == ("ratelimit", "ssh")
    again, _rs = converge(_ruleset.validate(declaration(before)), parse_save(render_save(rs)), family)
    assert not again.changed, again.script


def test_the_docker_user_rule_goes_before_dockers_final_return():
    before = parse_save(fixture("docker-like.legacy.v4.save"))
    _plan, rs = converge(_ruleset.validate(declaration(before)), before)
    specs = [r.spec for r in rs.table("filter").chain("DOCKER-USER").rules]
    assert specs[-1] == "-j RETURN" and ":rule:block" in specs[-2]
    assert specs[:-2] == ["-s 203.0.113.0/24 -i eth0 -j DROP"]


# --- found while testing: an item whose chain another item owns whole ---------------------------

@pytest.mark.parametrize("kw,option,key", [
    # whitelist A's jump goes into whitelist B's chain, which B replaces whole
    (dict(whitelists=[{"name": "B", "ports": [1], "sources": ["198.51.100.1"]},
                      {"name": "A", "ports": [2], "chain": "B"}]), "whitelists[1].chain", ("whitelist", "A")),
    # a rule placed in a rate limit's chain
    (dict(ratelimits=[RL], rules=[{"name": "r", "chain": "RATELIMIT_SSH", "jump": "LOG", "log_prefix": "x"}]),
     "rules[0].chain", ("rule", "r")),
    # a rule placed in a whitelist's chain
    (dict(whitelists=[W1], rules=[{"name": "r", "chain": "W1", "source": ["203.0.113.9"], "jump": "ACCEPT"}]),
     "rules[0].chain", ("rule", "r")),
], ids=["whitelist-in-whitelist", "rule-in-ratelimit", "rule-in-whitelist"])
def test_an_item_placed_in_a_chain_another_item_owns_is_refused_or_placed(kw, option, key):
    # Either the declaration is refused naming the item's chain, or the item really is in the
    # planned ruleset; never a success that silently leaves it out (the report lists its rules).
    try:
        resources = _ruleset.validate(params(ip_version="ipv4", **kw))
        _plan, rs = converge(resources, parse_save(EMPTY))
    except SpecError as exc:
        assert exc.option == option
        return
    assert key in tags(rs), "%s: %s:%s is left out of the plan:\n%s" % (option, key[0], key[1], "\n".join(lines(rs)))


def test_item_desired_is_the_resource_of_the_family():
    w = _whitelist.validate(dict(WL, ip_version="ipv4", sources=["198.51.100.25"]))
    item = _ruleset.Item("whitelists", w.name, w.families, _whitelist.WhitelistResource(w),
                         _whitelist.WhitelistResource(replace(w, state="absent")))
    rs = parse_save(EMPTY)
    assert item.desired("ipv4", rs) == _whitelist.desired_for(w, "ipv4")
    assert item.desired("ipv6", rs) == _whitelist.desired_for(replace(w, state="absent"), "ipv6")


def test_rules_resource_comes_with_rules_or_exclusive_prefix_only():
    assert not [r for r in _ruleset.validate(params(whitelists=[W1])) if isinstance(r, _rules.RulesResource)]
    [res] = [r for r in _ruleset.validate(params(exclusive_prefix="open-")) if isinstance(r, _rules.RulesResource)]
    assert res.prefix == "open-" and res.rules == ()
