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

from . import _ipset
from ._errors import IronwallError, SpecError
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
