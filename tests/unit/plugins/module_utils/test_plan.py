# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The planner: ownership, priority order, minimal scripts, untouched foreign rules."""

from __future__ import annotations

import re

import pytest

from ansible_collections.ironwall.iptables.plugins.module_utils._model import (
    Chain, Rule, Ruleset, Tag, owner_marker, parse_save)
from ansible_collections.ironwall.iptables.plugins.module_utils._plan import (
    Desired, DropChain, OwnedChain, PlanError, Purge, TaggedGroup, plan_changes)
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
# The ownership marker of the whitelist WL: the first rule of the chain the collection made for it.
MARK = '-m comment --comment "ironwall:chain:whitelist:WL"'
WL = ("whitelist", "WL")


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


WL_JUMP = '-p tcp -m tcp --dport 3306 -m comment --comment "ironwall:050:whitelist:WL" -j WL'


@pytest.mark.parametrize("marked", [True, False], ids=["marked", "legacy-with-tagged-jump"])
def test_drop_chain_after_removing_jump(marked):
    cur = ruleset("-A INPUT " + WL_JUMP, *(["-A WL " + MARK] if marked else []),
                  "-A WL -s 198.51.100.1/32 -j ACCEPT", chains=("WL",))
    plan = plan_changes(cur, Desired(absent=(("filter", "whitelist", "WL"),),
                                     drop_chains=(DropChain("filter", "WL", WL),)))
    assert plan.script.splitlines() == ["*filter", "-D INPUT " + WL_JUMP, "-F WL", "-X WL", "COMMIT"]
    chains, _policies = apply_plan(cur, plan)
    assert chains == {"INPUT": [], "FORWARD": [], "OUTPUT": []}


def test_a_chain_two_resources_drop_is_removed_once():
    # iptables_ruleset: a rate limit's rename and `exclusive` may both drop the same chain
    cur = ruleset("-A INPUT " + WL_JUMP, "-A WL " + MARK, chains=("WL",))
    plan = plan_changes(cur, Desired(absent=(("filter", "whitelist", "WL"),),
                                     drop_chains=(DropChain("filter", "WL", WL), DropChain("filter", "WL", WL))))
    assert plan.script.splitlines() == ["*filter", "-D INPUT " + WL_JUMP, "-F WL", "-X WL", "COMMIT"]


def test_drop_of_a_missing_chain_plans_nothing():
    plan = plan_changes(ruleset(), Desired(absent=(("filter", "whitelist", "WL"),),
                                           drop_chains=(DropChain("filter", "WL", WL),)))
    assert not plan.changed and plan.script == ""


# --- ownership of whole chains: read from the marker, never from the name ---

@pytest.mark.parametrize("kind,name,expected", [
    ("whitelist", "MYSQL_WHITELIST", '-m comment --comment "ironwall:chain:whitelist:MYSQL_WHITELIST"'),
    ("ratelimit", "ssh", '-m comment --comment "ironwall:chain:ratelimit:ssh"'),
    ("ratelimit", "smtp-auth.v2@x", '-m comment --comment "ironwall:chain:ratelimit:smtp-auth.v2@x"'),
])
def test_owner_marker_renders_as_iptables_save_prints_it(kind, name, expected):
    assert owner_marker(kind, name) == expected
    chain = parse_save("*filter\n:C - [0:0]\n-A C %s\nCOMMIT\n" % expected).table("filter").chain("C")
    assert chain.specs == (expected,) and chain.owner == (kind, name)


def chain_of(*specs):
    return Chain("C", None, tuple(Rule("C", s) for s in specs))


@pytest.mark.parametrize("specs,owner", [
    ((MARK,), WL),
    ((MARK, "-s 198.51.100.1/32 -j ACCEPT"), WL),
    (('-m comment --comment "ironwall:chain:ratelimit:ssh"', "-j ACCEPT"), ("ratelimit", "ssh")),
    # iptables-save leaves a word without special characters unquoted
    (("-m comment --comment ironwall:chain:whitelist:WL",), WL),
    ((), None),
    (("-s 198.51.100.1/32 -j ACCEPT",), None),
    # not first: someone inserted a rule above it, the chain no longer says it is ours
    (("-s 198.51.100.1/32 -j ACCEPT", MARK), None),
    # the text inside a longer comment, before or after
    (('-m comment --comment "ironwall:chain:whitelist:WL extra"',), None),
    (('-m comment --comment "see ironwall:chain:whitelist:WL"',), None),
    # the text in a LOG prefix or a string match, not in a comment
    (('-j LOG --log-prefix "ironwall:chain:whitelist:WL"',), None),
    (('-m string --string "ironwall:chain:whitelist:WL" --algo bm --to 65535',), None),
    (('-m string --string "ironwall:chain:whitelist:WL" --algo bm --to 65535 -j LOG --log-prefix '
      '"ironwall:chain:whitelist:WL"',), None),
    # a comment on a rule that matches something or acts is not a marker
    ((MARK + " -j ACCEPT",), None),
    ((MARK + " -j RETURN",), None),
    (("-s 198.51.100.1/32 " + MARK,), None),
    (("-i lo " + MARK,), None),
    ((MARK + ' -m comment --comment "admin"',), None),
    # a rule tag is not a chain marker; neither is a malformed one
    (('-m comment --comment "ironwall:050:whitelist:WL"',), None),
    (('-m comment --comment "ironwall:chain:whitelist:"',), None),
    (('-m comment --comment "ironwall:chain:WL"',), None),
    (('-m comment --comment "ironwall:chain:whitelist:W L"',), None),
])
def test_chain_owner_is_read_from_a_leading_comment_only_rule(specs, owner):
    assert chain_of(*specs).owner == owner


def test_chain_owner_from_a_real_save_with_log_prefix_and_comment_lookalikes():
    save = ("*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            ":A - [0:0]\n:B - [0:0]\n:WL - [0:0]\n"
            '-A A -j LOG --log-prefix "ironwall:chain:whitelist:A"\n'
            '-A B -m comment --comment "copied from ironwall:chain:whitelist:B" -j ACCEPT\n'
            "-A WL " + MARK + "\n-A WL -s 198.51.100.1/32 -j ACCEPT\nCOMMIT\n")
    t = parse_save(save).table("filter")
    assert [(c.name, c.owner) for c in t.chains] == [
        ("INPUT", None), ("FORWARD", None), ("OUTPUT", None), ("A", None), ("B", None), ("WL", WL)]


FOREIGN_WL = [
    ("fail2ban", ("-A INPUT -p tcp -m multiport --dports 22 -j WL",
                  "-A WL -s 203.0.113.50/32 -j REJECT --reject-with icmp-port-unreachable", "-A WL -j RETURN")),
    ("docker", ("-A FORWARD -j WL", "-A WL -j RETURN")),
    ("admin, empty", ()),
    ("another whitelist's marker", ('-A WL -m comment --comment "ironwall:chain:whitelist:OTHER"',)),
    ("a rate limit's marker", ('-A WL -m comment --comment "ironwall:chain:ratelimit:WL"',)),
    ("the text in a LOG prefix", ('-A WL -j LOG --log-prefix "ironwall:chain:whitelist:WL"',)),
    ("the text in a longer comment", ('-A WL -m comment --comment "ironwall:chain:whitelist:WL old"',)),
    ("the marker below a foreign rule", ("-A WL -j RETURN", "-A WL " + MARK)),
    ("another resource's tagged jump", ('-A INPUT -m comment --comment "ironwall:100:rule:WL" -j WL',
                                        '-A INPUT -m comment --comment "ironwall:100:ratelimit:WL" -j WL')),
    ("our tag, but on a rule that does not jump to it", (
        "-A INPUT -p tcp -m tcp --dport 3306 -m comment "
        '--comment "ironwall:050:whitelist:WL" -j DROP',)),
]


@pytest.mark.parametrize("lines", [f[1] for f in FOREIGN_WL], ids=[f[0] for f in FOREIGN_WL])
@pytest.mark.parametrize("desired", [
    Desired(chains=(OwnedChain("filter", "WL", (MARK, "-s 198.51.100.1/32 -j ACCEPT"), WL),)),
    Desired(absent=(("filter", "whitelist", "WL"),), drop_chains=(DropChain("filter", "WL", WL),)),
    Desired(chains=(OwnedChain("filter", "WL", (MARK,), WL, "chain_name"),)),
], ids=["present", "absent", "option"])
def test_existing_chain_that_is_not_ours_is_refused(lines, desired):
    cur = ruleset(*lines, chains=("WL",))
    option = desired.chains[0].option if desired.chains else "name"
    with pytest.raises(PlanError) as err:
        plan_changes(cur, desired)
    assert err.value.option == option
    assert str(err.value).startswith(option + ": ") and "'WL'" in str(err.value)


def test_refusal_is_per_chain_and_names_that_resources_option():
    # Two owned chains, the second is someone else's: the error names the second one's option.
    cur = ruleset("-A RL -j RETURN", chains=("RL",))
    desired = Desired(chains=(OwnedChain("filter", "WL", (MARK,), WL),
                              OwnedChain("filter", "RL", ('-m comment --comment "ironwall:chain:ratelimit:x"',),
                                         ("ratelimit", "x"), "chain_name")))
    with pytest.raises(PlanError) as err:
        plan_changes(cur, desired)
    assert err.value.option == "chain_name" and "'RL'" in str(err.value)


def test_our_marked_chain_is_replaced_whatever_was_added_to_it():
    cur = ruleset("-A WL " + MARK, "-A WL -s 198.51.100.1/32 -j ACCEPT", "-A WL -s 203.0.113.9/32 -j ACCEPT",
                  chains=("WL",))
    want = OwnedChain("filter", "WL", (MARK, "-s 198.51.100.1/32 -j ACCEPT"), WL)
    plan = plan_changes(cur, Desired(chains=(want,)))
    assert plan.script.splitlines() == ["*filter", ":WL - [0:0]", "-A WL " + MARK,
                                        "-A WL -s 198.51.100.1/32 -j ACCEPT", "COMMIT"]


def test_legacy_chain_with_our_tagged_jump_is_adopted_then_left_alone():
    jump = TaggedGroup("filter", "INPUT", Tag(50, "whitelist", "WL"), (WL_JUMP,))
    cur = ruleset(FOREIGN[0], "-A INPUT " + WL_JUMP, "-A WL -s 198.51.100.1/32 -j ACCEPT", chains=("WL",))
    want = Desired(chains=(OwnedChain("filter", "WL", (MARK, "-s 198.51.100.1/32 -j ACCEPT"), WL),), groups=(jump,))
    plan = plan_changes(cur, want)
    assert plan.script.splitlines() == ["*filter", ":WL - [0:0]", "-A WL " + MARK,
                                        "-A WL -s 198.51.100.1/32 -j ACCEPT", "COMMIT"]
    chains, _policies = apply_plan(cur, plan)
    assert chains["INPUT"] == [FOREIGN[0][9:], WL_JUMP]
    assert chains["WL"] == [MARK, "-s 198.51.100.1/32 -j ACCEPT"]
    after = Ruleset((plan.table_after(cur.table("filter")),))
    assert after.table("filter").chain("WL").owner == WL
    assert not plan_changes(after, want).changed


def test_owned_chain_is_created_with_its_marker_when_missing():
    want = OwnedChain("filter", "WL", (MARK, "-s 198.51.100.1/32 -j ACCEPT"), WL)
    plan = plan_changes(ruleset(*FOREIGN[:1]), Desired(chains=(want,)))
    assert plan.script.splitlines() == ["*filter", ":WL - [0:0]", "-A WL " + MARK,
                                        "-A WL -s 198.51.100.1/32 -j ACCEPT", "COMMIT"]


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


DOCKER_USER = ["-A DOCKER-USER -j RETURN"]


def docker_user(*extra):
    return ruleset(*(list(extra) + DOCKER_USER), chains=("DOCKER-USER",))


def test_rule_in_a_foreign_chain_goes_before_its_final_catch_all():
    # Docker's DOCKER-USER ends with -j RETURN: a rule appended after it is never reached
    g = group("block", 100, "-s 203.0.113.0/24", chain="DOCKER-USER")
    cur = docker_user()
    plan = plan_changes(cur, Desired(groups=(g,)))
    chains, _policies = apply_plan(cur, plan)
    assert chains["DOCKER-USER"] == [g.specs[0], "-j RETURN"]
    assert not plan_changes(parse_save(render(chains)), Desired(groups=(g,))).changed


def test_rule_left_behind_a_catch_all_by_an_older_run_is_moved_before_it():
    g = group("block", 100, "-s 203.0.113.0/24", chain="DOCKER-USER")
    cur = ruleset("-A DOCKER-USER -j RETURN", "-A DOCKER-USER " + g.specs[0], chains=("DOCKER-USER",))
    chains, _policies = apply_plan(cur, plan_changes(cur, Desired(groups=(g,))))
    assert chains["DOCKER-USER"] == [g.specs[0], "-j RETURN"]


def test_conditional_final_rule_is_not_a_catch_all():
    g = group("block", 100, "-s 203.0.113.0/24", chain="DOCKER-USER")
    cur = ruleset("-A DOCKER-USER -i eth0 -j RETURN", chains=("DOCKER-USER",))
    chains, _policies = apply_plan(cur, plan_changes(cur, Desired(groups=(g,))))
    assert chains["DOCKER-USER"] == ["-i eth0 -j RETURN", g.specs[0]]


def test_other_tasks_rules_behind_a_catch_all_are_not_touched():
    mine = group("mine", 100, "-s 203.0.113.0/24", chain="DOCKER-USER")
    other = group("other", 200, "-s 198.51.100.0/24", chain="DOCKER-USER")
    cur = ruleset("-A DOCKER-USER -j RETURN", "-A DOCKER-USER " + other.specs[0], chains=("DOCKER-USER",))
    chains, _policies = apply_plan(cur, plan_changes(cur, Desired(groups=(mine,))))
    assert chains["DOCKER-USER"] == [mine.specs[0], "-j RETURN", other.specs[0]]
