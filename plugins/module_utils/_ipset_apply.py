# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read -> plan -> (check | apply) of owned ipsets, through _netfilter's runner.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
Shared by iptables_ipset and the ipset backend of iptables_whitelist. One ``ipset save`` reads
every set; a change is one ``ipset restore`` (temporary set, then ``ipset swap``); ``ipset list -t``
runs only before a set is destroyed, to prove no rule uses it.
"""

from __future__ import annotations

import os

from . import _ipset
from ._errors import IronwallError, LockoutError, SpecError
from ._netfilter import NetfilterError


class SetInUse(SpecError):
    """A set the plan would destroy is still used by a rule."""


def read(nf, names=None):
    """parse_save of one ``ipset save`` (entries of ``names`` only, plus the registry)."""
    text = nf.ipset_save()
    try:
        return _ipset.parse_save(text, names)
    except _ipset.ParseError as exc:
        raise IronwallError("could not read the output of ipset save (%s). Nothing was changed." % exc)


def families_rules(nf, fams=("ipv4", "ipv6")):
    """{family: iptables-save text} for the families whose tools exist (to name the rules using a set)."""
    out = {}
    for family in fams:
        try:
            out[family] = nf.save(family)
        except NetfilterError:
            continue
    return out


def check_unused(nf, names, option):
    """Fail, naming the rules, when a set in ``names`` is used by anything but the registry."""
    if not names:
        return
    terse = _ipset.parse_terse(nf.ipset_terse())
    busy = [n for n in names if terse.get(n, {}).get("references", 0) > 1]
    if not busy:
        return
    texts = families_rules(nf)
    parts = []
    for name in busy:
        rules = ["%s: %s" % (f, line) for f, text in sorted(texts.items()) for line in _ipset.rules_using(text, name)]
        parts.append("%s is used by %s" % (name, "; ".join(rules) if rules else
                                           "%d reference(s) outside iptables-save (another tool's rule)"
                                           % (terse[name]["references"] - 1)))
    raise SetInUse(option, "%s. A set still used by a rule is never destroyed: remove the rule first. Nothing "
                           "was changed." % "; ".join(parts))


def apply(nf, set_plan, option):
    """Run the plan's one ``ipset restore`` (after proving what it destroys is unused)."""
    if not set_plan.script:
        return
    check_unused(nf, set_plan.need_unreferenced, option)
    nf.ipset_restore(set_plan.script, cleanup=_ipset.tmp_names(set_plan.script))


def report(set_plan, diff=False):
    """{family: {name, action, entries, added, removed}} (counts; the lists go to the diff)."""
    out = {}
    diffs = []
    for c in set_plan.changes:
        out[c.family] = dict(name=c.name, action=c.action, entries=c.count, added=len(c.added),
                             removed=len(c.removed))
        if diff and c.changed:
            diffs.append(dict(before_header="ipset %s (entries removed)" % c.name,
                              before="".join(e + "\n" for e in c.removed),
                              after_header="ipset %s (entries added)" % c.name,
                              after="".join(e + "\n" for e in c.added)))
    return out, diffs


def guard(nf, set_plan, settype, live, force):
    """The lockout guard for a change of set contents alone (iptables_ipset): when Ansible runs over
    SSH and a rule on the SSH exchange's path matches an ipset, the exchange is judged with the
    sets before and after the change; a change that stops it being accepted fails (unless
    ``force``), before anything is loaded. Returns the ``guard`` report, or None (no SSH client, no
    change, no rule using a set: nothing more is read)."""
    if not set_plan.changed or not os.environ.get("SSH_CONNECTION"):
        return None
    # the rule engine, only on this path: a no-change run of a large set imports none of it
    from ._guard import ACCEPT, check, ssh_packet  # pylint: disable=import-outside-toplevel
    from ._transaction import guard_sets  # pylint: disable=import-outside-toplevel
    packet = ssh_packet(os.environ.get("SSH_CONNECTION"))
    if packet is None:
        return None
    changes = {}
    for change in set_plan.changes:
        if change.action == "destroy":
            changes[change.name] = None
        elif change.changed:
            current = live[change.name].entries if change.name in live else ()
            changes[change.name] = (settype, frozenset(current).difference(change.removed).union(change.added))
    ruleset = nf.read(packet.family)
    sets_before, sets_after = guard_sets(nf, (), ruleset, None, changes)
    if sets_before is None:
        return None
    before, after, where = check(ruleset, None, packet, sets_before, sets_after)
    report = dict(connection=packet.describe(), before=before, after=after, forced=bool(force))
    if where:
        report["where"] = where
    if before == ACCEPT and after != ACCEPT and not force:
        raise LockoutError(
            "lockout guard: with the new set contents %s of the SSH connection Ansible is using (%s); nothing was "
            "changed. Keep the operator's address out of a blocklist (or in a whitelist) that a rule on the SSH "
            "path matches, or set force: true." % (where, packet.describe()), guard=report)
    return report
