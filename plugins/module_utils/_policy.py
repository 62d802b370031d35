# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_policy options -> validated policies (and purge) -> per-family _plan.Desired.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
Pure code: no Ansible imports, no processes.
"""

from __future__ import annotations

import re

from ._errors import SpecError
from ._model import BUILTIN_CHAINS
from ._plan import Desired, Purge, Resource
from ._text import check_text

POLICIES = ("ACCEPT", "DROP")


def validate(params):
    """The module's params -> ({chain: policy or None}, compiled keep patterns)."""
    table = params["table"]
    builtins = BUILTIN_CHAINS[table]
    option = "policies" if params["policies"] is not None else "chain"
    if params["policies"] is not None:
        wanted = params["policies"]
        if not wanted:
            raise SpecError("policies", "give at least one chain, e.g. {INPUT: DROP}")
    else:
        if params["policy"] is None and not params["purge"]:
            raise SpecError("policy", "required with chain (ACCEPT or DROP), unless purge is true")
        wanted = {params["chain"]: params["policy"]}
    out = {}
    for chain, policy in wanted.items():
        if chain not in builtins:
            raise SpecError(option, "%r is not a built-in chain of table %s; only %s take a policy"
                            % (chain, table, ", ".join(builtins)))
        if policy is not None:
            policy = str(policy).upper() if isinstance(policy, str) else policy
            if policy not in POLICIES:
                raise SpecError("policies" if params["policies"] is not None else "policy",
                                "policy of %s must be ACCEPT or DROP, got %r" % (chain, wanted[chain]))
            if policy == "DROP" and table == "nat":
                raise SpecError("policies" if params["policies"] is not None else "policy",
                                "the nat table is not for filtering: its chains only take the policy ACCEPT")
        out[chain] = policy
    keep = []
    for pattern in params["keep"]:
        check_text(pattern, "keep")
        try:
            keep.append(re.compile(pattern))
        except re.error as exc:
            raise SpecError("keep", "%r is not a valid regular expression: %s" % (pattern, exc))
    return out, tuple(keep)


class PolicyResource(Resource):
    """Policies of built-in chains of one table, and the optional purge of their untagged rules."""

    def __init__(self, table, wanted, keep=(), purge=False):
        self.table = table
        self.wanted = wanted
        self.keep = keep
        self.purge = purge

    def desired(self, family, ruleset):
        return Desired(
            policies=tuple((self.table, c, p) for c, p in self.wanted.items() if p is not None),
            purges=tuple(Purge(self.table, c, self.keep) for c in self.wanted) if self.purge else (),
        )

    def report(self, family, ruleset, plan):
        current = ruleset.table(self.table)
        after = dict((c.name, c.policy) for c in current.chains if c.name in self.wanted)
        after.update((c, p) for c, p in self.wanted.items() if p is not None)
        return dict(policies=after, purged=[line for tp in plan.tables for line in tp.deleted()])
