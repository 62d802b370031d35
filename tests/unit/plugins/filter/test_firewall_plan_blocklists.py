# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""firewall_plan and firewall_blocklists: the sets, one rule per family before the established rule, the sets file."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.ironwall.iptables.plugins.filter.firewall_plan import firewall_plan


def test_blocklists_make_sets_rules_and_the_sets_file():
    plan = firewall_plan({"blocklists": [{"name": "abuse", "entries": ["198.51.100.9", "2001:db8::9"]},
                                         {"name": "feed", "file": "feed.txt", "action": "reject"}]})
    assert plan["blocklists"] == [{"name": "abuse", "ip_version": "both", "entries": ["198.51.100.9", "2001:db8::9"]},
                                  {"name": "feed", "ip_version": "both", "file": "feed.txt"}]
    rules = dict((r["name"], r) for r in plan["rules"])
    assert rules["firewall-blocklist-abuse"] == {"name": "firewall-blocklist-abuse", "priority": 105,
                                                 "ip_version": "ipv4", "match_set": "abuse", "jump": "DROP"}
    assert rules["firewall-blocklist-feed-v6"]["match_set"] == "feed_v6"
    assert rules["firewall-blocklist-feed-v6"]["jump"] == "REJECT"
    assert rules["firewall-blocklist-abuse"]["priority"] < rules["firewall-established"]["priority"]
    assert plan["save"]["sets"] == "/etc/iptables.ipsets"
    assert "sets" not in firewall_plan({})["save"] and firewall_plan({})["blocklists"] == []


def test_without_ipv6_only_the_ipv4_set_and_rule():
    plan = firewall_plan({"ipv6": False, "sets_file": "/etc/x.ipsets",
                          "blocklists": [{"name": "abuse", "entries": ["198.51.100.9", "2001:db8::9"]}]})
    assert plan["blocklists"] == [{"name": "abuse", "ip_version": "ipv4", "entries": ["198.51.100.9"]}]
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
