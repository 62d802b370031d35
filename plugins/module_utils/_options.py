# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The option table: every rule option once.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
Pure code: no Ansible imports, no processes.

Each ``Option`` knows, for one rule option or match:

- its argument spec and documentation (``argspec()``, ``doc_options()`` generate the
  modules' argument specs, the ``rules`` suboptions and the rule_options doc fragment);
- its validation and normalization (``check``), the one meaning it has in every module;
- how it renders per family, in iptables-save's canonical order (``render``): the head
  options (-s -d -i -o -p) first, then the matches in table order, then the owner tag
  comment, then the target and its options;
- how it is read back from a parsed save rule (``reads``, ``read``);
- what the lockout guard can conclude from it for a packet (``guard``): True (matches),
  False (never matches) or None (unknown).

A new option is one entry here plus its tests and docs: the modules, the planner and the
guard ask the table and need no change.
"""

from __future__ import annotations

import ipaddress
import re

from ._errors import SpecError
from ._model import TABLES, quote
from ._rulespec import (
    ANY_ADDRESS, BUILTIN_CHAIN_NAMES, CT_STATES, FAMILIES, ICMP_PROTOCOLS, IP_VERSIONS, PORT_PROTOCOLS, Protocols,
    as_int, check_bool, check_chain_name, check_comment, check_ctstates, check_int, check_interface,
    check_log_level, check_log_prefix, check_name, check_priority, check_reject_with, check_table, check_text,
    families, icmp_type, parse_address, parse_ports, protocol_for, reject_for, split_addresses, tag_reserve)

STATE_MATCHES = ("conntrack", "state")
STATES = ("present", "absent")
BUILTIN_JUMPS = ("ACCEPT", "DROP", "REJECT", "LOG", "RETURN")
# Tables a target is allowed in (the kernel's and iptables' checks), when not all of them.
JUMP_TABLES = {"REJECT": ("filter",), "DROP": ("filter", "mangle", "raw", "security")}
# Targets after which the packet goes on to the next rule (the guard walks past them).
CONTINUING_TARGETS = ("LOG", "NFLOG", "MARK", "CONNMARK", "AUDIT", "TRACE", "CT", "NOTRACK", "TCPMSS", "TEE",
                      "CLASSIFY", "DSCP", "TOS", "TTL", "HL", "SET", "CHECKSUM")
# Chains where the kernel has no input / output interface.
_NO_IN = ("OUTPUT", "POSTROUTING")
_NO_OUT = ("INPUT", "PREROUTING")
_PORT_MODULES = ("tcp", "udp", "sctp", "dccp", "udplite")
_DEFAULT_BURST = 5
# libxt_limit: XT_LIMIT_SCALE, units matched by prefix, printed with these names.
_LIMIT_SCALE = 10000
_RATE_RE = re.compile(r"\s*([0-9]+)\s*(?:/\s*([A-Za-z]*))?\s*\Z")
_RATE_UNITS = (("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400))
_RATE_PRINT = (("day", 86400), ("hour", 3600), ("min", 60), ("sec", 1))  # seconds per printed unit


class Ctx(object):
    """What checking one rule needs besides its values: where it goes and how errors name options."""

    def __init__(self, prefix="", fams=FAMILIES, protocols=None):
        self.prefix = prefix
        self.families = fams
        self.protocols = protocols or Protocols()

    def opt(self, key):
        return self.prefix + key


class Option(object):
    """One entry of the table (see the module docstring)."""

    def __init__(self, key, doc, type="str", elements=None, choices=None, default=None, slot="match",
                 check=None, render=None, reads=(), read=None, guard=None, item_doc=None, top=True,
                 per_family=False):
        self.key = key
        self.doc = doc
        self.type = type
        self.elements = elements
        self.choices = choices
        self.default = default
        self.slot = slot          # rule | head | match | modifier | target
        self.check = check        # (value, values, ctx) -> canonical value
        self.render = render      # (value, family, values) -> [word, ...]
        self.reads = reads        # ((module, flag), ...) it claims in a parsed save rule
        self.read = read          # (RuleParts) -> value as iptables-save shows it, or None
        self.guard = guard or {}  # {(module, flag): (Arg, packet) -> True/False/None}
        self.item_doc = item_doc  # the description under ``rules`` when it differs
        self.top = top            # also a top-level option of the single-rule form
        self.per_family = per_family  # value ((family, value or None), ...): no line where a family has none

    def argspec(self, defaults=True):
        spec = dict(type=self.type)
        if self.elements:
            spec["elements"] = self.elements
        if self.choices:
            spec["choices"] = list(self.choices)
        if defaults and self.default is not None:
            spec["default"] = self.default
        return spec


# --- small helpers the entries share ------------------------------------------------

def _aslist(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _present(value):
    return value is not None and value != [] and value != () and value != ""


def _head_value(parts, flag):
    arg = parts.head.get(flag)
    if arg is None:
        return None
    return ("!" if arg.negated else "") + (arg.value or "")


def _in_net(addr, text):
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    if addr is None:  # an address the guard does not know (neighbour discovery)
        return True if net.prefixlen == 0 else None
    return addr in net


def _ports_match(value, port):
    for part in (value or "").split(","):
        lo, _sep, hi = part.partition(":")
        try:
            if int(lo or 0) <= port <= int(hi or lo or 65535):
                return True
        except ValueError:
            return None
    return False


def _not(a):
    return None if a is None else not a


def _either(a, b):
    """Three-valued or: True, False or None (unknown)."""
    return _not(both(_not(a), _not(b)))


def both(a, b):
    """Three-valued and: False wins, then unknown (None), else True."""
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def _interface_guard(arg, packet, which):
    """``-i``/``-o``: loopback traffic is on lo and nothing else; other names are unknown."""
    name = arg.value or ""
    loop = packet.loopback
    if which == "-o" and packet.direction == "in":
        return None  # an incoming packet has no output interface where the guard looks
    if which == "-i" and packet.direction == "out":
        return None
    if name == "lo":
        return loop
    return False if loop else None


# --- entries ------------------------------------------------------------------------

def _check_name(value, values, ctx):
    return check_name(value, ctx.opt("name"))


def _check_table(value, values, ctx):
    return check_table(value or "filter", ctx.opt("table"))


def _check_chain(value, values, ctx):
    return check_chain_name("INPUT" if value is None else value, ctx.opt("chain"))


def _check_priority(value, values, ctx):
    return check_priority(500 if value is None else value, ctx.opt("priority"))


def _check_state(value, values, ctx):
    state = value or "present"
    if state not in STATES:
        raise SpecError(ctx.opt("state"), "must be present or absent, got %r" % (state,))
    return state


def _check_ip_version(value, values, ctx):
    try:
        fams = families(value or "both")
    except SpecError as exc:
        raise SpecError(ctx.opt("ip_version"), str(exc).split(": ", 1)[1])
    outside = [f for f in fams if f not in ctx.families]
    if outside:
        raise SpecError(ctx.opt("ip_version"), "%s is outside the task's ip_version (%s)"
                        % (value, ", ".join(ctx.families)))
    return fams


def _check_protocol(value, values, ctx):
    if value is None:
        return None
    negated, text = _negation(value)
    proto = ctx.protocols.canonical(text, ctx.opt("protocol"))
    if negated and proto is None:
        raise SpecError(ctx.opt("protocol"), "!all would match no packet")
    return ("!" if negated else "") + proto if proto else None


def _render_protocol(value, family, values):
    negated, text = _negation(value)
    proto = protocol_for(text, family)
    return (["!"] if negated else []) + ["-p", proto] if proto else []


_GUARD_PROTOCOLS = {"tcp": ("tcp", "6"), "ipv6-icmp": ("ipv6-icmp", "icmpv6", "58")}


def _guard_protocol(arg, packet):
    return (arg.value or "").lower() in _GUARD_PROTOCOLS[packet.protocol] + ("all", "0")


def _check_addresses(which):
    def check(value, values, ctx):
        entries = _aslist(value)
        negated = [isinstance(v, str) and v.strip().startswith("!") for v in entries]
        split = split_addresses([_negation(v)[1] for v in entries], ctx.opt(which), values["ip_version"])
        if any(negated):
            for fam in FAMILIES:
                if len(split[fam]) > 1 and fam in [parse_address(_negation(v)[1], ctx.opt(which))[0]
                                                   for v, n in zip(entries, negated) if n]:
                    raise SpecError(ctx.opt(which), "a negated address ('!...') must be the only %s entry: "
                                                    "iptables matches one negated address per rule"
                                    % ("IPv6" if fam == "ipv6" else "IPv4"))
            neg = set(parse_address(_negation(v)[1], ctx.opt(which))[1] for v, n in zip(entries, negated) if n)
            split = dict((f, ["!" + a if a in neg else a for a in split[f]]) for f in FAMILIES)
        return tuple((f, tuple(split[f])) for f in FAMILIES)
    return check


def _render_address(flag):
    def render(value, family, values):
        if value and value.startswith("!"):
            return ["!", flag, value[1:]]
        return [flag, value] if value and value not in ANY_ADDRESS else []
    return render


def _guard_address(attr):
    def guard(arg, packet):
        return _in_net(getattr(packet, attr), arg.value)
    return guard


def _check_interface(which, no_chains):
    def check(value, values, ctx):
        iface = check_interface(value, ctx.opt(which))
        if iface and values["chain"] in no_chains:
            raise SpecError(ctx.opt(which), "packets in chain %s have no %s interface"
                            % (values["chain"], "input" if which == "in_interface" else "output"))
        return iface
    return check


def _render_interface(flag):
    def render(value, family, values):
        if not value:
            return []
        return ["!", flag, value[1:]] if value.startswith("!") else [flag, value]
    return render


def _check_ports(which):
    def check(value, values, ctx):
        if not _present(value):
            return ()
        entries = _aslist(value)
        negated, first = _negation(entries[0])
        if any(isinstance(v, str) and v.strip().startswith("!") for v in entries[1:]):
            raise SpecError(ctx.opt(which), "'!' negates the whole list and goes before its first entry only")
        ports = parse_ports([first] + entries[1:], ctx.opt(which))
        if negated:
            ports = ("!" + ports[0],) + ports[1:]
        if values.get("protocol") not in PORT_PROTOCOLS:
            raise SpecError(ctx.opt(which), "ports need protocol tcp, udp, udplite, sctp or dccp (protocol is %s)"
                            % (values.get("protocol") or "not set"))
        return ports
    return check


def match_ports(protocol, dports=(), sports=(), tcp_flags=()):
    """-m tcp --sport/--dport for single ports, -m multiport --sports/--dports for lists.

    udplite has no match of its own (``-m udplite`` does not exist): its ports always go
    through multiport, which supports it. ``tcp_flags`` (words like ``--tcp-flags X Y``) join
    the ``-m tcp`` match when there is one, as iptables-save prints them.
    """
    words = []
    if (len(sports) <= 1 and len(dports) <= 1 and (sports or dports) and protocol != "udplite"):
        words += ["-m", protocol]
        if sports:
            words += _negated_flag("--sport", sports[0])
        if dports:
            words += _negated_flag("--dport", dports[0])
        return words + (list(tcp_flags) if protocol == "tcp" else [])
    if sports:
        words += ["-m", "multiport"] + _negated_flag("--sports", ",".join(sports))
    if dports:
        words += ["-m", "multiport"] + _negated_flag("--dports", ",".join(dports))
    return words


def _ports_take_tcp_flags(values):
    """Do the port options render a ``-m tcp`` match the TCP flags join?"""
    d, s = values.get("dports") or (), values.get("sports") or ()
    return values.get("protocol") == "tcp" and (d or s) and len(d) <= 1 and len(s) <= 1


def _render_dports(value, family, values):
    return match_ports(values.get("protocol"), value, values.get("sports") or (), _tcp_flag_words(values))


def _render_sports(value, family, values):
    return [] if values.get("dports") else match_ports(values.get("protocol"), (), value, _tcp_flag_words(values))


def _read_ports(flags):
    def read(parts):
        for m in parts.matches:
            for flag in flags:
                arg = m.get(flag)
                if arg is not None:
                    return tuple(arg.value.split(","))
        return None
    return read


def _guard_port(attr):
    def guard(arg, packet):
        return packet.protocol == "tcp" and _ports_match(arg.value, getattr(packet, attr))
    return guard


def _guard_any_port(arg, packet):
    if packet.protocol != "tcp":
        return False
    return _either(_ports_match(arg.value, packet.dport), _ports_match(arg.value, packet.sport))


def _guard_icmp6_type(arg, packet):
    if packet.icmp_type is None:
        return False
    text = arg.value or ""
    if not text.replace("/", "").isdigit():
        return None  # a name: iptables-save prints numbers, someone wrote this by hand
    kind, _sep, code = text.partition("/")
    return int(kind) == packet.icmp_type and (not code or int(code) == 0)


def _check_icmp_type(value, values, ctx):
    if value is None or str(value).strip() == "":
        return None
    if values.get("protocol") not in ICMP_PROTOCOLS:
        raise SpecError(ctx.opt("icmp_type"), "needs protocol icmp (protocol is %s)"
                        % (values.get("protocol") or "not set"))
    for fam in values["ip_version"]:  # every family must know the type
        icmp_type(value, fam, ctx.opt("icmp_type"))
    return str(value).strip()


def _render_icmp_type(value, family, values):
    if family == "ipv4":
        return ["-m", "icmp", "--icmp-type", icmp_type(value, family)]
    return ["-m", "icmp6", "--icmpv6-type", icmp_type(value, family)]


def _check_ctstate(value, values, ctx):
    return check_ctstates(_aslist(value), ctx.opt("ctstate"))


def _check_state_match(value, values, ctx):
    match = value or "conntrack"
    if match not in STATE_MATCHES:
        raise SpecError(ctx.opt("state_match"), "must be conntrack or state, got %r" % (match,))
    if match == "state" and any(s in ("SNAT", "DNAT") for s in values.get("ctstate") or ()):
        raise SpecError(ctx.opt("ctstate"), "SNAT and DNAT need state_match: conntrack")
    return match


def match_ctstate(states, match="conntrack"):
    if not states:
        return []
    if match == "state":
        return ["-m", "state", "--state", ",".join(states)]
    return ["-m", "conntrack", "--ctstate", ",".join(states)]


def _render_ctstate(value, family, values):
    return match_ctstate(value, values.get("state_match") or "conntrack")


def _read_ctstate(parts):
    for module, flag in (("conntrack", "--ctstate"), ("state", "--state")):
        m = parts.match(module)
        if m is not None and m.get(flag) is not None:
            return tuple(m.get(flag).value.split(","))
    return None


def _guard_ctstate(arg, packet):
    return packet.state in (arg.value or "").split(",")


def rate_period(value, option="limit", scale=_LIMIT_SCALE):
    """A rate like '3/minute' -> the kernel's average period between packets in 1/``scale`` s
    (xt_rateinfo.avg for limit, XT_LIMIT_SCALE; hashlimit counts in 1/1000000 s), as libxt computes it."""
    m = _RATE_RE.match(str(value)) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if not m:
        raise SpecError(option, "%r is not a rate like 3/minute (per second, minute, hour or day)" % (value,))
    count = int(m.group(1))
    unit = (m.group(2) or "").lower()
    mult = None
    for word, seconds in _RATE_UNITS:
        if word.startswith(unit):
            mult = seconds * scale
            break
    if mult is None:
        raise SpecError(option, "%r: the unit must be second, minute, hour or day" % (value,))
    if count < 1:
        raise SpecError(option, "%r: the rate must be at least 1" % (value,))
    period = mult // count
    if period == 0:
        raise SpecError(option, "%r is faster than the kernel's limit of %d/second" % (value, scale))
    return period


def canonical_rate(value, option="limit", scale=_LIMIT_SCALE):
    """'3/minute' -> '3/min' exactly as iptables-save prints the rate of a limit (or, with
    ``scale`` _HASH_SCALE, hashlimit) match."""
    period = rate_period(value, option, scale)
    units = tuple((name, seconds * scale) for name, seconds in _RATE_PRINT)
    i = 1
    while i < len(units):
        unit_mult = units[i][1]
        if period > unit_mult or unit_mult // period < unit_mult % period:
            break
        i += 1
    name, unit_mult = units[i - 1]
    return "%d/%s" % (unit_mult // period, name)


def _check_limit(value, values, ctx):
    return None if value is None else canonical_rate(value, ctx.opt("limit"))


# xt_limit counts credits in a u32: HZ * CREDITS_PER_JIFFY is 32000 on kernels with HZ 250 or
# 1000. A burst whose credits do not fit is refused by iptables-legacy ("Numerical result out
# of range") and accepted by iptables-nft: refused here for both.
_CREDITS_PER_SECOND = 32000
_U32 = 1 << 32


def _user2credits(user):
    user %= _U32
    if user > (_U32 - 1) // _CREDITS_PER_SECOND:
        return ((user // _LIMIT_SCALE) * _CREDITS_PER_SECOND) % _U32
    return (user * _CREDITS_PER_SECOND) // _LIMIT_SCALE


def burst_fits(period, burst):
    """Does xt_limit accept ``burst`` with this average period (limit_mt_check)?"""
    total = period * burst
    return total < _U32 and _user2credits(total) >= _user2credits(period)


def _check_limit_burst(value, values, ctx):
    if value is None:
        return None
    if values.get("limit") is None:
        raise SpecError(ctx.opt("limit_burst"), "only applies with limit")
    burst = check_int(value, ctx.opt("limit_burst"), 1, 10000, "packets let through at once")
    if not burst_fits(rate_period(values["limit"]), burst):
        raise SpecError(ctx.opt("limit_burst"), "%d packets at %s is more than the kernel's limit match can count; "
                                                "lower limit_burst or raise limit" % (burst, values["limit"]))
    return burst


def _render_limit(value, family, values):
    words = ["-m", "limit", "--limit", value]
    burst = values.get("limit_burst")
    if burst is not None and burst != _DEFAULT_BURST:
        words += ["--limit-burst", str(burst)]
    return words


def _read_limit(parts):
    m = parts.match("limit")
    return m.get("--limit").value if m is not None and m.get("--limit") is not None else None


def _read_limit_burst(parts):
    m = parts.match("limit")
    if m is None:
        return None
    arg = m.get("--limit-burst")
    return int(arg.value) if arg is not None else _DEFAULT_BURST


def _check_comment(value, values, ctx):
    comment = check_comment(value, ctx.opt("comment"), reserve=tag_reserve("rule", values["name"]))
    return None if comment is None or comment.strip() == "" else comment


def _read_comment(parts):
    m = parts.match("comment")
    return m.get("--comment").value if m is not None and m.get("--comment") is not None else None


def _check_jump(value, values, ctx):
    if values["state"] == "absent":
        return None
    given = value is not None and not (isinstance(value, str) and value.strip() == "")
    raw_target = (values.get("raw") or ((), ()))[1]
    if given and values.get("goto"):
        raise SpecError(ctx.opt("goto"), "give either jump or goto, not both")
    if given and raw_target:
        raise SpecError(ctx.opt("raw"), "ends in a target (%s) and jump is given too; keep one" % raw_target[1])
    if not given and (values.get("goto") or raw_target):
        return None
    if not given or not isinstance(value, str):
        raise SpecError(ctx.opt("jump"), "required for a present rule: ACCEPT, DROP, REJECT, LOG, RETURN, a NAT or "
                                         "mangle target (%s) or a user chain" % ", ".join(NEW_TARGETS))
    jump = value.strip()
    if jump.upper() in NEW_TARGETS:
        jump = jump.upper()
        _check_place(jump, values, ctx)
        return jump
    if jump.upper() in BUILTIN_JUMPS:
        jump = jump.upper()
        allowed = JUMP_TABLES.get(jump)
        if allowed and values["table"] not in allowed:
            raise SpecError(ctx.opt("jump"), "%s is not allowed in table %s; it works in %s"
                            % (jump, values["table"], ", ".join(allowed)))
        if jump == "REJECT" and values["chain"] in ("PREROUTING", "POSTROUTING"):
            raise SpecError(ctx.opt("jump"), "REJECT works only in INPUT, FORWARD, OUTPUT and user chains")
        return jump
    jump = check_chain_name(jump, ctx.opt("jump"), user_chain=True)
    if jump == values["chain"]:
        raise SpecError(ctx.opt("jump"), "a rule in %s cannot jump to its own chain" % values["chain"])
    return jump


def _render_jump(value, family, values):
    if value == "REJECT" and values.get("reject_with") is None:
        return ["-j", "REJECT", "--reject-with", reject_for(None, family)]  # printed even when defaulted
    return ["-j", value] + _render_target_words(value, family, values)


def _read_jump(parts):
    return parts.target


def _needs_jump(key, jump):
    def check(value, values, ctx):
        if value is not None and values.get("jump") != jump:
            raise SpecError(ctx.opt(key), "only applies with jump: %s (jump is %s)" % (jump, values.get("jump")))
        return value
    return check


def _check_log_prefix(value, values, ctx):
    prefix = check_log_prefix(value, ctx.opt("log_prefix"))
    return _needs_jump("log_prefix", "LOG")(prefix or None, values, ctx)


def _check_log_level(value, values, ctx):
    return _needs_jump("log_level", "LOG")(check_log_level(value, ctx.opt("log_level")), values, ctx)


def _render_log_prefix(value, family, values):
    return ["--log-prefix", quote(value)]


def _render_log_level(value, family, values):
    return ["--log-level", str(value)] if value != 4 else []


def _read_target_option(flag, convert=str):
    def read(parts):
        arg = parts.target_option(flag)
        return convert(arg.value) if arg is not None else None
    return read


def _check_reject_with(value, values, ctx):
    reject_with = check_reject_with(value, values["ip_version"], ctx.opt("reject_with"))
    _needs_jump("reject_with", "REJECT")(reject_with, values, ctx)
    if reject_with is not None and reject_for(reject_with, values["ip_version"][0]) == "tcp-reset" \
            and values.get("protocol") != "tcp":
        raise SpecError(ctx.opt("reject_with"), "tcp-reset needs protocol: tcp")
    return reject_with


def _render_reject_with(value, family, values):
    return ["--reject-with", reject_for(value, family)]


# --- negation and the family of a value ---------------------------------------------------

def _negation(value):
    """'!x' -> (True, 'x'); anything else -> (False, value) (text stripped)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("!"):
            return True, text[1:].strip()
        return False, text
    return False, value


def _negated_flag(flag, value):
    negated, text = _negation(value)
    return (["!"] if negated else []) + [flag, text]


def _check_bool_opt(key):
    def check(value, values, ctx):
        return None if value is None else check_bool(value, ctx.opt(key))
    return check


def _per_family(value, values, option, parse, what):
    """A value given per family (one entry each, str or list) -> ((family, canonical or None), ...).

    ``parse(text, option)`` -> (family, canonical). A family outside the rule's ip_version is an
    error; a family without an entry gets no line of the rule (as with source and destination).
    """
    out = {}
    for entry in _aslist(value):
        fam, canonical = parse(entry, option)
        if fam not in values["ip_version"]:
            raise SpecError(option, "%r is an %s %s but ip_version allows only %s"
                            % (entry, "IPv6" if fam == "ipv6" else "IPv4", what, ", ".join(values["ip_version"])))
        if fam in out and out[fam] != canonical:
            raise SpecError(option, "one %s per address family: %r and %r are both %s"
                            % (what, out[fam], canonical, "IPv6" if fam == "ipv6" else "IPv4"))
        out[fam] = canonical
    return tuple((f, out.get(f)) for f in FAMILIES)


def _parse_host(text, option):
    """An address (no prefix) -> (family, text as iptables prints it)."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise SpecError(option, "%r is not an IPv4 or IPv6 address" % (text,))
    return ("ipv6" if addr.version == 6 else "ipv4", str(addr))


def _parse_net(negatable):
    """An address or network -> (family, '[!]text' as conntrack/NETMAP print it: no /32 or /128)."""
    def parse(value, option):
        negated, text = _negation(value) if negatable else (False, value)
        if isinstance(text, bool) or not isinstance(text, str):
            raise SpecError(option, "%r is not an address or network" % (value,))
        text = check_text(text, option).strip()
        if "/" not in text:
            fam, host = _parse_host(text, option)
            return fam, ("!" if negated else "") + host
        fam, net = parse_address(text, option)
        full = 32 if fam == "ipv4" else 128
        if net.endswith("/%d" % full):
            net = net.rsplit("/", 1)[0]
        return fam, ("!" if negated else "") + net
    return parse


def _parse_range(value, option):
    """'A-B' (one family, A <= B; '!' negates) -> (family, '[!]A-B')."""
    negated, text = _negation(value)
    if not isinstance(text, str) or text.count("-") != 1:
        raise SpecError(option, "%r is not a range like 198.51.100.1-198.51.100.9" % (value,))
    lo, hi = (part.strip() for part in text.split("-"))
    fam_lo, lo = _parse_host(lo, option)
    fam_hi, hi = _parse_host(hi, option)
    if fam_lo != fam_hi:
        raise SpecError(option, "%r mixes IPv4 and IPv6; a range is of one family" % (value,))
    if ipaddress.ip_address(lo) > ipaddress.ip_address(hi):
        raise SpecError(option, "%r is reversed; write it low-high" % (value,))
    return fam_lo, "%s%s-%s" % ("!" if negated else "", lo, hi)


_NAT_RE = re.compile(r"\A(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<addr>[^:\[\]-]+))"
                     r"(?:-(?P<hi>[0-9A-Fa-f:.]+))?(?::(?P<port>[0-9]+)(?:-(?P<port_hi>[0-9]+))?)?\Z")


def _parse_nat_to(value, option):
    """'addr', 'addr:port', 'addr-addr:lo-hi', '[v6]:port' -> (family, as iptables-save prints it)."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise SpecError(option, "%r is not an address (with an optional :port), e.g. 198.51.100.7:80" % (value,))
    text = check_text(value, option).strip()
    # an IPv6 address without brackets has no port: the whole text (or a range of two) is the address
    if text.count(":") >= 2 and not text.startswith("["):
        parts = text.split("-")
        fams = [_parse_host(p.strip(), option) for p in parts]
        if len(parts) > 2 or any(f[0] != "ipv6" for f in fams):
            raise SpecError(option, "%r is not an IPv6 address or range; with a port write [2001:db8::7]:80" % (value,))
        return "ipv6", "-".join(f[1] for f in fams)
    m = _NAT_RE.match(text)
    if not m:
        raise SpecError(option, "%r is not an address, address:port or address:low-high, e.g. 198.51.100.7:80 or "
                                "[2001:db8::7]:80" % (value,))
    fam, lo = _parse_host(m.group("v6") or m.group("addr"), option)
    if m.group("v6") and fam != "ipv6":
        raise SpecError(option, "%r: brackets are for IPv6 addresses" % (value,))
    out = lo
    if m.group("hi"):
        fam_hi, hi = _parse_host(m.group("hi"), option)
        if fam_hi != fam or ipaddress.ip_address(lo) > ipaddress.ip_address(hi):
            raise SpecError(option, "%r: the address range must be low-high in one family" % (value,))
        out = "%s-%s" % (lo, hi)
    if m.group("port"):
        out = ("[%s]" % out if fam == "ipv6" else out) + ":" + _port_range(m.group("port"), m.group("port_hi"), value,
                                                                           option)
    return fam, out


def _port_range(lo, hi, value, option):
    lo = int(lo)
    hi = int(hi) if hi is not None else None
    for p in (lo, hi):
        if p is not None and not 1 <= p <= 65535:
            raise SpecError(option, "port %d in %r is outside 1-65535" % (p, value))
    if hi is not None and hi < lo:
        raise SpecError(option, "port range in %r is reversed; write it low-high" % (value,))
    return "%d-%d" % (lo, hi) if hi is not None and hi != lo else str(lo)


def _check_per_family(key, parse, what, jumps=None):
    def check(value, values, ctx):
        if not _present(value):
            return None
        if jumps and values.get("jump") not in jumps:
            raise SpecError(ctx.opt(key), "only applies with jump: %s (jump is %s)"
                            % (" or ".join(jumps), values.get("jump")))
        out = _per_family(value, values, ctx.opt(key), parse, what)
        with_port = any(v and ("]:" in v or (":" in v and "." in v)) for _f, v in out)
        if with_port and values.get("protocol") not in PORT_PROTOCOLS:
            raise SpecError(ctx.opt(key), "a port needs protocol tcp, udp, udplite, sctp or dccp (protocol is %s)"
                            % (values.get("protocol") or "not set"))
        return out
    return check


def _render_flagged(module, flag):
    """Render ``-m module [!] flag value`` (value may carry '!')."""
    def render(value, family, values):
        return (["-m", module] if module else []) + _negated_flag(flag, value)
    return render


def _check_fragment(value, values, ctx):
    if value is None:
        return None
    frag = check_bool(value, ctx.opt("fragment"))
    if "ipv6" in values["ip_version"]:
        raise SpecError(ctx.opt("fragment"), "is IPv4 only (ip6tables has no -f); set ip_version: ipv4")
    return frag


def _render_fragment(value, family, values):
    return ["-f"] if value else ["!", "-f"]


# TCP flags in the order iptables-save prints them (libxt_tcp).
TCP_FLAGS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG")
_SYN = ("--tcp-flags", "FIN,SYN,RST,ACK", "SYN")
SYN_CHOICES = ("match", "negate", "ignore")


def _needs_tcp(key, values, ctx):
    if values.get("protocol") != "tcp":
        raise SpecError(ctx.opt(key), "needs protocol: tcp (protocol is %s)" % (values.get("protocol") or "not set"))


def _check_syn(value, values, ctx):
    if value is None or value == "ignore":
        return None
    if value not in SYN_CHOICES:
        raise SpecError(ctx.opt("syn"), "must be match, negate or ignore, got %r" % (value,))
    _needs_tcp("syn", values, ctx)
    return value


def _flag_list(value, option):
    items = _aslist(value)
    if len(items) == 1 and isinstance(items[0], str) and "," in items[0]:
        items = items[0].split(",")
    names = set()
    for item in items:
        name = str(item).strip().upper() if isinstance(item, str) else None
        if name == "ALL":
            names.update(TCP_FLAGS)
        elif name == "NONE":
            continue
        elif name in TCP_FLAGS:
            names.add(name)
        else:
            raise SpecError(option, "%r is not a TCP flag; valid: %s, ALL, NONE" % (item, ", ".join(TCP_FLAGS)))
    return ",".join(f for f in TCP_FLAGS if f in names) or "NONE"


def _check_tcp_flags(value, values, ctx):
    if not _present(value):
        return None
    option = ctx.opt("tcp_flags")
    if not isinstance(value, dict) or set(value) - {"flags", "flags_set"} or "flags" not in value:
        raise SpecError(option, "must be a dictionary {flags: [SYN, ACK, ...], flags_set: [SYN]}")
    if values.get("syn") is not None:
        raise SpecError(option, "give either syn or tcp_flags, not both")
    _needs_tcp("tcp_flags", values, ctx)
    mask = _flag_list(value["flags"], option + ".flags")
    comp = _flag_list(value.get("flags_set") or [], option + ".flags_set")
    if comp != "NONE" and not set(comp.split(",")) <= set(mask.split(",")):
        raise SpecError(option + ".flags_set", "%s is not within flags %s: a flag outside flags is never looked at"
                        % (comp, mask))
    if mask == "NONE":
        raise SpecError(option + ".flags", "must name at least one flag")
    return (mask, comp)


def _tcp_flag_words(values):
    if values.get("syn") is not None:
        return (["!"] if values["syn"] == "negate" else []) + list(_SYN)
    if values.get("tcp_flags"):
        return ["--tcp-flags", values["tcp_flags"][0], values["tcp_flags"][1]]
    return []


def _render_syn(value, family, values):
    return [] if _ports_take_tcp_flags(values) else ["-m", "tcp"] + _tcp_flag_words(values)


def _render_tcp_flags(value, family, values):
    return _render_syn(value, family, values) if values.get("syn") is None else []


def _guard_tcp_flags(arg, packet):
    if packet.protocol != "tcp" or len(arg.args) != 2:
        return False if packet.protocol != "tcp" else None
    mask = set(arg.args[0].split(",")) - {"NONE"}
    comp = set(arg.args[1].split(",")) - {"NONE"}
    have = {"SYN"} if packet.syn else {"ACK"}
    if not packet.syn and "PSH" in mask:
        return None  # data segments may or may not carry PSH
    return have & mask == comp


def _render_iprange(value, family, values):
    words = ["-m", "iprange"]
    for key, flag in (("src_range", "--src-range"), ("dst_range", "--dst-range")):
        v = values.get(key)
        if v:
            words += _negated_flag(flag, v)
    return words


SET_FLAGS = ("src", "dst", "src,dst", "dst,src", "src,src", "dst,dst")
_SET_NAME_RE = re.compile(r"[A-Za-z0-9_.:-]{1,31}\Z")


def _check_match_set(value, values, ctx):
    if not _present(value):
        return None
    negated, name = _negation(value)
    if not isinstance(name, str) or not _SET_NAME_RE.match(name):
        raise SpecError(ctx.opt("match_set"), "%r is not an ipset name (1-31 characters of A-Z a-z 0-9 _ . : -, "
                                              "'!' first to negate)" % (value,))
    if len(values["ip_version"]) != 1:
        raise SpecError(ctx.opt("match_set"), "an ipset holds one address family: set ip_version to ipv4 or ipv6")
    return ("!" if negated else "") + name


def _check_match_set_flags(value, values, ctx):
    if value is None:
        return "src" if values.get("match_set") else None
    if not values.get("match_set"):
        raise SpecError(ctx.opt("match_set_flags"), "only applies with match_set")
    text = str(value).replace(" ", "")
    if text not in SET_FLAGS:
        raise SpecError(ctx.opt("match_set_flags"), "must be one of %s, got %r" % (", ".join(SET_FLAGS), value))
    return text


def _render_match_set(value, family, values):
    return ["-m", "set"] + _negated_flag("--match-set", value) + [values.get("match_set_flags") or "src"]


_OWNER_RE = re.compile(r"\A[0-9]+(?:-[0-9]+)?\Z")
_OWNER_CHAINS = ("OUTPUT", "POSTROUTING")


def _check_owner(key, lookup):
    def check(value, values, ctx):
        if not _present(value) and value != 0:
            return None
        option = ctx.opt(key)
        if values["chain"] not in _OWNER_CHAINS and values["chain"] in BUILTIN_CHAIN_NAMES:
            raise SpecError(option, "the owner of a packet is known only for locally generated packets: chain "
                                    "OUTPUT or POSTROUTING (chain is %s)" % values["chain"])
        negated, text = _negation(value if not isinstance(value, int) or isinstance(value, bool) else str(value))
        if not isinstance(text, str) or not text:
            raise SpecError(option, "%r is not a user or group: a name, a number or a range like 1000-1999" % (value,))
        text = check_text(text, option)
        if _OWNER_RE.match(text):
            parts = [int(p) for p in text.split("-")]
            if len(parts) == 2 and parts[1] < parts[0]:
                raise SpecError(option, "range %r is reversed; write it low-high" % (text,))
            canonical = "-".join(str(p) for p in parts) if len(parts) == 2 and parts[0] != parts[1] else str(parts[0])
        else:
            number = lookup(text)
            if number is None:
                raise SpecError(option, "%r is not a %s on the target (names are looked up there); give a number"
                                % (text, "user" if key == "uid_owner" else "group"))
            canonical = str(number)
        return ("!" if negated else "") + canonical
    return check


def _lookup_user(name):
    import pwd
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


def _lookup_group(name):
    import grp
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def _render_owner(value, family, values):
    words = ["-m", "owner"]
    for key, flag in (("uid_owner", "--uid-owner"), ("gid_owner", "--gid-owner")):
        if values.get(key):
            words += _negated_flag(flag, values[key])
    return words


def _check_connlimit_mask(value, values, ctx):
    if value is None:
        return None
    if values.get("connlimit_above") is None:
        raise SpecError(ctx.opt("connlimit_mask"), "only applies with connlimit_above")
    mask = check_int(as_int(value), ctx.opt("connlimit_mask"), 0, 128, "prefix length grouping the sources")
    if mask > 32 and "ipv4" in values["ip_version"]:
        raise SpecError(ctx.opt("connlimit_mask"), "%d is longer than an IPv4 address (0-32); set ip_version: ipv6 "
                                                   "or a mask of at most 32" % mask)
    return mask


def _render_connlimit(value, family, values):
    mask = values.get("connlimit_mask")
    if mask is None:
        mask = 32 if family == "ipv4" else 128
    return ["-m", "connlimit", "--connlimit-above", str(value), "--connlimit-mask", str(mask), "--connlimit-saddr"]


# xt_hashlimit (revision 2 and later) counts in 1/1000000 s; printed as libxt_hashlimit does.
_HASH_SCALE = 1000000
HASHLIMIT_MODES = ("srcip", "srcport", "dstip", "dstport")
_HASHLIMIT_KEYS = ("name", "rate", "above", "burst", "mode", "srcmask", "dstmask")
_HASH_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,15}\Z")


def _check_hashlimit(value, values, ctx):
    if not _present(value):
        return None
    option = ctx.opt("hashlimit")
    if not isinstance(value, dict):
        raise SpecError(option, "must be a dictionary {name, rate, above, burst, mode, srcmask, dstmask}")
    unknown = sorted(set(k for k in value if value[k] is not None) - set(_HASHLIMIT_KEYS))
    if unknown:
        raise SpecError(option + "." + unknown[0], "unknown; valid: %s" % ", ".join(_HASHLIMIT_KEYS))
    name = value.get("name")
    if not isinstance(name, str) or not _HASH_NAME_RE.match(name):
        raise SpecError(option + ".name", "required: 1-15 characters of A-Z a-z 0-9 _ . - (the kernel's table name), "
                                          "got %r" % (name,))
    if value.get("rate") is None:
        raise SpecError(option + ".rate", "required: a rate like 10/second")
    rate = canonical_rate(value["rate"], option + ".rate", _HASH_SCALE)
    above = check_bool(value.get("above", False), option + ".above")
    burst = check_int(as_int(value.get("burst", 5)), option + ".burst", 1, 10000, "packets let through at once")
    modes = _aslist(value.get("mode"))
    if len(modes) == 1 and isinstance(modes[0], str) and "," in modes[0]:
        modes = modes[0].split(",")
    for mode in modes:
        if mode not in HASHLIMIT_MODES:
            raise SpecError(option + ".mode", "%r is not a mode; valid: %s" % (mode, ", ".join(HASHLIMIT_MODES)))
    masks = []
    for key in ("srcmask", "dstmask"):
        mask = value.get(key)
        if mask is not None:
            mask = check_int(as_int(mask), option + "." + key, 0, 128, "prefix length")
            if mask > 32 and "ipv4" in values["ip_version"]:
                raise SpecError(option + "." + key, "%d is longer than an IPv4 address; set ip_version: ipv6" % mask)
        masks.append(mask)
    return (name, rate, above, burst, ",".join(m for m in HASHLIMIT_MODES if m in modes), masks[0], masks[1])


def _render_hashlimit(value, family, values):
    name, rate, above, burst, mode, srcmask, dstmask = value
    full = 32 if family == "ipv4" else 128
    words = ["-m", "hashlimit", "--hashlimit-above" if above else "--hashlimit-upto", rate, "--hashlimit-burst",
             str(burst)]
    if mode:
        words += ["--hashlimit-mode", mode]
    words += ["--hashlimit-name", name]
    if srcmask is not None and srcmask != full:
        words += ["--hashlimit-srcmask", str(srcmask)]
    if dstmask is not None and dstmask != full:
        words += ["--hashlimit-dstmask", str(dstmask)]
    return words


RECENT_MODES = ("set", "rcheck", "update", "remove")
_RECENT_KEYS = ("name", "mode", "seconds", "hitcount", "rttl", "reap", "side")


def _check_recent(value, values, ctx):
    if not _present(value):
        return None
    option = ctx.opt("recent")
    if not isinstance(value, dict):
        raise SpecError(option, "must be a dictionary {name, mode, seconds, hitcount, rttl, reap, side}")
    unknown = sorted(set(k for k in value if value[k] is not None) - set(_RECENT_KEYS))
    if unknown:
        raise SpecError(option + "." + unknown[0], "unknown; valid: %s" % ", ".join(_RECENT_KEYS))
    name = value.get("name") or "DEFAULT"
    if not isinstance(name, str) or not _HASH_NAME_RE.match(name) and not re.match(r"[A-Za-z0-9_.-]{1,199}\Z", name):
        raise SpecError(option + ".name", "%r is not a list name (A-Z a-z 0-9 _ . -)" % (name,))
    mode = value.get("mode")
    if mode not in RECENT_MODES:
        raise SpecError(option + ".mode", "required: one of %s, got %r" % (", ".join(RECENT_MODES), mode))
    seconds = value.get("seconds")
    hitcount = value.get("hitcount")
    if seconds is not None:
        seconds = check_int(as_int(seconds), option + ".seconds", 1, 2 ** 31 - 1, "seconds")
    if hitcount is not None:
        hitcount = check_int(as_int(hitcount), option + ".hitcount", 1, 255, "hits")
    rttl = check_bool(value.get("rttl", False), option + ".rttl")
    reap = check_bool(value.get("reap", False), option + ".reap")
    if mode in ("set", "remove") and (seconds or hitcount or rttl or reap):
        raise SpecError(option + ".mode", "seconds, hitcount, rttl and reap apply to rcheck and update, not %s" % mode)
    if reap and seconds is None:
        raise SpecError(option + ".reap", "needs seconds")
    side = value.get("side") or "source"
    if side not in ("source", "dest"):
        raise SpecError(option + ".side", "must be source or dest, got %r" % (side,))
    return (name, mode, seconds, hitcount, rttl, reap, side)


def _render_recent(value, family, values):
    name, mode, seconds, hitcount, rttl, reap, side = value
    return match_recent(family, name, mode, seconds, hitcount, rttl, reap, side)


def _check_per_family_plain(key, parse, what):
    def check(value, values, ctx):
        if not _present(value):
            return None
        return _per_family(value, values, ctx.opt(key), parse, what)
    return check


def _check_ctorigdstport(value, values, ctx):
    if not _present(value):
        return None
    negated, text = _negation(value if not isinstance(value, int) else str(value))
    port = parse_ports([text], ctx.opt("ctorigdstport"))[0]
    return ("!" if negated else "") + port


def _render_ctorig(value, family, values):
    words = ["-m", "conntrack"]
    for key, flag in (("ctorigsrc", "--ctorigsrc"), ("ctorigdst", "--ctorigdst"),
                      ("ctorigdstport", "--ctorigdstport")):
        v = values.get(key)
        if v:
            words += _negated_flag(flag, v)
    return words


_MARK_RE = re.compile(r"\A(0x[0-9A-Fa-f]{1,16}|[0-9]{1,20})(?:/(0x[0-9A-Fa-f]{1,16}|[0-9]{1,20}))?\Z")
_U32_MAX = 0xFFFFFFFF


def _parse_mark(value, option):
    """'5', '0x5/0xff' -> (value, mask) ints; mask defaults to all ones."""
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    m = _MARK_RE.match(text or "")
    if not m:
        raise SpecError(option, "%r is not a mark: value[/mask], decimal or hex (0x10/0xff)" % (value,))
    nums = [int(g, 0) if g else None for g in m.groups()]
    if any(n is not None and n > _U32_MAX for n in nums):
        raise SpecError(option, "%r: a mark and its mask are 32-bit (at most 0xffffffff)" % (value,))
    return nums[0], _U32_MAX if nums[1] is None else nums[1]


def _check_mark(value, values, ctx):
    if not _present(value) and value != 0:
        return None
    negated, text = _negation(value if isinstance(value, str) else str(value) if isinstance(value, int) else value)
    mark, mask = _parse_mark(text, ctx.opt("mark"))
    out = "0x%x" % mark if mask == _U32_MAX else "0x%x/0x%x" % (mark, mask)
    return ("!" if negated else "") + out


# --- targets ------------------------------------------------------------------------------

# (tables, built-in chains) a target is allowed in, as the kernel checks (measured with
# iptables-nft and iptables-legacy); user chains are allowed in those tables.
TARGET_PLACES = {
    "REJECT": (("filter", "mangle", "raw", "security"), ("INPUT", "FORWARD", "OUTPUT")),
    "DNAT": (("nat",), ("PREROUTING", "OUTPUT")),
    "SNAT": (("nat",), ("POSTROUTING", "INPUT")),
    "MASQUERADE": (("nat",), ("POSTROUTING",)),
    "REDIRECT": (("nat",), ("PREROUTING", "OUTPUT")),
    "NETMAP": (("nat",), ("PREROUTING", "POSTROUTING", "OUTPUT", "INPUT")),
    "DSCP": (("mangle",), None),
    "CT": (("raw",), None),
    "NOTRACK": (("raw",), None),
    "TCPMSS": (None, ("FORWARD", "OUTPUT", "POSTROUTING")),
    "DROP": (("filter", "mangle", "raw", "security"), None),
}
NEW_TARGETS = ("DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP", "MARK", "CONNMARK", "TCPMSS", "DSCP", "TEE",
               "NFLOG", "CT", "NOTRACK")
DSCP_CLASSES = dict([("CS%d" % i, i * 8) for i in range(8)] + [("BE", 0), ("EF", 46)]
                    + [("AF%d%d" % (c, d), c * 8 + d * 2) for c in range(1, 5) for d in range(1, 4)])


def _check_place(jump, values, ctx):
    tables, chains = TARGET_PLACES.get(jump, (None, None))
    if tables and values["table"] not in tables:
        raise SpecError(ctx.opt("jump"), "%s is not allowed in table %s; it works in %s"
                        % (jump, values["table"], ", ".join(tables)))
    if chains and values["chain"] in BUILTIN_CHAIN_NAMES and values["chain"] not in chains:
        raise SpecError(ctx.opt("jump"), "%s works only in chains %s (and user chains jumped to from them), not %s"
                        % (jump, ", ".join(chains), values["chain"]))


def _check_goto(value, values, ctx):
    if not _present(value) or values["state"] == "absent":
        return None
    goto = check_chain_name(value.strip() if isinstance(value, str) else value, ctx.opt("goto"), user_chain=True)
    if goto == values["chain"]:
        raise SpecError(ctx.opt("goto"), "a rule in %s cannot go to its own chain" % goto)
    return goto


def _render_goto(value, family, values):
    return ["-g", value]


def _needs_jumps(key, jumps):
    def check(value, values, ctx):
        if values.get("jump") not in jumps:
            raise SpecError(ctx.opt(key), "only applies with jump: %s (jump is %s)"
                            % (" or ".join(jumps), values.get("jump")))
    return check


def _target_option(key, jumps, convert):
    """An option of the targets ``jumps``: None when unset, else convert(value, values, option)."""
    def check(value, values, ctx):
        if value is None or value == "" or value == []:
            return None
        _needs_jumps(key, jumps)(value, values, ctx)
        return convert(value, values, ctx.opt(key))
    return check


def _check_to_ports(value, values, option):
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    m = re.match(r"\A([0-9]+)(?:[-:]([0-9]+))?\Z", text)
    if not m:
        raise SpecError(option, "%r is not a port or a range like 8000-8010" % (value,))
    if values.get("protocol") not in PORT_PROTOCOLS:
        raise SpecError(option, "needs protocol tcp, udp, udplite, sctp or dccp (protocol is %s)"
                        % (values.get("protocol") or "not set"))
    return _port_range(m.group(1), m.group(2), value, option)


def _check_set_mark(value, values, option):
    if values.get("connmark_action") is not None:
        raise SpecError(option, "give either set_mark or connmark_action, not both")
    mark, mask = _parse_mark(value, option)
    return "0x%x/0x%x" % (mark, mask | mark)


def _check_connmark_action(value, values, option):
    if value not in ("save", "restore"):
        raise SpecError(option, "must be save or restore, got %r" % (value,))
    return value


def _check_mss(value, values, option):
    _tcp_syn_for_mss(values, option)
    return check_int(as_int(value), option, 536 - 500, 65535 - 40, "bytes of TCP payload")


def _check_clamp(value, values, option):
    _tcp_syn_for_mss(values, option)
    clamp = check_bool(value, option)
    return clamp or None


def _tcp_syn_for_mss(values, option):
    flags = values.get("tcp_flags")
    syn_ok = values.get("syn") == "match" or (flags and "SYN" in flags[1].split(","))
    if values.get("protocol") != "tcp" or not syn_ok:
        raise SpecError(option, "TCPMSS changes SYN packets only: set protocol: tcp and syn: match")


def _check_nflog_group(value, values, option):
    return check_int(as_int(value), option, 0, 65535, "the netlink group")


def _check_nflog_prefix(value, values, option):
    text = check_text(value, option, 63, "in an NFLOG prefix")
    return text or None


def _check_ct_zone(value, values, option):
    return check_int(as_int(value), option, 0, 65535, "the conntrack zone")


def _check_ct_helper(value, values, option):
    if not isinstance(value, str) or not re.match(r"[a-z0-9_-]{1,15}\Z", value):
        raise SpecError(option, "%r is not a conntrack helper name (ftp, sip, tftp...)" % (value,))
    return value


def _check_dscp(value, values, option):
    if values.get("set_dscp_mark_class") is not None:
        raise SpecError(option, "give either set_dscp_mark or set_dscp_mark_class, not both")
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    try:
        number = int(text, 0)
    except ValueError:
        raise SpecError(option, "%r is not a DSCP value 0-63 (decimal or hex)" % (value,))
    return "0x%02x" % check_int(number, option, 0, 63, "the DSCP value")


def _check_dscp_class(value, values, option):
    name = str(value).strip().upper()
    if name not in DSCP_CLASSES:
        raise SpecError(option, "%r is not a DiffServ class; valid: %s" % (value, ", ".join(sorted(DSCP_CLASSES))))
    return name


def _render_target_words(value, family, values):
    """Every option of the new targets, in the order iptables-save prints them."""
    jump = values.get("jump")
    words = []
    if jump in ("DNAT", "SNAT"):
        key = "to_destination" if jump == "DNAT" else "to_source"
        words += ["--" + key.replace("_", "-"), values[key]]
    elif jump in ("MASQUERADE", "REDIRECT"):
        if values.get("to_ports"):
            words += ["--to-ports", values["to_ports"]]
    elif jump == "NETMAP":
        words += ["--to", values["to_network"]]
    elif jump in ("MARK", "CONNMARK"):
        if values.get("set_mark"):
            words += ["--set-xmark", values["set_mark"]]
        elif values.get("connmark_action"):
            words += ["--%s-mark" % values["connmark_action"], "--nfmask", "0xffffffff", "--ctmask", "0xffffffff"]
    elif jump == "TCPMSS":
        words += ["--clamp-mss-to-pmtu"] if values.get("clamp_mss_to_pmtu") else ["--set-mss", str(values["set_mss"])]
    elif jump == "NFLOG":
        if values.get("nflog_prefix"):
            words += ["--nflog-prefix", quote(values["nflog_prefix"])]
        if values.get("nflog_group"):
            words += ["--nflog-group", str(values["nflog_group"])]
    elif jump == "CT":
        if values.get("ct_helper"):
            words += ["--helper", values["ct_helper"]]
        if values.get("ct_zone"):
            words += ["--zone", str(values["ct_zone"])]
    elif jump == "TEE":
        words += ["--gateway", values["gateway"]]
    elif jump == "DSCP":
        dscp = values.get("set_dscp_mark")
        if dscp is None:
            dscp = "0x%02x" % DSCP_CLASSES[values["set_dscp_mark_class"]]
        words += ["--set-dscp", dscp]
    return words


def _check_target_complete(value, values, ctx):
    """After every target option: what a target cannot do without (rendered once, by this entry)."""
    jump = values.get("jump")
    required = {"DNAT": ("to_destination",), "SNAT": ("to_source",), "NETMAP": ("to_network",), "TEE": ("gateway",), "TCPMSS": ("clamp_mss_to_pmtu", "set_mss"),
                "DSCP": ("set_dscp_mark", "set_dscp_mark_class"), "MARK": ("set_mark",),
                "CONNMARK": ("set_mark", "connmark_action")}
    if values["state"] == "absent" or jump not in required:
        return None
    if not any(_present(values.get(k)) for k in required[jump]):
        raise SpecError(ctx.opt(required[jump][0]), "jump %s needs %s" % (jump, " or ".join(required[jump])))
    if jump == "TCPMSS" and values.get("clamp_mss_to_pmtu") and values.get("set_mss") is not None:
        raise SpecError(ctx.opt("set_mss"), "give either clamp_mss_to_pmtu or set_mss, not both")
    return True


# Words a ``raw`` text may not hold: commands and table switches (a second command in one
# line), and the comment match (the ownership tag is the collection's).
_RAW_FORBIDDEN = ("-A", "--append", "-I", "--insert", "-D", "--delete", "-R", "--replace", "-N", "--new-chain",
                  "-X", "--delete-chain", "-F", "--flush", "-P", "--policy", "-E", "--rename-chain", "-Z", "--zero",
                  "-L", "--list", "-S", "--list-rules", "-t", "--table", "-C", "--check", "COMMIT", "-h", "--help",
                  "-V", "--version", "--comment", "-4", "-6", "--ipv4", "--ipv6", "-n", "--numeric", "-w", "--wait",
                  "-W", "--wait-interval", "--modprobe", "-c", "--set-counters", "-v", "--verbose", "-x", "--exact")


def _check_raw(value, values, ctx):
    """``raw`` -> (match words, target words): split like a shell would, nothing run."""
    if not _present(value) or values["state"] == "absent":
        return None
    import shlex
    option = ctx.opt("raw")
    if not isinstance(value, str):
        raise SpecError(option, "must be text: iptables words such as -m u32 --u32 \"0>>22&0x3C@12=0x10\"")
    check_text(value, option)
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise SpecError(option, "%r cannot be split into words (%s): check its quotes" % (value, exc))
    if not words:
        return None
    for i, word in enumerate(words):
        if word in _RAW_FORBIDDEN or (word == "comment" and i and words[i - 1] in ("-m", "--match")):
            raise SpecError(option, "%r may not contain %r: raw holds the matches (and optionally the target) of "
                                    "this one rule; the comment, table and chain are the rule's own options"
                                    % (value, word))
        if word.startswith(("--append=", "--insert=", "--table=")):
            raise SpecError(option, "%r may not contain %r" % (value, word))
    cut = [i for i, w in enumerate(words) if w in ("-j", "--jump", "-g", "--goto")]
    if len(cut) > 1:
        raise SpecError(option, "%r has more than one -j/-g: a rule has one target" % (value,))
    if cut and cut[0] == len(words) - 1:
        raise SpecError(option, "%r ends with %s and no target" % (value, words[cut[0]]))
    if cut:
        target = ["-j" if words[cut[0]] in ("-j", "--jump") else "-g"] + words[cut[0] + 1:]
        return (tuple(words[:cut[0]]), tuple(target))
    return (tuple(words), ())


def _render_raw(value, family, values):
    return [quote(w) if w else '""' for w in value[0]]


def raw_target_words(values):
    raw = values.get("raw")
    return [quote(w) if w else '""' for w in raw[1]] if raw else []


def _unless(keys, render):
    """Options that share one match render it once: from the first of them that is set."""
    def inner(value, family, values):
        return [] if any(_present(values.get(k)) for k in keys) else render(value, family, values)
    return inner


def _render_nothing(value, family, values):
    """Target options are rendered by the jump entry, in the order iptables-save prints them."""
    return []


def _check_int_entry(key, low, high, what):
    def check(value, values, ctx):
        return None if value is None else check_int(as_int(value), ctx.opt(key), low, high, what)
    return check


def _last_target_check(check):
    """The last target option's check also checks what a target cannot do without."""
    def wrapped(value, values, ctx):
        out = check(value, values, ctx)
        _check_target_complete(None, dict(values, set_dscp_mark=out), ctx)
        return out
    return wrapped


# The table, in validation order (an entry may look at the values of entries above it) and
# render order within each slot.
OPTIONS = (
    Option("name", ["The rule's identity, 1-64 characters of C(A-Z a-z 0-9 _ . @ -).",
                    "Required unless O(rules) is given; mutually exclusive with O(rules)."],
           slot="rule", check=_check_name, item_doc="See O(name)."),
    Option("state", ["V(present) places or replaces the rule; V(absent) removes every line tagged with its name "
                     "from every table of the family, whatever chain it is in."],
           choices=STATES, default="present", slot="rule", check=_check_state,
           item_doc="See O(state). Defaults to the top-level O(state)."),
    Option("ip_version", [], choices=IP_VERSIONS, slot="rule", check=_check_ip_version, top=False,
           item_doc="See O(ip_version). Defaults to the top-level O(ip_version)."),
    Option("table", [], choices=TABLES, slot="rule", check=_check_table, top=False,
           item_doc="See O(table). Defaults to the top-level O(table)."),
    Option("chain", ["The chain of O(table) the rule goes into. A user chain must already exist or be declared in "
                     "the task's O(chains)."],
           default="INPUT", slot="rule", check=_check_chain, item_doc="See O(chain). Defaults to the top-level O(chain)."),
    Option("priority", ["Position among the tagged rules of the chain, 0-999, lower first; rules of equal priority "
                        "are ordered by name.",
                        "The default 500 leaves room before it (loopback, established, ICMP) and after it (logging, "
                        "final DROP)."],
           type="int", default=500, slot="rule", check=_check_priority,
           item_doc="See O(priority). Defaults to the top-level O(priority)."),
    Option("source", ["Source addresses or networks (CIDR). IPv4 entries go to C(iptables), IPv6 entries to "
                      "C(ip6tables); a family without entries gets no line of this rule.",
                      "Host bits are masked (V(198.51.100.7/24) is V(198.51.100.0/24))."],
           type="list", elements="str", slot="head", check=_check_addresses("source"),
           render=_render_address("-s"), reads=(("", "-s"),), read=lambda parts: _head_value(parts, "-s"),
           guard={("", "-s"): _guard_address("source")}),
    Option("destination", ["Destination addresses or networks, as O(source)."],
           type="list", elements="str", slot="head", check=_check_addresses("destination"),
           render=_render_address("-d"), reads=(("", "-d"),), read=lambda parts: _head_value(parts, "-d"),
           guard={("", "-d"): _guard_address("destination")}),
    Option("in_interface", ["Input interface (C(-i)); V(+) at the end is a wildcard, a leading V(!) negates.",
                            "Not in chains OUTPUT or POSTROUTING."],
           slot="head", check=_check_interface("in_interface", _NO_IN), render=_render_interface("-i"),
           reads=(("", "-i"),), read=lambda parts: _head_value(parts, "-i"),
           guard={("", "-i"): lambda arg, packet: _interface_guard(arg, packet, "-i")}),
    Option("out_interface", ["Output interface (C(-o)), as O(in_interface). Not in chains INPUT or PREROUTING."],
           slot="head", check=_check_interface("out_interface", _NO_OUT), render=_render_interface("-o"),
           reads=(("", "-o"),), read=lambda parts: _head_value(parts, "-o"),
           guard={("", "-o"): lambda arg, packet: _interface_guard(arg, packet, "-o")}),
    Option("protocol", ["V(tcp), V(udp), V(icmp), V(sctp), V(all), another name from C(/etc/protocols), or a "
                        "number 0-255.",
                        "V(icmp) means ICMP for IPv4 and ICMPv6 (C(ipv6-icmp)) for IPv6."],
           slot="head", check=_check_protocol, render=_render_protocol, reads=(("", "-p"),),
           read=lambda parts: _head_value(parts, "-p"), guard={("", "-p"): _guard_protocol}),
    Option("fragment", ["V(true) matches the second and further fragments of fragmented IPv4 packets (C(-f)), "
                        "V(false) every other packet (C(! -f)). IPv4 only (O(ip_version=ipv4))."],
           type="bool", slot="head", check=_check_fragment, render=_render_fragment),
    Option("dports", ["Destination ports 1-65535 or ranges like V(\"1000:2000\"). One entry renders C(--dport), "
                      "several render C(-m multiport --dports) (at most 15).",
                      "Needs O(protocol) V(tcp), V(udp), V(udplite), V(sctp) or V(dccp)."],
           type="list", elements="raw", check=_check_ports("dports"), render=_render_dports,
           reads=tuple((m, "--dport") for m in _PORT_MODULES) + (("multiport", "--dports"),),
           read=_read_ports(("--dport", "--dports")),
           guard=dict([((m, f), _guard_port("dport")) for m in _PORT_MODULES + ("multiport",)
                       for f in ("--dport", "--destination-port", "--dports", "--destination-ports")]
                      + [(("multiport", "--ports"), _guard_any_port)])),
    Option("sports", ["Source ports, as O(dports)."],
           type="list", elements="raw", check=_check_ports("sports"), render=_render_sports,
           reads=tuple((m, "--sport") for m in _PORT_MODULES) + (("multiport", "--sports"),),
           read=_read_ports(("--sport", "--sports")),
           guard=dict(((m, f), _guard_port("sport")) for m in _PORT_MODULES + ("multiport",)
                      for f in ("--sport", "--source-port", "--sports", "--source-ports"))),
    Option("syn", ["V(match) matches TCP SYN packets (SYN set, ACK, RST and FIN clear: C(--syn)), V(negate) every "
                   "other TCP packet, V(ignore) (the default) does not look. Needs O(protocol=tcp)."],
           choices=SYN_CHOICES, check=_check_syn, render=_render_syn),
    Option("tcp_flags", ["TCP flags to test: C(flags) the flags looked at, C(flags_set) those of them that must be "
                         "set (C(--tcp-flags)); each a list of V(FIN), V(SYN), V(RST), V(PSH), V(ACK), V(URG), "
                         "V(ALL) or V(NONE). Needs O(protocol=tcp); not with O(syn)."],
           type="dict", check=_check_tcp_flags, render=_render_tcp_flags),
    Option("icmp_type", ["ICMP type name or number (V(echo-request), V(8), V(3/4)); names are translated per "
                         "family, so V(echo-request) is 8 for ICMP and 128 for ICMPv6. Needs O(protocol=icmp)."],
           type="raw", check=_check_icmp_type, render=_render_icmp_type,
           reads=(("icmp", "--icmp-type"), ("icmp6", "--icmpv6-type")),
           read=lambda parts: None,  # a number in the save form; the user's name is not recoverable
           guard={("icmp", "--icmp-type"): lambda arg, packet: False,
                  ("icmp6", "--icmpv6-type"): _guard_icmp6_type}),
    Option("ctstate", ["Connection states to match, any of %s." % ", ".join("V(%s)" % s for s in CT_STATES)],
           type="list", elements="str", check=_check_ctstate, render=_render_ctstate,
           reads=(("conntrack", "--ctstate"), ("state", "--state")), read=_read_ctstate,
           guard={("conntrack", "--ctstate"): _guard_ctstate, ("state", "--state"): _guard_ctstate}),
    Option("state_match", ["How O(ctstate) is matched. V(conntrack) renders C(-m conntrack --ctstate); V(state) "
                           "reproduces the classic C(-m state --state)."],
           choices=STATE_MATCHES, default="conntrack", slot="modifier", check=_check_state_match,
           item_doc="See O(state_match). Defaults to the top-level O(state_match)."),
    Option("limit", ["Match at most this average rate, like V(3/minute) (per V(second), V(minute), V(hour) or "
                     "V(day)): C(-m limit --limit). Packets over the rate go on to the next rule.",
                     "With O(jump=LOG), this keeps a flood from filling the log."],
           check=_check_limit, render=_render_limit, reads=(("limit", "--limit"),), read=_read_limit,
           guard={("limit", "--limit"): lambda arg, packet: None}),
    Option("limit_burst", ["With O(limit), how many packets may match at once before the rate applies "
                           "(C(--limit-burst), 1-10000; the kernel's default is 5)."],
           type="int", slot="modifier", check=_check_limit_burst, reads=(("limit", "--limit-burst"),),
           read=_read_limit_burst, guard={("limit", "--limit-burst"): lambda arg, packet: True}),
    Option("src_range", ["Source address range V(198.51.100.1-198.51.100.9) (C(-m iprange --src-range)); one "
                         "range per family, the family of the range gets the line. A leading V(!) negates."],
           type="list", elements="str", check=_check_per_family_plain("src_range", _parse_range, "range"),
           render=_render_iprange, per_family=True),
    Option("dst_range", ["Destination address range, as O(src_range)."],
           type="list", elements="str", check=_check_per_family_plain("dst_range", _parse_range, "range"),
           render=_unless(("src_range",), _render_iprange),
           per_family=True),
    Option("match_set", ["Name of an ipset to match (C(-m set --match-set)); a leading V(!) negates. A set holds "
                         "one address family, so O(ip_version) must be V(ipv4) or V(ipv6). The set must exist on "
                         "the host when the rule is applied."],
           check=_check_match_set, render=_render_match_set),
    Option("match_set_flags", ["With O(match_set), which addresses of the packet are looked up: V(src) (the "
                               "default), V(dst), V(src,dst), V(dst,src), V(src,src) or V(dst,dst)."],
           choices=SET_FLAGS, slot="modifier", check=_check_match_set_flags),
    Option("uid_owner", ["Match locally generated packets by the user that sent them (C(-m owner --uid-owner)): a "
                         "number, a range V(1000-1999) or a user name (looked up on the target). A leading V(!) "
                         "negates. Only in chains OUTPUT and POSTROUTING (and user chains)."],
           type="raw", check=_check_owner("uid_owner", _lookup_user), render=_render_owner),
    Option("gid_owner", ["The group that sent the packet, as O(uid_owner)."],
           type="raw", check=_check_owner("gid_owner", _lookup_group),
           render=_unless(("uid_owner",), _render_owner)),
    Option("connlimit_above", ["Match when the source (grouped by O(connlimit_mask)) already has more than this "
                               "many connections (C(-m connlimit --connlimit-above)); with O(jump=REJECT) or "
                               "V(DROP) this caps parallel connections per client."],
           type="int", check=_check_int_entry("connlimit_above", 0, 2 ** 32 - 1, "connections"),
           render=_render_connlimit),
    Option("connlimit_mask", ["With O(connlimit_above), the prefix length that groups sources (V(24): per /24); "
                              "the default is the whole address (32 or 128)."],
           type="int", slot="modifier", check=_check_connlimit_mask),
    Option("hashlimit", ["A rate limit kept per source, destination or port (C(-m hashlimit)): a dictionary with "
                         "C(name) (required, 1-15 characters: the kernel's table), C(rate) (required, like "
                         "V(10/second)), C(above) (V(true): match the packets over the rate; default V(false): "
                         "those under it), C(burst) (default 5), C(mode) (a list of V(srcip), V(srcport), "
                         "V(dstip), V(dstport); none: one limit for all), C(srcmask), C(dstmask)."],
           type="dict", check=_check_hashlimit, render=_render_hashlimit),
    Option("recent", ["The C(recent) match, for a list of addresses: a dictionary with C(mode) (required: V(set), "
                      "V(rcheck), V(update) or V(remove)), C(name) (default V(DEFAULT)), C(seconds), C(hitcount), "
                      "C(rttl), C(reap) (bools) and C(side) (V(source), the default, or V(dest))."],
           type="dict", check=_check_recent, render=_render_recent),
    Option("ctorigsrc", ["The original source address or network of the connection (C(-m conntrack --ctorigsrc)), "
                         "one per family; a leading V(!) negates."],
           type="list", elements="str", check=_check_per_family_plain("ctorigsrc", _parse_net(True), "address"),
           render=_render_ctorig, per_family=True),
    Option("ctorigdst", ["The original destination of the connection, before DNAT, as O(ctorigsrc): what Docker's "
                         "documentation uses in C(DOCKER-USER) to match a published port's address."],
           type="list", elements="str", check=_check_per_family_plain("ctorigdst", _parse_net(True), "address"),
           render=_unless(("ctorigsrc",), _render_ctorig),
           per_family=True),
    Option("ctorigdstport", ["The original destination port of the connection (before DNAT), a port or V(lo:hi); "
                             "a leading V(!) negates."],
           type="raw", check=_check_ctorigdstport,
           render=_unless(("ctorigsrc", "ctorigdst"), _render_ctorig)),
    Option("mark", ["Match the packet's firewall mark, V(value) or V(value/mask), decimal or hex "
                    "(C(-m mark --mark)); a leading V(!) negates."],
           type="raw", check=_check_mark, render=_render_flagged("mark", "--mark")),
    Option("raw", ["iptables words for a match the options above do not cover, such as "
                   "V(-m u32 --u32 \"0>>22&0x3C@12>>26&0x3F=0x10\"), optionally ending in the target "
                   "(V(-j DROP)) when O(jump) is not given.",
                   "Split like a shell would split them, never run by one. The rule's canonical form is learned "
                   "from the kernel: the module loads the line into its own chain and table in a private network "
                   "namespace on the target (C(unshare --net)), reads it back, and compares that, so reruns stay "
                   "unchanged. A line iptables refuses fails naming this option, before anything changes.",
                   "Needs C(unshare) (util-linux) and root (CAP_SYS_ADMIN in a container); costs one extra "
                   "process per task (C(calls.learn)). Words that refer to objects of the host's namespace "
                   "(ipsets with C(-m set), C(-m rateest)) cannot be learned: use O(match_set) for ipsets.",
                   "May not hold a command (C(-A), C(-I), C(-D), C(-N), C(-F)...), a table switch, or a comment "
                   "match."],
           check=_check_raw, render=_render_raw),
    Option("comment", ["Free text kept beside the ownership tag in the rule's comment, one line; with the tag it "
                       "must fit the kernel's 255 bytes."],
           slot="modifier", check=_check_comment, reads=(("comment", "--comment"),), read=_read_comment,
           guard={("comment", "--comment"): lambda arg, packet: True}),
    Option("goto", ["Continue in this user chain without coming back (C(-g)): when it ends, the chain that "
                    "jumped here decides. Instead of O(jump)."],
           slot="target", check=_check_goto, render=_render_goto),
    Option("jump", ["The target: V(ACCEPT), V(DROP), V(REJECT), V(LOG), V(RETURN); in table nat V(DNAT), V(SNAT), "
                    "V(MASQUERADE), V(REDIRECT), V(NETMAP); V(MARK), V(CONNMARK), V(TCPMSS), V(TEE), V(NFLOG); "
                    "V(DSCP) in mangle; V(CT), V(NOTRACK) in raw; or a user chain of O(table) that already exists "
                    "or is declared in the task's O(chains).",
                    "A target used outside the tables and chains the kernel allows it in fails naming this option.",
                    "Required unless O(state=absent), O(goto) is given, or O(raw) ends in the target."],
           slot="target", check=_check_jump, render=_render_jump, read=_read_jump),
    Option("log_prefix", ["With O(jump=LOG), the prefix of the kernel log line, one line of at most 29 bytes."],
           slot="target", check=_check_log_prefix, render=_render_log_prefix,
           reads=(("target", "--log-prefix"),), read=_read_target_option("--log-prefix")),
    Option("log_level", ["With O(jump=LOG), the syslog level, 0-7 or a name (V(warning) is the default)."],
           type="raw", slot="target", check=_check_log_level, render=_render_log_level,
           reads=(("target", "--log-level"),), read=_read_target_option("--log-level", int)),
    Option("reject_with", ["With O(jump=REJECT), the reply, for example V(icmp-port-unreachable), "
                           "V(icmp-admin-prohibited) or V(tcp-reset) (needs O(protocol=tcp)).",
                           "Given in either family's words, it is translated for the other "
                           "(V(icmp-port-unreachable) becomes C(icmp6-port-unreachable) for IPv6)."],
           slot="target", check=_check_reject_with, render=_render_reject_with,
           reads=(("target", "--reject-with"),), read=_read_target_option("--reject-with")),
    Option("to_destination", ["With O(jump=DNAT), the new destination: V(198.51.100.7), V(198.51.100.7:8080), "
                              "V(198.51.100.7-198.51.100.9:80-90) or V([2001:db8::7]:8080) (a port needs "
                              "O(protocol)). A list holds at most one per family; a family without one gets no "
                              "line of the rule."],
           type="list", elements="str", slot="target",
           check=_check_per_family("to_destination", _parse_nat_to, "address", ("DNAT",)), render=_render_nothing,
           per_family=True),
    Option("to_source", ["With O(jump=SNAT), the new source, as O(to_destination)."],
           type="list", elements="str", slot="target",
           check=_check_per_family("to_source", _parse_nat_to, "address", ("SNAT",)), render=_render_nothing,
           per_family=True),
    Option("to_ports", ["With O(jump=MASQUERADE) or O(jump=REDIRECT), the port or range V(8000-8010) to use "
                        "(needs O(protocol))."],
           type="raw", slot="target", check=_target_option("to_ports", ("MASQUERADE", "REDIRECT"), _check_to_ports),
           render=_render_nothing),
    Option("to_network", ["With O(jump=NETMAP), the network the addresses are mapped to, one per family, as "
                          "O(to_destination)."],
           type="list", elements="str", slot="target",
           check=_check_per_family("to_network", _parse_net(False), "network", ("NETMAP",)),
           render=_render_nothing, per_family=True),
    Option("connmark_action", ["With O(jump=CONNMARK), V(save) copies the packet's mark to the connection, "
                               "V(restore) the connection's mark to the packet."],
           choices=("save", "restore"), slot="target",
           check=_target_option("connmark_action", ("CONNMARK",), _check_connmark_action), render=_render_nothing),
    Option("set_mark", ["With O(jump=MARK) (the packet's mark) or O(jump=CONNMARK) (the connection's), the mark "
                        "V(value) or V(value/mask), decimal or hex: the bits of the mask are cleared, then the "
                        "value is set."],
           type="raw", slot="target", check=_target_option("set_mark", ("MARK", "CONNMARK"), _check_set_mark),
           render=_render_nothing),
    Option("clamp_mss_to_pmtu", ["With O(jump=TCPMSS), set the MSS of SYN packets to the path MTU minus 40 (needs "
                                 "O(protocol=tcp) and O(syn=match))."],
           type="bool", slot="target", check=_target_option("clamp_mss_to_pmtu", ("TCPMSS",), _check_clamp),
           render=_render_nothing),
    Option("set_mss", ["With O(jump=TCPMSS), the MSS to set, instead of O(clamp_mss_to_pmtu)."],
           type="int", slot="target", check=_target_option("set_mss", ("TCPMSS",), _check_mss),
           render=_render_nothing),
    Option("nflog_group", ["With O(jump=NFLOG), the netlink group 0-65535 the packets go to (ulogd listens "
                           "there)."],
           type="int", slot="target", check=_target_option("nflog_group", ("NFLOG",), _check_nflog_group),
           render=_render_nothing),
    Option("nflog_prefix", ["With O(jump=NFLOG), a prefix for the log, one line of at most 63 bytes."],
           slot="target", check=_target_option("nflog_prefix", ("NFLOG",), _check_nflog_prefix),
           render=_render_nothing),
    Option("ct_zone", ["With O(jump=CT) (table raw), the conntrack zone 0-65535."],
           type="int", slot="target", check=_target_option("ct_zone", ("CT",), _check_ct_zone),
           render=_render_nothing),
    Option("ct_helper", ["With O(jump=CT) (table raw), the conntrack helper to attach (V(ftp), V(sip)...)."],
           slot="target", check=_target_option("ct_helper", ("CT",), _check_ct_helper), render=_render_nothing),
    Option("gateway", ["With O(jump=TEE), the address the cloned packets are sent to, one per family, as "
                       "O(to_destination)."],
           type="list", elements="str", slot="target",
           check=_check_per_family("gateway", lambda v, o: _parse_host(check_text(v, o).strip(), o)
                                   if isinstance(v, str) else _parse_host(v, o), "address", ("TEE",)),
           render=_render_nothing, per_family=True),
    Option("set_dscp_mark_class", ["With O(jump=DSCP) (table mangle), a DiffServ class (V(EF), V(AF41), V(CS1), "
                                   "V(BE)...) set as the packet's DSCP."],
           slot="target", check=_target_option("set_dscp_mark_class", ("DSCP",), _check_dscp_class),
           render=_render_nothing),
    Option("set_dscp_mark", ["With O(jump=DSCP) (table mangle), the DSCP value 0-63, decimal or hex, instead of "
                             "O(set_dscp_mark_class)."],
           type="raw", slot="target",
           check=_last_target_check(_target_option("set_dscp_mark", ("DSCP",), _check_dscp)),
           render=_render_nothing),
)
BY_KEY = dict((o.key, o) for o in OPTIONS)
PER_FAMILY = tuple(o for o in OPTIONS if o.per_family)
# Options a ``rules`` item may take from the top level of the task.
INHERITED = ("chain", "table", "priority", "state", "ip_version", "state_match")
RULE_KEYS = tuple(o.key for o in OPTIONS)
MATCH_KEYS = tuple(o.key for o in OPTIONS if o.slot != "rule")


# --- internal matches: rendered by the collection's own chains, known to the guard --------

def recent_mask(family):
    return "255.255.255.255" if family == "ipv4" else "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"


def match_recent(family, name, mode, seconds=None, hitcount=None, rttl=False, reap=False, side="source"):
    """-m recent in the order iptables-save prints it: mode, --seconds, --reap, --hitcount, --rttl, --name,
    --mask, --rsource or --rdest."""
    words = ["-m", "recent", "--" + mode]
    if seconds is not None:
        words += ["--seconds", str(int(seconds))]
    if reap:
        words.append("--reap")
    if hitcount is not None:
        words += ["--hitcount", str(int(hitcount))]
    if rttl:
        words.append("--rttl")
    words += ["--name", name, "--mask", recent_mask(family), "--rsource" if side == "source" else "--rdest"]
    return words


def _recent_name(match):
    arg = match.get("--name") if match is not None else None
    return arg.value if arg is not None else "DEFAULT"


def _guard_recent_check(arg, packet, match=None, walk=None):
    """``--rcheck``/``--update``: the operator's own packet is one hit when an earlier rule on its
    path added it (``--set``); above that, the operator is taken to be under the limit."""
    hits = 1 if walk is not None and _recent_name(match) in walk["recent"] else 0
    count = match.get("--hitcount") if match is not None else None
    needed = int(count.value) if count is not None and (count.value or "").isdigit() else 1
    return hits >= needed


def _guard_match_set(arg, packet, match=None, walk=None):
    """``--match-set NAME src|dst``: the address looked up in the set, when the guard was given the
    collection's sets (_guard.SetView); anything else is unknown."""
    sets = walk.get("sets") if walk is not None else None
    if sets is None or len(arg.args) != 2 or arg.args[1] not in ("src", "dst"):
        return None
    return sets.member(arg.args[0], packet.source if arg.args[1] == "src" else packet.destination)


def guard_effects(parts, walk):
    """What a rule that (maybe) matched did to the walk: the recent lists it added the packet to."""
    for m in parts.matches:
        if m.module == "recent" and m.get("--set") is not None:
            walk["recent"].add(_recent_name(m))


GUARDS = {("recent", "--set"): lambda arg, packet: True, ("recent", "--remove"): lambda arg, packet: True,
          ("recent", "--rcheck"): _guard_recent_check, ("recent", "--update"): _guard_recent_check}
for _o in OPTIONS:
    GUARDS.update(_o.guard)
for _flag in ("--seconds", "--hitcount", "--rttl", "--name", "--mask", "--rsource", "--rdest", "--reap"):
    GUARDS[("recent", _flag)] = lambda arg, packet: True
GUARDS[("tcp", "--syn")] = lambda arg, packet: packet.protocol == "tcp" and packet.syn
GUARDS[("tcp", "--tcp-flags")] = _guard_tcp_flags


def _guard_range(attr):
    def guard(arg, packet):
        addr = getattr(packet, attr)
        lo, _sep, hi = (arg.value or "").partition("-")
        try:
            low, high = ipaddress.ip_address(lo), ipaddress.ip_address(hi or lo)
        except ValueError:
            return None
        if addr is None:
            return None
        if addr.version != low.version:
            return False
        return low <= addr <= high
    return guard


def _guard_owner(arg, packet):
    """The server's replies come from sshd's socket, owned by root (uid and gid 0); an incoming
    packet has no owner, so an owner match never matches it."""
    if packet.direction != "out":
        return False
    lo, _sep, hi = (arg.value or "").partition("-")
    if not lo.isdigit() or not (hi or lo).isdigit():
        return None
    return int(lo) <= 0 <= int(hi or lo)


GUARDS[("iprange", "--src-range")] = _guard_range("source")
GUARDS[("iprange", "--dst-range")] = _guard_range("destination")
GUARDS[("owner", "--uid-owner")] = _guard_owner
GUARDS[("owner", "--gid-owner")] = _guard_owner
GUARDS[("", "-f")] = lambda arg, packet: False
READS = dict((key, o) for o in OPTIONS for key in o.reads)


GUARDS[("set", "--match-set")] = _guard_match_set
_NEEDS_CONTEXT = (_guard_recent_check, _guard_match_set)


def guard_match(module, arg, packet, match=None, walk=None):
    """What one option of a save rule says about ``packet``: True, False or None (unknown).

    ``match`` is the option's whole match and ``walk`` what earlier rules on the packet's path
    did, for the options that need them (recent).
    """
    fn = GUARDS.get((module, arg.flag))
    if fn is None:
        result = None
    elif fn in _NEEDS_CONTEXT:
        result = fn(arg, packet, match, walk)
    else:
        result = fn(arg, packet)
    if arg.negated and result is not None:
        result = not result
    return result


def read_rule(parts):
    """A parsed save rule -> ({option key: value as iptables-save shows it}, every word understood)."""
    values = {}
    complete = True
    claimed = []
    for module, options in [("", parts.head.options)] + [(m.module, m.options) for m in parts.matches] \
            + [("target", parts.target_options)]:
        for arg in options:
            entry = READS.get((module, arg.flag))
            if entry is None or arg.negated and entry.slot != "head":
                complete = False
            elif entry not in claimed:
                claimed.append(entry)
    for entry in claimed + [BY_KEY["jump"]]:
        value = entry.read(parts)
        if value is not None:
            values[entry.key] = value
    return values, complete


# --- validation and rendering of whole rules ---------------------------------------------

def check_rule(params, ctx, keys=RULE_KEYS):
    """Validate the given options of one rule (a dict) in table order -> {key: canonical}.

    Options not in ``keys`` are not looked at; unset ones get their canonical empty value.
    """
    values = {}
    for key in keys:
        values[key] = BY_KEY[key].check(params.get(key), values, ctx)
        if key == "state" and values[key] == "absent":
            # an absent rule is found by its name: nothing else is checked
            for rest in keys[keys.index(key) + 1:]:
                if BY_KEY[rest].slot == "rule":
                    values[rest] = BY_KEY[rest].check(params.get(rest), values, ctx)
            return values
    return values


def render_rule(values, family, tag=None):
    """The spec lines (iptables-save form) of one rule for one family; () when it has none there.

    ``values`` are checked values (check_rule, or a module's own internal ones); source and
    destination are ((family, (nets...)), ...) and render one line per pair.
    """
    addresses = {}
    for key in ("source", "destination"):
        given = dict(values.get(key) or ())
        if any(given.values()):
            if not given.get(family):
                return ()
            addresses[key] = given[family]
        else:
            addresses[key] = (None,)
    for o in PER_FAMILY:
        given = values.get(o.key)
        if _present(given):
            mine = dict(given).get(family)
            if mine is None:
                return ()
            values = dict(values)
            values[o.key] = mine
    specs = []
    for src in addresses["source"]:
        for dst in addresses["destination"]:
            line = dict(values, source=src, destination=dst)
            specs.append(" ".join(_words(line, family, tag)))
    return tuple(specs)


def _words(values, family, tag):
    words = []
    for slot in ("head", "match"):
        if slot == "match":
            # the collection's internal matches (-m recent...) come before the table's
            words += list(values.get("matches") or ())
        for o in OPTIONS:
            if o.slot == slot and _present(values.get(o.key)):
                words += o.render(values[o.key], family, values)
    comment = values.get("comment")
    if tag is not None:
        comment = tag.comment(comment)
    if comment:
        words += ["-m", "comment", "--comment", quote(comment)]
    for o in OPTIONS:
        if o.slot == "target" and values.get(o.key) is not None:
            words += o.render(values[o.key], family, values)
    return words + raw_target_words(values)


def spec(family, tag=None, **values):
    """One rule spec from internal values (the collection's own chains): render_rule for one line."""
    for key in ("source", "destination"):
        if values.get(key) is not None and not isinstance(values[key], tuple):
            values[key] = ((family, (values[key],)),)
    lines = render_rule(values, family, tag)
    return lines[0]


def argspec(top=True):
    """Argument spec of the rule options: the top level of the single-rule form (with defaults), or
    the ``rules`` item (no defaults: an item inherits INHERITED from the top level)."""
    out = {}
    for o in OPTIONS:
        if top and not o.top:
            continue
        out[o.key] = o.argspec(defaults=top)
    if not top:
        out["name"]["required"] = True
    return out


def doc_options():
    """The DOCUMENTATION options of the rule_options doc fragment (see tests/unit)."""
    out = {}
    items = {}
    for o in OPTIONS:
        doc = o.argspec(defaults=True)
        if o.top:
            out[o.key] = dict(description=list(o.doc), **doc)
        item = o.argspec(defaults=False)
        if o.key == "name":
            item["required"] = True
        items[o.key] = dict(description=o.item_doc or "See O(%s)." % o.key, **item)
    out["rules"] = dict(
        description=[
            "Several rules at once, each a dictionary with the options of a single rule (O(rules[].name) required).",
            "O(chain), O(priority), O(state), O(state_match), O(table) and O(ip_version) given at the top level are "
            "the defaults of every item; an item may override each of them (O(rules[].ip_version) may only narrow "
            "the top-level one).",
            "The other rule options may not be given at the top level with O(rules).",
            "Names must be unique in the list.",
        ],
        type="list", elements="dict", suboptions=items)
    return out


def ruleset_rules_doc():
    """The ``rules`` option of iptables_ruleset (the doc fragment's RULESET section): every item
    documented in full, its references pointing inside the item."""
    import re
    ref = re.compile(r"O\((%s)([=)])" % "|".join(RULE_KEYS))
    items = {}
    for o in OPTIONS:
        item = o.argspec(defaults=False)
        if o.key == "name":
            item["required"] = True
        items[o.key] = dict(description=[ref.sub(r"O(rules[].\1\2", line) for line in o.doc], **item)
    return {"rules": dict(
        description=[
            "The rules of the firewall, each a dictionary with the options of one "
            "M(ironwall.iptables.iptables_rule) rule (O(rules[].name) required, unique in the list).",
            "O(rules[].ip_version) may only narrow the task's O(ip_version); O(rules[].state_match) defaults to the "
            "task's O(state_match).",
        ],
        type="list", elements="dict", default=[], suboptions=items)}
