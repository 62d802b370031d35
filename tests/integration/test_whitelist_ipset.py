# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_whitelist backend ipset with real packets, nft and legacy, IPv4 and IPv6; switching
between the chain and ipset backends while clients keep probing the port."""

from __future__ import annotations

import threading
import time

import pytest

import ansible_runs
import sandbox_net
import tcp_load

NAME = "MYSQL_WHITELIST"


def wl(sources, **kw):
    args = {"name": NAME, "ports": [3306], "sources": list(sources), "fallback": "REJECT"}
    args.update(kw)
    return args


class Prober(object):
    """Probes (client, address) pairs in threads until stopped; records every answer that differs
    from the expected one, and when each probe started."""

    def __init__(self, cases):
        self.cases = cases          # [(label, client, addr, expected)]
        self.stop = threading.Event()
        self.counts = dict((label, 0) for label, _c, _a, _e in cases)
        self.started = dict((label, []) for label, _c, _a, _e in cases)   # monotonic start of each finished probe
        self.wrong = []
        self.threads = [threading.Thread(target=self._loop, args=case, daemon=True) for case in cases]

    def _loop(self, label, client, addr, expected):
        while not self.stop.is_set():
            start = time.monotonic()
            got = sandbox_net.probe(client, addr, 3306, timeout=1)
            self.started[label].append(start)
            self.counts[label] += 1
            if got is not expected:
                self.wrong.append((label, got))

    def wait_probes(self, since, bound=120):
        """Wait until every pair has finished a probe that started at ``since`` or later (an event,
        not a deadline: ``bound`` only turns a hang into a failure)."""
        assert tcp_load.wait_until(lambda: all(any(t >= since for t in times) for times in self.started.values()),
                                   timeout=bound, step=0.1), self.counts

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)


def sets(ns):
    return sorted(line.split()[1] for line in ns.run(["ipset", "save"]).stdout.splitlines()
                  if line.startswith("create "))


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_ipset_backend_and_switching_keeps_every_answer(lan, backend):
    server = lan.add_client(subnet="198.51.100")
    alice = lan.add_client(subnet="203.0.113")
    bob = lan.add_client(subnet="203.0.113")
    # nc -l -k accepts one connection at a time: under the probes' load its backlog overflows and a
    # SYN the firewall accepted times out. This server keeps up.
    with tcp_load.Server(server, 3306, family=6):
        switching(server, alice, bob, backend)


def switching(server, alice, bob, backend):
    listed = ["198.18.%d.%d" % (i // 250, i % 250 + 1) for i in range(500)] + [alice.addr4, alice.addr6]

    first = ansible_runs.run_module(server, "iptables_whitelist", wl(listed, backend="ipset"), backend)
    assert first["_status"] == "CHANGED", first
    assert first["set"] == {"ipv4": {"name": NAME, "action": "create"},
                            "ipv6": {"name": NAME + "_v6", "action": "create"}}
    v4 = ansible_runs.save(server, 4, backend)
    assert ("-A INPUT -p tcp -m tcp --dport 3306 -m conntrack --ctstate NEW -m set --match-set %s src -m comment "
            "--comment \"ironwall:500:whitelist:%s\" -j ACCEPT" % (NAME, NAME)) in v4
    assert ":%s " % NAME not in v4
    assert sets(server) == sorted(["ironwall-sets", NAME, NAME + "_v6"])
    again = ansible_runs.run_module(server, "iptables_whitelist", wl(listed, backend="ipset"), backend)
    assert again["changed"] is False and again["calls"] == {"save": 2, "restore": 0, "ipset_save": 1}, again

    cases = [("alice4", alice, server.addr4, True), ("alice6", alice, server.addr6, True),
             ("bob4", bob, server.addr4, False), ("bob6", bob, server.addr6, False)]
    for label, client, addr, expected in cases:
        assert sandbox_net.probe(client, addr, 3306, timeout=1) is expected, label

    for target in ("chain", "ipset", "chain"):
        with Prober(cases) as prober:
            # every client probed before the switch, all through it, and after it
            prober.wait_probes(since=0)
            res = ansible_runs.run_module(server, "iptables_whitelist", wl(listed, backend=target), backend)
            prober.wait_probes(since=time.monotonic())
        assert res["_status"] == "CHANGED", res
        assert prober.wrong == [], (target, prober.wrong, prober.counts)
        assert min(prober.counts.values()) >= 2, prober.counts
        expected_sets = ["ironwall-sets"] + ([NAME, NAME + "_v6"] if target == "ipset" else [])
        assert sets(server) == sorted(expected_sets), target
        assert (":%s - " % NAME in ansible_runs.save(server, 4, backend)) is (target == "chain")

    gone = ansible_runs.run_module(server, "iptables_whitelist", {"name": NAME, "state": "absent"}, backend)
    assert gone["_status"] == "CHANGED" and "set" not in gone, gone
    assert sandbox_net.probe(bob, server.addr4, 3306, timeout=1)


def test_ipset_backend_refuses_what_a_set_cannot_hold_and_sets_it_does_not_own(netns):
    netns.run(["ipset", "create", NAME, "hash:ip"])
    before = netns.run(["ipset", "save"]).stdout
    res = ansible_runs.run_module(netns, "iptables_whitelist", wl(["198.51.100.7"], backend="ipset"))
    assert res["_status"] == "FAILED!" and res["msg"].startswith("name: a set named %s exists" % NAME), res
    res = ansible_runs.run_module(netns, "iptables_whitelist", wl(["0.0.0.0/0"], name="OTHER", backend="ipset"))
    assert res["_status"] == "FAILED!" and res["msg"].startswith("sources: "), res
    assert netns.run(["ipset", "save"]).stdout == before
    assert "ironwall" not in ansible_runs.save(netns, 4)
