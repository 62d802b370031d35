# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Rule chains (issue 14, the ``chains`` option): created with a marker, rules placed in them by
priority, other software's chains and the collection's other chains refused, removed with the
tagged jumps to them, removal refused while a foreign rule is in them or jumps to them."""

from __future__ import annotations

import pytest

from ansible_collections.ironwall.iptables.plugins.module_utils import _persist, _rules, _ruleset
from ansible_collections.ironwall.iptables.plugins.module_utils._errors import PlanError, SpecError
from ansible_collections.ironwall.iptables.plugins.module_utils._model import Ruleset, parse_save
from ansible_collections.ironwall.iptables.plugins.module_utils._plan import (
    Desired, RuleChain, plan_changes, undo_script)
from ansible_collections.ironwall.iptables.plugins.modules import iptables_rule, iptables_ruleset
from ansible_collections.ironwall.iptables.tests.unit.plugins.modules import modrunner
from ansible_collections.ironwall.iptables.tests.unit.plugins.modules.modrunner import run_module

EMPTY = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
MARK = '-m comment --comment "ironwall:chain:rule-chain:WEB"'


def t(prio, name):
    return '-m comment --comment "ironwall:%03d:rule:%s"' % (prio, name)


def filter_save(*lines, chains=()):
    head = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    head += [":%s - [0:0]" % c for c in chains]
    return parse_save("\n".join(head + list(lines) + ["COMMIT"]) + "\n")


def rules_of(*items, **top):
    params = dict(rules=list(items), ip_version="both", state_match=None, table="filter", chain="INPUT",
                  priority=500, state="present")
    params.update(top)
    return _rules.validate_rules(params)


def desired(rules=(), chains=(), family="ipv4", current=None, prefix=None):
    current = current or filter_save()
    out = _rules.RulesResource(tuple(rules), prefix).desired(family, current)
    return out + _rules.ChainsResource(chains).desired(family, current)


def after(current, plan):
    return Ruleset(tuple(plan.table_after(current.table(t.name)) for t in current.tables), current.header)


def chain_specs(ruleset, name):
    chain = ruleset.table("filter").chain(name)
    return None if chain is None else list(chain.specs)


WEB_RULES = (
    {"name": "to-web", "priority": 400, "protocol": "tcp", "dports": [80], "jump": "WEB"},
    {"name": "web-rest", "chain": "WEB", "priority": 900, "jump": "DROP"},
    {"name": "web-admins", "chain": "WEB", "priority": 100, "source": ["198.51.100.0/24"], "jump": "ACCEPT"},
)


# --- validation -------------------------------------------------------------------------------

def test_validate_chains_items_defaults_and_errors():
    chains = _rules.validate_chains(["WEB", {"name": "MARKS", "table": "mangle"}, {"name": "OLD", "state": "absent"}],
                                    table="filter", state="present")
    assert chains == (RuleChain("filter", "WEB", "chains[0]"), RuleChain("mangle", "MARKS", "chains[1]"),
                      RuleChain("filter", "OLD", "chains[2]", "absent"))
    # the task's table and state are the defaults (state: absent on the task removes its chains)
    assert _rules.validate_chains(["WEB"], table="nat", state="absent") == (
        RuleChain("nat", "WEB", "chains[0]", "absent"),)
    assert _rules.validate_chains(None) == ()
    bad = [
        (["INPUT"], "chains[0]"),
        (["ACCEPT"], "chains[0]"),
        (["-x"], "chains[0]"),
        (["A" * 29], "chains[0]"),
        (["with space"], "chains[0]"),
        (["bad/slash"], "chains[0]"),
        ([{"name": "W", "table": "nope"}], "chains[0].table"),
        ([{"name": "W", "state": "gone"}], "chains[0].state"),
        ([{"name": "W", "prio": 1}], "chains[0].prio"),
        ([{"table": "filter"}], "chains[0].name"),
        ([3], "chains[0]"),
        (["W", {"name": "W"}], "chains[1].name"),
    ]
    for items, option in bad:
        with pytest.raises(SpecError) as err:
            _rules.validate_chains(items)
        assert err.value.option == option, (items, err.value)
    # one name in two tables is two chains
    assert len(_rules.validate_chains(["W", {"name": "W", "table": "mangle"}])) == 2


# --- create and place -------------------------------------------------------------------------

def test_create_places_rules_after_the_marker_by_priority_with_the_jump_in_one_plan():
    cur = filter_save()
    want = desired(rules_of(*WEB_RULES), _rules.validate_chains(["WEB"]))
    plan = plan_changes(cur, want)
    assert plan.atomic
    lines = plan.script.splitlines()
    # the chain is declared in the same script the jump to it is inserted in
    assert lines[:3] == ["*filter", ":WEB - [0:0]", "-A WEB " + MARK]
    assert any(line.startswith("-I INPUT 1 ") and line.endswith("-j WEB") for line in lines)
    new = after(cur, plan)
    assert chain_specs(new, "WEB") == [MARK, "-s 198.51.100.0/24 %s -j ACCEPT" % t(100, "web-admins"),
                                       "%s -j DROP" % t(900, "web-rest")]
    assert chain_specs(new, "INPUT") == ["-p tcp -m tcp --dport 80 %s -j WEB" % t(400, "to-web")]
    assert new.table("filter").chain("WEB").owner == ("rule-chain", "WEB")
    # a rerun changes nothing
    assert not plan_changes(new, desired(rules_of(*WEB_RULES), _rules.validate_chains(["WEB"]), current=new)).changed
    # and the undo of the creation removes the chain again
    assert "-X WEB" in undo_script(cur, plan)


def test_rules_join_an_existing_rule_chain_in_priority_order_around_foreign_rules():
    cur = filter_save("-A WEB " + MARK,
                      "-A WEB -s 198.51.100.0/24 %s -j ACCEPT" % t(100, "web-admins"),
                      "-A WEB -s 203.0.113.7/32 -j ACCEPT",  # an admin's line, kept in its place
                      "-A WEB %s -j DROP" % t(900, "web-rest"), chains=("WEB",))
    # another task adds a rule at 500, without declaring the chain: it exists and is ours
    plan = plan_changes(cur, desired(rules_of({"name": "web-mid", "chain": "WEB", "priority": 500,
                                               "protocol": "tcp", "jump": "ACCEPT"}), current=cur))
    assert plan.script.count("-I WEB 4 ") == 1 and ":WEB" not in plan.script
    specs = chain_specs(after(cur, plan), "WEB")
    assert specs[0] == MARK and specs[2] == "-s 203.0.113.7/32 -j ACCEPT"
    assert [s.split("rule:")[1].split('"')[0] for s in specs if "rule:" in s] == ["web-admins", "web-mid", "web-rest"]
    # a rule of priority 0 still goes after the marker
    first = plan_changes(cur, desired(rules_of({"name": "zero", "chain": "WEB", "priority": 0, "jump": "RETURN"}),
                                      current=cur))
    specs = chain_specs(after(cur, first), "WEB")
    assert specs[0] == MARK and specs[1] == "%s -j RETURN" % t(0, "zero")


def test_a_rule_moves_out_of_a_rule_chain_and_the_chain_stays():
    cur = filter_save("-A WEB " + MARK, "-A WEB %s -j DROP" % t(900, "web-rest"), chains=("WEB",))
    plan = plan_changes(cur, desired(rules_of({"name": "web-rest", "priority": 900, "jump": "DROP"}),
                                     _rules.validate_chains(["WEB"]), current=cur))
    new = after(cur, plan)
    assert chain_specs(new, "WEB") == [MARK] and chain_specs(new, "INPUT") == ["%s -j DROP" % t(900, "web-rest")]


def test_the_same_chain_in_two_tables_and_two_families():
    cur = parse_save(EMPTY + "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
                             ":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n")
    chains = _rules.validate_chains(["W", {"name": "W", "table": "mangle"}])
    for family in ("ipv4", "ipv6"):
        plan = plan_changes(cur, desired((), chains, family, cur), family)
        assert [tp.table for tp in plan.tables] == ["filter", "mangle"]
        assert all(tp.chain_headers == (":W - [0:0]",) for tp in plan.tables)


# --- refusals ---------------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["present", "absent"])
def test_a_foreign_chain_of_the_same_name_is_refused_never_adopted(state):
    # fail2ban's chain, even with a tagged rule of ours jumping to it (no legacy adoption for rule chains)
    cur = filter_save("-A INPUT -p tcp %s -j WEB" % t(400, "to-web"), "-A WEB -j RETURN", chains=("WEB",))
    with pytest.raises(PlanError) as err:
        plan_changes(cur, desired((), _rules.validate_chains([{"name": "WEB", "state": state}]), current=cur))
    assert err.value.option == "chains[0]"
    assert "no ownership marker" in str(err.value) and "never adopted" in str(err.value)


def test_a_whitelist_chain_is_refused_both_ways():
    wl = filter_save('-A WEB -m comment --comment "ironwall:chain:whitelist:WEB"', "-A WEB -s 198.51.100.1/32 -j ACCEPT",
                     chains=("WEB",))
    for state in ("present", "absent"):
        with pytest.raises(PlanError) as err:
            plan_changes(wl, desired((), _rules.validate_chains([{"name": "WEB", "state": state}]), current=wl))
        assert err.value.option == "chains[0]" and "whitelist 'WEB'" in str(err.value)
    # a whitelist named like an existing rule chain is refused by the whitelist's own check
    from ansible_collections.ironwall.iptables.plugins.module_utils import _whitelist
    rc = filter_save("-A WEB " + MARK, chains=("WEB",))
    w = _whitelist.validate({"name": "WEB", "ports": [80], "sources": ["198.51.100.1"]})
    with pytest.raises(PlanError) as err:
        plan_changes(rc, _whitelist.desired_for(w, "ipv4"))
    assert err.value.option == "name" and "rule-chain 'WEB'" in str(err.value)
    # and both declared in one plan on a host that has neither
    with pytest.raises(PlanError) as err:
        plan_changes(filter_save(), _whitelist.desired_for(w, "ipv4") + desired((), _rules.validate_chains(["WEB"])))
    assert err.value.option == "chains[0]"


def test_a_whitelist_and_a_rule_chain_of_one_name_in_a_ruleset_fail_validation():
    params = dict(ip_version="both", whitelists=[{"name": "WEB", "ports": [80], "sources": ["198.51.100.1"]}],
                  chains=["WEB"])
    with pytest.raises(SpecError) as err:
        _ruleset.validate(params)
    assert err.value.option == "chains[0]"
    with pytest.raises(SpecError) as err:
        _ruleset.validate(dict(params, chains=[{"name": "MARKS", "table": "mangle"}, "OK", "WEB"]))
    assert err.value.option == "chains[2]" and "whitelists[0].name" in str(err.value)
    # in another table, or removed, the name is free
    assert _ruleset.validate(dict(params, chains=[{"name": "WEB", "table": "mangle"}]))
    assert _ruleset.validate(dict(params, chains=[{"name": "WEB", "state": "absent"}]))


def test_present_and_absent_in_one_plan_is_refused():
    chains = (RuleChain("filter", "WEB", "chains[0]"), RuleChain("filter", "WEB", "exclusive", "absent"))
    with pytest.raises(PlanError) as err:
        plan_changes(filter_save(), Desired(rule_chains=chains))
    assert err.value.option == "exclusive"


def test_a_rule_in_an_undeclared_missing_chain_still_fails_naming_chain():
    with pytest.raises(PlanError) as err:
        plan_changes(filter_save(), desired(rules_of({"name": "x", "chain": "WEB", "jump": "ACCEPT"})))
    assert err.value.option == "rules[0].chain"


# --- removal ----------------------------------------------------------------------------------

CONVERGED = (
    "-A INPUT -p tcp -m tcp --dport 80 %s -j WEB" % t(400, "to-web"),
    "-A INPUT -p udp -j ACCEPT",
    "-A FORWARD %s -j WEB" % t(500, "fwd-web"),  # another task's jump
    "-A WEB " + MARK,
    "-A WEB -s 198.51.100.0/24 %s -j ACCEPT" % t(100, "web-admins"),
    "-A WEB %s -j DROP" % t(900, "web-rest"),
)


def test_removal_takes_the_tagged_rules_and_every_tagged_jump_in_one_transaction():
    cur = filter_save(*CONVERGED, chains=("WEB",))
    gone = _rules.validate_chains([{"name": "WEB", "state": "absent"}])
    plan = plan_changes(cur, desired((), gone, current=cur))
    assert plan.atomic
    lines = plan.script.splitlines()
    assert lines[-3:] == ["-F WEB", "-X WEB", "COMMIT"]  # after the jumps are gone
    assert sum(1 for line in lines if line.startswith("-D ")) == 2  # the two jumps; the chain's own by -F
    new = after(cur, plan)
    assert chain_specs(new, "WEB") is None
    assert chain_specs(new, "INPUT") == ["-p udp -j ACCEPT"] and chain_specs(new, "FORWARD") == []
    assert _rules.ChainsResource(gone).report("ipv4", cur, plan) == {"chains": {"created": [], "removed": ["filter:WEB"]}}
    # removing a chain that is not there is no change
    assert not plan_changes(new, desired((), gone, current=new)).changed
    # state: absent on the task removes its rules and the chains it declares
    rules = rules_of(*WEB_RULES, state="absent")
    chains = _rules.validate_chains(["WEB"], state="absent")
    plan = plan_changes(cur, desired(rules, chains, current=cur))
    assert chain_specs(after(cur, plan), "WEB") is None and chain_specs(after(cur, plan), "FORWARD") == []


@pytest.mark.parametrize("foreign, what", [
    ("-A INPUT -s 203.0.113.9/32 -j WEB", "still jumps to it"),
    ("-A OUTPUT -g WEB", "still jumps to it"),
    ("-A WEB -s 203.0.113.9/32 -j ACCEPT", "did not place"),
])
def test_removal_is_refused_while_a_foreign_rule_jumps_to_or_sits_in_the_chain(foreign, what):
    cur = filter_save(*(CONVERGED + (foreign,)), chains=("WEB",))
    for chains, option in ((_rules.validate_chains([{"name": "WEB", "state": "absent"}]), "chains[0]"),
                           ((RuleChain("filter", "WEB", "exclusive", "absent"),), "exclusive")):
        with pytest.raises(PlanError) as err:
            plan_changes(cur, Desired(rule_chains=chains))
        assert err.value.option == option and what in str(err.value) and foreign in str(err.value)


def test_removal_is_refused_while_a_rule_of_this_run_is_placed_in_or_jumps_to_it():
    cur = filter_save(*CONVERGED, chains=("WEB",))
    gone = _rules.validate_chains([{"name": "WEB", "state": "absent"}])
    for rule in WEB_RULES:
        with pytest.raises(PlanError) as err:
            plan_changes(cur, desired(rules_of(rule), gone, current=cur))
        assert err.value.option == "chains[0]" and rule["name"] in str(err.value)
    # a rule of this run that used to jump there and no longer does is simply replaced
    plan = plan_changes(cur, desired(rules_of({"name": "to-web", "priority": 400, "protocol": "tcp", "dports": [80],
                                               "jump": "ACCEPT"}), gone, current=cur))
    assert chain_specs(after(cur, plan), "INPUT")[-1] == "-p tcp -m tcp --dport 80 %s -j ACCEPT" % t(400, "to-web")


# --- the ruleset: exclusive, persistence ------------------------------------------------------

def ruleset_resources(**params):
    base = dict(ip_version="both", rules=[], whitelists=[], ratelimits=[], policies=None, purge=False, keep=[])
    base.update(params)
    return _ruleset.validate(base)


def plan_of(resources, cur, family="ipv4"):
    want = Desired()
    for r in resources:
        want = want + r.desired(family, cur)
    return plan_changes(cur, want, family)


def test_exclusive_removes_an_undeclared_rule_chain_and_keeps_a_declared_one():
    cur = filter_save(*CONVERGED, chains=("WEB",))
    kept = ruleset_resources(rules=list(WEB_RULES) + [{"name": "fwd-web", "chain": "FORWARD", "jump": "WEB"}],
                             chains=["WEB"], exclusive=True)
    assert not plan_of(kept, cur).changed
    dropped = ruleset_resources(rules=[], chains=[], exclusive=True)
    plan = plan_of(dropped, cur)
    assert chain_specs(after(cur, plan), "WEB") is None
    assert "rule-chain:WEB" in dropped[-1].report("ipv4", cur, plan)["removed"]
    # a rule still placed in the undeclared chain: exclusive refuses, naming itself
    with pytest.raises(PlanError) as err:
        plan_of(ruleset_resources(rules=list(WEB_RULES[1:2]), exclusive=True), cur)
    assert err.value.option == "exclusive" and "web-rest" in str(err.value)
    # without exclusive an undeclared rule chain stays
    assert not plan_of(ruleset_resources(rules=list(WEB_RULES) + [{"name": "fwd-web", "chain": "FORWARD",
                                                                   "jump": "WEB"}]), cur).changed


def test_exclusive_refuses_an_undeclared_rule_chain_with_a_foreign_rule_and_changes_nothing():
    cur = filter_save(*(CONVERGED + ("-A INPUT -j WEB",)), chains=("WEB",))
    with pytest.raises(PlanError) as err:
        plan_of(ruleset_resources(exclusive=True), cur)
    assert err.value.option == "exclusive" and "-A INPUT -j WEB" in str(err.value)


def test_owned_save_keeps_the_rule_chain_and_the_jump_to_it():
    cur = filter_save(*CONVERGED, chains=("WEB",))
    text, skipped = _persist.render(cur, "ipv4", "owned", ())
    assert ":WEB - [0:0]" in text and "-A WEB " + MARK in text and "-j WEB" in text and skipped == []
    assert "-A INPUT -p udp -j ACCEPT" not in text


# --- the modules on a fake host ---------------------------------------------------------------

class FakeHost(modrunner.FakeHost):
    def __init__(self, v4=EMPTY, v6=EMPTY):
        super().__init__({"iptables-save": v4, "ip6tables-save": v6}, other=None)


def test_iptables_rule_module_creates_reports_then_changes_nothing():
    host = FakeHost()
    kind, result = run_module(iptables_rule, {"chains": ["WEB"], "rules": list(WEB_RULES)}, host)
    assert kind == "Exit" and result["changed"], result
    assert result["chains"] == {"ipv4": {"created": ["filter:WEB"], "removed": []},
                                "ipv6": {"created": ["filter:WEB"], "removed": []}}
    v4, v6 = host.save_text("iptables-save"), host.save_text("ip6tables-save")
    assert "-A WEB " + MARK in v4 and "-A WEB " + MARK in v6
    kind, again = run_module(iptables_rule, {"chains": ["WEB"], "rules": list(WEB_RULES)}, FakeHost(v4, v6))
    assert kind == "Exit" and again["changed"] is False and again["calls"]["restore"] == 0, again
    # chains alone (no name, no rules) removes it, with the rules and the jump
    kind, gone = run_module(iptables_rule, {"chains": [{"name": "WEB", "state": "absent"}]}, FakeHost(v4, v6))
    assert kind == "Exit" and gone["changed"] and gone["chains"]["ipv4"]["removed"] == ["filter:WEB"], gone
    assert gone["commands"]["ipv4"][-3:] == ["-F WEB", "-X WEB", "COMMIT"]
    # a rule option without a rule is refused when chains come alone
    kind, bad = run_module(iptables_rule, {"chains": ["WEB"], "jump": "ACCEPT"}, FakeHost())
    assert kind == "Fail" and bad["msg"].startswith("jump"), bad


def test_iptables_ruleset_module_refuses_a_foreign_chain_naming_chains_n():
    foreign = EMPTY.replace("COMMIT", ":WEB - [0:0]\n-A WEB -j RETURN\nCOMMIT")
    host = FakeHost(foreign, foreign)
    kind, result = run_module(iptables_ruleset, {"chains": ["OK", "WEB"]}, host)
    assert kind == "Fail" and result["msg"].startswith("chains[1]:"), result
    assert host.restores() == []


def test_two_removed_chains_go_in_jump_order_and_before_a_dropped_whitelist_chain():
    cur = filter_save('-A A -m comment --comment "ironwall:chain:rule-chain:A"',
                      "-A A %s -j B" % t(100, "a-to-b"),
                      "-A A %s -j WL" % '-m comment --comment "ironwall:500:whitelist:WL"',
                      '-A B -m comment --comment "ironwall:chain:rule-chain:B"',
                      '-A WL -m comment --comment "ironwall:chain:whitelist:WL"', chains=("B", "WL", "A"))
    from ansible_collections.ironwall.iptables.plugins.module_utils._plan import DropChain
    want = Desired(rule_chains=(RuleChain("filter", "B", "chains[0]", "absent"),
                                RuleChain("filter", "A", "chains[1]", "absent")),
                   drop_chains=(DropChain("filter", "WL", ("whitelist", "WL")),),
                   absent=(("filter", "whitelist", "WL"),))
    plan = plan_changes(cur, want)
    assert [line for line in plan.script.splitlines() if line.startswith("-X")] == ["-X A", "-X B", "-X WL"]
    assert [c.name for c in after(cur, plan).table("filter").chains] == ["INPUT", "FORWARD", "OUTPUT"]


def test_check_and_diff_mode_show_the_new_chain_and_run_only_tests():
    host = FakeHost()
    kind, result = run_module(iptables_rule, {"chains": ["WEB"], "rules": list(WEB_RULES)}, host, check=True, diff=True)
    assert kind == "Exit" and result["changed"] and result["chains"]["ipv6"]["created"] == ["filter:WEB"], result
    assert all("--test" in argv for _name, argv, _data in host.restores())
    assert host.save_text("iptables-save") == EMPTY  # nothing applied
    after4 = result["diff"][0]["after"].splitlines()
    assert ":WEB - [0:0]" in after4 and "-A WEB " + MARK in after4
    assert after4.index("-A WEB " + MARK) < after4.index("-A WEB %s -j DROP" % t(900, "web-rest"))
    # removal in diff mode: the chain is gone from "after", the jump too
    v4 = "\n".join(EMPTY.splitlines()[:-1] + [":WEB - [0:0]", "-A INPUT -p tcp %s -j WEB" % t(400, "to-web"),
                                              "-A WEB " + MARK, "COMMIT"]) + "\n"
    kind, gone = run_module(iptables_rule, {"chains": ["WEB"], "state": "absent", "name": "to-web"}, FakeHost(v4, v4),
                            check=True, diff=True)
    assert kind == "Exit" and gone["changed"] and gone["chains"]["ipv4"]["removed"] == ["filter:WEB"], gone
    assert "WEB" not in gone["diff"][0]["after"] and ":WEB" in gone["diff"][0]["before"]
