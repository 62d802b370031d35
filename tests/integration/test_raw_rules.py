# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``raw`` escape hatch against real iptables (nft and legacy), both families.

The kernel's form of a raw line is learned in a private network namespace of the target
(``unshare --net``, _learn), so raw rules converge and a rerun changes nothing; a line iptables
refuses, and any attempt to smuggle a second command or line in, fails naming the option and
leaves both families' rulesets as they were. Real packets show a u32 rule drops what it says.
"""

from __future__ import annotations

import json
import re

import pytest

import sandbox_net
from ansible_runs import BACKENDS, run_module, run_playbook, save, task_results

# TCP destination port 9090 (0x2382) by u32: IPv4 skips the header length it reads from the
# packet, IPv6 the fixed 40-byte header (no extension headers on these test packets).
U32_9090 = {4: "-m u32 --u32 '0>>22&0x3C@0&0xFFFF=0x2382' -j DROP", 6: "-m u32 --u32 '40&0xFFFF=0x2382' -j DROP"}
U32_9090_KERNEL = {4: '-m u32 --u32 "0x0>>0x16&0x3c@0x0&0xffff=0x2382"', 6: '-m u32 --u32 "0x28&0xffff=0x2382"'}

RULES = [
    {"name": "u32-ack", "ip_version": "ipv4", "raw": "-m u32 --u32 \"0>>22&0x3C@12>>26&0x3F=0x10\" -j DROP"},
    {"name": "u32-9090-v4", "ip_version": "ipv4", "protocol": "tcp", "raw": U32_9090[4]},
    {"name": "u32-9090-v6", "ip_version": "ipv6", "protocol": "tcp", "raw": U32_9090[6]},
    {"name": "hop-limit", "ip_version": "ipv6", "raw": "-m hl --hl-eq 1", "jump": "DROP"},
    {"name": "short", "raw": "-m length --length 0:100", "jump": "ACCEPT", "priority": 400},
    {"name": "plain", "protocol": "tcp", "dports": [22], "jump": "ACCEPT", "priority": 100},
]


def t(name, prio=500):
    return '-m comment --comment "ironwall:%03d:rule:%s"' % (prio, name)


EXPECTED = {
    4: ["-A INPUT -p tcp -m tcp --dport 22 %s -j ACCEPT" % t("plain", 100),
        "-A INPUT -m length --length 0:100 %s -j ACCEPT" % t("short", 400),
        "-A INPUT -p tcp %s %s -j DROP" % (U32_9090_KERNEL[4], t("u32-9090-v4")),
        '-A INPUT -m u32 --u32 "0x0>>0x16&0x3c@0xc>>0x1a&0x3f=0x10" %s -j DROP' % t("u32-ack")],
    6: ["-A INPUT -p tcp -m tcp --dport 22 %s -j ACCEPT" % t("plain", 100),
        "-A INPUT -m length --length 0:100 %s -j ACCEPT" % t("short", 400),
        "-A INPUT -m hl --hl-eq 1 %s -j DROP" % t("hop-limit"),
        "-A INPUT -p tcp %s %s -j DROP" % (U32_9090_KERNEL[6], t("u32-9090-v6"))],
}


def input_lines(ns, family, backend):
    return [line for line in save(ns, family, backend).splitlines() if line.startswith("-A INPUT ")]


def both(ns, backend):
    return save(ns, 4, backend), save(ns, 6, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_raw_rules_converge_in_the_kernels_form_and_rerun_unchanged(netns, backend):
    # a playbook: the ad-hoc callback prints the diff as text instead of returning it
    play = "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: raw\n" \
           "      ironwall.iptables.iptables_rule: %s\n" % json.dumps({"rules": RULES})
    ((_name, check),) = task_results(run_playbook(netns, play, backend=backend, check=True, diff=True))
    assert check["changed"] is True and check["calls"]["learn"] == 1, check
    assert not any(input_lines(netns, f, backend) for f in (4, 6)), check
    for fam, family in ((4, "ipv4"), (6, "ipv6")):
        # the report and the diff already show the kernel's form, learned without touching the host
        assert sorted(check["rules"][family]) == sorted(EXPECTED[fam]), check["rules"]
    assert any("0x0>>0x16" in d["after"] for d in check["diff"]), check["diff"]

    r = run_module(netns, "iptables_rule", {"rules": RULES}, backend=backend)
    assert r["changed"] is True and r["calls"]["learn"] == 1, r
    for fam, family in ((4, "ipv4"), (6, "ipv6")):
        assert input_lines(netns, fam, backend) == EXPECTED[fam], fam
        assert r["rules"][family] == EXPECTED[fam], r["rules"]

    again = run_module(netns, "iptables_rule", {"rules": RULES}, backend=backend)
    assert again["changed"] is False, again
    assert again["calls"] == {"save": 2, "restore": 0, "learn": 1}, again
    assert run_module(netns, "iptables_rule", {"rules": RULES}, backend=backend, check=True)["changed"] is False

    # no raw rule: no namespace, no extra process
    plain = run_module(netns, "iptables_rule", {"rules": RULES[-1:]}, backend=backend)
    assert plain["changed"] is False and plain["calls"] == {"save": 2, "restore": 0}, plain

    # changing the raw words replaces the rule in place; the single-rule form learns too
    single = run_module(netns, "iptables_rule", {"name": "short", "priority": 400, "raw": "-m length --length 0:200",
                                                 "jump": "ACCEPT"}, backend=backend)
    assert single["changed"] is True and single["calls"]["learn"] == 1, single
    for fam in (4, 6):
        assert input_lines(netns, fam, backend)[1] == "-A INPUT -m length --length 0:200 %s -j ACCEPT" % t("short", 400)


@pytest.mark.parametrize("backend", BACKENDS)
def test_iptables_ruleset_learns_raw_rules_once_and_reruns_unchanged(netns, backend):
    args = {"rules": RULES, "policies": {"INPUT": "ACCEPT"}}
    r = run_module(netns, "iptables_ruleset", args, backend=backend)
    assert r["changed"] is True and r["calls"]["learn"] == 1, r
    for fam in (4, 6):
        assert input_lines(netns, fam, backend) == EXPECTED[fam], fam
    again = run_module(netns, "iptables_ruleset", args, backend=backend, diff=True)
    assert again["changed"] is False and again["calls"] == {"save": 2, "restore": 0, "learn": 1}, again


REFUSED = [
    # a u32 expression iptables cannot parse (both families)
    ({"name": "bad-u32", "raw": "-m u32 --u32 '0=1 && 1=2 && 3=4 && 5=6 && 7=8 && 9=10 && 11=12 && 13=14 && 15=16 "
                                "&& 17=18 && 19=20 && 21=22' -j DROP"}, "too many"),
    # a match that does not exist
    ({"name": "no-such", "raw": "-m no-such-match --foo 1", "jump": "DROP"}, "no-such-match"),
    # ttl is IPv4 only: ip6tables refuses it, so nothing is applied in IPv4 either
    ({"name": "v6-refuses", "raw": "-m ttl --ttl-eq 1", "jump": "DROP"}, "ip_version: ipv4"),
    # accepted by the parser, refused by the kernel (owner works in OUTPUT and POSTROUTING only)
    ({"name": "hook", "raw": "-m owner --uid-owner 0", "jump": "DROP"}, "iptables-restore refused"),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_raw_line_iptables_refuses_names_the_option_and_the_line_and_changes_nothing(netns, backend):
    for fam in (4, 6):
        netns.iptables("-A", "INPUT", "-p", "udp", "--dport", "53", "-j", "ACCEPT", family=fam, backend=backend)
    before = both(netns, backend)
    for bad, words in REFUSED:
        rules = [RULES[-1], RULES[4], bad]
        r = run_module(netns, "iptables_rule", {"rules": rules}, backend=backend)
        assert r["_status"].startswith("FAILED") and r["_rc"] != 0, (bad, r)
        assert r["msg"].startswith("rules[2].raw: "), (bad, r["msg"])
        assert words in r["msg"] and "refused the line '-A INPUT " in r["msg"], (bad, r["msg"])
        assert both(netns, backend) == before, bad
        # in check mode too, and in the ruleset module
        r = run_module(netns, "iptables_ruleset", {"rules": rules}, backend=backend, check=True)
        assert r["_status"].startswith("FAILED") and r["msg"].startswith("rules[2].raw: "), (bad, r)
        assert both(netns, backend) == before, bad


INJECTIONS = [
    "-j DROP\n-A INPUT -j ACCEPT",
    "\n-A INPUT -j ACCEPT",
    "-m length --length 1 -j DROP; iptables -F",
    "-m length --length 1 -j DROP && iptables -F",
    "-A INPUT -j ACCEPT",
    "-I INPUT 1 -j ACCEPT",
    "-m length --length 1 -F",
    "-m length --length 1 -j DROP\u0000-A INPUT -j ACCEPT",
    "-m length --length 1 -j DROP\rCOMMIT",
    "COMMIT",
    "-m comment --comment 'x' -j DROP\nCOMMIT\n*filter\n-F INPUT",
    "-m comment --comment 'unbalanced -j DROP",
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_injection_attempts_fail_naming_the_option_and_change_nothing(netns, backend):
    for fam in (4, 6):
        netns.iptables("-A", "INPUT", "-p", "tcp", "--dport", "2222", "-j", "DROP", family=fam, backend=backend)
    before = both(netns, backend)
    for i, raw in enumerate(INJECTIONS):
        if i % 2:
            args, option = {"name": "inject", "raw": raw}, "raw"
        else:
            args, option = {"rules": [RULES[-1], {"name": "inject", "raw": raw}]}, "rules[1].raw"
        r = run_module(netns, "iptables_rule", args, backend=backend)
        assert r["_status"].startswith("FAILED") and r["_rc"] != 0, (raw, r)
        assert r["msg"].startswith(option + ": ") or r["msg"].startswith(option + " "), (raw, r["msg"])
        assert both(netns, backend) == before, raw
    r = run_module(netns, "iptables_ruleset", {"rules": [{"name": "inject", "raw": INJECTIONS[0]}]}, backend=backend)
    assert r["_status"].startswith("FAILED") and r["msg"].startswith("rules[0].raw"), r
    assert both(netns, backend) == before


def rule_packets(ns, family, backend, name):
    """The packet counter of the tagged rule ``name`` in INPUT (iptables-save -c)."""
    text = ns.save(family, backend, counters=True)
    for line in text.splitlines():
        if "-A INPUT " in line and "rule:%s\"" % name in line:
            return int(re.match(r"^\[(\d+):\d+\]", line).group(1))
    raise AssertionError("no rule %s in\n%s" % (name, text))


@pytest.mark.parametrize("backend", BACKENDS)
def test_real_packets_the_u32_rule_drops_port_9090_only(lan, backend):
    host = sandbox_net.Netns(prefix="iwt")
    with host:
        lan.attach(host)
        client = lan.add_client()
        open_pid = host.listen(8080, family=6)   # dual-stack listeners
        target_pid = host.listen(9090, family=6)
        try:
            # without the rule both ports answer on both families
            for addr in (host.addr4, host.addr6):
                assert sandbox_net.probe(client, addr, 8080, timeout=5)
                assert sandbox_net.probe(client, addr, 9090, timeout=5)
            r = run_module(host, "iptables_rule", {"rules": RULES[1:3]}, backend=backend)
            assert r["changed"] is True, r
            for addr in (host.addr4, host.addr6):
                assert sandbox_net.probe(client, addr, 8080, timeout=5)
                assert not sandbox_net.probe(client, addr, 9090, timeout=2)
            # the u32 rules are what dropped them: their counters saw the SYNs
            assert rule_packets(host, 4, backend, "u32-9090-v4") >= 1
            assert rule_packets(host, 6, backend, "u32-9090-v6") >= 1
            # removed, the port answers again
            for name in ("u32-9090-v4", "u32-9090-v6"):
                run_module(host, "iptables_rule", {"name": name, "state": "absent"}, backend=backend)
            for addr in (host.addr4, host.addr6):
                assert sandbox_net.probe(client, addr, 9090, timeout=5)
        finally:
            host.stop(open_pid)
            host.stop(target_pid)
