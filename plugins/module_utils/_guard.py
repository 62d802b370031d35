# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lockout guard: would a ruleset still accept a NEW SSH connection from the operator?

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
Pure code: no Ansible imports, no processes.

The packet is a TCP SYN (conntrack state NEW) from the current SSH client to the SSH
server address and port (``SSH_CONNECTION``), entering ``filter INPUT``. Rules are
evaluated in order, jumps followed. Every match is three-valued: it surely matches, it
surely does not, or the guard does not know (an interface other than ``lo``, a match it
does not understand). An unknown match never proves acceptance: an ACCEPT behind it is
not relied on, and a DROP behind it counts as dropping. ``-m recent --rcheck/--update``
are taken as not matching: the operator is assumed not to be over the rate limit.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ._options import CONTINUING_TARGETS, guard_match

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

    @property
    def loopback(self):
        return self.source.is_loopback

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


def _and(a, b):
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def match_rule(parts, packet):
    """(matches: True/False/None, target, target is a goto) for one parsed rule (_model.RuleParts).

    Every option asks the option table (_options.guard_match); one it does not know makes
    the rule's match unknown.
    """
    result = True
    for arg in parts.head.options:
        result = _and(result, guard_match("", arg, packet))
    for m in parts.matches:
        for arg in m.options:
            result = _and(result, guard_match(m.module, arg, packet))
    return result, parts.target, parts.goto


def verdict(table, packet, chain="INPUT"):
    """ACCEPT, DROP or UNPROVEN for ``packet`` entering ``chain`` of a _model.Table."""
    chains = dict((c.name, c) for c in table.chains)
    if chain not in chains:
        return ACCEPT  # no such chain: nothing filters
    result = _walk(chains, chain, packet, 0)
    if result == _RETURN:
        policy = chains[chain].policy or "ACCEPT"
        return ACCEPT if policy == "ACCEPT" else DROP
    return result


def _walk(chains, name, packet, depth):
    if depth > _MAX_DEPTH:
        return UNPROVEN
    chain = chains.get(name)
    if chain is None:
        return UNPROVEN
    maybe_accepted = False  # an earlier unknown jump may already have accepted
    for rule in chain.rules:
        matched, target, goto = match_rule(rule.parts, packet)
        if matched is False or target is None or target in CONTINUING_TARGETS:
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
            sub = _walk(chains, target, packet, depth + 1)
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


def check(current_table, after_table, packet):
    """(before, after) verdicts for the operator's connection."""
    return verdict(current_table, packet), verdict(after_table, packet)
