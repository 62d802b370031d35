# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_ipset against the real ipset tool in throwaway namespaces (ipsets are per network
namespace), and a blocklist matched by iptables_rule's match_set with real packets, nft and legacy."""

from __future__ import annotations

import pytest

import ansible_runs
import sandbox_net


def ipset_save(ns):
    return ns.run(["ipset", "save"]).stdout


def entries(ns, name):
    return sorted(line.split()[2] for line in ipset_save(ns).splitlines() if line.startswith("add %s " % name))


def test_converge_rerun_change_check_diff_and_absent(netns):
    args = {"name": "bl", "entries": ["198.51.100.7/32", "203.0.113.9/24", "2001:db8::1/64", "198.51.100.7"]}
    first = ansible_runs.run_module(netns, "iptables_ipset", args, diff=True)
    assert first["_status"] == "CHANGED", first
    assert first["sets"]["ipv4"] == dict(name="bl", action="create", entries=2, added=2, removed=0)
    assert first["sets"]["ipv6"]["name"] == "bl_v6" and first["calls"] == {"ipset_save": 1, "ipset_restore": 1}
    assert entries(netns, "bl") == ["198.51.100.7", "203.0.113.0/24"]
    assert entries(netns, "bl_v6") == ["2001:db8::/64"]
    assert entries(netns, "ironwall-sets") == ["bl", "bl_v6"]
    netns.run(["ipset", "create", "foreign", "hash:ip"])
    info = ansible_runs.run_module(netns, "iptables_info", {"ip_version": "ipv4", "table": "filter"})
    assert info["sets"] == [
        dict(name="bl", type="hash:net", family="ipv4", entries=2, maxelem=65536, references=0),
        dict(name="bl_v6", type="hash:net", family="ipv6", entries=1, maxelem=65536, references=0)], info
    assert info["calls"]["ipset_list"] == 2 and info["calls"]["save"] == 1
    before = ipset_save(netns)

    again = ansible_runs.run_module(netns, "iptables_ipset", args)
    assert again["_status"] == "SUCCESS" and again["changed"] is False, again
    assert again["calls"] == {"ipset_save": 1, "ipset_restore": 0}

    changed = dict(args, entries=["198.51.100.8", "2001:db8::1/64"])
    check = ansible_runs.run_module(netns, "iptables_ipset", changed, check=True, diff=True)
    assert check["_status"] == "CHANGED" and check["sets"]["ipv4"]["action"] == "swap", check
    assert (check["sets"]["ipv4"]["added"], check["sets"]["ipv4"]["removed"]) == (1, 2)
    assert check["calls"] == {"ipset_save": 1, "ipset_restore": 0}
    assert ipset_save(netns) == before

    done = ansible_runs.run_module(netns, "iptables_ipset", changed)
    assert done["_status"] == "CHANGED" and done["sets"]["ipv6"]["action"] == "none", done
    assert entries(netns, "bl") == ["198.51.100.8"]
    assert not [line for line in ipset_save(netns).splitlines() if "iwtmp-" in line]

    gone = ansible_runs.run_module(netns, "iptables_ipset", {"name": "bl", "state": "absent"})
    assert gone["_status"] == "CHANGED", gone
    assert "create bl " not in ipset_save(netns) and "create bl_v6 " not in ipset_save(netns)


def test_a_list_file_as_text_converges_and_reruns_unchanged(netns):
    """The documented form for large lists: the file's text, one entry per line, comments and blank
    lines ignored, compared with what ipset printed (a /32 is a host, host bits are masked)."""
    hosts = ["198.18.%d.%d/32" % (n // 256, n % 256) for n in range(3000)]
    text = "# feed\r\n" + "\n".join(hosts) + "\n\n203.0.113.77/24  # a network\n2001:db8::5/64\n"
    first = ansible_runs.run_module(netns, "iptables_ipset", {"name": "feed", "entries": text})
    assert first["_status"] == "CHANGED" and first["sets"]["ipv4"]["entries"] == 3001, first
    assert "203.0.113.0/24" in entries(netns, "feed") and "198.18.0.0" in entries(netns, "feed")
    assert entries(netns, "feed_v6") == ["2001:db8::/64"]
    plain = "".join(h + "\n" for h in hosts) + "203.0.113.0/24\n2001:db8::/64\n"
    for same in (text, plain):
        again = ansible_runs.run_module(netns, "iptables_ipset", {"name": "feed", "entries": same})
        assert again["_status"] == "SUCCESS" and again["calls"] == {"ipset_save": 1, "ipset_restore": 0}, again
    less = ansible_runs.run_module(netns, "iptables_ipset", {"name": "feed", "entries": plain.replace(
        "198.18.0.9/32\n", "").replace("203.0.113.0/24", "203.0.113.128/25")}, diff=True)
    assert less["_status"] == "CHANGED" and less["sets"]["ipv4"]["removed"] == 2, less
    assert "198.18.0.9" not in entries(netns, "feed") and "203.0.113.128/25" in entries(netns, "feed")


@pytest.mark.parametrize("args,option", [
    ({"name": "b" * 29, "entries": ["198.51.100.1"]}, "name"),
    ({"name": "foreign", "entries": ["198.51.100.1"]}, "name"),
    ({"name": "bl", "ip_version": "ipv4", "entries": ["2001:db8::1"]}, "entries[0]"),
    ({"name": "bl", "type": "hash:ip", "entries": ["198.51.100.0/24"]}, "entries[0]"),
    ({"name": "bl", "maxelem": 1, "entries": ["198.51.100.1", "198.51.100.2"]}, "maxelem"),
    ({"name": "bl", "entries": "198.51.100.1\n# ok\nexample.org\n"}, "entries line 3"),
    ({"name": "bl", "type": "hash:ip", "entries": "198.51.100.0/24\n"}, "entries line 1"),
    ({"name": "bl", "entries": "198.51.100.1\n198.51.100.2\x1b[2J\n"}, "entries line 2"),
    ({"name": "bl", "entries": "198.51.100.1\n198.51.100.2/0\n"}, "entries line 2"),
    ({"name": "bl", "entries": ["198.51.100.1", "198.51.100.2\n198.51.100.3"]}, "entries[1]"),
])
def test_bad_input_fails_naming_the_option_and_changes_nothing(netns, args, option):
    netns.run(["ipset", "create", "foreign", "hash:ip"])
    netns.run(["ipset", "add", "foreign", "203.0.113.1"])
    before = ipset_save(netns)
    res = ansible_runs.run_module(netns, "iptables_ipset", args)
    assert res["_status"] == "FAILED!" and res["msg"].startswith(option + ": "), res
    assert ipset_save(netns) == before


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_blocklist_drops_listed_sources_and_a_used_set_is_never_destroyed(lan, backend):
    server = lan.add_client(subnet="198.51.100")
    alice = lan.add_client(subnet="203.0.113")
    bob = lan.add_client(subnet="203.0.113")
    server.listen(8080, family=6)
    res = ansible_runs.run_module(server, "iptables_ipset", {
        "name": "blocklist", "entries": [alice.addr4 + "/32", alice.addr6 + "/128", "198.18.0.0/15"]}, backend)
    assert res["_status"] == "CHANGED", res
    for family, setname in (("ipv4", "blocklist"), ("ipv6", "blocklist_v6")):
        rule = ansible_runs.run_module(server, "iptables_rule", {
            "name": "blocklist", "priority": 50, "match_set": setname, "ip_version": family, "jump": "DROP"}, backend)
        assert rule["_status"] == "CHANGED", rule
    assert "-A INPUT -m set --match-set blocklist src" in ansible_runs.save(server, 4, backend)
    assert "-A INPUT -m set --match-set blocklist_v6 src" in ansible_runs.save(server, 6, backend)
    for client, expected in ((alice, False), (bob, True)):
        assert sandbox_net.probe(client, server.addr4, 8080, timeout=1) is expected
        assert sandbox_net.probe(client, server.addr6, 8080, timeout=1) is expected

    # Bob joins the list, Alice leaves it: swapped in while the rule keeps using the set.
    res = ansible_runs.run_module(server, "iptables_ipset", {
        "name": "blocklist", "entries": [bob.addr4, bob.addr6, "198.18.0.0/15"]}, backend)
    assert res["sets"]["ipv4"]["action"] == "swap", res
    assert sandbox_net.probe(alice, server.addr4, 8080, timeout=1)
    assert sandbox_net.probe(alice, server.addr6, 8080, timeout=1)
    assert not sandbox_net.probe(bob, server.addr4, 8080, timeout=1)
    assert not sandbox_net.probe(bob, server.addr6, 8080, timeout=1)

    before = ipset_save(server)
    refused = ansible_runs.run_module(server, "iptables_ipset", {"name": "blocklist", "state": "absent"}, backend)
    assert refused["_status"] == "FAILED!", refused
    assert refused["msg"].startswith("state: blocklist is used by ipv4: -A INPUT -m set --match-set blocklist src")
    assert "blocklist_v6 is used by ipv6" in refused["msg"]
    assert ipset_save(server) == before
