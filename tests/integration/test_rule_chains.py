# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Rule chains (the ``chains`` option, issue 14) against real iptables (nft and legacy), IPv4 and
IPv6, in throwaway namespaces: created with the marker, rules ordered in them, the jump into them
carrying real packets, removal with the jumps, other software's chains refused untouched."""

from __future__ import annotations

import pytest

import sandbox_net
from ansible_runs import BACKENDS, run_module, save

MARK = '-A WEB -m comment --comment "ironwall:chain:rule-chain:WEB"'
FOREIGN = {4: "-A INPUT -s 203.0.113.5/32 -j DROP", 6: "-A INPUT -s 2001:db8::5/128 -j DROP"}


def t(prio, name):
    return '-m comment --comment "ironwall:%03d:rule:%s"' % (prio, name)


def web_rules(admins=("198.51.100.0/24", "2001:db8:100::/64")):
    return [
        {"name": "web-rest", "chain": "WEB", "priority": 900, "jump": "DROP"},
        {"name": "to-web", "priority": 400, "protocol": "tcp", "dports": [8080], "jump": "WEB"},
        {"name": "web-admins", "chain": "WEB", "priority": 100, "source": list(admins), "jump": "ACCEPT"},
    ]


def lines(ns, fam, backend, chain):
    return [line for line in save(ns, fam, backend).splitlines() if line.startswith("-A %s " % chain)]


def both(ns, backend):
    return save(ns, 4, backend), save(ns, 6, backend)


def foreign_rules(ns, backend):
    for fam in (4, 6):
        ns.iptables(*FOREIGN[fam].split()[:], family=fam, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_chain_converges_with_two_rules_and_a_jump_reruns_unchanged_and_is_removed(netns, backend):
    foreign_rules(netns, backend)
    before = both(netns, backend)
    # check mode: reported, nothing written
    dry = run_module(netns, "iptables_rule", {"chains": ["WEB"], "rules": web_rules()}, backend=backend, check=True)
    assert dry["changed"] is True and dry["chains"]["ipv4"]["created"] == ["filter:WEB"], dry
    assert both(netns, backend) == before

    r = run_module(netns, "iptables_rule", {"chains": ["WEB"], "rules": web_rules()}, backend=backend)
    assert r["_status"] == "CHANGED" and r["chains"] == {"ipv4": {"created": ["filter:WEB"], "removed": []},
                                                         "ipv6": {"created": ["filter:WEB"], "removed": []}}, r
    # one iptables-restore per family (the chain, its rules and the jump together), after the --test of IPv6
    assert r["calls"]["restore"] == 3, r
    admins = {4: "198.51.100.0/24", 6: "2001:db8:100::/64"}
    for fam in (4, 6):
        assert lines(netns, fam, backend, "WEB") == [
            MARK,
            "-A WEB -s %s %s -j ACCEPT" % (admins[fam], t(100, "web-admins")),
            "-A WEB %s -j DROP" % t(900, "web-rest"),
        ], fam
        assert lines(netns, fam, backend, "INPUT") == [
            FOREIGN[fam], "-A INPUT -p tcp -m tcp --dport 8080 %s -j WEB" % t(400, "to-web")], fam

    again = run_module(netns, "iptables_rule", {"chains": ["WEB"], "rules": web_rules()}, backend=backend)
    assert again["changed"] is False and again["calls"] == {"save": 2, "restore": 0}, again
    assert again["chains"] == {"ipv4": {"created": [], "removed": []}, "ipv6": {"created": [], "removed": []}}

    # another task adds a rule into the chain: placed by priority after the marker
    mid = run_module(netns, "iptables_rule", {"name": "web-mid", "chain": "WEB", "priority": 500, "protocol": "tcp",
                                              "dports": [8080], "source": ["203.0.113.0/24"], "jump": "ACCEPT",
                                              "ip_version": "ipv4"}, backend=backend)
    assert mid["changed"] is True, mid
    assert [line.split("rule:")[1].split('"')[0] for line in lines(netns, 4, backend, "WEB")[1:]] == [
        "web-admins", "web-mid", "web-rest"]

    # removal: the chain, every tagged rule in it and the tagged jump, one transaction per family
    gone = run_module(netns, "iptables_rule", {"chains": [{"name": "WEB", "state": "absent"}]}, backend=backend)
    assert gone["changed"] is True and gone["chains"]["ipv6"]["removed"] == ["filter:WEB"], gone
    assert gone["calls"]["restore"] == 3, gone
    for fam in (4, 6):
        text = save(netns, fam, backend)
        assert ":WEB" not in text and "-j WEB" not in text and "ironwall" not in text, text
        assert lines(netns, fam, backend, "INPUT") == [FOREIGN[fam]]
    assert run_module(netns, "iptables_rule", {"chains": [{"name": "WEB", "state": "absent"}]},
                      backend=backend)["changed"] is False


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_foreign_chain_of_the_same_name_is_refused_and_nothing_changes(netns, backend):
    for fam in (4, 6):
        netns.iptables("-N", "WEB", family=fam, backend=backend)
        netns.iptables("-A", "WEB", "-j", "RETURN", family=fam, backend=backend)
        netns.iptables("-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "WEB", family=fam, backend=backend)
    before = both(netns, backend)
    for args in ({"chains": ["OTHER", "WEB"], "rules": web_rules()},
                 {"chains": ["OTHER", {"name": "WEB", "state": "absent"}]}):
        r = run_module(netns, "iptables_rule", args, backend=backend)
        assert r["_status"].startswith("FAILED") and r["msg"].startswith("chains[1]:"), r
        assert "no ownership marker" in r["msg"], r
        assert both(netns, backend) == before  # OTHER not created either: one transaction
    r = run_module(netns, "iptables_ruleset", {"chains": ["WEB"]}, backend=backend)
    assert r["_status"].startswith("FAILED") and r["msg"].startswith("chains[0]:"), r
    assert both(netns, backend) == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_removal_is_refused_while_a_foreign_rule_jumps_to_the_chain(netns, backend):
    assert run_module(netns, "iptables_rule", {"chains": ["WEB"], "rules": web_rules()},
                      backend=backend)["changed"] is True
    for fam, src in ((4, "203.0.113.9"), (6, "2001:db8::9")):
        netns.iptables("-A", "FORWARD", "-s", src, "-j", "WEB", family=fam, backend=backend)
    before = both(netns, backend)
    r = run_module(netns, "iptables_rule", {"chains": [{"name": "WEB", "state": "absent"}]}, backend=backend)
    assert r["_status"].startswith("FAILED") and r["msg"].startswith("chains[0]:"), r
    assert "still jumps to it" in r["msg"] and "-A FORWARD -s 203.0.113.9/32 -j WEB" in r["msg"], r
    assert both(netns, backend) == before
    # the ruleset's exclusive refuses the same way, naming itself
    r = run_module(netns, "iptables_ruleset", {"exclusive": True}, backend=backend)
    assert r["_status"].startswith("FAILED") and r["msg"].startswith("exclusive:"), r
    assert both(netns, backend) == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_ruleset_exclusive_removes_a_chain_dropped_from_the_declaration(netns, backend):
    foreign_rules(netns, backend)
    decl = {"chains": ["WEB"], "rules": web_rules(), "exclusive": True}
    r = run_module(netns, "iptables_ruleset", decl, backend=backend)
    assert r["changed"] is True and r["chains"]["ipv4"]["created"] == ["filter:WEB"], r
    assert lines(netns, 6, backend, "WEB")[0] == MARK
    assert run_module(netns, "iptables_ruleset", decl, backend=backend)["changed"] is False
    r = run_module(netns, "iptables_ruleset", {"exclusive": True}, backend=backend)
    assert r["changed"] is True and "rule-chain:WEB" in r["removed"]["ipv4"], r
    for fam in (4, 6):
        assert ":WEB" not in save(netns, fam, backend) and lines(netns, fam, backend, "INPUT") == [FOREIGN[fam]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_jump_into_the_chain_decides_real_packets(lan, backend):
    host = sandbox_net.Netns(prefix="iwt")
    with host:
        lan.attach(host)
        client = lan.add_client()
        # INPUT's policy stays ACCEPT: only the jump to WEB can refuse port 8080; 9090 is not jumped
        rules = [{"name": "to-web", "priority": 400, "protocol": "tcp", "dports": [8080], "jump": "WEB"},
                 {"name": "web-rest", "chain": "WEB", "priority": 900, "protocol": "tcp", "jump": "REJECT",
                  "reject_with": "tcp-reset"}]
        r = run_module(host, "iptables_rule", {"chains": ["WEB"], "rules": rules}, backend=backend)
        assert r["changed"] is True, r
        web = host.listen(8080, family=6)    # dual-stack listeners
        other = host.listen(9090, family=6)
        try:
            for addr in (host.addr4, host.addr6):
                assert not sandbox_net.probe(client, addr, 8080, timeout=3), addr
                assert sandbox_net.probe(client, addr, 9090, timeout=5), addr
            # a rule placed in WEB before the reject lets the client in, on both families
            admit = {"name": "web-client", "chain": "WEB", "priority": 100,
                     "source": [client.addr4, client.addr6], "jump": "ACCEPT"}
            r = run_module(host, "iptables_rule", {"chains": ["WEB"], "rules": rules + [admit]}, backend=backend)
            assert r["changed"] is True, r
            for addr in (host.addr4, host.addr6):
                assert sandbox_net.probe(client, addr, 8080, timeout=5), addr
            # removing the chain takes the jump along: 8080 is open through INPUT's policy
            r = run_module(host, "iptables_rule", {"chains": [{"name": "WEB", "state": "absent"}]}, backend=backend)
            assert r["changed"] is True, r
            for addr in (host.addr4, host.addr6):
                assert sandbox_net.probe(client, addr, 8080, timeout=5), addr
            assert ":WEB" not in save(host, 4, backend) and ":WEB" not in save(host, 6, backend)
        finally:
            host.stop(web)
            host.stop(other)
