# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_whitelist against real iptables (nft and legacy) in throwaway namespaces, with real packets."""

from __future__ import annotations

import itertools
import json
import re

import pytest

import ansible_runs
import module_timer
import sandbox_net

NAME = "MYSQL_WHITELIST"
TAG = '-m comment --comment "ironwall:500:whitelist:%s"' % NAME
JUMP = "-A INPUT -p tcp -m tcp --dport 3306 -m conntrack --ctstate NEW %s -j %s" % (TAG, NAME)
DROP = "-A INPUT -p tcp -m tcp --dport 3306 -m conntrack --ctstate NEW %s -j DROP" % TAG
FOREIGN4 = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:f2b-sshd - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd
-A f2b-sshd -s 203.0.113.200/32 -j REJECT --reject-with icmp-port-unreachable
-A f2b-sshd -j RETURN
COMMIT
"""
FOREIGN6 = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
COMMIT
"""


def wl(sources, **kw):
    args = {"name": NAME, "ports": [3306], "sources": list(sources)}
    args.update(kw)
    return args


def saved(ns, family, backend):
    """iptables-save text with chain counters zeroed (packets do count)."""
    return re.sub(r"\[\d+:\d+\]", "[0:0]", ansible_runs.save(ns, family, backend))


def chain_lines(text, chain=NAME):
    """The sources of the whitelist chain; the chain must open with its ownership marker."""
    lines = [line for line in text.splitlines() if line.startswith("-A %s " % chain)]
    if lines or ":%s - " % chain in text:
        assert lines[0] == '-A %s -m comment --comment "ironwall:chain:whitelist:%s"' % (chain, chain), lines
    return lines[1:]


def reach(client, server, port=3306):
    """(IPv4 reachable, IPv6 reachable) from client to server's port."""
    return (sandbox_net.probe(client, server.addr4, port, timeout=1),
            sandbox_net.probe(client, server.addr6, port, timeout=1))


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_listed_client_reaches_mysql_other_does_not_then_removal_closes(lan, backend):
    server = lan.add_client(subnet="198.51.100")
    alice = lan.add_client(subnet="203.0.113")
    bob = lan.add_client(subnet="203.0.113")
    server.listen(3306, family=6)   # dual-stack, like mysqld
    server.listen(8080, family=6)   # a port the whitelist must not touch
    assert reach(alice, server) == (True, True) and reach(bob, server) == (True, True)

    first = ansible_runs.run_module(server, "iptables_whitelist", wl([alice.addr4, alice.addr6]), backend)
    assert first["_status"] == "CHANGED", first
    assert first["added"] == {"ipv4": [alice.addr4 + "/32"], "ipv6": [alice.addr6 + "/128"]}
    v4 = ansible_runs.save(server, 4, backend)
    assert chain_lines(v4) == ["-A %s -s %s/32 -j ACCEPT" % (NAME, alice.addr4)]
    assert [x for x in v4.splitlines() if x.startswith("-A INPUT")] == [JUMP, DROP]
    assert reach(alice, server) == (True, True)
    assert reach(bob, server) == (False, False)
    assert reach(bob, server, 8080) == (True, True)

    second = ansible_runs.run_module(server, "iptables_whitelist", wl([alice.addr4, alice.addr6]), backend)
    assert second["_status"] == "SUCCESS" and second["changed"] is False, second
    assert second["calls"] == {"save": 2, "restore": 0}

    # Alice's addresses leave the list, Bob's IPv4 address joins: no IPv6 source is left,
    # so IPv6 keeps the jump and the fallback and the port is closed there for everyone.
    third = ansible_runs.run_module(server, "iptables_whitelist", wl([bob.addr4]), backend)
    assert third["_status"] == "CHANGED", third
    assert third["removed"] == {"ipv4": [alice.addr4 + "/32"], "ipv6": [alice.addr6 + "/128"]}
    assert third["added"] == {"ipv4": [bob.addr4 + "/32"], "ipv6": []}
    assert reach(alice, server) == (False, False)
    assert reach(bob, server) == (True, False)
    v6 = ansible_runs.save(server, 6, backend)
    assert chain_lines(v6) == [] and ":%s - [0:0]" % NAME in v6
    assert [x for x in v6.splitlines() if x.startswith("-A INPUT")] == [JUMP, DROP]
    again = ansible_runs.run_module(server, "iptables_whitelist", wl([bob.addr4]), backend)
    assert again["changed"] is False, again


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_absent_removes_chain_jump_and_fallback_only(lan, backend):
    server = lan.add_client(subnet="198.51.100")
    alice = lan.add_client(subnet="203.0.113")
    server.load(FOREIGN4, 4, backend)
    server.load(FOREIGN6, 6, backend)
    server.listen(3306, family=6)
    res = ansible_runs.run_module(server, "iptables_whitelist", wl(["198.51.100.77"]), backend)
    assert res["_status"] == "CHANGED", res
    assert reach(alice, server) == (False, False)

    gone = ansible_runs.run_module(server, "iptables_whitelist", {"name": NAME, "state": "absent"}, backend)
    assert gone["_status"] == "CHANGED", gone
    assert gone["removed"]["ipv4"] == ["198.51.100.77/32"]
    assert saved(server, 4, backend) == FOREIGN4
    assert saved(server, 6, backend) == FOREIGN6
    assert reach(alice, server) == (True, True)
    again = ansible_runs.run_module(server, "iptables_whitelist", {"name": NAME, "state": "absent"}, backend)
    assert again["changed"] is False and again["calls"] == {"save": 2, "restore": 0}


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_check_mode_writes_nothing_and_diff_shows_chain(netns, backend):
    netns.load(FOREIGN4, 4, backend)
    ansible_runs.run_module(netns, "iptables_whitelist", wl(["198.51.100.5"], ip_version="ipv4"), backend)
    before = ansible_runs.save(netns, 4, backend)
    res = ansible_runs.run_module(netns, "iptables_whitelist", wl(["203.0.113.9", "198.51.100.0/24"], ip_version="ipv4"),
                                  backend, check=True, diff=True)
    assert res["_status"] == "CHANGED" and res["changed"] is True, res
    assert ansible_runs.save(netns, 4, backend) == before
    assert res["added"] == {"ipv4": ["203.0.113.9/32", "198.51.100.0/24"]}
    assert res["removed"] == {"ipv4": ["198.51.100.5/32"]}
    assert res["calls"] == {"save": 1, "restore": 1}  # --test only


BAD = [
    ({"sources": ["198.51.100.9", "10.3.0.0/33"]}, "sources: '10.3.0.0/33'"),
    ({"sources": ["192.168.3"]}, "sources: '192.168.3'"),
    ({"sources": ["::g"]}, "sources: '::g'"),
    ({"name": "MYSQL_WHITELIST_IS_WAY_TOO_LONG"}, "name: chain name"),
    ({"name": "ACCEPT"}, "name: 'ACCEPT' is a built-in chain or target name"),
    ({"name": "INPUT"}, "name: 'INPUT' is a built-in chain or target name"),
    ({"ports": [65536]}, "ports: port 65536"),
    ({"protocol": "icmp"}, "ports: protocol icmp has no ports"),
]


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_bad_input_errors_and_ruleset_unchanged(netns, backend):
    netns.load(FOREIGN4, 4, backend)
    ok = ansible_runs.run_module(netns, "iptables_whitelist", wl(["198.51.100.5", "2001:db8::5"]), backend)
    assert ok["_status"] == "CHANGED", ok
    before = ansible_runs.save(netns, 4, backend), ansible_runs.save(netns, 6, backend)
    data = ansible_runs.run_playbook(netns, "- hosts: all\n  gather_facts: false\n  tasks:\n" + "".join(
        "    - name: bad %d\n      ironwall.iptables.iptables_whitelist: %s\n      ignore_errors: true\n"
        % (i, json.dumps(dict(wl(["198.51.100.5"]), **args))) for i, (args, _w) in enumerate(BAD)), backend)
    results = ansible_runs.task_results(data)
    assert len(results) == len(BAD)
    for (name, result), (_args, words) in zip(results, BAD):
        assert result.get("failed") is True, (name, result)
        assert words in result["msg"], (name, result["msg"])
        assert "calls" not in result  # failed in the argument check, no binary ran
    assert (ansible_runs.save(netns, 4, backend), ansible_runs.save(netns, 6, backend)) == before


VARIANTS = [
    {"name": "MYSQL_WHITELIST", "ports": [3306], "sources": ["198.51.100.10", "2001:db8:1::/48"]},
    {"name": "PG_WL", "ports": [5432, "6000:6010"], "sources": ["203.0.113.0/25"], "fallback": "REJECT",
     "priority": 40},
    {"name": "DNS_WL", "protocol": "udp", "ports": [53], "sources": ["2001:db8::53"], "state_match": "state",
     "ctstate": ["NEW", "ESTABLISHED"]},
    {"name": "ICMP_WL", "protocol": "icmp", "sources": ["198.51.100.0/24", "2001:db8::/32"], "fallback": "none",
     "ctstate": []},
    {"name": "ALL_WL", "protocol": "all", "sources": ["203.0.113.7"], "chain": "FORWARD", "priority": 900},
    {"name": "ANY_WL", "ports": [8443], "sources": ["0.0.0.0/0", "::/0", "203.0.113.8"]},
    {"name": "SCTP_WL", "protocol": "sctp", "ports": [2905], "sources": ["2001:db8::33"], "fallback": "REJECT",
     "ip_version": "ipv6"},
]


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_round_trip_every_option_form(netns, backend):
    """Everything the module can emit: load it back with the real binary, rerun -> changed false."""
    tasks = "".join("    - name: %s\n      ironwall.iptables.iptables_whitelist: %s\n"
                    % (v["name"], json.dumps(v)) for v in VARIANTS)
    play = "- hosts: all\n  gather_facts: false\n  tasks:\n" + tasks
    first = ansible_runs.task_results(ansible_runs.run_playbook(netns, play, backend))
    assert [r.get("changed") for _n, r in first] == [True] * len(VARIANTS), [r.get("msg") for _n, r in first]
    saved = ansible_runs.save(netns, 4, backend), ansible_runs.save(netns, 6, backend)
    assert "-m multiport --dports 5432,6000:6010" in saved[0] and "-m state --state NEW,ESTABLISHED" in saved[1]
    assert "-p ipv6-icmp" in saved[1] and "--reject-with icmp6-port-unreachable" in saved[1]
    # Load the saved text into a fresh namespace and read it back.
    with sandbox_net.Netns() as fresh:
        ansible_runs.load(fresh, saved[0], 4, backend)
        ansible_runs.load(fresh, saved[1], 6, backend)
        assert (ansible_runs.save(fresh, 4, backend), ansible_runs.save(fresh, 6, backend)) == saved
        second = ansible_runs.task_results(ansible_runs.run_playbook(fresh, play, backend))
        assert [r.get("changed") for _n, r in second] == [False] * len(VARIANTS), second
        assert (ansible_runs.save(fresh, 4, backend), ansible_runs.save(fresh, 6, backend)) == saved


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
@pytest.mark.parametrize("count", [1000, 10000])
def test_thousands_of_sources_converge_in_one_run(netns, backend, count):
    netns.load(FOREIGN4, 4, backend)
    # Rule content from the documentation ranges only: both /24s as hosts, the rest IPv6.
    v4 = ["%s.%d" % (net, i) for net in ("198.51.100", "203.0.113") for i in range(1, 255)]
    v6 = ["2001:db8:%x::%x" % (i // 4096, i % 4096 + 1) for i in range(count - len(v4))]
    sources = [s for pair in itertools.zip_longest(v6, v4) for s in pair if s is not None]
    assert len(set(sources)) == count
    module_timer.warm_up()
    first, _t = module_timer.run_timed(netns, "iptables_whitelist", wl(sources), backend)
    assert first.get("changed") is True, first.get("msg")
    # IPv6 --test, then each family applied once and its inserted jumps read back once
    assert first["calls"] == {"save": 4, "restore": 3}
    assert len(chain_lines(ansible_runs.save(netns, 4, backend))) == len(v4)
    assert len(chain_lines(ansible_runs.save(netns, 6, backend))) == count - len(v4)
    # The cost of a no-change rerun is the CPU time of its process tree (interpreter start, module,
    # iptables-save), not its wall time: a busy machine stretches the one, not the other.
    import resource

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    rerun, elapsed = module_timer.run_timed(netns, "iptables_whitelist", wl(sources), backend)
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (now.ru_utime - used.ru_utime) + (now.ru_stime - used.ru_stime)
    assert rerun.get("changed") is False and rerun["calls"] == {"save": 2, "restore": 0}
    assert cpu < 1.0, "a no-change rerun of %d sources used %.2f CPU s (%.2f s wall)" % (count, cpu, elapsed)
    # The same through Ansible proper (a playbook: 10,000 sources exceed one argv string): changed false.
    play = "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: rerun\n      %s: %s\n" % (
        "ironwall.iptables.iptables_whitelist", json.dumps(wl(sources)))
    [(_n, via_ansible)] = ansible_runs.task_results(ansible_runs.run_playbook(netns, play, backend))
    assert via_ansible.get("changed") is False and via_ansible["count"]["ipv6"] == count - len(v4), via_ansible
    # One source less -> one more run converges and only the chain is rewritten.
    fewer, _t = module_timer.run_timed(netns, "iptables_whitelist", wl(sources[1:]), backend)
    assert fewer["changed"] is True and fewer["removed"]["ipv6"] == ["2001:db8::1/128"]
    assert fewer["commands"]["ipv4"] == [] and len(chain_lines(ansible_runs.save(netns, 6, backend))) == count - len(v4) - 1
