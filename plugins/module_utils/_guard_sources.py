# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lockout guard when no SSH_CONNECTION names the operator (ansible-pull, -c local).

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.

Over SSH the guard follows the current client's exchange (_transaction.guard_check). Under
``ansible-pull`` the play runs with ``-c local`` and there is no such client, yet the host must
stay reachable from its management networks. Then:

* with ``guard_sources`` (addresses or networks), the exchange of a new SSH connection to
  ``guard_port`` from every one of them is judged, before and after the change, exactly as for
  an SSH client. A network is judged address by address where it matters: every boundary an
  address match of the tables on the path draws inside it (``-s``, ``-d``, ``iprange``) starts
  a range whose addresses all meet the same rules, and one address of each range is evaluated;
* without them, under ``ansible-pull`` (found among the module's ancestor processes), the
  exchange from an address the guard does not know is judged: a change after which a new SSH
  connection is no longer provably accepted from any address is refused, since nothing says
  whose SSH must keep working. ``force`` overrides both;
* any other local run (a console, a test in a namespace) has nobody to lock out: no guard.
"""

from __future__ import annotations

import ipaddress
import os

from ._errors import LockoutError, SpecError
from ._guard import ACCEPT, PATH_TABLES, Packet, check

PULL_COMMAND = "ansible-pull"
_ADDRESS_FLAGS = (("", "-s"), ("", "-d"), ("iprange", "--src-range"), ("iprange", "--dst-range"))


def guard_networks(params):
    """guard_sources -> [ip_network], validated (SpecError names the option)."""
    out = []
    for i, entry in enumerate(params.get("guard_sources") or ()):
        text = str(entry).strip()
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise SpecError("guard_sources[%d]" % i, "%r is not an IPv4 or IPv6 address or network" % entry)
    port = params.get("guard_port", 22)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise SpecError("guard_port", "must be a TCP port 1-65535, got %r" % (port,))
    return out


def under_pull(pid=None, proc="/proc"):
    """Is this process run by ansible-pull (an ancestor's command names it)?"""
    pid = os.getpid() if pid is None else pid
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            with open("%s/%d/cmdline" % (proc, pid), "rb") as fh:
                argv = fh.read().split(b"\0")
            with open("%s/%d/stat" % (proc, pid)) as fh:
                pid = int(fh.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if any(os.path.basename(a.decode("utf-8", "replace")) == PULL_COMMAND for a in argv[:2]):
            return True
    return False


# The most addresses one guard_sources network is judged at when ipset entries split it: beyond,
# its set matches stay unknown (a change that needs them proven is refused without force).
MAX_SET_POINTS = 4096


def _ranges(table):
    """(first, last) integer address ranges of every address match in ``table``."""
    out = []
    for chain in table.chains:
        for rule in chain.rules:
            parts = rule.parts
            for match in (parts.head,) + tuple(parts.matches):
                for arg in match.options:
                    if (match.module, arg.flag) not in _ADDRESS_FLAGS or not arg.value:
                        continue
                    lo, sep, hi = arg.value.partition("-")
                    try:
                        if sep and match.module == "iprange":
                            out.append((int(ipaddress.ip_address(lo)), int(ipaddress.ip_address(hi))))
                        else:
                            net = ipaddress.ip_network(arg.value, strict=False)
                            out.append((int(net.network_address), int(net.broadcast_address)))
                    except ValueError:
                        continue
    return out


def representatives(network, tables, views=()):
    """One address of every range of ``network`` whose addresses all meet the same address
    matches of ``tables`` and are in the same entries of the ipsets of ``views`` (_guard.SetView)
    - the network's first address, and every boundary inside it."""
    first, last = int(network.network_address), int(network.broadcast_address)
    points = {first}
    ranges = [r for table in tables for r in _ranges(table)]
    ranges += [r for view in views if view is not None for r in view.ranges(network.version)]
    for lo, hi in ranges:
        for point in (lo, hi + 1):
            if first < point <= last:
                points.add(point)
    cls = ipaddress.IPv4Address if network.version == 4 else ipaddress.IPv6Address
    return [cls(p) for p in sorted(points)]


def _tables(snapshot, plan):
    before = dict((t, snapshot.table(t)) for t in PATH_TABLES)
    return list(before.values()) + [plan.table_after(t) for t in before.values()]


def guard_without_ssh(params, plans, snapshots, sets_for=None):
    """The guard's report for a run without SSH_CONNECTION (None when it has nobody to judge);
    raises LockoutError when the change would cut SSH from guard_sources, or, under ansible-pull
    without guard_sources, from an address nothing proves it still accepts. ``sets_for(family,
    plan)`` gives the (before, after) _guard.SetView of the ipsets rules on the path match."""
    networks = guard_networks(params)
    port = params.get("guard_port", 22)
    force = bool(params.get("force"))
    pull = under_pull()
    if not networks and not pull:
        return None
    runner = "ansible-pull" if pull else "a local run"
    report = None
    for family, plan in plans:
        sets_before, sets_after = sets_for(family, plan) if sets_for is not None else (None, None)
        sets_change = sets_before is not None and sets_before.sets != sets_after.sets
        if not sets_change and not any(tp.table in PATH_TABLES for tp in plan.tables):
            continue
        version = 4 if family == "ipv4" else 6
        if networks:
            candidates = []
            tables = _tables(snapshots[family], plan)
            for net in networks:
                if net.version != version:
                    continue
                points = representatives(net, tables, (sets_before, sets_after))
                if len(points) <= MAX_SET_POINTS:
                    candidates.extend((net, addr, True) for addr in points)
                else:  # a network cut into that many pieces by set entries: judged with the sets unknown
                    candidates.extend((net, addr, False) for addr in representatives(net, tables))
        else:
            candidates = [(None, None, False)]
        for net, addr, with_sets in candidates:
            packet = Packet(family, addr, None, port)
            before, after, where = check(snapshots[family], plan, packet, sets_before if with_sets else None,
                                         sets_after if with_sets else None)
            who = "guard_sources %s (%s)" % (net, addr) if net is not None else "any address"
            entry = dict(connection="%s: no SSH_CONNECTION; a NEW TCP connection from %s to port %d"
                         % (runner, who, port), before=before, after=after, forced=force)
            if where:
                entry["where"] = where
            if report is None or (report["before"] == ACCEPT and report["after"] == ACCEPT):
                report = entry
            if before == ACCEPT and after != ACCEPT and not force:
                if net is not None:
                    msg = ("lockout guard: after this change %s of a new SSH connection from %s, listed in "
                           "guard_sources (%s, no SSH_CONNECTION); the change was not applied. Accept SSH "
                           "(tcp port %d) from the management networks first, or set force: true, preferably "
                           "with rollback_timeout." % (where, addr, runner, port))
                else:
                    msg = ("lockout guard: this task runs under ansible-pull, where no SSH_CONNECTION says whose "
                           "SSH must keep working, and after this change %s of a new SSH connection (tcp port "
                           "%d) from an address the guard does not know; the change was not applied. List the "
                           "management networks that must keep SSH in guard_sources, or set force: true."
                           % (where, port))
                raise LockoutError(msg, guard=entry)
    return report
