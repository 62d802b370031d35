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

With ``backend: ipset`` the sources are held in the family's owned ipset (``name`` for IPv4,
``name_v6`` for IPv6, _ipset naming) and the group is ``-m set --match-set SET src -j ACCEPT``
then the fallback; there is no chain. The set is converged (temporary set, ``ipset swap``)
before the rules change and a set no longer used is destroyed after, so switching backends
in one run never leaves a moment where the port is open to everyone or closed to a listed
source: the old accept stays until the transaction that replaces it with the new one.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from . import _ipset
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
BACKENDS = ("chain", "ipset")
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
    backend: str = "chain"
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
    backend = get("backend") or "chain"
    if backend not in BACKENDS:
        raise SpecError("backend", "must be chain or ipset, got %r" % (backend,))
    if backend == "ipset":
        _ipset.check_set_name(name, "name")
    if state == "absent":
        return Whitelist(name=name, state=state, families=fams, chain=chain, priority=priority, backend=backend)

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
    if backend == "ipset":
        for family in FAMILIES:
            if ANY_ADDRESS[0 if family == "ipv4" else 1] in split[family]:
                raise SpecError("sources", "an ipset cannot hold a /0 network (every address); with backend ipset "
                                           "list the networks, or use backend chain")
    return Whitelist(
        name=name, state=state, families=fams, chain=chain, priority=priority, protocol=protocol,
        ports=ports, ctstates=ctstates, state_match=state_match, fallback=fallback,
        sources=tuple((f, tuple(split[f])) for f in FAMILIES), backend=backend,
    )


def chain_specs(wl, family):
    """The owned chain's content for the family: the ownership marker, then one
    ``-s SOURCE -j ACCEPT`` per source."""
    return (owner_marker(KIND, wl.name),) + tuple(spec(family, source=s, jump="ACCEPT") for s in wl.sources_of(family))


def group_specs(wl, family):
    """The jump (chain backend) or the set's accept (ipset backend), then the fallback
    (iptables-save form), placed in ``wl.chain``."""
    match = dict(protocol=None if wl.protocol == "all" else wl.protocol, dports=wl.ports, ctstate=wl.ctstates,
                 state_match=wl.state_match)
    out = []
    if wl.backend == "ipset":
        out.append(spec(family, tag=wl.tag, jump="ACCEPT", match_set=_ipset.set_name(wl.name, family),
                        match_set_flags="src", **match))
    else:
        out.append(spec(family, tag=wl.tag, jump=wl.name, **match))
    if wl.fallback in ("DROP", "REJECT"):
        out.append(spec(family, tag=wl.tag, jump=wl.fallback, **match))
    return tuple(out)


def desired_for(wl, family):
    """The _plan.Desired of one family."""
    if wl.state == "absent":
        return Desired(absent=((TABLE, KIND, wl.name),),
                       drop_chains=(DropChain(TABLE, wl.name, wl.tag.key, wl.option + "name"),))
    if wl.backend == "ipset":
        return Desired(
            drop_chains=(DropChain(TABLE, wl.name, wl.tag.key, wl.option + "name"),),
            groups=(TaggedGroup(TABLE, wl.chain, wl.tag, group_specs(wl, family), wl.option),),
        )
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


def set_entry(source):
    """A source as iptables-save prints it -> as ipset save prints it (a host without its /32 or /128)."""
    return source[:-3] if source.endswith("/32") else source[:-4] if source.endswith("/128") else source


def set_source(entry):
    """An ipset entry -> the source as iptables-save prints it."""
    if "/" in entry:
        return entry
    return entry + ("/128" if ":" in entry else "/32")


def uses_sets(ruleset, wl):
    """Does the whitelist's group, as read, match ipsets (the ipset backend)?"""
    for chain in ruleset.table(TABLE).chains:
        for rule in chain.rules:
            if "--match-set " in rule.spec:
                tag = rule.tag
                if tag is not None and tag.key == wl.tag.key:
                    return True
    return False


class WhitelistResource(Resource):
    """One whitelist: its owned chain (or ipsets) and the tagged jump and fallback."""

    def __init__(self, wl):
        self.wl = wl
        self.live = {}          # set name -> entries, as read (ipset backend)
        self.had_sets = False   # the group as read matched sets: they may need destroying
        self.set_plan = None

    def desired(self, family, ruleset):
        if uses_sets(ruleset, self.wl):
            self.had_sets = True
        return desired_for(self.wl, family)

    def set_spec(self):
        """The _ipset.IpsetSpec of the ipset backend: one hash:net set per family, empty or not."""
        wl = self.wl
        sets = []
        for family in wl.families:
            entries = tuple(set_entry(s) for s in wl.sources_of(family))
            sets.append(_ipset.WantedSet(
                name=_ipset.set_name(wl.name, family), family=family, type="hash:net", entries=entries,
                maxelem=_ipset.auto_maxelem(len(entries)), hashsize=_ipset.auto_hashsize(len(entries))))
        return _ipset.IpsetSpec(name=wl.name, type="hash:net", sets=tuple(sets), option=wl.option)

    def guard_sets(self, live):
        """What the lockout guard should see in this whitelist's sets after the run: the sources
        (ipset backend), or no set (chain backend, absent: they are destroyed)."""
        wl = self.wl
        if wl.state == "present" and wl.backend == "ipset":
            return dict((s.name, (s.type, frozenset(s.entries))) for s in self.set_spec().sets)
        return dict((_ipset.set_name(wl.name, f), None) for f in wl.families)

    def before_apply(self, nf, check_mode):
        """ipset backend: converge the sets before the rules that match them (_transaction hook)."""
        from . import _ipset_apply  # runs processes: imported where the pure code needs none
        wl = self.wl
        if wl.state != "present" or wl.backend != "ipset":
            return None
        spec_ = self.set_spec()
        sets = _ipset_apply.read(nf, [s.name for s in spec_.sets])
        self.live = dict((s.name, sets[s.name].entries) for s in spec_.sets if s.name in sets)
        self.set_plan = _ipset.plan(spec_, sets)
        untestable = [c.family for c in self.set_plan.changes if c.action == "create"]
        if self.set_plan.changed and not check_mode:
            _ipset_apply.apply(nf, self.set_plan, wl.option + "backend")
            untestable = []
        return self.set_plan.changed, untestable

    def after_apply(self, nf, check_mode, armed):
        """Chain backend or absent, after the rules stopped matching the sets: destroy them (not while
        a rollback may need them back)."""
        from . import _ipset_apply
        from ._rollback import pending
        wl = self.wl
        if not self.had_sets or (wl.state == "present" and wl.backend == "ipset"):
            return None
        names = tuple(_ipset.set_name(wl.name, f) for f in wl.families)
        sets = _ipset_apply.read(nf, names)
        owned = _ipset.owned_names(sets)
        gone = _ipset.IpsetSpec(name=wl.name, state="absent", absent=tuple(n for n in names if n in owned))
        self.set_plan = _ipset.plan(gone, sets)
        self.live = dict((n, sets[n].entries) for n in names if n in owned)
        if not self.set_plan.changed or check_mode or armed or pending():
            return self.set_plan.changed and check_mode, ()
        _ipset_apply.apply(nf, self.set_plan, wl.option + "backend")
        return True, ()

    def current_sources(self, family, ruleset):
        chain = ruleset.table(TABLE).chain(self.wl.name)
        if chain is not None:
            return chain_sources(chain, family)
        entries = self.live.get(_ipset.set_name(self.wl.name, family))
        return sorted(set_source(e) for e in entries) if entries else []

    def report(self, family, ruleset, plan):
        wl = self.wl
        current = self.current_sources(family, ruleset)
        wanted = list(wl.sources_of(family)) if wl.state == "present" else []
        added, removed = source_changes(current, wanted)
        rules = ["-A %s %s" % (wl.chain, s) for s in group_specs(wl, family)] if wl.state == "present" else []
        out = dict(count=len(wanted), added=added, removed=removed, rules=rules)
        if self.set_plan is not None:
            change = self.set_plan.change_of(family)
            if change is not None:
                out["set"] = dict(name=change.name, action=change.action)
        return out
