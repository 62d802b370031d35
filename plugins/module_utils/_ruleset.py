# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_ruleset options -> the resources of one whole declaration.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
Pure code: no Ansible imports, no processes.

Every list item is validated by the code of the module it mirrors (_policy, _rules,
_whitelist, _ratelimit), and its errors are named inside the list (``whitelists[2].ports``).
The resources are planned together by _transaction.converge: one read per family, one plan,
one transaction, the lockout guard on the final state. ``Exclusive`` makes the declaration
complete: what the collection tagged or owns and the declaration does not name is removed
in the same transaction.
"""

from __future__ import annotations

from dataclasses import replace

from . import _policy, _ratelimit, _rules, _whitelist
from ._errors import SpecError
from ._plan import RULE_CHAIN_KIND, Desired, DropChain, Resource, RuleChain
from ._rulespec import TARGETS, families

# The kinds of resources a ruleset declares: what ``exclusive`` may remove.
KINDS = (_rules.KIND, _whitelist.KIND, _ratelimit.KIND)
# Kinds whose tagged jumps lead into a chain the resource owns.
CHAIN_KINDS = (_whitelist.KIND, _ratelimit.KIND)

WHITELIST_KEYS = ("name", "sources", "ports", "protocol", "chain", "priority", "ctstate", "state_match",
                  "fallback", "state", "ip_version")
RATELIMIT_KEYS = ("name", "state", "chain", "chain_name", "priority", "protocol", "ports", "hitcount", "seconds",
                  "rttl", "update", "action", "reject_with", "log_prefix", "log_level", "log_limit", "accept",
                  "exempt_sources", "ip_version")


def _items(params, option, keys):
    """(index, prefix, item) of a list option, every item a dict of known keys."""
    for i, item in enumerate(params.get(option) or ()):
        if not isinstance(item, dict):
            raise SpecError("%s[%d]" % (option, i), "each item must be a dictionary of options")
        unknown = sorted(str(k) for k, v in item.items() if k not in keys and v is not None)
        if unknown:
            raise SpecError("%s[%d].%s" % (option, i, unknown[0]), "unknown option; valid: %s" % ", ".join(keys))
        yield i, "%s[%d]." % (option, i), item


def _item_families(item, prefix, task_families):
    """An item's ip_version, within the task's (an item without one takes the task's)."""
    given = item.get("ip_version")
    if given is None:
        return task_families
    try:
        fams = families(given)
    except SpecError as exc:
        raise exc.within(prefix)
    if not set(fams) <= set(task_families):
        raise SpecError(prefix + "ip_version", "%s is outside the task's ip_version (%s)"
                        % (given, ", ".join(task_families)))
    return fams


def _ip_version(fams):
    return "both" if len(fams) == 2 else fams[0]


def validate_whitelists(params, task_families, protocols=None):
    out = []
    for i, prefix, item in _items(params, "whitelists", WHITELIST_KEYS):
        given = dict(item)
        given["ip_version"] = _ip_version(_item_families(item, prefix, task_families))
        if given.get("state_match") is None:
            given["state_match"] = params.get("state_match")
        try:
            out.append(replace(_whitelist.validate(given, protocols), option=prefix))
        except SpecError as exc:
            raise exc.within(prefix)
    _unique(out, "whitelists")
    return tuple(out)


def validate_ratelimits(params, task_families, ceiling=None, protocols=None):
    out = []
    for i, prefix, item in _items(params, "ratelimits", RATELIMIT_KEYS):
        given = dict(item)
        given["ip_version"] = _ip_version(_item_families(item, prefix, task_families))
        try:
            limit = _ratelimit.validate(given, ceiling or _ratelimit.DYNAMIC_HITCOUNT_CEILING, protocols)
        except SpecError as exc:
            raise exc.within(prefix)
        out.append(replace(limit, option=prefix))
    _unique(out, "ratelimits")
    return tuple(out)


def _unique(items, option):
    seen = {}
    for i, item in enumerate(items):
        if item.name in seen:
            raise SpecError("%s[%d].name" % (option, i), "duplicate name %r (also %s[%d]); each item needs its own "
                            "name" % (item.name, option, seen[item.name]))
        seen[item.name] = i


def _check_chain_names(whitelists, ratelimits, rule_chains=()):
    """Two resources must not own the same chain (whitelists and rate limits own filter chains)."""
    owners = {}
    for option, chains in (("whitelists", [(w.name, "name") for w in whitelists]),
                           ("ratelimits", [(r.chain_name, "chain_name") for r in ratelimits])):
        for i, (chain, key) in enumerate(chains):
            here = "%s[%d].%s" % (option, i, key)
            if chain in owners:
                raise SpecError(here, "chain %r is also %s; two resources cannot own one chain" % (chain, owners[chain]))
            owners[chain] = here
    for rc in rule_chains:
        if rc.table == "filter" and rc.name in owners:
            raise SpecError(rc.option, "chain %r is also %s; two resources cannot own one chain"
                            % (rc.name, owners[rc.name]))


def validate(params, protocols=None, ceiling=None):
    """The module's params -> list of resources (policies, rules, whitelists, rate limits, exclusive).

    ``ceiling``: a function returning the host's xt_recent hitcount ceiling, called only when a
    rate limit is present (it reads a file on the target).
    """
    task_families = families(params["ip_version"])
    resources = []
    if params.get("policies") is not None:
        wanted, keep = _policy.validate(dict(table="filter", policies=params["policies"], policy=None, chain=None,
                                             purge=params.get("purge"), keep=params.get("keep") or ()))
        resources.append(_policy.PolicyResource("filter", wanted, keep, bool(params.get("purge"))))
    elif params.get("purge"):
        raise SpecError("purge", "needs policies: it removes untagged rules from the chains named there")
    rule_params = dict(rules=params.get("rules") or [], ip_version=params["ip_version"],
                       state_match=params.get("state_match"), exclusive_prefix=params.get("exclusive_prefix"))
    rules = _rules.validate_rules(rule_params, task_families, protocols)
    prefix = _rules.validate_exclusive_prefix(rule_params, rules)
    whitelists = validate_whitelists(params, task_families, protocols)
    present_limits = [r for r in params.get("ratelimits") or () if isinstance(r, dict) and r.get("state") != "absent"]
    hitcount_ceiling = ceiling() if ceiling and present_limits else None
    limits = validate_ratelimits(params, task_families, hitcount_ceiling, protocols)
    chains = _rules.validate_chains(params.get("chains"))
    _check_chain_names(whitelists, limits, [c for c in chains if c.state == "present"])
    if rules or prefix is not None:
        resources.append(_rules.RulesResource(rules, prefix))
    if chains:
        resources.append(_rules.ChainsResource(chains))
    resources.extend(Item("whitelists", w.name, w.families, _whitelist.WhitelistResource(w),
                          _whitelist.WhitelistResource(replace(w, state="absent"))) for w in whitelists)
    resources.extend(Item("ratelimits", r.name, r.families, _ratelimit.RateLimitResource(r, hitcount_ceiling),
                          _ratelimit.RateLimitResource(replace(r, state="absent"))) for r in limits)
    if params.get("exclusive"):
        declared = set((_rules.KIND, r.name) for r in rules)
        declared.update((_whitelist.KIND, w.name) for w in whitelists)
        declared.update((_ratelimit.KIND, r.name) for r in limits)
        resources.append(Exclusive(frozenset(declared), frozenset((c.table, c.name) for c in chains
                                                                  if c.state == "present")))
    return resources


class Item(Resource):
    """One whitelist or rate limit of the lists: absent from the families its ip_version leaves out
    (the declaration is complete), reported under ``section`` and its name."""

    def __init__(self, section, name, fams, present, absent):
        self.section = section
        self.name = name
        self.families = fams
        self.present = present
        self.absent = absent

    def _of(self, family):
        return self.present if family in self.families else self.absent

    def desired(self, family, ruleset):
        return self._of(family).desired(family, ruleset)

    def report(self, family, ruleset, plan):
        resource = self._of(family)
        out = dict(resource.report(family, ruleset, plan))
        out.update(resource.summary())
        return {self.section: {self.name: out}}


class Exclusive(Resource):
    """Everything of the collection's kinds that ``declared`` ((kind, name), ...) does not name:
    tagged rules, and the chains their resources own, removed in the same transaction; and the
    rule chains (marker ``rule-chain``) that ``chains`` ((table, name), ...) does not name."""

    def __init__(self, declared, chains=frozenset()):
        self.declared = declared
        self.chains = chains
        self._seen = (None, None)  # (ruleset, its _undeclared): desired and report scan a ruleset once

    def _undeclared(self, ruleset):
        """{(table, kind, name)}, and the DropChains of the undeclared owned chains."""
        if self._seen[0] is not ruleset:
            self._seen = (ruleset, self._scan(ruleset))
        return self._seen[1]

    def _scan(self, ruleset):
        absent = set()
        drops = {}
        rule_chains = []
        for table in ruleset.tables:
            names = set(c.name for c in table.chains)
            for chain in table.chains:
                owner = chain.owner
                if owner is not None and owner[0] in CHAIN_KINDS and owner not in self.declared:
                    drops[(table.name, chain.name)] = DropChain(table.name, chain.name, owner, "exclusive")
                if owner == (RULE_CHAIN_KIND, chain.name) and (table.name, chain.name) not in self.chains:
                    rule_chains.append(RuleChain(table.name, chain.name, "exclusive", "absent"))
                for rule in chain.rules:
                    tag = rule.tag
                    if tag is None or tag.kind not in KINDS or tag.key in self.declared:
                        continue
                    absent.add((table.name, tag.kind, tag.name))
                    target = rule.target
                    # a chain made before ownership markers: the undeclared resource's jump leads there
                    if tag.kind in CHAIN_KINDS and target in names and target not in TARGETS:
                        drops.setdefault((table.name, target), DropChain(table.name, target, tag.key, "exclusive"))
        return absent, drops, tuple(rule_chains)

    def desired(self, family, ruleset):
        absent, drops, rule_chains = self._undeclared(ruleset)
        return Desired(absent=tuple(sorted(absent)), drop_chains=tuple(drops[k] for k in sorted(drops)),
                       rule_chains=rule_chains)

    def report(self, family, ruleset, plan):
        absent, drops, rule_chains = self._undeclared(ruleset)
        kinds = set((k, n) for _t, k, n in absent) | set(d.owner for d in drops.values())
        kinds.update(c.owner for c in rule_chains)
        return {"removed": ["%s:%s" % key for key in sorted(kinds)]}
