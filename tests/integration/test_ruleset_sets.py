# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_ruleset with ipsets in its one transaction, real iptables (nft and legacy) and real ipset in
throwaway namespaces: a set, the rule matching it and an ipset whitelist in one task, with real packets;
a rerun reads the sets once and changes nothing; check mode changes nothing; exclusive destroys the sets
of an undeclared whitelist and an undeclared set but keeps a set a foreign rule uses; bad input fails
naming the option and changes nothing."""

from __future__ import annotations

import pytest

import ansible_runs
import sandbox_net
import tcp_load


def set_names(ns):
    return sorted(line.split()[1] for line in ns.run(["ipset", "save"]).stdout.splitlines()
                  if line.startswith("create "))


def state(ns, backend):
    """What a failed or check-mode run must leave as it was: every set and both rulesets."""
    return (ns.run(["ipset", "save"]).stdout, ansible_runs.save(ns, 4, backend), ansible_runs.save(ns, 6, backend))


def declaration(blocked, allowed, **kw):
    args = {
        "rules": [{"name": "bl", "priority": 50, "match_set": "bl", "ip_version": "ipv4", "jump": "DROP"},
                  {"name": "bl6", "priority": 50, "match_set": "bl_v6", "ip_version": "ipv6", "jump": "DROP"},
                  {"name": "web", "protocol": "tcp", "dports": [8080], "ctstate": ["NEW"], "jump": "ACCEPT"}],
        # a text with a comment and a blank line, as a published list is
        "sets": [{"name": "bl", "entries": "# blocked\n%s\n\n%s\n198.18.0.0/15\n" % tuple(blocked)}],
        "whitelists": [{"name": "DB", "ports": [3306], "sources": list(allowed), "backend": "ipset",
                        "fallback": "REJECT"}],
        "exclusive": True,
    }
    args.update(kw)
    return args


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_sets_rules_and_ipset_whitelist_in_one_task(lan, backend):
    server = lan.add_client(subnet="198.51.100")
    alice = lan.add_client(subnet="203.0.113")
    bob = lan.add_client(subnet="203.0.113")
    carol = lan.add_client(subnet="203.0.113")
    args = declaration([bob.addr4, bob.addr6], [alice.addr4, alice.addr6])

    before = state(server, backend)
    check = ansible_runs.run_module(server, "iptables_ruleset", args, backend, check=True)
    assert check["_status"] == "CHANGED", check
    assert check["sets"]["bl"]["ipv4"]["action"] == "create" and check["sets"]["bl"]["ipv6"]["entries"] == 1
    assert state(server, backend) == before and set_names(server) == []

    first = ansible_runs.run_module(server, "iptables_ruleset", args, backend)
    assert first["_status"] == "CHANGED", first
    assert first["sets"] == {"bl": {"ipv4": {"name": "bl", "action": "create", "entries": 2, "added": 2, "removed": 0},
                                    "ipv6": {"name": "bl_v6", "action": "create", "entries": 1, "added": 1,
                                             "removed": 0}}}
    assert first["whitelists"]["ipv4"]["DB"]["set"] == {"name": "DB", "action": "create"}
    assert set_names(server) == ["DB", "DB_v6", "bl", "bl_v6", "ironwall-sets"]
    v4 = ansible_runs.save(server, 4, backend)
    assert '-A INPUT -m set --match-set bl src -m comment --comment "ironwall:050:rule:bl" -j DROP' in v4
    assert "--match-set DB src" in v4 and ":DB " not in v4

    with tcp_load.Server(server, 8080, family=6), tcp_load.Server(server, 3306, family=6):
        for addr in (server.addr4, server.addr6):
            assert sandbox_net.probe(alice, addr, 8080, timeout=20) is True
            assert sandbox_net.probe(bob, addr, 8080, timeout=1) is False      # blocklisted
            assert sandbox_net.probe(alice, addr, 3306, timeout=20) is True     # whitelisted
            assert sandbox_net.probe(carol, addr, 3306, timeout=1) is False    # refused by the fallback

    converged = state(server, backend)
    again = ansible_runs.run_module(server, "iptables_ruleset", args, backend)
    assert again["_status"] == "SUCCESS" and again["changed"] is False, again
    assert again["calls"] == {"save": 2, "restore": 0, "ipset_save": 1}, again["calls"]
    assert again["sets"]["bl"]["ipv4"]["action"] == "none" and again["removed"] == {"ipv4": [], "ipv6": []}
    assert state(server, backend) == converged

    # a changed list: one swap, the rules untouched
    changed = declaration([bob.addr4, carol.addr6], [alice.addr4, alice.addr6])
    swap = ansible_runs.run_module(server, "iptables_ruleset", changed, backend)
    assert swap["_status"] == "CHANGED" and swap["calls"]["ipset_restore"] == 1 and swap["calls"]["restore"] == 0, swap
    assert swap["sets"]["bl"]["ipv6"] == {"name": "bl_v6", "action": "swap", "entries": 1, "added": 1, "removed": 1}
    with tcp_load.Server(server, 8080, family=6):
        assert sandbox_net.probe(bob, server.addr6, 8080, timeout=20) is True
        assert sandbox_net.probe(carol, server.addr6, 8080, timeout=1) is False


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_exclusive_destroys_undeclared_sets_and_keeps_one_a_foreign_rule_uses(netns, backend):
    args = declaration(["203.0.113.7", "2001:db8::7"], ["198.51.100.9"])
    assert ansible_runs.run_module(netns, "iptables_ruleset", args, backend)["_status"] == "CHANGED"

    # the whitelist leaves the declaration: its rules go in the transaction, its sets after it
    before = state(netns, backend)
    check = ansible_runs.run_module(netns, "iptables_ruleset", dict(args, whitelists=[]), backend, check=True)
    assert check["_status"] == "CHANGED", check
    assert check["removed"] == {"ipv4": ["ipset:DB", "whitelist:DB"], "ipv6": ["ipset:DB_v6", "whitelist:DB"]}
    assert state(netns, backend) == before
    res = ansible_runs.run_module(netns, "iptables_ruleset", dict(args, whitelists=[]), backend)
    assert res["_status"] == "CHANGED" and res["removed"] == check["removed"], res
    assert set_names(netns) == ["bl", "bl_v6", "ironwall-sets"]
    assert "--match-set DB" not in ansible_runs.save(netns, 4, backend)

    # another program's rule matches bl: exclusive keeps bl (a warning says why) and destroys bl_v6
    netns.iptables("-A", "INPUT", "-m", "set", "--match-set", "bl", "src", "-j", "DROP", backend=backend)
    bare = {"exclusive": True, "rules": [{"name": "web", "protocol": "tcp", "dports": [8080], "jump": "ACCEPT"}]}
    res = ansible_runs.run_module(netns, "iptables_ruleset", bare, backend)
    assert res["_status"] == "CHANGED", res
    assert res["removed"] == {"ipv4": ["rule:bl"], "ipv6": ["ipset:bl_v6", "rule:bl6"]}
    assert res["sets_kept"] == {"bl": "used by ipv4: -A INPUT -m set --match-set bl src -j DROP"}
    assert "was not destroyed" in res["_stderr"] or "was not destroyed" in str(res.get("warnings")), res
    assert set_names(netns) == ["bl", "ironwall-sets"]
    assert "-A INPUT -m set --match-set bl src -j DROP" in ansible_runs.save(netns, 4, backend)

    # the foreign rule gone, the next run destroys the set
    netns.iptables("-D", "INPUT", "-m", "set", "--match-set", "bl", "src", "-j", "DROP", backend=backend)
    res = ansible_runs.run_module(netns, "iptables_ruleset", bare, backend)
    assert res["_status"] == "CHANGED" and res["removed"]["ipv4"] == ["ipset:bl"] and "sets_kept" not in res, res
    assert set_names(netns) == ["ironwall-sets"]
    again = ansible_runs.run_module(netns, "iptables_ruleset", bare, backend)
    assert again["changed"] is False and again["removed"] == {"ipv4": [], "ipv6": []}, again


def test_sets_absent_destroys_after_the_rules_stop_matching(netns):
    args = declaration(["203.0.113.7", "2001:db8::7"], ["198.51.100.9"], exclusive=False)
    assert ansible_runs.run_module(netns, "iptables_ruleset", args)["_status"] == "CHANGED"
    absent = dict(args, sets=[{"name": "bl", "state": "absent"}],
                  rules=[{"name": "bl", "state": "absent"}, {"name": "bl6", "state": "absent"}])
    res = ansible_runs.run_module(netns, "iptables_ruleset", absent)
    assert res["_status"] == "CHANGED", res
    assert res["sets"]["bl"] == {"ipv4": {"name": "bl", "action": "destroy", "entries": 0, "added": 0, "removed": 2},
                                 "ipv6": {"name": "bl_v6", "action": "destroy", "entries": 0, "added": 0,
                                          "removed": 1}}
    assert set_names(netns) == ["DB", "DB_v6", "ironwall-sets"] and "match-set bl" not in ansible_runs.save(netns)
    again = ansible_runs.run_module(netns, "iptables_ruleset", absent)
    assert again["changed"] is False and again["sets"]["bl"]["ipv4"]["action"] == "none", again


@pytest.mark.parametrize("change, msg", [
    (dict(sets=[{"name": "bl", "entries": "203.0.113.7\n203.0.113.x\n"}]), "sets[0].entries line 2: "),
    (dict(sets=[{"name": "bl", "entries": ["203.0.113.7"]}, {"name": "x" * 29}]), "sets[1].name: "),
    (dict(whitelists=[{"name": "DB", "ports": [3306], "sources": ["198.51.100.9"], "backend": "foo"}]),
     "whitelists[0].backend: must be chain or ipset"),
])
def test_bad_input_names_the_option_and_changes_nothing(netns, change, msg):
    args = declaration(["203.0.113.7", "2001:db8::7"], ["198.51.100.9"])
    assert ansible_runs.run_module(netns, "iptables_ruleset", args)["_status"] == "CHANGED"
    before = state(netns, "nft")
    # the bad item comes with a changed list or whitelist: a run that got anywhere would show
    bad = dict(args, **change)
    res = ansible_runs.run_module(netns, "iptables_ruleset", bad)
    assert res["_status"] == "FAILED!" and res["msg"].startswith(msg), res
    assert state(netns, "nft") == before
