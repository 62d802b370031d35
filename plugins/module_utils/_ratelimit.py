# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_ratelimit options -> validated RateLimit -> per-family _plan.Desired.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
Pure code: no Ansible imports, no processes, no file reads. The module reads the kernel's
``xt_recent`` parameter and passes it in (``hitcount_ceiling``).

One limit = one OWNED chain (``RATELIMIT_<NAME>``) holding, in order::

    -s <exempt> -j ACCEPT|RETURN                      (one per exempt source of the family)
    -m recent --set --name L --mask M --rsource       (record every new connection)
    -m recent --rcheck --seconds S --hitcount H [--rttl] --name L ... [-m limit ...] -j LOG ...
    [-p tcp] -m recent --rcheck|--update ... -j DROP|REJECT ...
    -j ACCEPT|RETURN

plus one TAGGED jump ``ironwall:<prio>:ratelimit:<name>`` from ``chain`` for new
connections to ``ports``. Measured facts this relies on (tests/integration prove them):

- the kernel keeps ONE recent list per name and network namespace for iptables and
  ip6tables together, and masks every source with the address mask of the rule that
  CREATED the list; the list (and its mask) lives as long as a rule of either family
  names it. An IPv4 rule written with ``--mask 255.255.255.255`` - how this module
  renders it, and how iptables-restore loads any saved IPv4 rule - creates a list that
  keeps only the first 32 bits of an IPv6 source: an IPv6 rule reusing it, whatever its
  own ``--mask``, counts every client of a /32 as one source. (An IPv4 rule added by
  ``iptables -A`` without ``--mask``, which iptables-save prints identically, and an IPv6
  rule that creates the list first keep IPv6 sources apart; an IPv6 rule with a short
  mask that creates the list masks IPv4 sources with it too.) Which case applies depends
  on load order, so the IPv6 list is always ``<name>_v6`` and never shared
  (tests/integration/test_recent_shared_name.py, nft and legacy).
- list names longer than 199 characters are silently truncated by iptables (the kernel
  keeps 200 bytes with the NUL), so a longer name would never converge.
- ``--set`` before ``--rcheck`` in the same chain counts the current packet: with hitcount
  H, new connections 1..H-1 pass and the H-th is the first refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ._errors import SpecError
from ._model import Tag, owner_marker
from ._options import _aslist, canonical_rate, match_recent, spec
from ._plan import Desired, DropChain, OwnedChain, Resource, TaggedGroup
from ._rulespec import (
    PORT_PROTOCOLS, TARGETS, Protocols, as_int, check_bool, check_chain_name, check_int, check_log_level,
    check_log_prefix, check_priority, check_reject_with, families, parse_ports, split_addresses)

KIND = "ratelimit"
TABLE = "filter"
DEFAULT_CHAIN = "INPUT"
DEFAULT_PRIORITY = 300
CHAIN_PREFIX = "RATELIMIT_"
V6_SUFFIX = "_v6"
ACTIONS = ("DROP", "REJECT")
PROTOCOLS = PORT_PROTOCOLS
STATES = ("present", "absent")
# The kernel stores 200 bytes including the terminating NUL; iptables truncates longer names.
MAX_LIST_NAME = 199
MAX_NAME = MAX_LIST_NAME - len(V6_SUFFIX)
# Highest hitcount a kernel with ip_pkt_list_tot=0 (Linux 4.11 and later) is known to accept.
# Linux 6.x raised its own maximum to 65535; 255 is what every such kernel honours.
DYNAMIC_HITCOUNT_CEILING = 255
# struct xt_recent_mtinfo has a u32, but iptables parses --seconds as a signed int: 2^31 and
# more are printed back as something else and never converge.
MAX_SECONDS = 2147483647
IP_PKT_LIST_TOT = "/sys/module/xt_recent/parameters/ip_pkt_list_tot"

# The module's defaults (mirrored by its argument_spec and DOCUMENTATION).
DEFAULTS = dict(state="present", chain=DEFAULT_CHAIN, priority=DEFAULT_PRIORITY, protocol="tcp", ports=["22"],
                hitcount=4, seconds=60, rttl=True, update=False, action="DROP", accept=True, exempt_sources=[],
                ip_version="both")

_LIST_NAME_RE = re.compile(r"[A-Za-z0-9_-]+\Z")


@dataclass(frozen=True)
class RateLimit:
    """Validated options of one limit."""

    name: str
    state: str = "present"
    chain: str = DEFAULT_CHAIN
    chain_name: str = ""
    priority: int = DEFAULT_PRIORITY
    protocol: str = "tcp"
    ports: tuple = ("22",)
    hitcount: int = 4
    seconds: int = 60
    rttl: bool = True
    update: bool = False
    action: str = "DROP"
    reject_with: str = None
    log_prefix: str = None
    log_level: int = None
    log_limit: str = None
    accept: bool = True
    exempt: tuple = ()          # ((family, canonical address), ...)
    families: tuple = ("ipv4", "ipv6")
    option: str = field(default="", compare=False)  # "ratelimits[2]." in a list, for error messages

    @property
    def tag(self):
        return Tag(self.priority, KIND, self.name)

    def list_name(self, family):
        """The xt_recent list of the family (see the module docstring for why they differ)."""
        return self.name if family == "ipv4" else self.name + V6_SUFFIX


def parse_ip_pkt_list_tot(text):
    """Contents of /sys/module/xt_recent/parameters/ip_pkt_list_tot -> int, or None if unreadable."""
    if text is None:
        return None
    text = str(text).strip()
    return int(text) if text.isdigit() else None


def hitcount_ceiling(ip_pkt_list_tot):
    """The highest hitcount the running kernel accepts and honours.

    ``ip_pkt_list_tot``: the xt_recent module parameter, or None when xt_recent is not
    loaded yet (it then loads with its default, 0 on every kernel that has the parameter at 0).
    0 means "grow each address's list as the rules need" (Linux 4.11 and later); a
    positive value N is the configured list length: kernels before 4.11 reject a hitcount
    above it, so it is the ceiling.
    """
    if ip_pkt_list_tot is None or ip_pkt_list_tot == 0:
        return DYNAMIC_HITCOUNT_CEILING
    return min(int(ip_pkt_list_tot), 65535)


def default_chain_name(name):
    return CHAIN_PREFIX + name.upper().replace("-", "_")


def validate(given, ceiling=DYNAMIC_HITCOUNT_CEILING, protocols=None):
    """Module parameters -> RateLimit; SpecError naming the option on bad input.

    ``given``: the module's params (unset options None or missing take DEFAULTS);
    ``ceiling`` is hitcount_ceiling() of the running kernel.
    """
    params = dict(DEFAULTS)
    params.update((k, v) for k, v in given.items() if v is not None)
    name = params.get("name")
    if not isinstance(name, str) or not _LIST_NAME_RE.match(name) or len(name) > MAX_NAME:
        raise SpecError("name", "%r must be 1-%d characters of A-Z a-z 0-9 _ - (it names the kernel's recent "
                                "list, %r for IPv6, and the kernel keeps at most %d characters)"
                        % (name, MAX_NAME, "<name>" + V6_SUFFIX, MAX_LIST_NAME))
    state = params.get("state") or "present"
    if state not in STATES:
        raise SpecError("state", "must be present or absent, got %r" % (state,))
    fams = families(params.get("ip_version") or "both")
    chain = check_chain_name(params.get("chain") or DEFAULT_CHAIN, "chain")
    chain_name = params.get("chain_name")
    if chain_name is None:
        chain_name = default_chain_name(name)
        if len(chain_name) > 28:
            raise SpecError("chain_name", "the chain name derived from name, %r, is longer than 28 characters; "
                                          "give a shorter chain_name" % (chain_name,))
    check_chain_name(chain_name, "chain_name", user_chain=True)
    if chain_name == chain:
        raise SpecError("chain_name", "%r is also the chain the jump is placed in (chain); choose another "
                                      "name" % (chain_name,))
    priority = check_priority(params["priority"])
    base = dict(name=name, state=state, chain=chain, chain_name=chain_name, priority=priority, families=fams)
    if state == "absent":
        return RateLimit(**base)

    protocol = (protocols or Protocols()).canonical(params.get("protocol") or "tcp", "protocol")
    if protocol not in PROTOCOLS:
        raise SpecError("protocol", "must be one of %s, got %r" % (", ".join(PROTOCOLS), params.get("protocol")))
    ports = parse_ports(params["ports"], "ports")
    if not ports:
        raise SpecError("ports", "give at least one port, e.g. [22]")
    if not isinstance(ceiling, int) or ceiling < 1:
        ceiling = DYNAMIC_HITCOUNT_CEILING
    hitcount = as_int(params["hitcount"])
    if isinstance(hitcount, bool) or not isinstance(hitcount, int) or not 1 <= hitcount <= ceiling:
        raise SpecError("hitcount", "must be from 1 to %d, the most this kernel's xt_recent remembers per "
                                    "address (/sys/module/xt_recent/parameters/ip_pkt_list_tot), got %r"
                        % (ceiling, hitcount))
    seconds = check_int(as_int(params.get("seconds")), "seconds", 1, MAX_SECONDS, "the window in seconds")
    action = str(params.get("action") or "DROP").upper()
    if action not in ACTIONS:
        raise SpecError("action", "must be DROP or REJECT, got %r" % (params.get("action"),))
    reject_with = check_reject_with(params.get("reject_with"), fams)
    if reject_with is not None:
        if action != "REJECT":
            raise SpecError("reject_with", "only applies with action REJECT")
        if reject_with == "tcp-reset" and protocol != "tcp":
            raise SpecError("reject_with", "tcp-reset needs protocol tcp")
    log_prefix = check_log_prefix(params.get("log_prefix"))
    if log_prefix == "":
        log_prefix = None
    log_level = check_log_level(params.get("log_level"))
    log_limit = params.get("log_limit")
    if log_limit is not None:
        log_limit = canonical_rate(log_limit, "log_limit")
    if log_prefix is None and (log_level is not None or log_limit is not None):
        raise SpecError("log_prefix" if log_level is None else "log_level",
                        "log_level and log_limit only apply with log_prefix (which turns logging on)")
    exempt = split_addresses(_aslist(params.get("exempt_sources")), "exempt_sources", fams)
    return RateLimit(
        protocol=protocol, ports=ports, hitcount=hitcount, seconds=seconds,
        rttl=check_bool(params["rttl"], "rttl"), update=check_bool(params["update"], "update"),
        action=action, reject_with=reject_with, log_prefix=log_prefix, log_level=log_level,
        log_limit=log_limit, accept=check_bool(params["accept"], "accept"),
        exempt=tuple((f, a) for f in fams for a in exempt[f]), **base)


def chain_specs(limit, family):
    """The owned chain's rules for one family, in iptables-save's canonical form."""
    lst = limit.list_name(family)
    verdict = "ACCEPT" if limit.accept else "RETURN"
    specs = [owner_marker(KIND, limit.name)]
    specs += [spec(family, source=addr, jump=verdict) for fam, addr in limit.exempt if fam == family]
    specs.append(spec(family, matches=match_recent(family, lst, "set")))
    check = match_recent(family, lst, "rcheck", limit.seconds, limit.hitcount, limit.rttl)
    if limit.log_prefix:
        specs.append(spec(family, matches=check, limit=limit.log_limit, jump="LOG", log_prefix=limit.log_prefix,
                          log_level=limit.log_level))
    mode = "update" if limit.update else "rcheck"
    # REJECT --reject-with tcp-reset is only valid in a rule that matches -p tcp itself.
    specs.append(spec(family, protocol=limit.protocol if limit.reject_with == "tcp-reset" else None,
                      matches=match_recent(family, lst, mode, limit.seconds, limit.hitcount, limit.rttl),
                      jump=limit.action, reject_with=limit.reject_with))
    specs.append(spec(family, jump=verdict))
    return tuple(specs)


def jump_spec(limit, family):
    """The tagged rule in ``chain`` that sends new connections to the ports into the owned chain."""
    return spec(family, tag=limit.tag, protocol=limit.protocol, dports=limit.ports, ctstate=("NEW",),
                jump=limit.chain_name)


def _jump_targets(ruleset, limit):
    """User chains the live tagged jumps of this limit point to: chains this limit created
    (a tagged jump is the collection's own), so a renamed or removed limit leaves none behind."""
    out = []
    for chain in ruleset.table(TABLE).chains:
        for rule in chain.rules:
            tag = rule.tag
            if tag is not None and tag.key == (KIND, limit.name):
                target = rule.target
                if target and target not in TARGETS and target not in out:
                    out.append(target)
    return out


def desired(limit, family, ruleset=None):
    """The _plan.Desired of one family; ``ruleset`` (current) finds a chain to drop after a rename."""
    old = _jump_targets(ruleset, limit) if ruleset is not None else []
    option = limit.option + "chain_name"
    if limit.state == "absent":
        drops = [limit.chain_name] + [c for c in old if c != limit.chain_name]
        return Desired(absent=((TABLE, KIND, limit.name),),
                       drop_chains=tuple(DropChain(TABLE, c, limit.tag.key, option) for c in drops))
    return Desired(
        chains=(OwnedChain(TABLE, limit.chain_name, chain_specs(limit, family), limit.tag.key, option),),
        groups=(TaggedGroup(TABLE, limit.chain, limit.tag, (jump_spec(limit, family),), limit.option),),
        drop_chains=tuple(DropChain(TABLE, c, limit.tag.key, option) for c in old if c != limit.chain_name),
    )


class RateLimitResource(Resource):
    """One rate limit: its owned chain and the tagged jump."""

    def __init__(self, limit, ceiling=None):
        self.limit = limit
        self.ceiling = ceiling

    def desired(self, family, ruleset):
        return desired(self.limit, family, ruleset)

    def report(self, family, ruleset, plan):
        limit = self.limit
        out = {"lists": limit.list_name(family)}
        if limit.state == "present":
            out["rules"] = (["-A %s %s" % (limit.chain, jump_spec(limit, family))]
                            + ["-A %s %s" % (limit.chain_name, s) for s in chain_specs(limit, family)])
        return out

    def summary(self):
        out = {"chain_name": self.limit.chain_name}
        if self.limit.state == "present":
            out["hitcount_ceiling"] = self.ceiling
        return out
