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
"""

from __future__ import annotations

from dataclasses import dataclass

from ._model import Tag
from ._plan import Desired, TaggedGroup
from ._rulespec import (
    FAMILIES, PORT_PROTOCOLS, SpecError, build_spec, check_chain_name, check_comment, check_ctstates,
    check_interface, check_log_level, check_log_prefix, check_name, check_priority, check_protocol,
    check_table, families, icmp_type, match_ctstate, match_icmp, match_ports, parse_ports,
    split_addresses, tag_reserve, target_log, target_reject)

KIND = "rule"
DEFAULT_PRIORITY = 500
DEFAULT_CHAIN = "INPUT"
STATES = ("present", "absent")
STATE_MATCHES = ("conntrack", "state")
BUILTIN_JUMPS = ("ACCEPT", "DROP", "REJECT", "LOG", "RETURN")
ICMP_PROTOCOLS = ("icmp", "icmpv6", "ipv6-icmp", "1", "58")
PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "132": "sctp", "136": "udplite", "33": "dccp"}

# Options of one rule; the first group may also be given at the top level as defaults
# for every item of ``rules``.
INHERITED = ("chain", "table", "priority", "state", "ip_version", "state_match")
RULE_OPTIONS = ("name", "protocol", "source", "destination", "in_interface", "out_interface", "dports",
                "sports", "ctstate", "icmp_type", "jump", "log_prefix", "log_level",
                "reject_with", "comment")
# Chains where the kernel has no input / output interface.
_NO_IN = ("OUTPUT", "POSTROUTING")
_NO_OUT = ("INPUT", "PREROUTING")

# REJECT types by meaning, so ``reject_with`` given in one family's words works for both.
_REJECT_EQUIV = (
    ("icmp-net-unreachable", "icmp6-no-route"),
    ("icmp-host-unreachable", "icmp6-addr-unreachable"),
    ("icmp-port-unreachable", "icmp6-port-unreachable"),
    ("icmp-admin-prohibited", "icmp6-adm-prohibited"),
    ("icmp-net-prohibited", "icmp6-adm-prohibited"),
    ("icmp-host-prohibited", "icmp6-adm-prohibited"),
    ("icmp-proto-unreachable", None),
    (None, "icmp6-policy-fail"),
    (None, "icmp6-reject-route"),
    ("tcp-reset", "tcp-reset"),
)
_REJECT_ALIASES = {"net-unreach": "icmp-net-unreachable", "host-unreach": "icmp-host-unreachable",
                   "port-unreach": "icmp-port-unreachable", "proto-unreach": "icmp-proto-unreachable",
                   "net-prohib": "icmp-net-prohibited", "host-prohib": "icmp-host-prohibited",
                   "admin-prohib": "icmp-admin-prohibited", "no-route": "icmp6-no-route",
                   "adm-prohibited": "icmp6-adm-prohibited", "addr-unreach": "icmp6-addr-unreachable",
                   "port-unreachable": "icmp6-port-unreachable", "tcp-rst": "tcp-reset"}


@dataclass(frozen=True)
class RuleOptions:
    """One validated rule. ``sources``/``destinations``: {family: (canonical, ...)}."""

    name: str
    table: str = "filter"
    chain: str = DEFAULT_CHAIN
    priority: int = DEFAULT_PRIORITY
    state: str = "present"
    families: tuple = FAMILIES
    protocol: str | None = None
    sources: tuple = ()        # ((family, (nets...)), ...) kept hashable
    destinations: tuple = ()
    in_interface: str | None = None
    out_interface: str | None = None
    dports: tuple = ()
    sports: tuple = ()
    ctstates: tuple = ()
    state_match: str = "conntrack"
    icmp_type: str | None = None
    jump: str | None = None
    log_prefix: str | None = None
    log_level: int | None = None
    reject_with: str | None = None
    comment: str | None = None

    @property
    def tag(self):
        return Tag(self.priority, KIND, self.name)

    def addresses(self, which, family):
        table = dict(self.sources if which == "source" else self.destinations)
        return table.get(family, ())

    def has_addresses(self, which):
        table = self.sources if which == "source" else self.destinations
        return any(nets for _f, nets in table)


def _opt(prefix, option):
    return prefix + option


def _present(value):
    return value is not None and value != [] and value != ()


def _aslist(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _reject_for(value, family, option):
    """A REJECT type in the family's words; a type with no equivalent there is an error."""
    text = _REJECT_ALIASES.get(value, value)
    for v4, v6 in _REJECT_EQUIV:
        if text in (v4, v6):
            out = v4 if family == "ipv4" else v6
            if out is None:
                raise SpecError(option, "%r has no %s equivalent; set ip_version to %s or choose another type"
                                % (value, "IPv4" if family == "ipv4" else "IPv6",
                                   "ipv6" if family == "ipv4" else "ipv4"))
            return out
    valid = sorted(set(n for pair in _REJECT_EQUIV for n in pair if n))
    raise SpecError(option, "%r is not a REJECT type; valid: %s" % (value, ", ".join(valid)))


def validate_rule(params, defaults=None, prefix="", module_families=FAMILIES):
    """Validate one rule's options (a dict) into RuleOptions; SpecError names the option.

    ``defaults`` supplies INHERITED options missing from ``params`` (the top level of the
    module in the ``rules`` form); ``prefix`` is prepended to option names in errors
    (``rules[2].``).
    """
    defaults = defaults or {}

    def get(key, fallback=None):
        value = params.get(key)
        if value is None and key in INHERITED:
            value = defaults.get(key)
        return fallback if value is None else value

    name = check_name(params.get("name"), _opt(prefix, "name"))
    table = check_table(get("table", "filter"), _opt(prefix, "table"))
    state = get("state", "present")
    if state not in STATES:
        raise SpecError(_opt(prefix, "state"), "must be present or absent, got %r" % (state,))
    ip_version = get("ip_version", "both")
    try:
        fams = families(ip_version)
    except SpecError as exc:
        raise SpecError(_opt(prefix, "ip_version"), str(exc).split(": ", 1)[1])
    outside = [f for f in fams if f not in module_families]
    if outside:
        raise SpecError(_opt(prefix, "ip_version"), "%s is outside the task's ip_version (%s)"
                        % (ip_version, ", ".join(module_families)))
    chain = check_chain_name(get("chain", DEFAULT_CHAIN), _opt(prefix, "chain"))
    priority = check_priority(get("priority", DEFAULT_PRIORITY), _opt(prefix, "priority"))
    if state == "absent":
        return RuleOptions(name=name, table=table, chain=chain, priority=priority, state=state, families=fams)

    # Protocol, ports, ICMP.
    protocol = params.get("protocol")
    if protocol is not None:
        protocol = check_protocol(protocol, _opt(prefix, "protocol"))
        protocol = PROTOCOL_NAMES.get(protocol, protocol)
        if protocol in ("all", "0"):
            protocol = None
    dports = parse_ports(params.get("dports"), _opt(prefix, "dports")) if _present(params.get("dports")) else ()
    sports = parse_ports(params.get("sports"), _opt(prefix, "sports")) if _present(params.get("sports")) else ()
    if (dports or sports) and protocol not in PORT_PROTOCOLS:
        raise SpecError(_opt(prefix, "dports" if dports else "sports"),
                        "ports need protocol tcp, udp, udplite, sctp or dccp (protocol is %s)"
                        % (protocol or "not set"))
    icmp = params.get("icmp_type")
    if icmp is not None and str(icmp).strip() != "":
        if protocol not in ICMP_PROTOCOLS:
            raise SpecError(_opt(prefix, "icmp_type"), "needs protocol icmp (protocol is %s)"
                            % (protocol or "not set"))
        for fam in fams:  # every family must know the type
            icmp_type(icmp, fam, _opt(prefix, "icmp_type"))
        icmp = str(icmp).strip()
    else:
        icmp = None

    # Addresses: IPv4 entries go to iptables, IPv6 ones to ip6tables.
    src = split_addresses(_aslist(params.get("source")), _opt(prefix, "source"), fams)
    dst = split_addresses(_aslist(params.get("destination")), _opt(prefix, "destination"), fams)

    in_iface = check_interface(params.get("in_interface"), _opt(prefix, "in_interface"))
    out_iface = check_interface(params.get("out_interface"), _opt(prefix, "out_interface"))
    if in_iface and chain in _NO_IN:
        raise SpecError(_opt(prefix, "in_interface"), "packets in chain %s have no input interface" % chain)
    if out_iface and chain in _NO_OUT:
        raise SpecError(_opt(prefix, "out_interface"), "packets in chain %s have no output interface" % chain)

    ctstates = check_ctstates(_aslist(params.get("ctstate")), _opt(prefix, "ctstate"))
    state_match = get("state_match", "conntrack")
    if state_match not in STATE_MATCHES:
        raise SpecError(_opt(prefix, "state_match"), "must be conntrack or state, got %r" % (state_match,))
    if state_match == "state" and any(s in ("SNAT", "DNAT") for s in ctstates):
        raise SpecError(_opt(prefix, "ctstate"), "SNAT and DNAT need state_match: conntrack")

    # Target.
    jump = params.get("jump")
    if jump is None or str(jump).strip() == "":
        raise SpecError(_opt(prefix, "jump"), "required for a present rule: ACCEPT, DROP, REJECT, LOG, RETURN "
                                              "or a user chain")
    jump = str(jump).strip()
    if jump.upper() in BUILTIN_JUMPS:
        jump = jump.upper()
    else:
        jump = check_chain_name(jump, _opt(prefix, "jump"), user_chain=True)
        if jump == chain:
            raise SpecError(_opt(prefix, "jump"), "a rule in %s cannot jump to its own chain" % chain)
    log_prefix = check_log_prefix(params.get("log_prefix"), _opt(prefix, "log_prefix"))
    log_level = check_log_level(params.get("log_level"), _opt(prefix, "log_level"))
    if (log_prefix is not None or log_level is not None) and jump != "LOG":
        raise SpecError(_opt(prefix, "log_prefix" if log_prefix is not None else "log_level"),
                        "only applies with jump: LOG (jump is %s)" % jump)
    reject_with = params.get("reject_with")
    if reject_with is not None:
        if jump != "REJECT":
            raise SpecError(_opt(prefix, "reject_with"), "only applies with jump: REJECT (jump is %s)" % jump)
        reject_with = str(reject_with).strip()
        for fam in fams:
            _reject_for(reject_with, fam, _opt(prefix, "reject_with"))
        if _reject_for(reject_with, fams[0], _opt(prefix, "reject_with")) == "tcp-reset" and protocol != "tcp":
            raise SpecError(_opt(prefix, "reject_with"), "tcp-reset needs protocol: tcp")
    comment = check_comment(params.get("comment"), _opt(prefix, "comment"), reserve=tag_reserve(KIND, name))
    if comment is not None and comment.strip() == "":
        comment = None

    rule = RuleOptions(
        name=name, table=table, chain=chain, priority=priority, state=state, families=fams,
        protocol=protocol,
        sources=tuple((f, tuple(src[f])) for f in FAMILIES),
        destinations=tuple((f, tuple(dst[f])) for f in FAMILIES),
        in_interface=in_iface, out_interface=out_iface, dports=dports, sports=sports,
        ctstates=ctstates, state_match=state_match, icmp_type=icmp, jump=jump,
        log_prefix=log_prefix, log_level=log_level, reject_with=reject_with, comment=comment,
    )
    if not any(render_specs(rule, f) for f in fams):
        raise SpecError(_opt(prefix, "destination"),
                        "source and destination have no address family in common, so the rule fits neither "
                        "iptables nor ip6tables")
    return rule


def render_specs(rule, family):
    """The rule's specs for one family, in iptables-save form; () when it has none there."""
    if rule.state != "present" or family not in rule.families:
        return ()
    srcs = rule.addresses("source", family)
    dsts = rule.addresses("destination", family)
    if (rule.has_addresses("source") and not srcs) or (rule.has_addresses("destination") and not dsts):
        return ()
    matches = []
    if rule.dports or rule.sports:
        matches += match_ports(rule.protocol, rule.dports, rule.sports)
    if rule.icmp_type is not None:
        matches += match_icmp(icmp_type(rule.icmp_type, family), family)
    matches += match_ctstate(rule.ctstates, rule.state_match)
    if rule.jump == "LOG":
        target = target_log(rule.log_prefix, rule.log_level)
    elif rule.jump == "REJECT":
        target = target_reject(family, _reject_for(rule.reject_with, family, "reject_with")
                               if rule.reject_with else None)
    else:
        target = ["-j", rule.jump]
    specs = []
    for s in srcs or (None,):
        for d in dsts or (None,):
            specs.append(build_spec(family, source=s, destination=d, in_interface=rule.in_interface,
                                    out_interface=rule.out_interface, protocol=rule.protocol,
                                    matches=matches, tag=rule.tag, comment=rule.comment, target=target))
    return tuple(specs)


def validate_rules(params, module_families=FAMILIES):
    """The module's params (single-rule or ``rules`` form) -> tuple of RuleOptions.

    Duplicate names in ``rules`` are an error: the name is the rule's identity.
    """
    items = params.get("rules")
    if items is None:
        return (validate_rule(params, module_families=module_families),)
    if params.get("name") is not None:
        raise SpecError("name", "give either name (one rule) or rules (a list), not both")
    for key in RULE_OPTIONS:
        if key != "name" and _present(params.get(key)):
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
            raise SpecError(prefix + unknown[0], "unknown rule option; valid: %s"
                            % ", ".join(sorted(INHERITED + RULE_OPTIONS)))
        rule = validate_rule(item, defaults, prefix, module_families)
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
            groups.append(TaggedGroup(rule.table, rule.chain, rule.tag, specs))
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
