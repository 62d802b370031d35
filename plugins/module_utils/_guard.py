# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lockout guard: would a ruleset still carry the operator's SSH connection?

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
Pure code: no Ansible imports, no processes.

The guard follows the whole SSH exchange (``SSH_CONNECTION``) through every table and
chain it passes, as the kernel does:

- the SYN of a new connection (conntrack NEW): raw, mangle and nat PREROUTING, mangle,
  filter, security and nat INPUT;
- the client's packets of the established connection: the same without nat;
- the server's replies (ESTABLISHED, server to client): raw, mangle, filter and security
  OUTPUT, mangle POSTROUTING;
- for IPv6, neighbour discovery (ICMPv6 135 and 136, in and out, UNTRACKED, measured on this
  project's kernels), without which IPv6 stops when the neighbour cache expires.

The exchange is carried (ACCEPT) only when every packet is accepted by every chain on
its path (an ACCEPT in raw or mangle only ends that table's chain). Rules are evaluated
in order, jumps followed. Every match is three-valued (the option table says what each
option concludes, _options.guard_match): it surely matches, it surely does not, or the
guard does not know (an interface other than ``lo``, a match it does not understand).
An unknown match never proves acceptance: an ACCEPT behind it is not relied on, and a
DROP behind it makes the verdict UNPROVEN. A ``recent`` limit counts the operator's own
packet: a ``--set`` earlier on the path adds one hit, so ``--hitcount 1`` after it
matches (drops the operator); higher counts assume the operator is under the limit.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, replace

from ._options import CONTINUING_TARGETS, both, guard_effects, guard_match

ACCEPT = "ACCEPT"
DROP = "DROP"
UNPROVEN = "UNPROVEN"
_RETURN = "RETURN"
_MAX_DEPTH = 64


@dataclass(frozen=True)
class Packet:
    """A packet of the operator's SSH connection to check.

    ``state`` is its conntrack state (NEW for the SYN, ESTABLISHED after), ``syn`` whether
    it is a SYN, ``direction`` 'in' (client to server) or 'out' (the server's replies).
    """

    family: str
    source: object       # ipaddress address
    destination: object  # ipaddress address
    dport: int
    sport: int = 40000
    state: str = "NEW"
    syn: bool = True
    direction: str = "in"
    protocol: str = "tcp"
    icmp_type: int = None

    @property
    def loopback(self):
        return self.source is not None and self.source.is_loopback

    def describe(self):
        return "a NEW TCP connection from %s to %s port %d" % (self.source, self.destination, self.dport)


def ssh_packet(ssh_connection):
    """SSH_CONNECTION ('client_ip client_port server_ip server_port') -> Packet, or None."""
    parts = (ssh_connection or "").split()
    if len(parts) != 4:
        return None
    try:
        src = ipaddress.ip_address(parts[0].split("%")[0])
        dst = ipaddress.ip_address(parts[2].split("%")[0])
        sport, dport = int(parts[1]), int(parts[3])
    except ValueError:
        return None
    if getattr(src, "ipv4_mapped", None) is not None:
        src, dst = src.ipv4_mapped, getattr(dst, "ipv4_mapped", None) or dst
    return Packet("ipv4" if src.version == 4 else "ipv6", src, dst, dport, sport)


def match_rule(parts, packet, walk=None):
    """(matches: True/False/None, target, target is a goto) for one parsed rule (_model.RuleParts).

    Every option asks the option table (_options.guard_match); one it does not know makes
    the rule's match unknown. ``walk`` carries what earlier rules on the packet's path did
    (the recent lists it was added to).
    """
    walk = walk if walk is not None else {"recent": set()}
    result = True
    for arg in parts.head.options:
        result = both(result, guard_match("", arg, packet))
    for m in parts.matches:
        for arg in m.options:
            result = both(result, guard_match(m.module, arg, packet, m, walk))
    if result is not False:
        guard_effects(parts, walk)
    return result, parts.target, parts.goto


# The path of each packet of the exchange: (table, built-in chain) in the kernel's order.
PATH_IN_NEW = (("raw", "PREROUTING"), ("mangle", "PREROUTING"), ("nat", "PREROUTING"), ("mangle", "INPUT"),
               ("filter", "INPUT"), ("security", "INPUT"), ("nat", "INPUT"))
PATH_IN = tuple(step for step in PATH_IN_NEW if step[0] != "nat")
PATH_OUT = (("raw", "OUTPUT"), ("mangle", "OUTPUT"), ("filter", "OUTPUT"), ("security", "OUTPUT"),
            ("mangle", "POSTROUTING"))
PATH_TABLES = tuple(sorted(set(t for t, _c in PATH_IN_NEW + PATH_OUT)))
# Targets that change what later rules see of the connection: the guard does not model them.
_STATE_CHANGING = ("NOTRACK", "CT", "DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP", "TPROXY")


def exchange(packet):
    """The packets of the operator's SSH exchange with their paths: [(what, Packet, path)]."""
    established = replace(packet, state="ESTABLISHED", syn=False)
    reply = replace(packet, source=packet.destination, destination=packet.source, sport=packet.dport,
                    dport=packet.sport, state="ESTABLISHED", syn=False, direction="out")
    packets = [("the SYN of a new connection", packet, PATH_IN_NEW),
               ("the client's packets of the established connection", established, PATH_IN),
               ("the server's replies", reply, PATH_OUT)]
    if packet.family == "ipv6" and not packet.loopback:
        # IPv6 finds its neighbours with ICMPv6 solicitations (135) and advertisements (136), in
        # both directions; conntrack leaves them UNTRACKED, and their addresses may be link-local
        # or multicast, so the guard does not know them. Dropped, IPv6 stops once the neighbour
        # cache expires, minutes after the change.
        for kind in (135, 136):
            nd = replace(packet, source=None, destination=None, sport=0, dport=0, state="UNTRACKED", syn=False,
                         protocol="ipv6-icmp", icmp_type=kind)
            packets.append(("IPv6 neighbour discovery (ICMPv6 type %d in)" % kind, nd, PATH_IN))
            packets.append(("IPv6 neighbour discovery (ICMPv6 type %d out)" % kind, replace(nd, direction="out"),
                            PATH_OUT))
    return packets


def exchange_verdict(tables, packet, sets=None):
    """(ACCEPT | DROP | UNPROVEN, where) for the whole exchange; ``tables``: name -> _model.Table;
    ``sets`` the SetView a ``--match-set`` is looked up in (None: every set match is unknown)."""
    result = ACCEPT
    where = None
    for what, pkt, path in exchange(packet):
        walk = {"recent": set(), "sets": sets}
        for tname, chain in path:
            table = tables.get(tname)
            if table is None:
                continue
            got = verdict(table, pkt, chain, walk)
            if got == DROP:
                return DROP, "%s %s would drop %s" % (tname, chain, what)
            if got == UNPROVEN and result == ACCEPT:
                result, where = UNPROVEN, "%s %s may not accept %s" % (tname, chain, what)
    return result, where


def check(ruleset, plan, packet, sets_before=None, sets_after=None):
    """(before, after, where) for the operator's exchange: ``ruleset`` as it is with the ipsets
    ``sets_before``, and after ``plan`` (None: the rules stay) with ``sets_after``."""
    before = dict((t, ruleset.table(t)) for t in PATH_TABLES)
    after = before if plan is None else dict((t, plan.table_after(table)) for t, table in before.items())
    verdict_before, _where = exchange_verdict(before, packet, sets_before)
    verdict_after, where = exchange_verdict(after, packet, sets_after)
    return verdict_before, verdict_after, where


def uses_sets(tables):
    """Does a rule on the exchange's path match an ipset (``tables``: _model.Tables)?"""
    return any("--match-set " in rule.spec for table in tables if table is not None
               for chain in table.chains for rule in chain.rules)


class SetView(object):
    """The ipsets the guard can read: ``{name: (type, entries)}`` of the collection's own sets (it
    knows what they hold: no ``nomatch`` entries, no timeouts). ``member`` answers whether an
    address is in a set: True, False, or None for a set it cannot judge (another program's, a
    type with ports, a set the task destroys). Each consulted set is indexed once: per prefix
    length, the set of network numbers, so a lookup costs one probe per prefix length."""

    def __init__(self, sets):
        self.sets = dict(sets)
        self._index = {}

    def changed(self, changes):
        """A new view with ``changes`` ({name: (type, entries) or None for gone}) applied."""
        sets = dict(self.sets)
        for name, value in changes.items():
            if value is None:
                sets.pop(name, None)
            else:
                sets[name] = value
        return SetView(sets)

    def ranges(self, version):
        """(first, last) integer address ranges of every entry of the family ``version``: the
        boundaries a range of sources must be split at to be judged address by address."""
        out = []
        bits = 32 if version == 4 else 128
        for name in self.sets:
            for length, nets in self._indexed(name, version).items():
                shift = bits - length
                out.extend((n << shift, ((n + 1) << shift) - 1) for n in nets)
        return out

    def _indexed(self, name, version):
        key = (name, version)
        index = self._index.get(key)
        if index is None:
            got = self.sets[name]
            index = self._index[key] = _set_index(got[1], version) if got[0] in ("hash:ip", "hash:net") else {}
        return index

    def member(self, name, address):
        got = self.sets.get(name)
        if got is None or address is None or got[0] not in ("hash:ip", "hash:net"):
            return None
        index = self._indexed(name, address.version)
        value = int(address)
        bits = address.max_prefixlen
        return any((value >> (bits - length)) in nets for length, nets in index.items())


def _set_index(entries, version):
    """{prefix length: {network number >> host bits}} of the entries of one family."""
    bits, family, v6 = (32, socket.AF_INET, False) if version == 4 else (128, socket.AF_INET6, True)
    index = {}
    for entry in entries:
        text, _sep, length = entry.partition("/")
        if (":" in text) != v6:
            continue
        try:
            value = int.from_bytes(socket.inet_pton(family, text), "big")
        except (OSError, ValueError):
            continue
        n = int(length) if length.isdigit() and int(length) <= bits else bits
        index.setdefault(n, set()).add(value >> (bits - n))
    return index


def verdict(table, packet, chain="INPUT", walk=None):
    """ACCEPT, DROP or UNPROVEN for ``packet`` entering ``chain`` of a _model.Table."""
    chains = dict((c.name, c) for c in table.chains)
    if chain not in chains:
        return ACCEPT  # no such chain: nothing filters
    result = _walk(chains, chain, packet, 0, walk if walk is not None else {"recent": set()})
    if result == _RETURN:
        policy = chains[chain].policy or "ACCEPT"
        return ACCEPT if policy == "ACCEPT" else DROP
    return result


def _walk(chains, name, packet, depth, walk):
    if depth > _MAX_DEPTH:
        return UNPROVEN
    chain = chains.get(name)
    if chain is None:
        return UNPROVEN
    maybe_accepted = False  # an earlier unknown jump may already have accepted
    for rule in chain.rules:
        matched, target, goto = match_rule(rule.parts, packet, walk)
        if matched is False:
            continue
        if target in _STATE_CHANGING:
            return UNPROVEN
        if target is None or target in CONTINUING_TARGETS:
            continue
        if target == "ACCEPT":
            if matched:
                return ACCEPT
            continue  # an ACCEPT behind an unknown match proves nothing
        if target in ("DROP", "REJECT"):
            if matched and not maybe_accepted:
                return DROP
            return UNPROVEN
        if target == "RETURN":
            if matched:
                return _RETURN
            return UNPROVEN
        if target in chains:
            sub = _walk(chains, target, packet, depth + 1, walk)
            if matched:
                if sub == _RETURN and not goto:
                    continue
                if sub == _RETURN and goto:
                    return _RETURN
                return sub
            # unknown whether we enter it: both ways must agree to stay proven
            if sub in (DROP, UNPROVEN):
                return UNPROVEN
            if sub == ACCEPT:
                maybe_accepted = True
            continue
        # a terminating target the guard does not model (NFQUEUE, a missing chain...)
        return UNPROVEN
    return _RETURN
