# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_rule options -> validated RuleOptions -> per-family TaggedGroups (a _plan.Desired).

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
Pure code: no Ansible imports, no processes.

A rule is identified by its ``name``: it is carried in the comment tag
``ironwall:<priority>:rule:<name>[ <comment>]``. One named rule renders one line per
(source, destination) pair and family, all in one TaggedGroup, so changing any option
replaces the whole group in place.

``chains`` declares user chains the collection creates for such rules (a _plan.RuleChain each):
created with the ownership marker ``ironwall:chain:rule-chain:<name>`` first, shared by every
task that declares them, removed with ``state: absent``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._errors import SpecError
from ._learn import learn_rules
from ._model import Tag
from ._options import INHERITED, MATCH_KEYS, RULE_KEYS, Ctx, _present, check_rule, render_rule
from ._plan import Desired, RemoveChain, ReplaceChain, Resource, RuleChain, TaggedGroup
from ._rulespec import FAMILIES, check_chain_name, check_name, check_table

KIND = "rule"
DEFAULT_PRIORITY = 500
DEFAULT_CHAIN = "INPUT"
RULE_OPTIONS = tuple(k for k in RULE_KEYS if k not in INHERITED)
CHAIN_KEYS = ("name", "table", "state")
CHAIN_STATES = ("present", "absent")


@dataclass(frozen=True)
class RuleOptions:
    """One validated rule: where it goes and its option values (checked by the option table)."""

    name: str
    table: str = "filter"
    chain: str = DEFAULT_CHAIN
    priority: int = DEFAULT_PRIORITY
    state: str = "present"
    families: tuple = FAMILIES
    values: dict = field(default_factory=dict, compare=False, hash=False)
    option: str = field(default="", compare=False)  # "rules[2]." in the list form, for error messages
    # ((family, specs), ...): a ``raw`` rule's lines as the kernel prints them (_learn.learn_rules)
    learned: tuple = field(default=(), compare=False, hash=False)

    @property
    def tag(self):
        return Tag(self.priority, KIND, self.name)


def validate_rule(params, defaults=None, prefix="", module_families=FAMILIES, protocols=None):
    """Validate one rule's options (a dict) into RuleOptions; SpecError names the option.

    ``defaults`` supplies INHERITED options missing from ``params`` (the top level of the
    module in the ``rules`` form); ``prefix`` is prepended to option names in errors
    (``rules[2].``).
    """
    defaults = defaults or {}
    given = dict(params)
    for key in INHERITED:
        if given.get(key) is None:
            given[key] = defaults.get(key)
    values = check_rule(given, Ctx(prefix, module_families, protocols))
    rule = RuleOptions(name=values["name"], table=values["table"], chain=values["chain"],
                       priority=values["priority"], state=values["state"], families=values["ip_version"],
                       values=values, option=prefix)
    if rule.state == "present" and not any(render_specs(rule, f) for f in rule.families):
        raise SpecError(prefix + "destination",
                        "source and destination have no address family in common, so the rule fits neither "
                        "iptables nor ip6tables")
    return rule


def render_specs(rule, family):
    """The rule's specs for one family, in iptables-save form; () when it has none there."""
    if rule.state != "present" or family not in rule.families:
        return ()
    for learned_family, specs in rule.learned:
        if learned_family == family:
            return specs
    return render_rule(rule.values, family, rule.tag)


def validate_rules(params, module_families=FAMILIES, protocols=None):
    """The module's params (single-rule or ``rules`` form) -> tuple of RuleOptions.

    Duplicate names in ``rules`` are an error: the name is the rule's identity.
    """
    items = params.get("rules")
    if items is None:
        return (validate_rule(params, module_families=module_families, protocols=protocols),)
    if params.get("name") is not None:
        raise SpecError("name", "give either name (one rule) or rules (a list), not both")
    for key in MATCH_KEYS:
        if key not in INHERITED and _present(params.get(key)):
            raise SpecError(key, "set it on each item of rules; only %s apply to every item"
                            % ", ".join(INHERITED))
    defaults = dict((k, params.get(k)) for k in INHERITED)
    out = []
    seen = {}
    for i, item in enumerate(items):
        prefix = "rules[%d]." % i
        if not isinstance(item, dict):
            raise SpecError("rules[%d]" % i, "each item must be a dictionary of rule options")
        unknown = sorted(set(k for k in item if item[k] is not None) - set(INHERITED) - set(RULE_OPTIONS))
        if unknown:
            raise SpecError(prefix + unknown[0], "unknown rule option; valid: %s" % ", ".join(sorted(RULE_KEYS)))
        rule = validate_rule(item, defaults, prefix, module_families, protocols)
        if rule.name in seen:
            raise SpecError(prefix + "name", "duplicate name %r (also rules[%d]); each rule needs its own name"
                            % (rule.name, seen[rule.name]))
        seen[rule.name] = i
        out.append(rule)
    return tuple(out)


def validate_exclusive_prefix(params, rules):
    """``exclusive_prefix`` checked against the rules it governs; None when not given."""
    prefix = params.get("exclusive_prefix")
    if prefix is None:
        return None
    if params.get("rules") is None:
        raise SpecError("exclusive_prefix", "needs the rules list form: it makes rules the complete list of "
                                            "the names that start with it")
    check_name(prefix, "exclusive_prefix")
    for i, rule in enumerate(rules):
        if not rule.name.startswith(prefix):
            raise SpecError("rules[%d].name" % i, "%r does not start with exclusive_prefix %r; every rule of an "
                            "exclusive list must be in its namespace" % (rule.name, prefix))
    return prefix


def validate_chains(items, table="filter", state="present", option="chains"):
    """The ``chains`` option -> tuple of _plan.RuleChain. An item is a chain name or a dict
    {name, table, state}; ``table`` and ``state`` default to the task's. Errors name
    ``chains[i]`` (``chains[i].table`` ...)."""
    out = []
    seen = {}
    for i, item in enumerate(items or ()):
        here = "%s[%d]" % (option, i)
        if isinstance(item, str):
            item = {"name": item}
            name_option = here
        elif isinstance(item, dict):
            unknown = sorted(str(k) for k, v in item.items() if k not in CHAIN_KEYS and v is not None)
            if unknown:
                raise SpecError("%s.%s" % (here, unknown[0]), "unknown option; valid: %s" % ", ".join(CHAIN_KEYS))
            name_option = here + ".name"
        else:
            raise SpecError(here, "each item is a chain name or a dictionary with name, table and state")
        name = check_chain_name(item.get("name"), name_option, user_chain=True)
        check_name(name, name_option, max_len=28)  # it travels in the ownership marker
        where = check_table(item.get("table") or table, here + ".table")
        how = item.get("state") or state
        if how not in CHAIN_STATES:
            raise SpecError(here + ".state", "must be present or absent, got %r" % (how,))
        if (where, name) in seen:
            raise SpecError(name_option, "chain %r of table %s is also %s; declare each chain once"
                            % (name, where, seen[(where, name)]))
        seen[(where, name)] = here
        out.append(RuleChain(where, name, here, how))
    return tuple(out)


def chain_report(chains, ruleset, plan):
    """{"created": [...], "removed": [...]}: ``table:name`` of the declared chains the plan creates
    or removes (or would, in check mode)."""
    mine = set((c.table, c.name) for c in chains)
    out = {"created": [], "removed": []}
    for tp in plan.tables:
        for op in tp.ops:
            if (tp.table, op.chain) not in mine:
                continue
            if isinstance(op, RemoveChain):
                out["removed"].append("%s:%s" % (tp.table, op.chain))
            elif isinstance(op, ReplaceChain) and ruleset.table(tp.table).chain(op.chain) is None:
                out["created"].append("%s:%s" % (tp.table, op.chain))
    return out


def desired_for(rules, family, ruleset=None, exclusive_prefix=None):
    """The _plan.Desired for one family: present rules as groups, absent ones (and rules
    that have no line in this family) removed from their table.

    With ``ruleset`` (the family's current rules), a name is also removed from every other
    table that holds it, so changing a rule's ``table`` moves it instead of leaving a copy.
    With ``exclusive_prefix`` too, every rule of this module whose name starts with it and
    is not in ``rules`` is removed wherever it is.
    """
    names = set(r.name for r in rules)
    held = _tables_holding(ruleset, names, exclusive_prefix) if ruleset is not None else {}
    groups = []
    absent = []
    for rule in rules:
        specs = render_specs(rule, family)
        if specs:
            groups.append(TaggedGroup(rule.table, rule.chain, rule.tag, specs, rule.option))
        else:
            absent.append((rule.table, KIND, rule.name))
        absent.extend((t, KIND, rule.name) for t in sorted(held.get(rule.name, ())) if t != rule.table)
    for name in sorted(set(held) - names):
        absent.extend((t, KIND, name) for t in sorted(held[name]))
    return Desired(groups=tuple(groups), absent=tuple(absent))


def pruned_names(rules, desired):
    """Names ``desired`` (from desired_for) removes although ``rules`` does not list them:
    those its ``exclusive_prefix`` prunes. Sorted."""
    return sorted(set(name for _table, _kind, name in desired.absent) - set(r.name for r in rules))


def _tables_holding(ruleset, names, prefix=None):
    """{rule name: set of table names} for this module's tags in ``ruleset`` that are named in
    ``names`` or start with ``prefix``."""
    held = {}
    for table in ruleset.tables:
        for chain in table.chains:
            for r in chain.rules:
                tag = r.tag
                if tag is not None and tag.kind == KIND and (
                        tag.name in names or (prefix and tag.name.startswith(prefix))):
                    held.setdefault(tag.name, set()).add(table.name)
    return held


def rule_lines(rules, family):
    """``-A CHAIN spec`` lines the rules want in the family, in (priority, name) order."""
    lines = []
    for rule in sorted(rules, key=lambda r: r.tag.sort_key):
        for spec in render_specs(rule, family):
            lines.append("-A %s %s" % (rule.chain, spec))
    return lines


class RulesResource(Resource):
    """The rules of one iptables_rule task (and its exclusive_prefix)."""

    def __init__(self, rules, exclusive_prefix=None):
        self.rules = rules
        self.prefix = exclusive_prefix

    def prepare(self, nf):
        """Before the read (_transaction.converge): the lines of ``raw`` rules as the kernel prints
        them, learned in a private network namespace (_learn); nothing runs without one."""
        self.rules = learn_rules(nf, self.rules, render_specs)

    def desired(self, family, ruleset):
        return desired_for(self.rules, family, ruleset, self.prefix)

    def report(self, family, ruleset, plan):
        out = {"rules": rule_lines(self.rules, family)}
        if self.prefix is not None:
            out["pruned"] = pruned_names(self.rules, self.desired(family, ruleset))
        return out


class ChainsResource(Resource):
    """The rule chains a task declares (``chains``: _plan.RuleChain each), created or removed in
    every family of the task, in the same plan as its rules."""

    def __init__(self, chains):
        self.chains = tuple(chains)

    def desired(self, family, ruleset):
        return Desired(rule_chains=self.chains)

    def report(self, family, ruleset, plan):
        return {"chains": chain_report(self.chains, ruleset, plan)}
