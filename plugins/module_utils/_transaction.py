# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one read -> plan -> (check | apply) -> report loop every changing module shares.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
A module validates its options into pure objects first, then hands ``converge`` a
function ``build(family, ruleset) -> _plan.Desired``; this file does the rest.
"""

from __future__ import annotations

import os

from ._guard import ACCEPT, check, ssh_packet
from ._netfilter import Netfilter, NetfilterError, arm_rollback
from ._plan import PlanError, plan_changes
from ._rulespec import SpecError, families


def fail(module, exc):
    """fail_json for the collection's own exceptions."""
    if isinstance(exc, NetfilterError):
        module.fail_json(**exc.as_dict())
    module.fail_json(msg=str(exc))


def converge(module, build):
    """Read each family once, plan, apply (unless check mode) and return the result dict."""
    params = module.params
    try:
        fams = families(params["ip_version"])
        if params["wait"] < 0:
            raise SpecError("wait", "must be 0 or more seconds, got %r" % params["wait"])
        if params.get("rollback_timeout", 0) < 0:
            raise SpecError("rollback_timeout", "must be 0 (off) or a number of seconds, got %r"
                            % params["rollback_timeout"])
    except SpecError as exc:
        fail(module, exc)
    nf = Netfilter(module, params["wait"])
    snapshots = {}
    plans = []
    try:
        for family in fams:
            ruleset = nf.read(family)
            snapshots[family] = ruleset
            plans.append((family, plan_changes(ruleset, build(family, ruleset), family)))
        changed = any(p.changed for _f, p in plans)
        guard = guard_check(module, plans, snapshots)
        rollback = None
        if changed:
            if module.check_mode:
                for family, plan in plans:
                    if plan.changed:
                        nf.restore(family, plan.script, test=True)
            else:
                if params.get("rollback_timeout"):
                    rollback = arm_rollback(nf, plans, snapshots, params["rollback_timeout"])
                nf.apply(plans, snapshots)
    except (SpecError, PlanError, NetfilterError) as exc:
        fail(module, exc)
    result = dict(
        changed=changed,
        commands=dict((f, p.script.splitlines()) for f, p in plans),
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
    return result, snapshots, plans


def guard_check(module, plans, snapshots):
    """Refuse a change that would stop INPUT accepting the SSH connection Ansible uses.

    Returns what the module reports under ``guard`` (None when there is no SSH client).
    """
    params = module.params
    if "force" not in params:
        return None
    packet = ssh_packet(os.environ.get("SSH_CONNECTION"))
    if packet is None:
        return None
    for family, plan in plans:
        if family != packet.family or not any(tp.table == "filter" for tp in plan.tables):
            continue
        current = snapshots[family].table("filter")
        before, after = check(current, plan.table_after(current), packet)
        report = dict(connection=packet.describe(), before=before, after=after, forced=bool(params["force"]))
        if before == ACCEPT and after != ACCEPT and not params["force"]:
            module.fail_json(
                msg="lockout guard: after this change filter INPUT would %s %s, the SSH connection Ansible "
                    "is using; the change was not applied. Accept that port first (for example an "
                    "ironwall.iptables.iptables_rule for tcp port %d placed before the policy), or set "
                    "force: true, preferably with rollback_timeout."
                    % ("drop" if after == "DROP" else "no longer provably accept", packet.describe(),
                       packet.dport),
                guard=report)
        return report
    return None
