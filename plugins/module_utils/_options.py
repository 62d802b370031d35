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
    ANY_ADDRESS, CT_STATES, FAMILIES, ICMP_PROTOCOLS, IP_VERSIONS, PORT_PROTOCOLS, Protocols,
    check_chain_name, check_comment, check_ctstates, check_int, check_interface, check_log_level,
    check_log_prefix, check_name, check_priority, check_reject_with, check_table, families, icmp_type,
    parse_ports, protocol_for, reject_for, split_addresses, tag_reserve)

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
_RATE_PRINT = (("day", 86400 * _LIMIT_SCALE), ("hour", 3600 * _LIMIT_SCALE), ("min", 60 * _LIMIT_SCALE),
               ("sec", _LIMIT_SCALE))


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
                 check=None, render=None, reads=(), read=None, guard=None, item_doc=None, top=True):
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
    return ctx.protocols.canonical(value, ctx.opt("protocol"))


def _render_protocol(value, family, values):
    proto = protocol_for(value, family)
    return ["-p", proto] if proto else []


_GUARD_PROTOCOLS = {"tcp": ("tcp", "6"), "ipv6-icmp": ("ipv6-icmp", "icmpv6", "58")}


def _guard_protocol(arg, packet):
    return (arg.value or "").lower() in _GUARD_PROTOCOLS[packet.protocol] + ("all", "0")


def _check_addresses(which):
    def check(value, values, ctx):
        split = split_addresses(_aslist(value), ctx.opt(which), values["ip_version"])
        return tuple((f, tuple(split[f])) for f in FAMILIES)
    return check


def _render_address(flag):
    def render(value, family, values):
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
        ports = parse_ports(value, ctx.opt(which))
        if values.get("protocol") not in PORT_PROTOCOLS:
            raise SpecError(ctx.opt(which), "ports need protocol tcp, udp, udplite, sctp or dccp (protocol is %s)"
                            % (values.get("protocol") or "not set"))
        return ports
    return check


def match_ports(protocol, dports=(), sports=()):
    """-m tcp --sport/--dport for single ports, -m multiport --sports/--dports for lists.

    udplite has no match of its own (``-m udplite`` does not exist): its ports always go
    through multiport, which supports it.
    """
    words = []
    if (len(sports) <= 1 and len(dports) <= 1 and (sports or dports) and protocol != "udplite"):
        words += ["-m", protocol]
        if sports:
            words += ["--sport", sports[0]]
        if dports:
            words += ["--dport", dports[0]]
        return words
    if sports:
        words += ["-m", "multiport", "--sports", ",".join(sports)]
    if dports:
        words += ["-m", "multiport", "--dports", ",".join(dports)]
    return words


def _render_dports(value, family, values):
    return match_ports(values.get("protocol"), value, values.get("sports") or ())


def _render_sports(value, family, values):
    return [] if values.get("dports") else match_ports(values.get("protocol"), (), value)


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


def rate_period(value, option="limit"):
    """A rate like '3/minute' -> the kernel's average period between packets (xt_rateinfo.avg:
    XT_LIMIT_SCALE * seconds per unit / count), as libxt_limit computes it."""
    m = _RATE_RE.match(str(value)) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if not m:
        raise SpecError(option, "%r is not a rate like 3/minute (per second, minute, hour or day)" % (value,))
    count = int(m.group(1))
    unit = (m.group(2) or "").lower()
    mult = None
    for word, seconds in _RATE_UNITS:
        if word.startswith(unit):
            mult = seconds * _LIMIT_SCALE
            break
    if mult is None:
        raise SpecError(option, "%r: the unit must be second, minute, hour or day" % (value,))
    if count < 1:
        raise SpecError(option, "%r: the rate must be at least 1" % (value,))
    period = mult // count
    if period == 0:
        raise SpecError(option, "%r is faster than the kernel's limit of 10000/second" % (value,))
    return period


def canonical_rate(value, option="limit"):
    """'3/minute' -> '3/min' exactly as iptables-save prints the limit match's rate."""
    period = rate_period(value, option)
    i = 1
    while i < len(_RATE_PRINT):
        unit_mult = _RATE_PRINT[i][1]
        if period > unit_mult or unit_mult // period < unit_mult % period:
            break
        i += 1
    name, unit_mult = _RATE_PRINT[i - 1]
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
    if value is None or not isinstance(value, str) or value.strip() == "":
        raise SpecError(ctx.opt("jump"), "required for a present rule: ACCEPT, DROP, REJECT, LOG, RETURN or a "
                                         "user chain")
    jump = value.strip()
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
    return ["-j", value]


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
    Option("chain", ["The chain of O(table) the rule goes into. A user chain must already exist."],
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
    Option("comment", ["Free text kept beside the ownership tag in the rule's comment, one line; with the tag it "
                       "must fit the kernel's 255 bytes."],
           slot="modifier", check=_check_comment, reads=(("comment", "--comment"),), read=_read_comment,
           guard={("comment", "--comment"): lambda arg, packet: True}),
    Option("jump", ["The target, V(ACCEPT), V(DROP), V(REJECT), V(LOG), V(RETURN), or a user chain of O(table) "
                    "that already exists. Required unless O(state=absent)."],
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
)
BY_KEY = dict((o.key, o) for o in OPTIONS)
# Options a ``rules`` item may take from the top level of the task.
INHERITED = ("chain", "table", "priority", "state", "ip_version", "state_match")
RULE_KEYS = tuple(o.key for o in OPTIONS)
MATCH_KEYS = tuple(o.key for o in OPTIONS if o.slot != "rule")


# --- internal matches: rendered by the collection's own chains, known to the guard --------

def recent_mask(family):
    return "255.255.255.255" if family == "ipv4" else "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"


def match_recent(family, name, mode, seconds=None, hitcount=None, rttl=False):
    """-m recent in the order iptables-save prints it: mode, --seconds, --hitcount, --rttl, --name, --mask, --rsource."""
    words = ["-m", "recent", "--" + mode]
    if seconds is not None:
        words += ["--seconds", str(int(seconds))]
    if hitcount is not None:
        words += ["--hitcount", str(int(hitcount))]
    if rttl:
        words.append("--rttl")
    words += ["--name", name, "--mask", recent_mask(family), "--rsource"]
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
GUARDS[("", "-f")] = lambda arg, packet: False
READS = dict((key, o) for o in OPTIONS for key in o.reads)


_NEEDS_CONTEXT = (_guard_recent_check,)


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
    return words


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
