# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_rule against real iptables (nft and legacy) in throwaway namespaces, with real packets."""

from __future__ import annotations

import json

import pytest

import sandbox_net
from ansible_runs import BACKENDS, run_module, run_playbook, save, task_results

BASE = [
    {"name": "loopback", "priority": 100, "in_interface": "lo", "jump": "ACCEPT"},
    {"name": "established", "priority": 110, "ctstate": ["ESTABLISHED", "RELATED"], "state_match": "state",
     "jump": "ACCEPT"},
    {"name": "icmp", "priority": 120, "protocol": "icmp", "jump": "ACCEPT"},
    {"name": "http", "protocol": "tcp", "dports": [80], "ctstate": ["NEW"], "state_match": "state",
     "jump": "ACCEPT"},
]


def t(prio, name):
    return '-m comment --comment "ironwall:%03d:rule:%s"' % (prio, name)


def input_lines(ns, family, backend):
    return [line for line in save(ns, family, backend).splitlines() if line.startswith("-A INPUT ")]


def expected_base(family, http_port=80, extra=()):
    icmp = "icmp" if family == 4 else "ipv6-icmp"
    lines = [
        "-A INPUT -i lo %s -j ACCEPT" % t(100, "loopback"),
        "-A INPUT -m state --state RELATED,ESTABLISHED %s -j ACCEPT" % t(110, "established"),
        "-A INPUT -p %s %s -j ACCEPT" % (icmp, t(120, "icmp")),
        "-A INPUT -p tcp -m tcp --dport %d -m state --state NEW %s -j ACCEPT" % (http_port, t(500, "http")),
    ]
    return lines


@pytest.mark.parametrize("backend", BACKENDS)
def test_base_rules_converge_in_order_around_foreign_rules(netns, backend):
    src = {4: "203.0.113.5/32", 6: "2001:db8::5/128"}
    for fam in (4, 6):
        netns.iptables("-A", "INPUT", "-s", src[fam], "-j", "DROP", family=fam, backend=backend)
    # Reversed list order: the priority decides the place, not the list.
    r = run_module(netns, "iptables_rule", {"rules": list(reversed(BASE))}, backend=backend)
    assert r["_status"] == "CHANGED" and r["changed"] is True, r
    assert r["calls"]["save"] == 4  # one read per family, one read-back of the table rules were inserted in
    for fam in (4, 6):
        assert input_lines(netns, fam, backend) == (
            ["-A INPUT -s %s -j DROP" % src[fam]] + expected_base(fam)), fam

    again = run_module(netns, "iptables_rule", {"rules": BASE}, backend=backend)
    assert again["changed"] is False and again["calls"] == {"save": 2, "restore": 0}, again

    # Foreign rules interleaved between tagged ones keep their places when rules are added,
    # changed (http -> 8080, replaced in place) and moved.
    for fam in (4, 6):
        netns.iptables("-I", "INPUT", "4", "-p", "udp", "--dport", "5353", "-j", "ACCEPT", family=fam,
                       backend=backend)
    changed = [dict(r) for r in BASE] + [{"name": "ssh", "priority": 115, "protocol": "tcp", "dports": [22],
                                          "jump": "ACCEPT"}]
    changed[3]["dports"] = [8080]
    r = run_module(netns, "iptables_rule", {"rules": changed}, backend=backend)
    assert r["changed"] is True, r
    for fam in (4, 6):
        base = expected_base(fam, http_port=8080)
        assert input_lines(netns, fam, backend) == [
            "-A INPUT -s %s -j DROP" % src[fam],
            base[0], base[1],
            "-A INPUT -p udp -m udp --dport 5353 -j ACCEPT",
            "-A INPUT -p tcp -m tcp --dport 22 %s -j ACCEPT" % t(115, "ssh"),
            base[2], base[3],
        ], fam
    assert run_module(netns, "iptables_rule", {"rules": changed}, backend=backend)["changed"] is False

    # state: absent removes the rule from both families, and only it.
    gone = run_module(netns, "iptables_rule", {"name": "ssh", "state": "absent"}, backend=backend)
    assert gone["changed"] is True
    for fam in (4, 6):
        lines = input_lines(netns, fam, backend)
        assert len(lines) == 6 and not any("rule:ssh" in line for line in lines)


@pytest.mark.parametrize("backend", BACKENDS)
def test_check_mode_changes_nothing_and_reports_the_diff(netns, backend):
    for fam in (4, 6):  # legacy prints no table until one is used: make both exist
        netns.iptables("-A", "INPUT", "-p", "udp", "-j", "ACCEPT", family=fam, backend=backend)
    before = (save(netns, 4, backend), save(netns, 6, backend))
    # A playbook: the ad-hoc callback prints the diff as text instead of returning it.
    play = "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: base\n" \
           "      ironwall.iptables.iptables_rule: %s\n" % json.dumps({"rules": BASE})
    ((_name, r),) = task_results(run_playbook(netns, play, backend=backend, check=True, diff=True))
    assert r["changed"] is True and r["calls"]["restore"] == 2, r  # --test only, one per family
    assert len(r["diff"]) == 2 and "ironwall:100:rule:loopback" in r["diff"][1]["after"]
    assert (save(netns, 4, backend), save(netns, 6, backend)) == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_changing_table_moves_the_rule_and_leaves_no_copy(netns, backend):
    rule = {"name": "web", "protocol": "tcp", "dports": [80], "jump": "ACCEPT"}
    assert run_module(netns, "iptables_rule", rule, backend=backend)["changed"] is True
    moved = run_module(netns, "iptables_rule", dict(rule, table="mangle"), backend=backend)
    assert moved["changed"] is True, moved
    for fam in (4, 6):
        text = save(netns, fam, backend)
        tables = [block.split("\n", 1)[0] for block in text.split("*")[1:] if "rule:web" in block]
        assert tables == ["mangle"], (fam, text)
    assert run_module(netns, "iptables_rule", dict(rule, table="mangle"), backend=backend)["changed"] is False
    # state: absent finds the name in whatever table holds it.
    gone = run_module(netns, "iptables_rule", {"name": "web", "state": "absent"}, backend=backend)
    assert gone["changed"] is True and all("rule:web" not in save(netns, f, backend) for f in (4, 6)), gone


# Each bad input fails before anything runs, names the option, and leaves the ruleset as it was.
BAD = [
    ({"name": "a", "source": ["198.51.100.0/33"], "jump": "ACCEPT"}, "source:"),
    ({"name": "a", "source": ["198.51.100"], "jump": "ACCEPT"}, "source:"),
    ({"name": "a", "destination": ["2001:db8::g"], "jump": "ACCEPT"}, "destination:"),
    ({"name": "a", "source": ["2001:db8::1"], "ip_version": "ipv4", "jump": "ACCEPT"}, "source:"),
    ({"name": "a", "protocol": "tcp", "dports": [0], "jump": "ACCEPT"}, "dports:"),
    ({"name": "a", "protocol": "tcp", "dports": [65536], "jump": "ACCEPT"}, "dports:"),
    ({"name": "a", "protocol": "tcp", "dports": ["abc"], "jump": "ACCEPT"}, "dports:"),
    ({"name": "a", "protocol": "tcp", "dports": ["2000:1000"], "jump": "ACCEPT"}, "dports:"),
    ({"name": "a", "dports": [22], "jump": "ACCEPT"}, "dports:"),
    ({"name": "a", "protocol": "tcp", "icmp_type": "echo-request", "jump": "ACCEPT"}, "icmp_type:"),
    ({"name": "a", "log_prefix": "x", "jump": "ACCEPT"}, "log_prefix:"),
    ({"name": "a", "reject_with": "tcp-reset", "jump": "DROP"}, "reject_with:"),
    ({"name": "a", "jump": "NO_SUCH_CHAIN"}, "jump:"),
    ({"name": "a", "priority": 1000, "jump": "ACCEPT"}, "priority:"),
    ({"rules": [{"name": "a", "jump": "ACCEPT"}, {"name": "a", "jump": "DROP"}]}, "rules[1].name:"),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_input_names_the_option_and_changes_nothing(netns, backend):
    netns.iptables("-A", "INPUT", "-s", "198.51.100.9", "-j", "DROP", backend=backend)
    run_module(netns, "iptables_rule", {"name": "keep", "jump": "ACCEPT"}, backend=backend)
    before = (save(netns, 4, backend), save(netns, 6, backend))
    assert "rule:keep" in before[0] and "rule:keep" in before[1]
    # Half the cases per backend keeps the run short; together both backends see all of them.
    cases = BAD[BACKENDS.index(backend)::2] + [BAD[12]]
    for args, prefix in cases:
        r = run_module(netns, "iptables_rule", args, backend=backend)
        assert r["_status"].startswith("FAILED") and r["_rc"] != 0, (args, r)
        assert r["msg"].startswith(prefix), (args, r["msg"])
        assert (save(netns, 4, backend), save(netns, 6, backend)) == before, args


@pytest.mark.parametrize("backend", BACKENDS)
def test_real_packets_reach_the_allowed_port_only(lan, backend):
    host = sandbox_net.Netns(prefix="iwt")
    with host:
        lan.attach(host)
        client = lan.add_client()
        rules = BASE[:3] + [{"name": "app", "protocol": "tcp", "dports": [8080], "ctstate": ["NEW"],
                             "jump": "ACCEPT"}]
        r = run_module(host, "iptables_rule", {"rules": rules}, backend=backend)
        assert r["changed"] is True, r
        for fam in (4, 6):
            host.iptables("-P", "INPUT", "DROP", family=fam, backend=backend)
        open_pid = host.listen(8080, family=6)   # dual-stack listeners
        closed_pid = host.listen(9090, family=6)
        try:
            assert sandbox_net.probe(client, host.addr4, 8080)
            assert sandbox_net.probe(client, host.addr6, 8080)
            assert not sandbox_net.probe(client, host.addr4, 9090, timeout=1)
            assert not sandbox_net.probe(client, host.addr6, 9090, timeout=1)
            # Removing the rule closes the port on both families.
            run_module(host, "iptables_rule", {"name": "app", "state": "absent"}, backend=backend)
            assert not sandbox_net.probe(client, host.addr4, 8080, timeout=1)
            assert not sandbox_net.probe(client, host.addr6, 8080, timeout=1)
        finally:
            host.stop(open_pid)
            host.stop(closed_pid)


@pytest.mark.parametrize("backend", BACKENDS)
def test_exclusive_prefix_removes_unlisted_rules_of_its_namespace(netns, backend):
    for fam in (4, 6):
        netns.iptables("-A", "INPUT", "-p", "udp", "--dport", "5353", "-j", "ACCEPT", family=fam, backend=backend)
    three = [{"name": "open-%d" % p, "protocol": "tcp", "dports": [p], "jump": "ACCEPT"} for p in (80, 443, 8080)]
    assert run_module(netns, "iptables_rule", {"rules": three}, backend=backend)["changed"] is True
    assert run_module(netns, "iptables_rule", {"name": "keep", "jump": "ACCEPT", "protocol": "tcp", "dports": [22]},
                      backend=backend)["changed"] is True
    r = run_module(netns, "iptables_rule", {"exclusive_prefix": "open-", "rules": three[:1]}, backend=backend)
    assert r["changed"] is True and r["pruned"] == {"ipv4": ["open-443", "open-8080"],
                                                    "ipv6": ["open-443", "open-8080"]}, r
    for fam in (4, 6):
        lines = input_lines(netns, fam, backend)
        assert [line.split("rule:")[1].split('"')[0] for line in lines if "ironwall" in line] == ["keep", "open-80"]
        assert "-A INPUT -p udp -m udp --dport 5353 -j ACCEPT" in lines
    again = run_module(netns, "iptables_rule", {"exclusive_prefix": "open-", "rules": three[:1]}, backend=backend)
    assert again["changed"] is False and again["pruned"] == {"ipv4": [], "ipv6": []}, again
