# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lockout guard reads the collection's ipsets, with real TCP, nft and legacy, IPv4 and IPv6.

Before, a rule on the SSH path that matched a set was an unknown match: a blocklist placed
before the established rule made the verdict UNPROVEN, so the role with firewall_blocklists
was refused over SSH (without force), and iptables_ipset changed set contents with no guard
at all - adding the operator's own address to a blocklist went through.

A server and a client namespace on a sandbox_net.Lan; the server's TCP port 2222 stands in for
sshd and every module run gets ``SSH_CONNECTION`` naming the client and that port, so the guard
judges exactly the connection the test then opens. A connection expected to work gets a
generous bound (it returns at once when it works); one expected to be dropped is given a few
seconds to get through anyway. No duration is asserted.
"""

from __future__ import annotations

import pytest

import ansible_runs
import sandbox_net
import tcp_load

PORT = 2222


@pytest.fixture(params=[(b, f) for b in ansible_runs.BACKENDS for f in (4, 6)], ids=lambda p: "%s-ipv%d" % p)
def site(request, lan):
    backend, family = request.param
    server = lan.add_client(subnet="198.51.100")
    client = lan.add_client(subnet="203.0.113")
    with tcp_load.Server(server, PORT, family=6):
        yield backend, family, server, client


def addr(ns, family):
    return ns.addr4 if family == 4 else ns.addr6


def ssh_env(client, server, family):
    return {"SSH_CONNECTION": "%s 50123 %s %d" % (addr(client, family), addr(server, family), PORT)}


def run(site_, module, args, force=False):
    backend, family, server, client = site_
    args = dict(args, force=force)
    return ansible_runs.run_module(server, module, args, backend=backend, env=ssh_env(client, server, family))


def reaches(site_, timeout=20):
    _backend, family, server, client = site_
    return sandbox_net.probe(client, addr(server, family), PORT, timeout=timeout)


def firewall(site_, extra_rules=(), whitelists=()):
    """A host firewall: INPUT DROP, established and the SSH port accepted, plus ``extra_rules``."""
    _backend, family, _server, _client = site_
    return {"ip_version": "ipv%d" % family, "policies": {"INPUT": "DROP"},
            "rules": [{"name": "established", "priority": 100, "ctstate": ["ESTABLISHED", "RELATED"], "jump": "ACCEPT"},
                      # first: the guard cannot know the neighbour's address, so IPv6 neighbour discovery
                      # must be accepted before a rule that drops by address (as with -s)
                      {"name": "icmp", "priority": 40, "protocol": "icmp" if family == 4 else "ipv6-icmp",
                       "jump": "ACCEPT"},
                      {"name": "ssh", "priority": 600, "protocol": "tcp", "dports": [PORT], "jump": "ACCEPT"}]
            + list(extra_rules), "whitelists": list(whitelists)}


def state(site_):
    backend, family, server, _client = site_
    return sandbox_net.comparable_save(server.save(family, backend)), server.run(["ipset", "save"]).stdout


def test_a_blocklist_without_the_operator_passes_and_one_with_the_operator_is_refused(site):
    backend, family, server, client = site
    v = "ipv%d" % family
    other = "198.18.0.0/15" if family == 4 else "2001:db8:ffff::/48"
    made = run(site, "iptables_ipset", {"name": "bl", "ip_version": v, "entries": [other]})
    assert made["_status"] == "CHANGED" and "guard" not in made, made  # no rule uses a set yet
    block = {"name": "blocklist", "priority": 50, "match_set": "bl" if family == 4 else "bl_v6", "jump": "DROP"}

    # The firewall with the blocklist first in INPUT: the operator is not listed, so it is proven.
    applied = run(site, "iptables_ruleset", firewall(site, [block]))
    assert applied["_status"] == "CHANGED", applied
    assert (applied["guard"]["before"], applied["guard"]["after"]) == ("ACCEPT", "ACCEPT"), applied["guard"]
    assert reaches(site)

    # Listing the operator's own address: refused, nothing changed, the connection still works.
    before = state(site)
    mine = [other, addr(client, family)]
    refused = run(site, "iptables_ipset", {"name": "bl", "ip_version": v, "entries": mine})
    assert refused["_status"] == "FAILED!" and "lockout guard" in refused["msg"], refused
    assert refused["guard"]["after"] == "DROP" and "filter INPUT would drop" in refused["guard"]["where"], refused
    assert state(site) == before and reaches(site)
    # ... its network too (hash:net), and the check mode run says the same without changing anything
    net = addr(client, family) + ("/24" if family == 4 else "/64")
    checked = ansible_runs.run_module(server, "iptables_ipset", {"name": "bl", "ip_version": v, "entries": [net]},
                                      backend=backend, check=True, env=ssh_env(client, server, family))
    assert checked["_status"] == "FAILED!" and "lockout guard" in checked["msg"], checked
    assert state(site) == before

    # Forced, it really locks the operator out: the guard was right.
    forced = run(site, "iptables_ipset", {"name": "bl", "ip_version": v, "entries": mine}, force=True)
    assert forced["_status"] == "CHANGED" and forced["guard"]["forced"] is True, forced
    assert not reaches(site, timeout=3)
    # Taking the address out again is a change the guard allows (DROP before, ACCEPT after).
    back = run(site, "iptables_ipset", {"name": "bl", "ip_version": v, "entries": [other]})
    assert back["_status"] == "CHANGED" and back["guard"]["after"] == "ACCEPT", back
    assert reaches(site)


def test_an_ipset_whitelist_on_the_ssh_port_is_judged_by_its_sources(site):
    _backend, family, _server, client = site
    me = addr(client, family)
    others = ["203.0.113.250"] if family == 4 else ["2001:db8:ffff::1"]
    guarded = {"name": "SSH_WHITELIST", "backend": "ipset", "ports": [PORT], "priority": 500}

    # The operator among the sources: proven, applied, still reachable.
    applied = run(site, "iptables_ruleset", firewall(site, whitelists=[dict(guarded, sources=others + [me])]))
    assert applied["_status"] == "CHANGED", applied
    assert applied["guard"]["after"] == "ACCEPT", applied["guard"]
    assert reaches(site)

    # A whitelist that leaves the operator out: refused, sets and rules unchanged.
    before = state(site)
    refused = run(site, "iptables_ruleset", firewall(site, whitelists=[dict(guarded, sources=others)]))
    assert refused["_status"] == "FAILED!" and "lockout guard" in refused["msg"], refused
    assert state(site) == before and reaches(site)

    # The same through iptables_whitelist alone.
    alone = run(site, "iptables_whitelist", dict(guarded, sources=others, ip_version="ipv%d" % family))
    assert alone["_status"] == "FAILED!" and "lockout guard" in alone["msg"], alone
    assert state(site) == before and reaches(site)
