# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""firewall_plan and firewall_blocklists: the iptables_ruleset sets items (a file's content as read by the role),
one rule per family before the established rule, the sets file (also for ipset whitelists)."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.ironwall.iptables.plugins.filter.firewall_plan import firewall_plan


def test_blocklists_make_sets_rules_and_the_sets_file():
    plan = firewall_plan({"blocklists": [{"name": "abuse", "entries": ["198.51.100.9", "2001:db8::9"]},
                                         {"name": "feed", "file": "feed.txt", "action": "reject"}],
                          "blocklist_texts": ["# feed\n203.0.113.0/24\n"]})
    assert plan["sets"] == [{"name": "abuse", "ip_version": "both", "entries": ["198.51.100.9", "2001:db8::9"]},
                            {"name": "feed", "ip_version": "both", "entries": "# feed\n203.0.113.0/24\n"}]
    rules = dict((r["name"], r) for r in plan["rules"])
    assert rules["firewall-blocklist-abuse"] == {"name": "firewall-blocklist-abuse", "priority": 105,
                                                 "ip_version": "ipv4", "match_set": "abuse", "jump": "DROP"}
    assert rules["firewall-blocklist-feed-v6"]["match_set"] == "feed_v6"
    assert rules["firewall-blocklist-feed-v6"]["jump"] == "REJECT"
    assert rules["firewall-blocklist-abuse"]["priority"] < rules["firewall-established"]["priority"]
    assert plan["save"]["sets"] == "/etc/iptables.ipsets"
    assert "sets" not in firewall_plan({})["save"] and firewall_plan({})["sets"] == []


def test_file_texts_are_taken_in_the_order_of_the_file_entries():
    plan = firewall_plan({"blocklists": [{"name": "a", "file": "a.txt"}, {"name": "b", "entries": []},
                                         {"name": "c", "file": "c.txt"}],
                          "blocklist_texts": ["198.51.100.1\n", "203.0.113.1\n"]})
    assert [(s["name"], s["entries"]) for s in plan["sets"]] == [("a", "198.51.100.1\n"), ("b", []),
                                                                 ("c", "203.0.113.1\n")]
    with pytest.raises(AnsibleFilterError) as err:
        firewall_plan({"blocklists": [{"name": "a", "file": "a.txt"}]})
    assert "firewall_blocklists[0].file: its content was not read" in str(err.value)


def test_an_ipset_whitelist_alone_saves_the_sets_file():
    plan = firewall_plan({"whitelists": [{"name": "DB", "ports": [3306], "sources": ["198.51.100.9"],
                                          "backend": "ipset"}]})
    assert plan["save"]["sets"] == "/etc/iptables.ipsets" and plan["whitelists"][0]["backend"] == "ipset"
    assert "sets" not in firewall_plan({"whitelists": [{"name": "DB", "ports": [3306]}]})["save"]


def test_without_ipv6_only_the_ipv4_set_and_rule():
    plan = firewall_plan({"ipv6": False, "sets_file": "/etc/x.ipsets",
                          "blocklists": [{"name": "abuse", "entries": ["198.51.100.9", "2001:db8::9"]}]})
    assert plan["sets"] == [{"name": "abuse", "ip_version": "ipv4", "entries": ["198.51.100.9"]}]
    assert [r["name"] for r in plan["rules"] if "blocklist" in r["name"]] == ["firewall-blocklist-abuse"]
    assert plan["save"]["sets"] == "/etc/x.ipsets"


@pytest.mark.parametrize("entry,words", [
    ({"name": "x" * 29, "entries": []}, "firewall_blocklists[0].name"),
    ({"name": "abuse"}, "give `entries`"),
    ({"name": "abuse", "entries": [], "file": "f"}, "not both"),
    ({"name": "abuse", "entries": [], "action": "ACCEPT"}, "firewall_blocklists[0].action"),
    ({"name": "abuse", "entries": [], "bogus": 1}, "unknown key bogus"),
])
def test_bad_blocklists_name_the_variable(entry, words):
    with pytest.raises(AnsibleFilterError) as err:
        firewall_plan({"blocklists": [entry]})
    assert words in str(err.value)
