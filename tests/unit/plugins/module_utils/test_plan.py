# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The planner: ownership, priority order, minimal scripts, untouched foreign rules."""

from __future__ import annotations

import re

import pytest

from ansible_collections.ironwall.iptables.plugins.module_utils._model import Tag, parse_save
from ansible_collections.ironwall.iptables.plugins.module_utils._plan import (
    Desired, OwnedChain, PlanError, Purge, TaggedGroup, plan_changes)
from ansible_collections.ironwall.iptables.plugins.module_utils._options import spec as build_spec


def ruleset(*lines, policy="ACCEPT", chains=()):
    head = ["*filter", ":INPUT %s [0:0]" % policy, ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    head += [":%s - [0:0]" % c for c in chains]
    return parse_save("\n".join(head + list(lines) + ["COMMIT"]) + "\n")


def group(name, prio, *specs_without_tag, chain="INPUT", kind="rule"):
    tag = Tag(prio, kind, name)
    specs = tuple(s + ' -m comment --comment "%s" -j ACCEPT' % tag.comment() for s in specs_without_tag)
    return TaggedGroup("filter", chain, tag, specs)


def apply_plan(current, plan):
    """The filter table after the plan's operations (_plan.apply_ops, as iptables-restore --noflush)."""
    table = plan.table_after(current.table("filter"))
    return dict((c.name, list(c.specs)) for c in table.chains), dict((c.name, c.policy) for c in table.chains)


FOREIGN = ["-A INPUT -s 198.51.100.9/32 -j ACCEPT", "-A INPUT -j f2b-sshd", "-A INPUT -p udp -j DROP"]


def test_no_change_plans_nothing():
    g = group("web", 100, "-p tcp -m tcp --dport 80")
    cur = ruleset("-A INPUT " + g.specs[0], *FOREIGN, chains=("f2b-sshd",))
    plan = plan_changes(cur, Desired(groups=(g,)))
    assert not plan.changed and plan.script == ""


def test_new_group_goes_before_higher_priority_and_foreign_rules_keep_places():
    low = group("lo", 10, "-i lo")
    high = group("web", 500, "-p tcp -m tcp --dport 80")
    cur = ruleset(FOREIGN[0], "-A INPUT " + low.specs[0], FOREIGN[2], "-A INPUT " + high.specs[0])
    mid = group("ssh", 100, "-p tcp -m tcp --dport 22")
    plan = plan_changes(cur, Desired(groups=(mid,)))
    chains, _policies = apply_plan(cur, plan)
    assert chains["INPUT"] == [FOREIGN[0][9:], low.specs[0], FOREIGN[2][9:], mid.specs[0], high.specs[0]]
    assert plan.script.count("-I INPUT") == 1 and "-D" not in plan.script
    # idempotent
    assert not plan_changes(parse_save(render(chains)), Desired(groups=(mid,))).changed


def render(chains, policy="ACCEPT"):
    lines = ["*filter", ":INPUT %s [0:0]" % policy, ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [":%s - [0:0]" % c for c in chains if c not in ("INPUT", "FORWARD", "OUTPUT")]
    for c, specs in chains.items():
        lines += ["-A %s %s" % (c, s) for s in specs]
    return "\n".join(lines + ["COMMIT"]) + "\n"


def test_changed_option_replaces_in_place():
    old = group("web", 100, "-p tcp -m tcp --dport 80")
    new = group("web", 100, "-p tcp -m tcp --dport 8080")
    cur = ruleset(FOREIGN[0], "-A INPUT " + old.specs[0], FOREIGN[2])
    plan = plan_changes(cur, Desired(groups=(new,)))
    chains, _policies = apply_plan(cur, plan)
    assert chains["INPUT"] == [FOREIGN[0][9:], FOREIGN[2][9:], new.specs[0]] or \
        chains["INPUT"] == [FOREIGN[0][9:], new.specs[0], FOREIGN[2][9:]]
    assert old.specs[0] not in chains["INPUT"]


def test_misordered_group_is_moved():
    a = group("a", 10, "-i lo")
    b = group("b", 20, "-p icmp")
    cur = ruleset("-A INPUT " + b.specs[0], "-A INPUT " + a.specs[0])
    plan = plan_changes(cur, Desired(groups=(a, b)))
    chains, _policies = apply_plan(cur, plan)
    assert chains["INPUT"] == [a.specs[0], b.specs[0]]
    assert not plan_changes(parse_save(render(chains)), Desired(groups=(a, b))).changed


def test_absent_removes_only_that_group():
    a = group("a", 10, "-i lo")
    b = group("b", 20, "-p icmp")
    cur = ruleset("-A INPUT " + a.specs[0], FOREIGN[0], "-A INPUT " + b.specs[0])
    plan = plan_changes(cur, Desired(absent=(("filter", "rule", "a"),)))
    chains, _policies = apply_plan(cur, plan)
    assert chains["INPUT"] == [FOREIGN[0][9:], b.specs[0]]
    assert plan.script.splitlines() == ["*filter", "-D INPUT " + a.specs[0], "COMMIT"]


def test_group_moving_chain_is_removed_from_old_chain():
    a = group("a", 10, "-i lo")
    moved = group("a", 10, "-o lo", chain="OUTPUT")
    cur = ruleset("-A INPUT " + a.specs[0])
    chains, _policies = apply_plan(cur, plan_changes(cur, Desired(groups=(moved,))))
    assert chains["INPUT"] == [] and chains["OUTPUT"] == [moved.specs[0]]


def test_owned_chain_replaced_whole_and_only_when_different():
    cur = ruleset("-A WL -s 198.51.100.1/32 -j ACCEPT", chains=("WL",))
    same = OwnedChain("filter", "WL", ("-s 198.51.100.1/32 -j ACCEPT",))
    assert not plan_changes(cur, Desired(chains=(same,))).changed
    new = OwnedChain("filter", "WL", ("-s 198.51.100.2/32 -j ACCEPT", "-s 198.51.100.1/32 -j ACCEPT"))
    plan = plan_changes(cur, Desired(chains=(new,)))
    assert plan.script.splitlines() == ["*filter", ":WL - [0:0]", "-A WL -s 198.51.100.2/32 -j ACCEPT",
                                        "-A WL -s 198.51.100.1/32 -j ACCEPT", "COMMIT"]


def test_drop_chain_after_removing_jump():
    jump = TaggedGroup("filter", "INPUT", Tag(50, "whitelist", "WL"),
                       ('-p tcp -m tcp --dport 3306 -m comment --comment "ironwall:050:whitelist:WL" -j WL',))
    cur = ruleset("-A INPUT " + jump.specs[0], "-A WL -s 198.51.100.1/32 -j ACCEPT", chains=("WL",))
    plan = plan_changes(cur, Desired(absent=(("filter", "whitelist", "WL"),), drop_chains=(("filter", "WL"),)))
    lines = plan.script.splitlines()
    assert lines.index("-D INPUT " + jump.specs[0]) < lines.index("-F WL") < lines.index("-X WL")


def test_policy_change_only():
    cur = ruleset(*FOREIGN[:1])
    plan = plan_changes(cur, Desired(policies=(("filter", "INPUT", "DROP"),)))
    assert plan.script.splitlines() == ["*filter", "-P INPUT DROP", "COMMIT"]
    before, after = plan.diff()
    assert ":INPUT ACCEPT [0:0]" in before and ":INPUT DROP [0:0]" in after
    assert "-A INPUT -s 198.51.100.9/32 -j ACCEPT" in after
    assert not plan_changes(ruleset(*FOREIGN[:1], policy="DROP"),
                            Desired(policies=(("filter", "INPUT", "DROP"),))).changed


def test_policy_on_user_chain_is_refused():
    with pytest.raises(PlanError) as err:
        plan_changes(ruleset(chains=("FOO",)), Desired(policies=(("filter", "FOO", "DROP"),)))
    assert "user chain" in str(err.value)


def test_purge_keeps_tagged_and_kept_lines():
    a = group("a", 10, "-i lo")
    cur = ruleset("-A INPUT " + a.specs[0], *FOREIGN, chains=("f2b-sshd",))
    plan = plan_changes(cur, Desired(purges=(Purge("filter", "INPUT", (re.compile("f2b-"),)),)))
    chains, _policies = apply_plan(cur, plan)
    assert chains["INPUT"] == [a.specs[0], "-j f2b-sshd"]


def test_jump_to_missing_chain_is_refused():
    g = TaggedGroup("filter", "INPUT", Tag(1, "rule", "x"),
                    ('-m comment --comment "ironwall:001:rule:x" -j NOPE',))
    with pytest.raises(PlanError) as err:
        plan_changes(ruleset(), Desired(groups=(g,)))
    assert err.value.option == "jump" and "NOPE" in str(err.value)


def test_group_in_missing_chain_is_refused():
    g = group("x", 1, "-i lo", chain="NOPE")
    with pytest.raises(PlanError) as err:
        plan_changes(ruleset(), Desired(groups=(g,)))
    assert err.value.option == "chain"


def test_interleaved_foreign_rules_survive_many_changes():
    # property-style: many groups, foreign rules between; the result keeps foreign order and sorts tags
    groups = [group("g%02d" % i, (i * 37) % 1000, "-p tcp -m tcp --dport %d" % (1000 + i)) for i in range(30)]
    foreign = ["-A INPUT -s 198.51.100.%d/32 -j DROP" % i for i in range(10)]
    lines = []
    for i in range(10):
        lines.append(foreign[i])
        lines.append("-A INPUT " + groups[29 - i].specs[0])
    cur = ruleset(*lines)
    plan = plan_changes(cur, Desired(groups=tuple(groups)))
    chains, _policies = apply_plan(cur, plan)
    got = chains["INPUT"]
    assert [s for s in got if "ironwall" not in s] == [f[9:] for f in foreign]
    tags = [parse_save(render({"INPUT": [s]})).table("filter").chain("INPUT").rules[0].tag for s in got if "ironwall" in s]
    assert [t.sort_key for t in tags] == sorted(t.sort_key for t in tags)
    assert len(tags) == 30
    assert not plan_changes(parse_save(render(chains)), Desired(groups=tuple(groups))).changed


def test_build_spec_canonical_order():
    spec = build_spec("ipv4", source="198.51.100.0/24", in_interface="eth0", protocol="tcp",
                      dports=("22",), tag=Tag(7, "rule", "ssh"), comment="admin", jump="ACCEPT")
    assert spec == '-s 198.51.100.0/24 -i eth0 -p tcp -m tcp --dport 22 -m comment --comment ' \
                   '"ironwall:007:rule:ssh admin" -j ACCEPT'
