# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_ruleset's ipsets: ``sets`` items and ``whitelists[].backend`` validated (errors named inside
the lists), the Item forwarding its hooks, the sets converged in one restore against a fake runner, and
the pure computation of what ``exclusive`` destroys (undeclared owned sets) and keeps (sets in use)."""

from __future__ import annotations

import pytest

from ansible_collections.ironwall.iptables.plugins.module_utils import _ipset, _ruleset
from ansible_collections.ironwall.iptables.plugins.module_utils._errors import IronwallError
from ansible_collections.ironwall.iptables.tests.unit.plugins.module_utils.test_ruleset import params, refused

REGISTRY_LINE = "create ironwall-sets list:set size 65536"


def of_type(resources, cls):
    return [r for r in resources if isinstance(r, cls)]


WL = {"name": "DB", "ports": [3306], "sources": ["198.51.100.9", "2001:db8::9"]}
RULE = {"name": "bl", "match_set": "bl", "ip_version": "ipv4", "jump": "DROP"}


@pytest.mark.parametrize("kw, option, words", [
    (dict(sets=[{"name": "bl", "entries": "198.51.100.7\nnot-an-address\n"}]), "sets[0].entries line 2",
     "not an IPv4 or IPv6 address"),
    (dict(sets=[{"name": "bl"}, {"name": "x" * 29}]), "sets[1].name", "29 characters; at most 28"),
    (dict(sets=[{"name": "bl", "entries": ["198.51.100.7", "203.0.113.0/33"]}]), "sets[0].entries[1]", "prefix"),
    (dict(sets=[{"name": "bl", "type": "hash:mac"}]), "sets[0].type", "must be one of"),
    (dict(sets=[{"name": "bl", "ip_version": "ipv4", "entries": ["2001:db8::1"]}]), "sets[0].entries[0]",
     "IPv6 entry"),
    (dict(sets=[{"name": "bl", "maxelem": 1, "entries": ["198.51.100.1", "198.51.100.2"]}]), "sets[0].maxelem",
     "smaller than"),
    (dict(sets=[{"name": "bl", "colour": "red"}]), "sets[0].colour", "unknown option"),
    (dict(sets=["bl"]), "sets[0]", "dictionary"),
    (dict(sets=[{"name": "bl"}, {"name": "bl"}]), "sets[1].name", "duplicate name"),
    (dict(sets=[{"name": "ironwall-sets"}]), "sets[0].name", "reserved"),
    (dict(sets=[{"name": "bl_v6", "ip_version": "ipv4"}, {"name": "bl"}]), "sets[1].name",
     "also managed by sets[0].name"),
    (dict(sets=[{"name": "DB"}], whitelists=[WL]), "whitelists[0].name", "also managed by sets[0].name"),
    (dict(whitelists=[dict(WL, backend="foo")]), "whitelists[0].backend", "must be chain or ipset"),
    (dict(whitelists=[dict(WL, name="x" * 29, backend="ipset")]), "whitelists[0].name", "at most"),
    (dict(sets=[{"name": "bl", "state": "absent"}], rules=[RULE]), "rules[0].match_set",
     "destroyed by sets[0] (state absent)"),
])
def test_bad_input_names_the_option_inside_the_list(kw, option, words):
    err = refused(**kw)
    assert err.option == option and words in err.message, (err.option, err.message)


def test_sets_items_become_one_resource_validated_by_iptables_ipsets_code():
    resources = _ruleset.validate(params(sets=[{"name": "bl", "entries": "198.51.100.7\n# note\n2001:db8::/32\n"},
                                               {"name": "old", "state": "absent", "ip_version": "ipv4"}],
                                         rules=[RULE]))
    (sets,) = of_type(resources, _ruleset.SetsResource)
    bl, old = sets.specs
    assert bl.sets == _ipset.validate({"name": "bl", "entries": ["198.51.100.7", "2001:db8::/32"]}).sets
    assert bl.option == "sets[0]." and bl.type == "hash:net"
    assert [(s.name, s.entries) for s in bl.sets] == [("bl", ("198.51.100.7",)), ("bl_v6", ("2001:db8::/32",))]
    assert old.state == "absent" and old.absent == ("old",) and old.option == "sets[1]."
    assert _ruleset.set_names(bl) == ("bl", "bl_v6") and _ruleset.set_names(old) == ("old",)
    # the sets converge before the rules that match them: the resource comes first
    assert resources.index(sets) < resources.index(of_type(resources, _ruleset._rules.RulesResource)[0])


def test_whitelist_backend_reaches_both_sides_of_the_item():
    resources = _ruleset.validate(params(whitelists=[dict(WL, backend="ipset", ip_version="ipv4",
                                                          sources=["198.51.100.9"])]))
    (item,) = of_type(resources, _ruleset.Item)
    assert item.present.wl.backend == "ipset" and item.present.wl.families == ("ipv4",)
    # the absent side holds the families the item leaves out: the sets it destroys there
    assert item.absent.wl.state == "absent" and item.absent.wl.families == ("ipv6",)


class Hooked(object):
    def __init__(self, before, after):
        self.before, self.after, self.calls = before, after, []

    def before_apply(self, nf, check_mode):
        self.calls.append(("before", check_mode))
        return self.before

    def after_apply(self, nf, check_mode, armed):
        self.calls.append(("after", check_mode, armed))
        return self.after


def test_item_forwards_the_hooks_to_both_sides():
    present, absent = Hooked((True, ["ipv4"]), None), Hooked((False, ["ipv6"]), (True, ()))
    item = _ruleset.Item("whitelists", "DB", ("ipv4",), present, absent)
    assert item.before_apply("nf", True) == (True, ("ipv4", "ipv6"))
    assert item.after_apply("nf", False, True) == (True, ())
    assert present.calls == [("before", True), ("after", False, True)]
    assert absent.calls == [("before", True), ("after", False, True)]
    plain = _ruleset.Item("ratelimits", "ssh", ("ipv4",), object(), object())
    assert plain.before_apply("nf", False) == (False, ())


def owned_save(*names, entries=None):
    """ipset save text: the hash:net sets ``names`` (a name ending _v6 is inet6) with their ``entries``
    ({name: [entry]}), all registered."""
    lines = []
    for name in names:
        lines.append("create %s hash:net family %s hashsize 1024 maxelem 65536" % (
            name, "inet6" if name.endswith("_v6") else "inet"))
        lines += ["add %s %s" % (name, e) for e in (entries or {}).get(name, ())]
    lines.append(REGISTRY_LINE)
    lines += ["add ironwall-sets %s" % n for n in names]
    return "\n".join(lines) + "\n"


def test_undeclared_sets_are_the_owned_ones_of_the_task_families_it_does_not_name():
    text = "create foreign hash:ip family inet hashsize 1024 maxelem 65536\n" + \
        owned_save("bl", "bl_v6", "DB", "DB_v6", "gone", "gone_v6")
    sets = _ipset.parse_save(text)
    declared = frozenset(["bl", "bl_v6", "DB", "DB_v6"])
    assert _ruleset.undeclared_sets(sets, declared) == ["gone", "gone_v6"]
    assert _ruleset.undeclared_sets(sets, declared, ("ipv4",)) == ["gone"]  # ip_version ipv4 leaves IPv6 alone
    assert _ruleset.undeclared_sets(sets, frozenset()) == ["DB", "DB_v6", "bl", "bl_v6", "gone", "gone_v6"]
    # no registry: nothing is owned, nothing is destroyed
    assert _ruleset.undeclared_sets(_ipset.parse_save("create x hash:ip family inet\n"), frozenset()) == []


TEXTS = {"ipv4": "*filter\n:INPUT ACCEPT [0:0]\n"
                 '-A INPUT -m set --match-set used src -j DROP\n'
                 '-A INPUT -m set --match-set tagged src -m comment --comment "ironwall:050:rule:old" -j DROP\n'
                 "COMMIT\n"}


def test_a_set_something_still_uses_is_kept_and_named():
    terse = {"free": {"references": 1}, "used": {"references": 2}, "tagged": {"references": 2},
             "listed": {"references": 2}}
    free, busy = _ruleset.sets_in_use(["free", "used", "tagged", "listed"], terse, TEXTS)
    assert free == ["free"]
    assert busy["used"] == "used by ipv4: -A INPUT -m set --match-set used src -j DROP"
    assert busy["tagged"].startswith("used by ipv4: -A INPUT -m set --match-set tagged")
    assert busy["listed"].startswith("1 reference(s) outside iptables-save")


def test_check_mode_discounts_the_undeclared_rules_the_transaction_would_remove():
    terse = {"used": {"references": 2}, "tagged": {"references": 2}, "mine": {"references": 1}}
    free, busy = _ruleset.sets_in_use(["used", "tagged", "mine"], terse, TEXTS, leaving=frozenset(),
                                      matched=frozenset(["mine"]))
    assert free == ["tagged"] and sorted(busy) == ["mine", "used"]
    # a rule the task declares stays: its set is in use
    free, busy = _ruleset.sets_in_use(["tagged"], terse, TEXTS, leaving=frozenset([("rule", "old")]))
    assert free == [] and "tagged" in busy


def test_join_scripts_creates_the_registry_once_and_first():
    one = _ipset.plan(_ipset.validate({"name": "a", "entries": ["198.51.100.1"]}), {})
    two = _ipset.plan(_ipset.validate({"name": "b", "entries": ["203.0.113.1"]}), {})
    assert one.script.startswith(REGISTRY_LINE) and two.script.startswith(REGISTRY_LINE)
    joined = _ipset.join_scripts([one.script, two.script])
    assert joined.count(REGISTRY_LINE) == 1 and joined.startswith(REGISTRY_LINE)
    assert joined == one.script + two.script[len(REGISTRY_LINE) + 1:]
    assert _ipset.join_scripts(["x\n", "y\n"]) == "x\ny\n"


class FakeModule(object):
    def __init__(self):
        self.warnings = []

    def warn(self, msg):
        self.warnings.append(msg)


class FakeNf(object):
    """ipset save / list -t / restore of a fixed host (a unit test's mock; the integration tests run ipset)."""

    def __init__(self, text, terse=None, texts=None):
        self.text, self.terse, self.texts = text, terse or {}, texts or {}
        self.restores = []
        self.module = FakeModule()

    def ipset_save(self):
        return self.text

    def ipset_terse(self):
        return "".join("Name: %s\nReferences: %d\n\n" % (n, i["references"]) for n, i in self.terse.items())

    def ipset_restore(self, script, cleanup=()):
        self.restores.append(script)

    def may_have_sets(self):
        return True

    def save(self, family):
        return self.texts.get(family, "")


def test_sets_resource_fills_every_changed_set_in_one_restore_and_reports_per_item():
    res = _ruleset.validate(params(sets=[{"name": "a", "entries": ["198.51.100.1"]},
                                         {"name": "b", "entries": ["203.0.113.1", "2001:db8::1"]}]))[0]
    nf = FakeNf("")
    assert res.before_apply(nf, True) == (True, ("ipv4", "ipv6")) and nf.restores == []  # check mode: untestable
    assert res.before_apply(nf, False) == (True, ())
    (script,) = nf.restores
    assert script.count(REGISTRY_LINE) == 1 and "add ironwall-sets b_v6" in script
    summary = res.summary()["sets"]
    assert summary["b"]["ipv6"] == {"name": "b_v6", "action": "create", "entries": 1, "added": 1, "removed": 0}
    again = FakeNf(owned_save("a", "b", "b_v6", entries={"a": ["198.51.100.1"], "b": ["203.0.113.1"],
                                                         "b_v6": ["2001:db8::1"]}))
    assert res.before_apply(again, False) is None and again.restores == []


def test_absent_sets_wait_for_a_pending_rollback_and_fail_after_the_apply_when_still_used():
    res = _ruleset.validate(params(sets=[{"name": "old", "state": "absent"}]))[0]
    nf = FakeNf(owned_save("old", "old_v6"), terse={"old": {"references": 1}, "old_v6": {"references": 1}})
    assert res.after_apply(nf, False, True) is None and nf.restores == []
    assert res.summary()["sets"]["old"]["ipv4"]["deferred"] is True
    res.deferred.clear()
    assert res.after_apply(nf, False, False) == (True, ())
    assert nf.restores == ["del ironwall-sets old\ndestroy old\ndel ironwall-sets old_v6\ndestroy old_v6\n"]
    busy = FakeNf(owned_save("old"), terse={"old": {"references": 2}}, texts={"ipv4": TEXTS["ipv4"]})
    busy.save = lambda family: "-A INPUT -m set --match-set old src -j DROP\n" if family == "ipv4" else ""
    with pytest.raises(IronwallError) as err:
        res.after_apply(busy, False, False)
    assert err.value.msg.startswith("sets[0].state: old is used by ipv4: -A INPUT -m set --match-set old src")
    assert "the set was kept" in err.value.msg and busy.restores == []


def test_exclusive_destroys_undeclared_owned_sets_and_keeps_used_ones_with_a_warning():
    excl = _ruleset.validate(params(sets=[{"name": "bl"}], exclusive=True))[-1]
    assert isinstance(excl, _ruleset.Exclusive) and excl.sets == frozenset(["bl", "bl_v6"])
    nf = FakeNf(owned_save("bl", "gone", "gone_v6", "used"),
                terse={"bl": {"references": 1}, "gone": {"references": 1}, "gone_v6": {"references": 1},
                       "used": {"references": 2}},
                texts={"ipv4": "-A INPUT -m set --match-set used src -j DROP\n"})
    assert excl.after_apply(nf, False, True) is None and nf.restores == []   # a rollback is pending
    assert set(excl.sets_kept) == {"gone", "gone_v6", "used"}
    excl.sets_kept.clear()
    assert excl.after_apply(nf, False, False) == (True, ())
    assert nf.restores == ["del ironwall-sets gone\ndestroy gone\ndel ironwall-sets gone_v6\ndestroy gone_v6\n"]
    assert excl.sets_removed == {"ipv4": ["gone"], "ipv6": ["gone_v6"]}
    assert excl.summary() == {"sets_kept": {"used": "used by ipv4: -A INPUT -m set --match-set used src -j DROP"}}
    assert len(nf.module.warnings) == 2 and "used" in nf.module.warnings[-1]


def test_guard_sees_the_sets_as_the_run_leaves_them():
    res = _ruleset.validate(params(sets=[{"name": "bl", "entries": ["203.0.113.0/24", "198.51.100.7/32"]},
                                         {"name": "old", "state": "absent", "ip_version": "ipv4"}]))[0]
    live = _ipset.parse_save(owned_save("bl", "bl_v6", entries={"bl": ["198.51.100.9"], "bl_v6": ["2001:db8::1"]}))
    assert res.guard_sets(live) == {"bl": ("hash:net", frozenset(["203.0.113.0/24", "198.51.100.7"])),
                                    "bl_v6": ("hash:net", frozenset()), "old": None}
