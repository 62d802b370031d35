# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Rule options -> iptables tokens in iptables-save's canonical order; validation.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
Pure code: no Ansible imports, no processes.

Every builder returns text exactly as iptables-save (1.8.x, nft and legacy) prints it,
so a rendered rule compares equal to the live one by plain string comparison. The
round-trip corpus in tests/integration proves each form against the real binaries.
"""

from __future__ import annotations

import ipaddress
import re
import socket

from ._model import BUILTIN_CHAINS, Tag, quote

FAMILIES = ("ipv4", "ipv6")
IP_VERSIONS = ("ipv4", "ipv6", "both")
TARGETS = ("ACCEPT", "DROP", "REJECT", "RETURN", "LOG", "QUEUE", "NFQUEUE", "MASQUERADE", "SNAT", "DNAT",
           "REDIRECT", "MARK", "CONNMARK", "TRACE", "NOTRACK", "CT", "AUDIT", "TCPMSS", "TEE", "NFLOG")
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

_CHAIN_RE = re.compile(r"^[^\s!-][^\s]*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]+$")
_IFACE_RE = re.compile(r"^!?[A-Za-z0-9_.:@+-]{1,15}$")
_PORT_RE = re.compile(r"^(\d+)(?::(\d+))?$")


class SpecError(ValueError):
    """Invalid user input; the message names the option and what would be valid."""

    def __init__(self, option, message):
        super(SpecError, self).__init__("%s: %s" % (option, message))
        self.option = option


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
    text = str(value).strip()
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


def check_chain_name(name, option="chain", user_chain=False):
    """A chain name iptables accepts; a user chain may not be a built-in chain or a target."""
    if not isinstance(name, str) or not name:
        raise SpecError(option, "a chain name is required")
    if len(name) > MAX_CHAIN_NAME:
        raise SpecError(option, "chain name %r is %d characters; at most %d are allowed"
                        % (name, len(name), MAX_CHAIN_NAME))
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


def check_priority(value, option="priority"):
    try:
        prio = int(value)
    except (TypeError, ValueError):
        prio = -1
    if isinstance(value, bool) or not PRIORITY_RANGE[0] <= prio <= PRIORITY_RANGE[1]:
        raise SpecError(option, "must be an integer from 0 to 999, got %r" % (value,))
    return prio


def check_table(table, option="table"):
    if table not in BUILTIN_CHAINS:
        raise SpecError(option, "must be one of %s, got %r" % (", ".join(BUILTIN_CHAINS), table))
    return table


def check_interface(value, option):
    if value is None:
        return None
    if not _IFACE_RE.match(str(value)):
        raise SpecError(option, "%r is not an interface name (at most 15 characters, '+' as wildcard)" % (value,))
    return str(value)


def parse_port(value, option="ports"):
    """80, '80' or '1000:2000' -> canonical text; 1-65535, a range low < high."""
    if isinstance(value, bool):
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
    if len(out) > 15:
        raise SpecError(option, "at most 15 ports or ranges fit one multiport match, got %d" % len(out))
    return tuple(out)


def check_protocol(value, option="protocol"):
    """tcp, udp, icmp, all ... or a protocol number 0-255; lower-cased."""
    text = str(value).strip().lower()
    if text.isdigit():
        if not 0 <= int(text) <= 255:
            raise SpecError(option, "protocol number %s is outside 0-255" % text)
        return text
    if not re.match(r"^[a-z][a-z0-9-]*$", text):
        raise SpecError(option, "%r is not a protocol name or number" % (value,))
    return text


def protocol_for(protocol, family):
    """The protocol as iptables-save prints it for the family; '' for all."""
    if protocol in (None, "all", "0"):
        return ""
    if protocol in ("icmp", "icmpv6", "ipv6-icmp", "1", "58"):
        return "icmp" if family == "ipv4" else "ipv6-icmp"
    return {"6": "tcp", "17": "udp", "132": "sctp", "47": "gre", "50": "esp", "51": "ah"}.get(protocol, protocol)


def check_ctstates(values, option="ctstate"):
    states = []
    for v in values or ():
        s = str(v).strip().upper()
        if s not in CT_STATES:
            raise SpecError(option, "%r is not a connection state; valid: %s" % (v, ", ".join(CT_STATES)))
        states.append(s)
    return tuple(s for s in CT_STATES if s in states)


def check_log_prefix(value, option="log_prefix"):
    if value is None:
        return None
    text = str(value)
    if len(text) > MAX_LOG_PREFIX:
        raise SpecError(option, "%r is %d characters; the kernel allows at most %d"
                        % (text, len(text), MAX_LOG_PREFIX))
    if "\n" in text or '"' in text:
        raise SpecError(option, "must not contain newlines or double quotes")
    return text


def check_log_level(value, option="log_level"):
    if value is None:
        return None
    text = str(value).strip().lower()
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text)
    if text in LOG_LEVELS:
        return LOG_LEVELS[text]
    raise SpecError(option, "%r is not a syslog level (0-7 or emerg, alert, crit, error, warning, notice, "
                            "info, debug)" % (value,))


def check_comment(value, option="comment", reserve=0):
    if value is None:
        return None
    text = str(value)
    if "\n" in text:
        raise SpecError(option, "must be a single line")
    if len(text) + reserve > MAX_COMMENT:
        raise SpecError(option, "is %d characters; at most %d fit beside the ownership tag"
                        % (len(text), MAX_COMMENT - reserve))
    return text


def icmp_type(value, family, option="icmp_type"):
    """echo-request -> '8' (ICMP) / '128' (ICMPv6); numbers and type/code pass through."""
    table = ICMP_TYPES if family == "ipv4" else ICMPV6_TYPES
    text = str(value).strip()
    if re.match(r"^\d{1,3}(/\d{1,3})?$", text):
        if any(int(p) > 255 for p in text.split("/")):
            raise SpecError(option, "%r: type and code are 0-255" % (value,))
        return text
    if text in table:
        return table[text]
    raise SpecError(option, "%r is not an %s type name; valid names: %s"
                    % (value, "ICMP" if family == "ipv4" else "ICMPv6", ", ".join(sorted(table))))


# --- canonical match builders: each returns a list of already-quoted words ---

def match_ports(protocol, dports=(), sports=()):
    """-m tcp --sport/--dport for single ports, -m multiport --sports/--dports for lists.

    udplite has no match of its own (``-m udplite`` does not exist): its ports always go
    through multiport, which supports it.
    """
    words = []
    single_s = len(sports) == 1
    single_d = len(dports) == 1
    if (single_s or not sports) and (single_d or not dports) and (sports or dports) and protocol != "udplite":
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


def match_ctstate(states, match="conntrack"):
    if not states:
        return []
    if match == "state":
        return ["-m", "state", "--state", ",".join(states)]
    return ["-m", "conntrack", "--ctstate", ",".join(states)]


def match_icmp(type_text, family):
    if family == "ipv4":
        return ["-m", "icmp", "--icmp-type", type_text]
    return ["-m", "icmp6", "--icmpv6-type", type_text]


def match_comment(text):
    return ["-m", "comment", "--comment", quote(text)]


def match_limit(rate, burst=None):
    words = ["-m", "limit", "--limit", rate]
    if burst is not None and int(burst) != 5:
        words += ["--limit-burst", str(int(burst))]
    return words


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


def target_log(prefix=None, level=None):
    words = ["-j", "LOG"]
    if prefix:
        words += ["--log-prefix", quote(prefix)]
    if level is not None and int(level) != 4:
        words += ["--log-level", str(int(level))]
    return words


def target_reject(family, reject_with=None):
    return ["-j", "REJECT", "--reject-with", reject_with or DEFAULT_REJECT[family]]


def build_spec(family, source=None, destination=None, in_interface=None, out_interface=None,
               protocol=None, matches=(), tag=None, comment=None, target=()):
    """Assemble one rule spec in canonical order.

    ``-s -d -i -o -p`` first, then the matches as given, then the ownership tag comment,
    then the target words. ``tag`` is a _model.Tag; ``comment`` free text kept beside it.
    """
    words = []
    # iptables-save omits a match on every address (0.0.0.0/0, ::/0).
    if source and source not in ANY_ADDRESS:
        words += ["-s", source]
    if destination and destination not in ANY_ADDRESS:
        words += ["-d", destination]
    for opt, iface in (("-i", in_interface), ("-o", out_interface)):
        if iface:
            if iface.startswith("!"):
                words += ["!", opt, iface[1:]]
            else:
                words += [opt, iface]
    proto = protocol_for(protocol, family) if protocol else ""
    if proto:
        words += ["-p", proto]
    words += list(matches)
    if tag is not None:
        words += match_comment(tag.comment(comment))
    elif comment:
        words += match_comment(comment)
    words += list(target)
    return " ".join(words)


def tag_reserve(kind, name):
    """Characters the ownership tag takes in a comment, with the separating space."""
    return len(Tag(0, kind, name).comment()) + 1
