# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one read -> plan -> guard -> (check | apply) -> report loop every changing module shares.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.

A module validates its options into resources first (pure objects, see ``Resource``),
then calls ``run(module, build)``. ``converge`` reads each family once, asks every
resource for what it wants, plans one transaction per family for all of them together,
evaluates the lockout guard once on the final state, applies, and collects each
resource's report. Every failure is an IronwallError, turned into one ``fail_json`` by
``run``: a module never ends in a traceback.
"""

from __future__ import annotations

import os
import re

from ._errors import IronwallError, LockoutError, SpecError, printable
from ._guard import ACCEPT, PATH_TABLES, SetView, check, ssh_packet, uses_sets
from ._guard_sources import guard_networks, guard_without_ssh
from ._model import render_table
from ._netfilter import Netfilter, NetfilterError, stale_position
from ._plan import Desired, Insert, Plan, plan_changes
from ._lock import serialized
from ._rollback import arm
from ._rulespec import families
from ._text import check_all_text

# A writer inserting rules between our read and our write can shift the positions of our
# inserts: after applying, the families whose plan inserted rules are read again and
# re-planned, at most this many more times.
VERIFY_ROUNDS = 3


def run(module, build):
    """Validate (``build()`` -> resources, or (resources, finish): see converge), converge, and end
    the module: exit_json or fail_json."""
    try:
        check_all_text(_short_entries(module.params))
        built = build()
        resources, finish = built if isinstance(built, tuple) else (built, None)
        result = converge(module, resources, finish)
    except IronwallError as exc:
        module.fail_json(**printable(exc.as_dict()))
    if module.params.get("sets"):
        # The echo of the arguments would hold every entry of every set (see iptables_ipset).
        result["invocation"] = dict(module_args=_short_entries(module.params))
    module.exit_json(**printable(result))


def _short_entries(params):
    """``params`` with the ``entries`` of ``sets`` items (iptables_ruleset) as a count: the entries are a
    text of many lines, each checked by _ipset's parser rather than as one line of text."""
    if not params.get("sets"):
        return params
    items = []
    for item in params["sets"]:
        if isinstance(item, dict) and item.get("entries") is not None:
            entries = item["entries"]
            count = len(entries) if isinstance(entries, (list, tuple)) else str(entries).count("\n") + 1
            item = dict(item, entries="%d %s" % (count, "entries" if isinstance(entries, (list, tuple)) else "lines"))
        items.append(item)
    return dict(params, sets=items)


def check_common(params):
    """The options every changing module shares -> families."""
    fams = families(params["ip_version"])
    if params["wait"] < 0:
        raise SpecError("wait", "must be 0 or more seconds, got %r" % params["wait"])
    if params.get("rollback_timeout", 0) < 0:
        raise SpecError("rollback_timeout", "must be 0 (off) or a number of seconds, got %r"
                        % params["rollback_timeout"])
    return fams


def converge(module, resources, finish=None):
    """Read each family once, plan, guard, apply (unless check mode) and return the result dict.

    ``finish(nf, snapshots, plans, result)``, when given, runs last, still under the run lock
    (the ruleset module saves what it applied there)."""
    params = module.params
    fams = check_common(params)
    nf = Netfilter(module, params["wait"])
    for resource in resources:
        prepare = getattr(resource, "prepare", None)
        if prepare is not None:
            prepare(nf)  # work before the read that touches no ruleset of the host (_learn)
    with serialized(not module.check_mode):
        snapshots, plans = _read_and_plan(nf, fams, resources)
        changed = any(p.changed for _f, p in plans)
        guard = guard_check(params, plans, snapshots, nf, resources)
        # Resources with state outside iptables (the whitelist's ipsets) change it here, before the
        # rules that use it; ``untestable``: families whose rules name a set check mode did not create.
        outside, untestable = _outside(resources, "before_apply", nf, module.check_mode)
        rollback = None
        if changed and module.check_mode:
            for family, plan in plans:
                if plan.changed and family not in untestable:
                    _check_test(module, nf, family, plan)
        elif changed:
            for attempt in range(VERIFY_ROUNDS + 1):
                disarm = None
                if params.get("rollback_timeout"):
                    rollback, disarm = arm(nf, plans, snapshots, params["rollback_timeout"])
                try:
                    nf.apply(plans, snapshots)
                    break
                except IronwallError as exc:
                    if disarm is not None:
                        disarm()
                    if not isinstance(exc, NetfilterError) or not stale_position(exc):
                        raise
                    # an insert or deletion refused: a real rejection, or did another writer move
                    # the rules under the plan? Only a ruleset that changed since the read says so.
                    before = snapshots
                    snapshots, plans = _read_and_plan(nf, fams, resources)
                    if _same(before, snapshots, plans):
                        raise exc
                    if attempt == VERIFY_ROUNDS:
                        raise _race_error()
                guard_check(params, plans, snapshots, nf, resources)
                if not any(p.changed for _f, p in plans):
                    break
            _verify(nf, params, resources, plans)
        after, _none = _outside(resources, "after_apply", nf, module.check_mode, bool(rollback))
        result = dict(
            changed=changed or outside or after,
            commands=dict((f, p.script.split("\n")[:-1]) for f, p in plans),
            calls=dict(nf.calls),
        )
        if guard is not None:
            result["guard"] = guard
        if rollback is not None:
            result["rollback"] = rollback
        if module._diff:
            result["diff"] = []
            for family, plan in plans:
                before, after = plan.diff()
                result["diff"].append(dict(
                    before_header="%s (affected chains, iptables-save form)" % family, before=before,
                    after_header="%s (affected chains, iptables-save form)" % family, after=after))
        for resource in resources:
            result.update(resource.summary())
            for family, plan in plans:
                for key, value in resource.report(family, snapshots[family], plan).items():
                    slot = result.setdefault(key, {})
                    if isinstance(value, dict) and isinstance(slot.get(family), dict):
                        slot[family].update(value)  # several resources of one kind: {family: {name: ...}}
                    else:
                        slot[family] = value
        if finish is not None:
            finish(nf, snapshots, plans, result)
    return result


_MISSING_SET_RE = re.compile(r"Set (\S+) doesn't exist")


def _check_test(module, nf, family, plan):
    """Check mode's ``iptables-restore --test`` of a plan. A set the rules match that does not exist
    yet is no error here: in a real run the task's own sets, or an iptables_ipset task before it,
    create it, which check mode did not; the rules are then untested, said in a warning."""
    try:
        nf.restore(family, plan.script, test=True)
    except NetfilterError as exc:
        missing = _MISSING_SET_RE.search(exc.extra.get("stderr") or "")
        if missing is None or "--match-set %s " % missing.group(1) not in plan.script:
            raise
        module.warn("check mode: the %s rules match the set %s, which does not exist yet (in a real run the "
                    "task's sets or an earlier iptables_ipset task create it first); they were not tested with "
                    "%s --test" % (family, missing.group(1), nf.binary(family, "restore")))


def _outside(resources, hook, nf, *args):
    """(changed, families untestable) from the resources' ``before_apply`` / ``after_apply`` hooks:
    each returns None or (changed, families)."""
    changed = False
    families = set()
    for resource in resources:
        method = getattr(resource, hook, None)
        got = method(nf, *args) if method is not None else None
        if got:
            changed = changed or got[0]
            families.update(got[1])
    return changed, families


def _desired(resources, family, ruleset):
    out = Desired()
    for resource in resources:
        out = out + resource.desired(family, ruleset)
    return out


def _read_and_plan(nf, fams, resources):
    snapshots = {}
    plans = []
    for family in fams:
        ruleset = nf.read(family)
        snapshots[family] = ruleset
        plans.append((family, plan_changes(ruleset, _desired(resources, family, ruleset), family)))
    return snapshots, plans


def _verify(nf, params, resources, plans):
    """Read back the tables where rules were inserted by position (``iptables-save -t``) and plan
    them again: another writer's insert between our read and our write shifts our positions.
    Apply the correction while there is one; fail rather than report a false success."""
    todo = dict((f, _inserted_tables(p)) for f, p in plans)
    for _round in range(VERIFY_ROUNDS):
        todo = dict((f, t) for f, t in todo.items() if t)
        if not todo:
            return
        snapshots = {}
        again = []
        for family, tables in todo.items():
            ruleset = nf.read(family, table=tables[0] if len(tables) == 1 else None)
            snapshots[family] = ruleset
            plan = plan_changes(ruleset, _desired(resources, family, ruleset), family)
            plan = Plan(family, tuple(tp for tp in plan.tables if tp.table in tables))
            if plan.changed:
                again.append((family, plan))
        if not again:
            return
        guard_check(params, again, snapshots, nf, resources)
        try:
            nf.apply(again, snapshots)
        except NetfilterError as exc:
            if not stale_position(exc):
                raise
            continue  # moved again under this correction: read once more
        todo = dict((f, _inserted_tables(p)) for f, p in again)
    raise _race_error()


def _race_error():
    return IronwallError("another program kept changing the same chains while this change was applied (%d "
                         "attempts); the ruleset may not be in the wanted order. Run the task again."
                         % (VERIFY_ROUNDS + 1))


def _same(before, after, plans):
    """Are the tables the plans touch as they were in ``before`` (counters aside)?"""
    for family, plan in plans:
        for tp in plan.tables:
            if render_table(before[family].table(tp.table), False) != render_table(after[family].table(tp.table), False):
                return False
    return True


def _inserted_tables(plan):
    return [tp.table for tp in plan.tables if any(isinstance(op, Insert) for op in tp.ops)]


def guard_check(params, plans, snapshots, nf=None, resources=()):
    """Refuse a change that would stop INPUT accepting the SSH connection Ansible uses.

    Returns what the module reports under ``guard`` (None when there is no SSH client);
    raises LockoutError (with that report) when the change would lock the operator out.
    A rule on the path that matches an ipset is judged by the set's content (guard_sets).
    """
    if "force" not in params:
        return None
    packet = ssh_packet(os.environ.get("SSH_CONNECTION"))
    if packet is None:
        return guard_without_ssh(params, plans, snapshots,  # ansible-pull, guard_sources
                                 lambda family, plan: guard_sets(nf, resources, snapshots[family], plan))
    guard_networks(params)  # a bad entry fails the same way over SSH
    for family, plan in plans:
        if family != packet.family:
            continue
        sets_before, sets_after = guard_sets(nf, resources, snapshots[family], plan)
        sets_change = sets_before is not None and sets_before.sets != sets_after.sets
        if not sets_change and not any(tp.table in PATH_TABLES for tp in plan.tables):
            continue  # neither the rules on the path nor the sets they match change
        before, after, where = check(snapshots[family], plan, packet, sets_before, sets_after)
        report = dict(connection=packet.describe(), before=before, after=after, forced=bool(params["force"]))
        if where:
            report["where"] = where
        if before == ACCEPT and after != ACCEPT and not params["force"]:
            raise LockoutError(
                "lockout guard: after this change %s of the SSH connection Ansible is using (%s); the change "
                "was not applied. Accept that traffic first (for example an ironwall.iptables.iptables_rule "
                "for tcp port %d and one for ESTABLISHED,RELATED, placed before the policy), or set force: "
                "true, preferably with rollback_timeout." % (where, packet.describe(), packet.dport),
                guard=report)
        return report
    return None


def guard_sets(nf, resources, snapshot, plan=None, changes=None):
    """(SetView before, SetView after) for the guard when a rule on the SSH exchange's path, before or
    after ``plan``, matches an ipset; (None, None) otherwise (no ``ipset save`` runs). Before: the
    collection's own sets as ``ipset save`` prints them; after: with what the resources will put in
    them (their ``guard_sets(live)``: {name: (type, entries) or None}) and ``changes``."""
    if nf is None:
        return None, None
    tables = [snapshot.table(t) for t in PATH_TABLES]
    if plan is not None:
        tables += [plan.table_after(t) for t in tables]
    if not uses_sets(tables):
        return None, None
    from . import _ipset, _ipset_apply  # pylint: disable=import-outside-toplevel
    try:
        live = _ipset_apply.read(nf)
    except IronwallError:
        return None, None  # no ipset tool: every set match stays unknown
    before = SetView(_ipset.guard_contents(live))
    after = dict(changes or {})
    for resource in resources:
        hook = getattr(resource, "guard_sets", None)
        if hook is not None:
            after.update(hook(live))
    return before, before.changed(after)
