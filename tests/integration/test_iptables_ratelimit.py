# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_ratelimit through real Ansible, real iptables (nft and legacy), real TCP connections, v4 and v6.

Every iptables call runs inside namespaces made by tools/sandbox_net.py.
"""

from __future__ import annotations

import json
import re

import pytest

import ansible_runs
import sandbox_net

PORT = 22
CLASSIC = {"name": "ssh", "ports": [str(PORT)], "hitcount": 4, "seconds": 60,
           "log_prefix": "SSH_brute_force ", "log_limit": "10/second"}
# Foreign rules the module must never touch (and a filter table that exists before and after).
BASELINE = {
    4: "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
       "-A INPUT -s 203.0.113.99/32 -p udp -m udp --dport 53 -j ACCEPT\nCOMMIT\n",
    6: "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
       "-A INPUT -s 2001:db8:203::99/128 -p udp -m udp --dport 53 -j ACCEPT\nCOMMIT\n",
}


def load_baseline(ns, backend):
    for fam in (4, 6):
        ns.load(BASELINE[fam], fam, backend)


def saves(ns, backend):
    """Both families' saves, chain counters zeroed (IPv6 neighbour discovery moves OUTPUT's)."""
    return tuple(re.sub(r"(?m)^(:\S+ \S+) \[\d+:\d+\]$", r"\1 [0:0]", ansible_runs.save(ns, fam, backend))
                 for fam in (4, 6))


def chain_lines(text, chain):
    return [line for line in text.splitlines() if line.startswith("-A %s " % chain)]


def counters(ns, family, backend, needle):
    """Packet counter of the single rule line containing ``needle`` (iptables-save -c)."""
    hits = [line for line in ns.save(family, backend, counters=True).splitlines() if needle in line]
    assert len(hits) == 1, hits
    m = re.match(r"^\[(\d+):(\d+)\] ", hits[0])
    assert m, hits[0]
    return int(m.group(1))


def reset_list(ns, list_name):
    """Empty a kernel recent list (inside the namespace: the lists are per network namespace)."""
    ns.run(["sh", "-c", "echo / > /proc/net/xt_recent/%s" % list_name])


def recent_sources(ns, list_name):
    text = ns.run(["cat", "/proc/net/xt_recent/%s" % list_name]).stdout
    return [line.split()[0][4:] for line in text.splitlines() if line.startswith("src=")]


def expand6(addr):
    import ipaddress
    return ipaddress.ip_address(addr).exploded


@pytest.fixture
def site(lan):
    """A server, two ordinary clients on different subnets and an exempt client."""
    server = lan.add_client()
    attacker = lan.add_client()
    exempt = lan.add_client()
    other = lan.add_client(subnet="203.0.113")
    return server, attacker, exempt, other


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_real_connections_both_families(site, backend):
    server, attacker, exempt, other = site
    load_baseline(server, backend)
    args = dict(CLASSIC, exempt_sources=[exempt.addr4, exempt.addr6])

    first = ansible_runs.run_module(server, "iptables_ratelimit", args, backend)
    assert first["_status"] == "CHANGED", first
    assert first["lists"] == {"ipv4": "ssh", "ipv6": "ssh_v6"}
    second = ansible_runs.run_module(server, "iptables_ratelimit", args, backend)
    assert second["_status"] == "SUCCESS" and second["changed"] is False, second
    assert second["calls"] == {"save": 2, "restore": 0}
    v4, v6 = saves(server, backend)
    for text, family in ((v4, "ipv4"), (v6, "ipv6")):
        # What the kernel holds is exactly what the module says it renders.
        assert [line for line in text.splitlines()
                if line.startswith("-A RATELIMIT_SSH ") or "ratelimit:ssh" in line] == first["rules"][family]
        log = [line for line in chain_lines(text, "RATELIMIT_SSH") if "-j LOG" in line]
        assert len(log) == 1 and '--log-prefix "SSH_brute_force "' in log[0]

    server.listen(PORT, family=6)  # dual-stack: one listener for both families
    for family, list_name in ((4, "ssh"), (6, "ssh_v6")):
        addr = server.addr4 if family == 4 else server.addr6
        if family == 6:
            # Neighbour discovery on a fresh link can delay the first SYN into a retransmit,
            # and every SYN is a new-connection hit: warm up, then empty the list.
            for client in (attacker, exempt, other):
                assert sandbox_net.probe(client, addr, PORT)
            reset_list(server, list_name)
        attempts = [sandbox_net.probe(attacker, addr, PORT) for _attempt in range(6)]
        # --set runs before --rcheck: the 4th attempt already sees 4 hits and is the first refused.
        assert attempts == [True, True, True, False, False, False], (family, attempts)
        assert all(sandbox_net.probe(exempt, addr, PORT) for _attempt in range(6)), family
        assert [sandbox_net.probe(other, addr, PORT) for _attempt in range(3)] == [True, True, True], family

        listed = recent_sources(server, list_name)
        mine = attacker.addr4 if family == 4 else expand6(attacker.addr6)
        theirs = exempt.addr4 if family == 4 else expand6(exempt.addr6)
        assert mine in listed and theirs not in listed, listed
        # Refused attempts went through the LOG rule first, then DROP (retransmitted SYNs too).
        logged = counters(server, family, backend, "-j LOG")
        dropped = counters(server, family, backend, "-j DROP")
        assert logged >= 3 and logged == dropped, (logged, dropped)
        assert counters(server, family, backend, "-s %s -j ACCEPT" % (
            exempt.addr4 + "/32" if family == 4 else exempt.addr6 + "/128")) >= 6


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_change_replaces_and_absent_leaves_no_trace(site, backend):
    server, attacker, _exempt, _other = site
    load_baseline(server, backend)
    before = saves(server, backend)

    # Check mode with diff: reports the change, shows it, writes nothing.
    data = ansible_runs.run_playbook(server, playbook([("check", CLASSIC)]), backend, check=True, diff=True)
    [(_name, checked)] = ansible_runs.task_results(data)
    assert checked["changed"] is True and not checked.get("failed"), checked
    assert checked["diff"][0]["before_header"].startswith("ipv4")
    assert "-A RATELIMIT_SSH -m recent --rcheck --seconds 60 --hitcount 4" in checked["diff"][0]["after"]
    assert ":RATELIMIT_SSH - [0:0]" in checked["commands"]["ipv6"]
    assert saves(server, backend) == before

    ansible_runs.run_module(server, "iptables_ratelimit", CLASSIC, backend)
    changed = ansible_runs.run_module(server, "iptables_ratelimit", dict(CLASSIC, hitcount=2), backend)
    assert changed["_status"] == "CHANGED", changed
    assert ":RATELIMIT_SSH - [0:0]" in changed["commands"]["ipv4"]
    v4, v6 = saves(server, backend)
    assert "--hitcount 4" not in v4 + v6 and v4.count("--hitcount 2") == 2 and v6.count("--hitcount 2") == 2
    assert chain_lines(v4, "RATELIMIT_SSH") == changed["rules"]["ipv4"][1:]
    # one jump, not two (the other line with the name is the chain's ownership marker)
    assert len([line for line in v4.splitlines() if "ironwall:300:ratelimit:ssh" in line]) == 1
    # The new limit is in force: with hitcount 2 the 2nd connection is the first refused.
    server.listen(PORT)
    reset_list(server, "ssh")
    assert [sandbox_net.probe(attacker, server.addr4, PORT) for _attempt in range(3)] == [True, False, False]
    assert ansible_runs.run_module(server, "iptables_ratelimit", dict(CLASSIC, hitcount=2), backend)["changed"] is False

    # A renamed chain replaces the old one.
    renamed = ansible_runs.run_module(server, "iptables_ratelimit", dict(CLASSIC, chain_name="SSH_GUARD"), backend)
    assert renamed["_status"] == "CHANGED"
    v4, v6 = saves(server, backend)
    assert "RATELIMIT_SSH" not in v4 + v6 and len(chain_lines(v6, "SSH_GUARD")) == 5  # the marker and 4 rules
    assert chain_lines(v6, "SSH_GUARD")[0] == '-A SSH_GUARD -m comment --comment "ironwall:chain:ratelimit:ssh"'

    gone = ansible_runs.run_module(server, "iptables_ratelimit", {"name": "ssh", "state": "absent"}, backend)
    assert gone["_status"] == "CHANGED", gone
    assert saves(server, backend) == before
    again = ansible_runs.run_module(server, "iptables_ratelimit", {"name": "ssh", "state": "absent"}, backend)
    assert again["changed"] is False and again["calls"] == {"save": 2, "restore": 0}


# Every option the module can emit, as separate limits side by side; each must load into the
# real kernel, read back exactly as rendered, and converge (second run unchanged).
CORPUS = [
    {"name": "classic", "ports": ["2201"], "log_prefix": "SSH_brute_force "},
    {"name": "logged", "ports": ["2202"], "log_prefix": "rl: ", "log_level": "info", "log_limit": "3/minute"},
    {"name": "sliding", "ports": ["2203"], "update": True, "rttl": False, "hitcount": 10, "seconds": 300,
     "accept": False},
    {"name": "reset", "ports": ["2204"], "action": "REJECT", "reject_with": "tcp-reset", "priority": 5},
    {"name": "reject", "ports": ["2205", "2206", "3000:3010"], "action": "REJECT", "chain_name": "RL_REJECT"},
    {"name": "dns-udp", "protocol": "udp", "ports": ["53"], "hitcount": 20, "seconds": 1, "log_prefix": "x",
     "log_level": "7", "log_limit": "90/min"},
    {"name": "exempting", "ports": ["2207"], "exempt_sources": ["198.51.100.0/24", "203.0.113.7",
                                                                "2001:db8:100::/64", "2001:db8::7"]},
    {"name": "only-v4", "ports": ["2208"], "ip_version": "ipv4", "accept": False, "exempt_sources": ["198.51.100.9"]},
    {"name": "only-v6", "ports": ["2209"], "ip_version": "ipv6", "hitcount": 255, "chain": "OUTPUT"},
]


def playbook(tasks):
    return "- hosts: localhost\n  gather_facts: false\n  tasks:\n" + "".join(
        "    - name: %s\n      ignore_errors: true\n      ironwall.iptables.iptables_ratelimit: %s\n"
        % (name, json.dumps(args)) for name, args in tasks)


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_round_trip_corpus(netns, backend):
    tasks = [(c["name"], c) for c in CORPUS]
    first = ansible_runs.task_results(ansible_runs.run_playbook(netns, playbook(tasks), backend))
    assert all(res.get("changed") and not res.get("failed") for _n, res in first), first
    v4, v6 = saves(netns, backend)
    for (name, res), case in zip(first, CORPUS):
        for family, text in (("ipv4", v4), ("ipv6", v6)):
            if family not in res["rules"]:
                assert ":%s:" % name not in text and "--name %s " % name not in text
                continue
            chain = res["chain_name"]
            jump_chain = case.get("chain", "INPUT")
            live = [line for line in text.splitlines()
                    if line.startswith("-A %s " % chain) or ("ratelimit:%s\"" % name in line)]
            assert live == res["rules"][family], (name, family)
            assert res["rules"][family][0].startswith("-A %s " % jump_chain)
    second = ansible_runs.task_results(ansible_runs.run_playbook(netns, playbook(tasks), backend))
    assert [(n, r.get("changed"), r.get("failed")) for n, r in second] == [(n, False, None) for n, _a in tasks]
    assert saves(netns, backend) == (v4, v6)


BAD = [
    ({"hitcount": 0}, "hitcount"),
    ({"hitcount": 256}, "hitcount"),
    ({"seconds": 0}, "seconds"),
    ({"name": "ssh.brute"}, "name"),
    ({"name": "n" * 197, "chain_name": "LONG_NAME"}, "name"),
    ({"log_prefix": "thirty characters is one too many"[:30]}, "log_prefix"),
    ({"ports": ["65536"]}, "ports"),
    ({"ports": ["0"]}, "ports"),
    ({"exempt_sources": ["198.51.100.256"]}, "exempt_sources"),
    ({"exempt_sources": ["2001:db8::/129"]}, "exempt_sources"),
    ({"chain_name": "RATELIMIT_THIS_NAME_IS_TOO_LONG"}, "chain_name"),
    ({"log_prefix": "x", "log_limit": "1/fortnight"}, "log_limit"),
]


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_bad_input_names_the_option_and_changes_nothing(netns, backend):
    load_baseline(netns, backend)
    ansible_runs.run_module(netns, "iptables_ratelimit", CLASSIC, backend)
    before = saves(netns, backend)
    tasks = [("bad %d" % i, dict({"name": "ssh"}, **args)) for i, (args, _opt) in enumerate(BAD)]
    results = ansible_runs.task_results(ansible_runs.run_playbook(netns, playbook(tasks), backend))
    assert len(results) == len(BAD)
    for (_name, res), (args, option) in zip(results, BAD):
        assert res.get("failed") is True, (args, res)
        assert res["msg"].startswith(option + ": "), (option, res["msg"])
    assert saves(netns, backend) == before
