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

``sets`` are iptables_ipset items (``SetsResource``): converged before the transaction whose rules
match them, destroyed (``state: absent``) after the rules stopped using them; with ``exclusive``
the owned sets the task does not declare are destroyed after the transaction too (``undeclared_sets``),
except a set something still uses, and nothing while a rollback may need it back.
"""

from __future__ import annotations

import re
from dataclasses import replace

from . import _ipset, _policy, _ratelimit, _rules, _whitelist
from ._errors import IronwallError, SpecError
from ._model import TAG_WORD
from ._plan import RULE_CHAIN_KIND, Desired, DropChain, Resource, RuleChain
from ._rulespec import FAMILIES, TARGETS, families

# The kinds of resources a ruleset declares: what ``exclusive`` may remove.
KINDS = (_rules.KIND, _whitelist.KIND, _ratelimit.KIND)
# Kinds whose tagged jumps lead into a chain the resource owns.
CHAIN_KINDS = (_whitelist.KIND, _ratelimit.KIND)

WHITELIST_KEYS = ("name", "sources", "ports", "protocol", "chain", "priority", "ctstate", "state_match",
                  "fallback", "state", "ip_version", "backend")
SET_KEYS = ("name", "entries", "type", "ip_version", "timeout", "maxelem", "hashsize", "state")
# What ``removed`` calls a set ``exclusive`` destroyed: ipset:NAME.
SET_KIND = "ipset"
# The collection's tag in an iptables-save line: (kind, name) of the rule.
_LINE_TAG_RE = re.compile(r'--comment "?%s:\d{3}:([a-z][a-z0-9-]*):([A-Za-z0-9_.@-]+)' % TAG_WORD)
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


def _validated(params, option, keys, validate, prepare=None):
    """The items of the list option ``option``, each checked by its own module's ``validate`` (errors
    named inside the list, ``whitelists[2].ports``), ``option`` set to the item's prefix, names unique.
    ``prepare(prefix, item)`` gives what ``validate`` gets (the item with the task's defaults); its
    own errors already name the item."""
    out = []
    for _i, prefix, item in _items(params, option, keys):
        given = prepare(prefix, item) if prepare is not None else item
        try:
            result = validate(given)
        except SpecError as exc:
            raise exc.within(prefix)
        out.append(replace(result, option=prefix))
    _unique(out, option)
    return tuple(out)


def _with_families(task_families, defaults=None):
    """``prepare`` for _validated: the item with its ip_version within the task's, and ``defaults``
    ({key: value}) where the item leaves a key out or None."""
    def prepare(prefix, item):
        given = dict(item)
        given["ip_version"] = _ip_version(_item_families(item, prefix, task_families))
        for key, value in (defaults or {}).items():
            if given.get(key) is None:
                given[key] = value
        return given
    return prepare


def validate_whitelists(params, task_families, protocols=None):
    return _validated(params, "whitelists", WHITELIST_KEYS, lambda given: _whitelist.validate(given, protocols),
                      _with_families(task_families, {"state_match": params.get("state_match")}))


def validate_ratelimits(params, task_families, ceiling=None, protocols=None):
    ceiling = ceiling or _ratelimit.DYNAMIC_HITCOUNT_CEILING
    return _validated(params, "ratelimits", RATELIMIT_KEYS, lambda given: _ratelimit.validate(given, ceiling, protocols),
                      _with_families(task_families))


def validate_sets(params):
    """``sets`` -> tuple of _ipset.IpsetSpec, each item validated by iptables_ipset's code (errors named
    ``sets[1].entries line 3``); ``option`` is the item's prefix."""
    return _validated(params, "sets", SET_KEYS, _ipset.validate)


def set_names(spec):
    """The ipset names one ``sets`` item manages: the sets it fills, the set of the family ``auto``
    empties, or the sets it destroys."""
    if spec.state == "absent":
        return tuple(spec.absent)
    return tuple(s.name for s in spec.sets) + tuple(_ipset.set_name(spec.name, f) for f in spec.empty)


def whitelist_set_names(wl):
    """The ipsets of a whitelist: filled with backend ipset, destroyed by it when it leaves the backend."""
    return tuple(_ipset.set_name(wl.name, f) for f in _ipset.FAMILIES)


def _check_set_names(sets, whitelists, rules):
    """One ipset, one owner among the task's items; and no rule of the task matches a set it destroys."""
    owners = {}
    claims = [(spec.option + "name", n) for spec in sets for n in set_names(spec)]
    claims += [("whitelists[%d].name" % i, n) for i, wl in enumerate(whitelists) for n in whitelist_set_names(wl)]
    for here, name in claims:
        if owners.get(name, here) != here:
            raise SpecError(here, "the ipset %s is also managed by %s; one set, one item" % (name, owners[name]))
        owners[name] = here
    gone = dict((n, spec.option) for spec in sets if spec.state == "absent" for n in spec.absent)
    for rule in rules:
        matched = (rule.values.get("match_set") or "").lstrip("!")
        if rule.state == "present" and matched in gone:
            raise SpecError(rule.option + "match_set", "the set %s is destroyed by %s (state absent); a set a "
                                                       "rule matches cannot be destroyed" % (matched, gone[matched][:-1]))


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
    sets = validate_sets(params)
    _check_set_names(sets, whitelists, rules)
    if sets:
        resources.append(SetsResource(sets))
    if rules or prefix is not None:
        resources.append(_rules.RulesResource(rules, prefix))
    if chains:
        resources.append(_rules.ChainsResource(chains))
    # A whitelist's absent side covers the families its ip_version leaves out (the sets of those it destroys).
    resources.extend(Item("whitelists", w.name, w.families, _whitelist.WhitelistResource(w),
                          _whitelist.WhitelistResource(replace(w, state="absent", families=tuple(
                              f for f in _ipset.FAMILIES if f not in w.families))))
                     for w in whitelists)
    resources.extend(Item("ratelimits", r.name, r.families, _ratelimit.RateLimitResource(r, hitcount_ceiling),
                          _ratelimit.RateLimitResource(replace(r, state="absent"))) for r in limits)
    if params.get("exclusive"):
        declared = set((_rules.KIND, r.name) for r in rules)
        declared.update((_whitelist.KIND, w.name) for w in whitelists)
        declared.update((_ratelimit.KIND, r.name) for r in limits)
        # Sets of the task's items are theirs: a whitelist destroys its own when it leaves the ipset backend.
        declared_sets = set(n for spec in sets for n in set_names(spec))
        declared_sets.update(n for w in whitelists for n in whitelist_set_names(w))
        resources.append(Exclusive(frozenset(declared), frozenset((c.table, c.name) for c in chains
                                                                  if c.state == "present"),
                                   frozenset(declared_sets), task_families,
                                   frozenset((r.values.get("match_set") or "").lstrip("!") for r in rules
                                             if r.state == "present")))
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

    def _hooks(self, hook, *args):
        """A _transaction hook of both sides (the absent side for the families the item leaves out)."""
        changed = False
        fams = set()
        for resource in (self.present, self.absent):
            method = getattr(resource, hook, None)
            got = method(*args) if method is not None else None
            if got:
                changed = changed or got[0]
                fams.update(got[1])
        return changed, tuple(sorted(fams))

    def before_apply(self, nf, check_mode):
        return self._hooks("before_apply", nf, check_mode)

    def after_apply(self, nf, check_mode, armed):
        return self._hooks("after_apply", nf, check_mode, armed)

    def guard_sets(self, live):
        """The sets the lockout guard should see after the run: the absent side's, then the present
        side's over them (an ipset whitelist of one family keeps its set there)."""
        out = {}
        for resource in (self.absent, self.present):
            method = getattr(resource, "guard_sets", None)
            if method is not None:
                out.update(method(live))
        return out

    def report(self, family, ruleset, plan):
        resource = self._of(family)
        out = dict(resource.report(family, ruleset, plan))
        out.update(resource.summary())
        return {self.section: {self.name: out}}


class Exclusive(Resource):
    """Everything of the collection's kinds that ``declared`` ((kind, name), ...) does not name:
    tagged rules, and the chains their resources own, removed in the same transaction; and the
    rule chains (marker ``rule-chain``) that ``chains`` ((table, name), ...) does not name."""

    def __init__(self, declared, chains=frozenset(), sets=frozenset(), fams=FAMILIES, matched=frozenset()):
        self.declared = declared
        self.matched = matched      # the ipset names the task's rules match
        self.chains = chains
        self.sets = sets            # the ipset names the task's items manage
        self.families = fams
        self._seen = (None, None)  # (ruleset, its _undeclared): desired and report scan a ruleset once
        self.sets_removed = {}      # family -> names of the owned sets destroyed (or that check mode would)
        self.sets_kept = {}         # name -> why an undeclared owned set was not destroyed

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
        kinds.update((SET_KIND, n) for n in self.sets_removed.get(family, ()))
        return {"removed": ["%s:%s" % key for key in sorted(kinds)]}

    def summary(self):
        return {"sets_kept": dict(self.sets_kept)} if self.sets_kept else {}

    def after_apply(self, nf, check_mode, armed):
        """After the transaction removed the undeclared rules: destroy the owned sets the task does not
        declare, in one ``ipset restore`` - but not a set something still uses (kept, with a warning),
        and nothing while a rollback may need the sets back."""
        from . import _ipset_apply  # runs processes: imported where the pure code needs none
        from ._rollback import pending
        if not nf.may_have_sets():
            return None
        sets = _ipset_apply.read(nf, ())
        names = undeclared_sets(sets, self.sets, self.families)
        if not names:
            return None
        terse = _ipset.parse_terse(nf.ipset_terse())
        texts = _ipset_apply.families_rules(nf, self.families) if any(
            terse.get(n, {}).get("references", 0) > 1 for n in names) else {}
        # check mode: the transaction did not run, so the rules it would remove still use the sets
        leaving = self.declared if check_mode else None
        free, busy = sets_in_use(names, terse, texts, leaving, self.matched)
        for name, why in sorted(busy.items()):
            self.sets_kept[name] = why
            nf.module.warn("exclusive: the owned set %s is not declared, but it was not destroyed: %s" % (name, why))
        if free and not check_mode and (armed or pending()):
            for name in free:
                self.sets_kept[name] = ("a rollback is pending, which may need it; a run after the confirmation "
                                        "destroys it")
            return None
        for name in free:
            self.sets_removed.setdefault(sets[name].family or "ipv4", []).append(name)
        if not free or check_mode:
            return bool(free), ()
        gone = _ipset.IpsetSpec(name=free[0], state="absent", absent=tuple(free))
        set_plan = _ipset.plan(gone, sets)
        nf.ipset_restore(set_plan.script)
        return True, ()


def undeclared_sets(sets, declared, fams=FAMILIES):
    """The owned sets (registry members, ``sets`` a parse_save result) of the families ``fams`` that
    ``declared`` (ipset names) does not name, sorted: what ``exclusive`` destroys."""
    owned = _ipset.owned_names(sets)
    return [n for n in sorted(owned) if n in sets and n not in declared and (sets[n].family or "ipv4") in fams]


def sets_in_use(names, terse, texts, leaving=None, matched=frozenset()):
    """(free names, {name: why kept}): a set is in use while something but the registry references it
    (``terse``: parse_terse). ``texts``: {family: iptables-save text}, to name the rules. ``leaving``: the
    (kind, name) keys the task declares - when given (check mode, before the transaction), the tagged rules
    of the collection's kinds not in it are about to be removed and do not count, and a set in ``matched``
    (matched by a rule of the task) is about to be used."""
    free = []
    busy = {}
    for name in names:
        refs = terse.get(name, {}).get("references", 0) - 1
        rules = ["%s: %s" % (f, line) for f, text in sorted(texts.items()) for line in _ipset.rules_using(text, name)]
        if leaving is not None:
            going = [r for r in rules if _removed_by_exclusive(r, leaving)]
            refs -= len(going)
            rules = [r for r in rules if r not in going]
        if leaving is not None and name in matched:
            busy[name] = "matched by a rule of this task"
        elif refs <= 0:
            free.append(name)
        elif rules:
            busy[name] = "used by %s" % "; ".join(rules)
        else:
            busy[name] = "%d reference(s) outside iptables-save (another tool's rule or list:set)" % refs
    return free, busy


def _removed_by_exclusive(line, declared):
    tag = _LINE_TAG_RE.search(line)
    return tag is not None and tag.group(1) in KINDS and (tag.group(1), tag.group(2)) not in declared


class SetsResource(Resource):
    """The ``sets`` items (_ipset.IpsetSpec each): the present ones converged in one ``ipset restore``
    before the transaction whose rules match them, the absent ones destroyed in one after it; reported
    at the top level under ``sets``, per item name, as iptables_ipset reports them."""

    def __init__(self, specs):
        self.specs = tuple(specs)
        self.plans = {}         # item name -> _ipset.SetPlan
        self.deferred = set()   # item names whose destroy waits while a rollback is pending

    def desired(self, family, ruleset):
        return Desired()

    def _plans(self, nf, state):
        from . import _ipset_apply
        specs = [s for s in self.specs if s.state == state]
        if not specs:
            return []
        sets = _ipset_apply.read(nf, [n for s in specs for n in set_names(s)])
        out = [(spec, _ipset.plan(spec, sets)) for spec in specs]
        self.plans.update((spec.name, p) for spec, p in out)
        return [(spec, p) for spec, p in out if p.changed]

    def guard_sets(self, live):
        """What the lockout guard should see in these sets after the run ({name: (type, entries) or None
        when destroyed}), given ``live`` (parse_save with every entry)."""
        out = {}
        for spec in self.specs:
            if spec.state == "absent":
                out.update((name, None) for name in spec.absent)
                continue
            for want in spec.sets:
                known = live[want.name].entries if want.name in live and live[want.name].entries else frozenset()
                out[want.name] = (want.type, frozenset(want.resolved(known).entries))
            out.update((_ipset.set_name(spec.name, f), (spec.type, frozenset())) for f in spec.empty
                       if _ipset.set_name(spec.name, f) in live)
        return out

    def before_apply(self, nf, check_mode):
        """Fill (create, swap) the present sets, all in one ``ipset restore``, before the rules change;
        check mode: the families of the sets it would create are untestable (_transaction)."""
        from . import _ipset_apply
        changed = self._plans(nf, "present")
        if not changed:
            return None
        for spec, p in changed:   # a recreate (type changed) needs a set no rule uses
            _ipset_apply.check_unused(nf, p.need_unreferenced, spec.option + "type")
        if check_mode:
            return True, tuple(sorted(set(c.family for _s, p in changed for c in p.changes if c.action == "create")))
        script = _ipset.join_scripts(p.script for _s, p in changed)
        nf.ipset_restore(script, cleanup=_ipset.tmp_names(script))
        return True, ()

    def after_apply(self, nf, check_mode, armed):
        """Destroy the absent sets once the rules stopped matching them (not while a rollback is pending)."""
        from . import _ipset_apply
        from ._rollback import pending
        changed = self._plans(nf, "absent")
        if not changed or check_mode:
            return (True, ()) if changed else None
        if armed or pending():
            self.deferred.update(spec.name for spec, _p in changed)
            return None
        for spec, p in changed:
            try:
                _ipset_apply.check_unused(nf, p.need_unreferenced, spec.option + "state")
            except _ipset_apply.SetInUse as exc:
                raise IronwallError("%s: %s" % (exc.option, exc.message.replace(
                    "Nothing was changed.", "The rules of this task were applied; the set was kept.")))
        nf.ipset_restore(_ipset.join_scripts(p.script for _s, p in changed))
        return True, ()

    def summary(self):
        out = {}
        for spec in self.specs:
            set_plan = self.plans.get(spec.name)
            report = _report(set_plan) if set_plan is not None else {}
            if spec.name in self.deferred:
                for entry in report.values():
                    if entry["action"] == "destroy":
                        entry["deferred"] = True
            out[spec.name] = report
        return {"sets": out}


def _report(set_plan):
    """{family: {name, action, entries, added, removed}}, as iptables_ipset returns it (_ipset_apply.report)."""
    return dict((c.family, dict(name=c.name, action=c.action, entries=c.count, added=len(c.added),
                                removed=len(c.removed))) for c in set_plan.changes)
