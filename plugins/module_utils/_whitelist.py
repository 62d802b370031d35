# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_whitelist options -> validated Whitelist -> per-family _plan.Desired.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
Pure code: no Ansible imports, no processes.

A whitelist is two things per family (DESIGN §2):

- an *owned chain* ``name`` holding exactly ``-s SOURCE -j ACCEPT`` per listed source of
  that family, in the given order (replaced whole, in the same transaction, when it differs);
- a *tagged group* ``ironwall:<prio>:whitelist:<name>`` of two rules in ``chain`` (INPUT by
  default): the jump for new connections to the service port(s), then the fallback
  (DROP / REJECT) with the same match, so a source the chain does not accept is refused.

A family with no source still gets the (empty) chain, the jump and the fallback: the port
is closed there. ``state: absent`` removes the group and drops the chain together.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from ._errors import SpecError
from ._model import Tag, owner_marker
from ._options import BY_KEY, Ctx, _aslist, read_rule, spec
from ._plan import Desired, DropChain, OwnedChain, Resource, TaggedGroup
from ._rulespec import (
    ANY_ADDRESS, FAMILIES, PORT_PROTOCOLS, Protocols, check_chain_name, check_ctstates, check_name, check_priority,
    families, parse_ports, split_addresses)

_AF = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}

KIND = "whitelist"
TABLE = "filter"
DEFAULT_PRIORITY = 500
DEFAULT_CHAIN = "INPUT"
DEFAULT_CTSTATE = ("NEW",)
STATES = ("present", "absent")
FALLBACKS = ("DROP", "REJECT", "none")
PROTOCOLS = PORT_PROTOCOLS + ("icmp", "all")
# Chains a packet to this host passes, where a jump to the whitelist makes sense.
NO_JUMP_CHAINS = ("OUTPUT", "POSTROUTING")


@dataclass(frozen=True)
class Whitelist:
    """One validated whitelist. ``sources``: ((family, (canonical, ...)), ...)."""

    name: str
    state: str = "present"
    families: tuple = FAMILIES
    chain: str = DEFAULT_CHAIN
    priority: int = DEFAULT_PRIORITY
    protocol: str = "tcp"
    ports: tuple = ()
    ctstates: tuple = DEFAULT_CTSTATE
    state_match: str = "conntrack"
    fallback: str = "DROP"
    sources: tuple = ()
    option: str = field(default="", compare=False)  # "whitelists[2]." in a list, for error messages

    @property
    def tag(self):
        return Tag(self.priority, KIND, self.name)

    def sources_of(self, family):
        return dict(self.sources).get(family, ())


def _canonical_host(text):
    """(family, canonical) of a plain host address, or None when it needs the full parser.

    inet_pton/inet_ntop are C and print what iptables-save prints; a CIDR or anything
    inet_pton rejects goes to _rulespec.parse_address instead.
    """
    if "/" in text:
        return None
    if ":" in text:
        family = "ipv6"
    else:
        family = "ipv4"
    af = _AF[family]
    try:
        return family, socket.inet_ntop(af, socket.inet_pton(af, text)) + ("/32" if family == "ipv4" else "/128")
    except (OSError, ValueError):
        return None


def split_sources(values, allowed_families, option="sources"):
    """Like _rulespec.split_addresses (same results, same errors), about 10 times faster for hosts."""
    out = dict((f, []) for f in FAMILIES)
    seen = set()
    for value in values:
        text = value.strip() if isinstance(value, str) else value
        fast = _canonical_host(text) if isinstance(text, str) else None
        if fast is None or fast[0] not in allowed_families:
            # The full parser, which also raises the error naming the option.
            one = split_addresses([value], option, allowed_families)
            fast = ("ipv4", one["ipv4"][0]) if one["ipv4"] else ("ipv6", one["ipv6"][0])
        if fast[1] not in seen:
            seen.add(fast[1])
            out[fast[0]].append(fast[1])
    return out


def validate(params, protocols=None):
    """The module's params (a dict) -> Whitelist; SpecError names the offending option."""
    get = params.get
    name = check_chain_name(get("name"), "name", user_chain=True)
    check_name(name, "name", max_len=28)
    state = get("state") or "present"
    if state not in STATES:
        raise SpecError("state", "must be present or absent, got %r" % (state,))
    fams = families(get("ip_version") or "both")
    chain = check_chain_name(get("chain") or DEFAULT_CHAIN, "chain")
    if chain == name:
        raise SpecError("chain", "the jump to %s cannot be placed in %s itself; use INPUT or another chain"
                        % (name, name))
    if chain in NO_JUMP_CHAINS:
        raise SpecError("chain", "%s sees outgoing packets, whose source is this host; use INPUT, FORWARD or "
                                 "a user chain" % chain)
    priority = check_priority(DEFAULT_PRIORITY if get("priority") is None else get("priority"))
    if state == "absent":
        return Whitelist(name=name, state=state, families=fams, chain=chain, priority=priority)

    protocol = (protocols or Protocols()).canonical(get("protocol") or "tcp", "protocol") or "all"
    if protocol not in PROTOCOLS:
        raise SpecError("protocol", "must be one of %s, got %r" % (", ".join(PROTOCOLS), get("protocol")))
    raw_ports = _aslist(get("ports"))
    if protocol in PORT_PROTOCOLS:
        if not raw_ports:
            raise SpecError("ports", "give the service port(s) to protect, e.g. [3306]")
        ports = parse_ports(raw_ports, "ports")
    elif raw_ports:
        raise SpecError("ports", "protocol %s has no ports; remove ports or use tcp, udp, udplite, sctp or dccp"
                        % protocol)
    else:
        ports = ()

    ctstate = get("ctstate")
    ctstates = DEFAULT_CTSTATE if ctstate is None else check_ctstates(_aslist(ctstate), "ctstate")
    state_match = BY_KEY["state_match"].check(get("state_match"), {"ctstate": ctstates}, Ctx())
    fallback = get("fallback") or "DROP"
    if fallback not in FALLBACKS:
        raise SpecError("fallback", "must be DROP, REJECT or none, got %r" % (fallback,))

    split = split_sources(_aslist(get("sources")), fams)
    return Whitelist(
        name=name, state=state, families=fams, chain=chain, priority=priority, protocol=protocol,
        ports=ports, ctstates=ctstates, state_match=state_match, fallback=fallback,
        sources=tuple((f, tuple(split[f])) for f in FAMILIES),
    )


def chain_specs(wl, family):
    """The owned chain's content for the family: the ownership marker, then one
    ``-s SOURCE -j ACCEPT`` per source."""
    return (owner_marker(KIND, wl.name),) + tuple(spec(family, source=s, jump="ACCEPT") for s in wl.sources_of(family))


def group_specs(wl, family):
    """The jump and the fallback (iptables-save form) placed in ``wl.chain``."""
    match = dict(protocol=None if wl.protocol == "all" else wl.protocol, dports=wl.ports, ctstate=wl.ctstates,
                 state_match=wl.state_match)
    jumps = [wl.name] + ([wl.fallback] if wl.fallback in ("DROP", "REJECT") else [])
    return tuple(spec(family, tag=wl.tag, jump=j, **match) for j in jumps)


def desired_for(wl, family):
    """The _plan.Desired of one family."""
    if wl.state == "absent":
        return Desired(absent=((TABLE, KIND, wl.name),),
                       drop_chains=(DropChain(TABLE, wl.name, wl.tag.key, wl.option + "name"),))
    return Desired(
        chains=(OwnedChain(TABLE, wl.name, chain_specs(wl, family), wl.tag.key, wl.option + "name"),),
        groups=(TaggedGroup(TABLE, wl.chain, wl.tag, group_specs(wl, family), wl.option),),
    )


def chain_sources(chain, family="ipv4"):
    """The sources an existing whitelist chain accepts, in order; foreign lines as they are."""
    out = []
    if chain is None:
        return out
    for rule in chain.rules[1:] if chain.owner else chain.rules:
        values, complete = read_rule(rule.parts)
        source = values.get("source") or ANY_ADDRESS[0 if family == "ipv4" else 1]
        if complete and rule.target == "ACCEPT" and set(values) <= {"source", "jump"} \
                and not source.startswith("!"):
            out.append(source)
        else:
            out.append(rule.spec)
    return out


def source_changes(current, wanted):
    """(added, removed): entries of ``wanted`` not in ``current`` and vice versa, order kept."""
    cur = set(current)
    want = set(wanted)
    return [s for s in wanted if s not in cur], [s for s in current if s not in want]


class WhitelistResource(Resource):
    """One whitelist: its owned chain and the tagged jump and fallback."""

    def __init__(self, wl):
        self.wl = wl

    def desired(self, family, ruleset):
        return desired_for(self.wl, family)

    def report(self, family, ruleset, plan):
        wl = self.wl
        current = chain_sources(ruleset.table(TABLE).chain(wl.name), family)
        wanted = list(wl.sources_of(family)) if wl.state == "present" else []
        added, removed = source_changes(current, wanted)
        rules = ["-A %s %s" % (wl.chain, s) for s in group_specs(wl, family)] if wl.state == "present" else []
        return dict(count=len(wanted), added=added, removed=removed, rules=rules)
