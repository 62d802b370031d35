# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The vocabulary of rule values: check one value, give its canonical form.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
Pure code: no Ansible imports, no processes.

Each function takes what a user wrote (an address, a port, a protocol, a REJECT type...)
and returns it exactly as iptables-save (1.8.x, nft and legacy) prints it, or raises
SpecError naming the option. Every module checks values here, so a value means the same
in every module; _options binds them to rule options and renders whole rules.
"""

from __future__ import annotations

import ipaddress
import re
import socket

from ._errors import SpecError
from ._text import check_text
from ._model import BUILTIN_CHAINS, Tag

FAMILIES = ("ipv4", "ipv6")
IP_VERSIONS = ("ipv4", "ipv6", "both")
TARGETS = ("ACCEPT", "DROP", "REJECT", "RETURN", "LOG", "QUEUE", "NFQUEUE", "MASQUERADE", "SNAT", "DNAT",
           "REDIRECT", "MARK", "CONNMARK", "TRACE", "NOTRACK", "CT", "AUDIT", "TCPMSS", "TEE", "NFLOG", "NETMAP",
           "DSCP")
BUILTIN_CHAIN_NAMES = tuple(sorted({c for chains in BUILTIN_CHAINS.values() for c in chains}))
MAX_CHAIN_NAME = 28
MAX_COMMENT = 255
MAX_LOG_PREFIX = 29
PRIORITY_RANGE = (0, 999)
PORT_PROTOCOLS = ("tcp", "udp", "udplite", "sctp", "dccp")
CT_STATES = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT")
LOG_LEVELS = {"emerg": 0, "alert": 1, "crit": 2, "error": 3, "err": 3, "warning": 4, "warn": 4,
              "notice": 5, "info": 6, "debug": 7}

ICMP_TYPES = {
    "any": "any", "echo-reply": "0", "pong": "0", "destination-unreachable": "3",
    "network-unreachable": "3/0", "host-unreachable": "3/1", "protocol-unreachable": "3/2",
    "port-unreachable": "3/3", "fragmentation-needed": "3/4", "source-route-failed": "3/5",
    "network-unknown": "3/6", "host-unknown": "3/7", "network-prohibited": "3/9", "host-prohibited": "3/10",
    "TOS-network-unreachable": "3/11", "TOS-host-unreachable": "3/12", "communication-prohibited": "3/13",
    "host-precedence-violation": "3/14", "precedence-cutoff": "3/15", "source-quench": "4",
    "redirect": "5", "network-redirect": "5/0", "host-redirect": "5/1", "TOS-network-redirect": "5/2",
    "TOS-host-redirect": "5/3", "echo-request": "8", "ping": "8", "router-advertisement": "9",
    "router-solicitation": "10", "time-exceeded": "11", "ttl-exceeded": "11", "ttl-zero-during-transit": "11/0",
    "ttl-zero-during-reassembly": "11/1", "parameter-problem": "12", "ip-header-bad": "12/0",
    "required-option-missing": "12/1", "timestamp-request": "13", "timestamp-reply": "14",
    "address-mask-request": "17", "address-mask-reply": "18",
}
ICMPV6_TYPES = {
    "destination-unreachable": "1", "no-route": "1/0", "communication-prohibited": "1/1",
    "beyond-scope": "1/2", "address-unreachable": "1/3", "port-unreachable": "1/4",
    "failed-policy": "1/5", "reject-route": "1/6", "packet-too-big": "2", "time-exceeded": "3",
    "ttl-exceeded": "3", "ttl-zero-during-transit": "3/0", "ttl-zero-during-reassembly": "3/1",
    "parameter-problem": "4", "bad-header": "4/0", "unknown-header-type": "4/1", "unknown-option": "4/2",
    "echo-request": "128", "ping": "128", "echo-reply": "129", "pong": "129",
    "router-solicitation": "133", "router-advertisement": "134", "neighbour-solicitation": "135",
    "neighbor-solicitation": "135", "neighbour-advertisement": "136", "neighbor-advertisement": "136",
    "redirect": "137",
}
REJECT_WITH = {
    "ipv4": ("icmp-net-unreachable", "icmp-host-unreachable", "icmp-port-unreachable", "icmp-proto-unreachable",
             "icmp-net-prohibited", "icmp-host-prohibited", "icmp-admin-prohibited", "tcp-reset"),
    "ipv6": ("icmp6-no-route", "icmp6-adm-prohibited", "icmp6-addr-unreachable", "icmp6-port-unreachable",
             "icmp6-policy-fail", "icmp6-reject-route", "tcp-reset"),
}
ANY_ADDRESS = ("0.0.0.0/0", "::/0")
DEFAULT_REJECT = {"ipv4": "icmp-port-unreachable", "ipv6": "icmp6-port-unreachable"}

_CHAIN_RE = re.compile(r"[^\s!-][^\s]*\Z")
_NAME_RE = re.compile(r"[A-Za-z0-9_.@-]+\Z")
_IFACE_RE = re.compile(r"!?[A-Za-z0-9_.:@+-]{1,15}\Z")
_PORT_RE = re.compile(r"([0-9]+)(?::([0-9]+))?\Z")


def families(ip_version):
    """'ipv4' | 'ipv6' | 'both' -> tuple of families."""
    if ip_version == "both":
        return FAMILIES
    if ip_version in FAMILIES:
        return (ip_version,)
    raise SpecError("ip_version", "must be one of ipv4, ipv6, both, got %r" % (ip_version,))


def parse_address(value, option="source"):
    """An IP address or CIDR -> (family, canonical text as iptables-save prints it).

    Host bits are masked (10.11.12.13/8 -> 10.0.0.0/8); a bare host gets /32 or /128.
    """
    if isinstance(value, bool) or not isinstance(value, str):
        raise SpecError(option, "%r is not an address: give it as text, e.g. 198.51.100.7" % (value,))
    text = check_text(value, option).strip()
    try:
        if "%" in text:  # ipaddress takes a scope id (fe80::1%eth0); iptables does not
            raise ValueError(text)
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise SpecError(option, "%r is not a valid IPv4/IPv6 address or CIDR (e.g. 198.51.100.7, "
                                "198.51.100.0/24, 2001:db8::/32)" % (value,))
    if "/" not in text and ":" not in text and text.count(".") != 3:
        raise SpecError(option, "%r is not a complete dotted IPv4 address" % (value,))
    if net.version == 6:
        # iptables prints IPv6 with inet_ntop, which differs from ipaddress for IPv4-mapped and
        # -compatible addresses (::ffff:198.51.100.7, not ::ffff:c633:6407).
        return ("ipv6", "%s/%d" % (socket.inet_ntop(socket.AF_INET6, net.network_address.packed), net.prefixlen))
    return ("ipv4", str(net))


def split_addresses(values, option, allowed_families):
    """Addresses -> {family: [canonical, ...]}, de-duplicated, order kept.

    An address of a family outside ``allowed_families`` is an error naming the option.
    """
    out = dict((f, []) for f in FAMILIES)
    seen = set()
    for value in values or ():
        fam, net = parse_address(value, option)
        if fam not in allowed_families:
            raise SpecError(option, "%r is an %s address but ip_version allows only %s"
                            % (value, "IPv6" if fam == "ipv6" else "IPv4", ", ".join(allowed_families)))
        if net not in seen:
            seen.add(net)
            out[fam].append(net)
    return out


# Protocols iptables knows without /etc/protocols (libxtables' xtables_chain_protos), and
# the names it prints for them when the host's /etc/protocols does not name the number.
BUILTIN_PROTOCOLS = (("tcp", 6), ("sctp", 132), ("udp", 17), ("udplite", 136), ("icmp", 1),
                     ("icmpv6", 58), ("ipv6-icmp", 58), ("esp", 50), ("ah", 51), ("ipv6-mh", 135),
                     ("mh", 135), ("all", 0))
ICMP_PROTOCOLS = ("icmp", "icmpv6", "ipv6-icmp")
# Debian netbase's /etc/protocols (name and number): what a target has when the module
# could not read its own file (unit tests, a pure caller).
_STANDARD_PROTOCOLS = (
    "ip 0\nhopopt 0\nicmp 1\nigmp 2\nggp 3\nipencap 4\nst 5\ntcp 6\negp 8\nigp 9\npup 12\nudp 17\n"
    "hmp 20\nxns-idp 22\nrdp 27\niso-tp4 29\ndccp 33\nxtp 36\nddp 37\nidpr-cmtp 38\nipv6 41\n"
    "ipv6-route 43\nipv6-frag 44\nidrp 45\nrsvp 46\ngre 47\nesp 50\nah 51\nskip 57\nipv6-icmp 58\n"
    "ipv6-nonxt 59\nipv6-opts 60\nrspf 73\nvmtp 81\neigrp 88\nospf 89\nax.25 93\nipip 94\n"
    "etherip 97\nencap 98\npim 103\nipcomp 108\nvrrp 112\nl2tp 115\nisis 124\nsctp 132\nfc 133\n"
    "mobility-header 135\nudplite 136\nmpls-in-ip 137\nmanet 138\nhip 139\nshim6 140\nwesp 141\n"
    "rohc 142\nethernet 143\n"
)

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


def check_chain_name(name, option="chain", user_chain=False):
    """A chain name iptables accepts; a user chain may not be a built-in chain or a target."""
    if not isinstance(name, str) or not name:
        raise SpecError(option, "a chain name is required")
    check_text(name, option)
    if len(name.encode("utf-8")) > MAX_CHAIN_NAME:
        raise SpecError(option, "chain name %r is %d bytes; at most %d are allowed"
                        % (name, len(name.encode("utf-8")), MAX_CHAIN_NAME))
    if not _CHAIN_RE.match(name):
        raise SpecError(option, "chain name %r must not start with '-' or '!' nor contain whitespace" % (name,))
    if user_chain and (name.upper() in TARGETS or name in BUILTIN_CHAIN_NAMES):
        raise SpecError(option, "%r is a built-in chain or target name; choose another name such as "
                                "MYSQL_WHITELIST" % (name,))
    return name


def check_name(name, option="name", max_len=64):
    if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > max_len:
        raise SpecError(option, "%r must be 1-%d characters of A-Z a-z 0-9 _ . @ -" % (name, max_len))
    return name


def check_int(value, option, low, high, what):
    """An integer (not a bool, not text) within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SpecError(option, "must be an integer from %d to %d (%s), got %r" % (low, high, what, value))
    return value


_TRUE = ("yes", "on", "1", "true", "y", "t")
_FALSE = ("no", "off", "0", "false", "n", "f")


def check_bool(value, option):
    """A boolean as Ansible's ``type: bool`` reads one (``"no"`` is False); anything else is refused.
    List items (iptables_ruleset) get no type conversion from Ansible, so they come through here."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SpecError(option, "must be a boolean (true/false, yes/no), got %r" % (value,))


def as_int(value):
    """A decimal text (``"4"``) as the int Ansible's ``type: int`` makes of it; anything else as it is."""
    if isinstance(value, str) and re.match(r"[0-9]+\Z", value.strip()):
        return int(value.strip())
    return value


def check_priority(value, option="priority"):
    return check_int(as_int(value), option, PRIORITY_RANGE[0], PRIORITY_RANGE[1], "lower first")


def check_table(table, option="table"):
    if table not in BUILTIN_CHAINS:
        raise SpecError(option, "must be one of %s, got %r" % (", ".join(BUILTIN_CHAINS), table))
    return table


def check_interface(value, option):
    if value is None:
        return None
    if not isinstance(value, str) or not _IFACE_RE.match(value):
        raise SpecError(option, "%r is not an interface name (at most 15 characters of A-Z a-z 0-9 _ . : @ - "
                                "and '+' as wildcard, '!' first to negate)" % (value,))
    return value


def parse_port(value, option="ports"):
    """80, '80' or '1000:2000' -> canonical text; 1-65535, a range low < high."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise SpecError(option, "%r is not a port" % (value,))
    text = str(value).strip().replace("-", ":") if not isinstance(value, int) else str(value)
    m = _PORT_RE.match(text)
    if not m:
        raise SpecError(option, "%r is not a port (1-65535) or a range like '1000:2000'" % (value,))
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) is not None else None
    for p in (lo, hi):
        if p is not None and not 1 <= p <= 65535:
            raise SpecError(option, "port %d in %r is outside 1-65535" % (p, value))
    if hi is not None:
        if hi <= lo:
            raise SpecError(option, "range %r is reversed or empty; write it low:high" % (value,))
        return "%d:%d" % (lo, hi)
    return str(lo)


def parse_ports(values, option="ports"):
    if values is None:
        return ()
    if not isinstance(values, (list, tuple)):
        values = [values]
    out = []
    for v in values:
        p = parse_port(v, option)
        if p not in out:
            out.append(p)
    slots = sum(2 if ":" in p else 1 for p in out)
    if slots > 15:
        raise SpecError(option, "at most 15 ports fit one multiport match, a range counting as two; got %d" % slots)
    return tuple(out)


def parse_etc_protocols(text):
    """/etc/protocols text -> {number: name}, the name iptables-save prints for a number."""
    out = {}
    for line in (text or "").split("\n"):
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[1].isascii() and words[1].isdigit():
            number = int(words[1])
            out.setdefault(number, words[0])
            for alias in words[2:]:
                out.setdefault(alias, number)
            out.setdefault(words[0], number)
    return out


class Protocols(object):
    """Protocol names and numbers as the target's iptables reads and prints them.

    ``etc``: parse_etc_protocols() of the target's /etc/protocols ({} when it has none, None
    for Debian's standard file): iptables-save prints a number by that file's name, else by
    its built-in name, else as the number.
    """

    def __init__(self, etc=None):
        self.etc = parse_etc_protocols(_STANDARD_PROTOCOLS) if etc is None else etc
        self.builtin = dict(BUILTIN_PROTOCOLS)

    def number(self, name):
        if name in self.builtin:
            return self.builtin[name]
        value = self.etc.get(name)
        return value if isinstance(value, int) else None

    def printed(self, number):
        name = self.etc.get(number)
        if isinstance(name, str):
            return name
        for known, num in BUILTIN_PROTOCOLS:
            if num == number:
                return known
        return str(number)

    def canonical(self, value, option="protocol"):
        """tcp, udp, icmp, all ... or a number 0-255 -> the name iptables-save prints; None for all.

        ``icmp`` stays ``icmp`` whatever the spelling (``icmpv6``, ``58``...): it means ICMP
        for IPv4 and ICMPv6 for IPv6, see protocol_for.
        """
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise SpecError(option, "%r is not a protocol name or number" % (value,))
        text = check_text(value, option).strip().lower()
        if text.isascii() and text.isdigit():
            number = int(text)
            if not 0 <= number <= 255:
                raise SpecError(option, "protocol number %s is outside 0-255" % text)
        else:
            number = self.number(text)
            if number is None:
                raise SpecError(option, "%r is not a protocol iptables knows: use tcp, udp, udplite, sctp, dccp, "
                                        "icmp, esp, ah, gre, all, a name from the target's /etc/protocols or a "
                                        "number 0-255" % (value,))
        if number == 0:
            return None
        if number in (1, 58):
            return "icmp"
        return self.printed(number)


def protocol_for(protocol, family):
    """A canonical protocol (Protocols.canonical) as iptables-save prints it for the family."""
    if protocol is None:
        return ""
    if protocol == "icmp":
        return "icmp" if family == "ipv4" else "ipv6-icmp"
    return protocol


def check_ctstates(values, option="ctstate"):
    states = []
    for v in values or ():
        s = str(v).strip().upper() if isinstance(v, str) else v
        if s not in CT_STATES:
            raise SpecError(option, "%r is not a connection state; valid: %s" % (v, ", ".join(CT_STATES)))
        states.append(s)
    return tuple(s for s in CT_STATES if s in states)


def check_log_prefix(value, option="log_prefix"):
    if value is None:
        return None
    text = check_text(value, option, MAX_LOG_PREFIX, "in a LOG prefix")
    if '"' in text:
        raise SpecError(option, "must not contain double quotes")
    return text


def check_log_level(value, option="log_level"):
    if value is None:
        return None
    text = str(value).strip().lower() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if text.isascii() and text.isdigit() and 0 <= int(text) <= 7:
        return int(text)
    if text in LOG_LEVELS:
        return LOG_LEVELS[text]
    raise SpecError(option, "%r is not a syslog level (0-7 or emerg, alert, crit, error, warning, notice, "
                            "info, debug)" % (value,))


def check_comment(value, option="comment", reserve=0):
    if value is None:
        return None
    return check_text(value, option, MAX_COMMENT - reserve, "beside the ownership tag")


def icmp_type(value, family, option="icmp_type"):
    """echo-request -> '8' (ICMP) / '128' (ICMPv6); numbers and type/code pass through."""
    table = ICMP_TYPES if family == "ipv4" else ICMPV6_TYPES
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SpecError(option, "%r is not an ICMP type" % (value,))
    text = str(value).strip()
    if re.match(r"(?:0|[1-9][0-9]{0,2})(?:/(?:0|[1-9][0-9]{0,2}))?\Z", text):
        if any(int(p) > 255 for p in text.split("/")):
            raise SpecError(option, "%r: type and code are 0-255" % (value,))
        return text
    if text in table:
        return table[text]
    raise SpecError(option, "%r is not an %s type: a number 0-255 without leading zeros, type/code (3/4), or "
                            "a name: %s" % (value, "ICMP" if family == "ipv4" else "ICMPv6", ", ".join(sorted(table))))


def reject_meaning(value, option="reject_with"):
    """A REJECT type in either family's words (or an alias) -> the (IPv4, IPv6) pair it means."""
    text = _REJECT_ALIASES.get(value, value) if isinstance(value, str) else value
    for pair in _REJECT_EQUIV:
        if text in pair:
            return pair
    valid = sorted(set(n for pair in _REJECT_EQUIV for n in pair if n))
    raise SpecError(option, "%r is not a REJECT type; valid: %s" % (value, ", ".join(valid)))


def reject_for(value, family, option="reject_with"):
    """The REJECT type in the family's words; a type with no equivalent there is an error."""
    if value is None:
        return DEFAULT_REJECT[family]
    out = reject_meaning(value, option)[0 if family == "ipv4" else 1]
    if out is None:
        raise SpecError(option, "%r has no %s equivalent; set ip_version to %s or choose another type"
                        % (value, "IPv4" if family == "ipv4" else "IPv6", "ipv6" if family == "ipv4" else "ipv4"))
    return out


def check_reject_with(value, fams, option="reject_with"):
    """A REJECT type valid in every family of ``fams``; returned as given (aliases resolved)."""
    if value is None:
        return None
    text = check_text(value, option).strip()
    for fam in fams:
        reject_for(text, fam, option)
    return _REJECT_ALIASES.get(text, text)


def tag_reserve(kind, name):
    """Characters the ownership tag takes in a comment, with the separating space."""
    return len(Tag(0, kind, name).comment()) + 1
