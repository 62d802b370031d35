# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lockout guard looks the operator's address up in the collection's ipsets (SetView)."""

from __future__ import annotations

import ipaddress

import pytest

from ansible_collections.ironwall.iptables.plugins.module_utils import _ipset
from ansible_collections.ironwall.iptables.plugins.module_utils._guard import (
    ACCEPT, DROP, UNPROVEN, SetView, exchange_verdict, ssh_packet, uses_sets)
from ansible_collections.ironwall.iptables.plugins.module_utils._model import parse_save

OPERATOR = ssh_packet("203.0.113.5 51234 198.51.100.1 22")
OPERATOR6 = ssh_packet("2001:db8:203::5 51234 2001:db8:100::1 22")


def tables(*rules):
    text = ("*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A INPUT -p ipv6-icmp -j ACCEPT\n" + "".join(r + "\n" for r in rules)
            + "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
            "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    return {"filter": parse_save(text).table("filter")}


BLOCK = "-A INPUT -m set --match-set bl src -j DROP"


@pytest.mark.parametrize("sets,packet,verdict", [
    (None, OPERATOR, UNPROVEN),                                            # no view: unknown, as before
    ({}, OPERATOR, UNPROVEN),                                              # a set the guard cannot see
    ({"bl": ("hash:net", {"198.18.0.0/15"})}, OPERATOR, ACCEPT),
    ({"bl": ("hash:net", {"203.0.113.0/24"})}, OPERATOR, DROP),
    ({"bl": ("hash:net", {"203.0.113.4/31"})}, OPERATOR, DROP),
    ({"bl": ("hash:net", {"203.0.113.6/31", "203.0.0.0/16"})}, OPERATOR, DROP),
    ({"bl": ("hash:ip", {"203.0.113.5"})}, OPERATOR, DROP),
    ({"bl": ("hash:ip", {"203.0.113.6", "2001:db8:203::5"})}, OPERATOR, ACCEPT),   # the other family's entry
    ({"bl": ("hash:ip,port", {"203.0.113.5,tcp:22"})}, OPERATOR, UNPROVEN),      # port types: unknown
    ({"bl": ("hash:net", {"2001:db8:203::/48"})}, OPERATOR6, DROP),
    ({"bl": ("hash:net", {"2001:db8:204::/48", "203.0.113.5"})}, OPERATOR6, ACCEPT),
])
def test_a_blocklist_is_judged_by_its_entries(sets, packet, verdict):
    view = None if sets is None else SetView(sets)
    assert exchange_verdict(tables(BLOCK), packet, view)[0] == verdict


def test_negation_dst_and_a_whitelist_on_the_port():
    inside = SetView({"wl": ("hash:net", {"203.0.113.0/24"}), "me": ("hash:ip", {"198.51.100.1"})})
    outside = SetView({"wl": ("hash:net", {"198.51.100.0/24"}), "me": ("hash:ip", {"198.51.100.2"})})
    whitelist = ["-A INPUT -p tcp -m tcp --dport 22 -m set --match-set wl src -j ACCEPT",
                 "-A INPUT -p tcp -m tcp --dport 22 -j DROP"]
    assert exchange_verdict(tables(*whitelist), OPERATOR, inside)[0] == ACCEPT
    assert exchange_verdict(tables(*whitelist), OPERATOR, outside)[0] == DROP
    negated = "-A INPUT -p tcp -m set ! --match-set wl src -j DROP"
    assert exchange_verdict(tables(negated), OPERATOR, inside)[0] == ACCEPT
    assert exchange_verdict(tables(negated), OPERATOR, outside)[0] == DROP
    by_destination = "-A INPUT -m set --match-set me dst -j DROP"
    assert exchange_verdict(tables(by_destination), OPERATOR, inside)[0] == DROP
    assert exchange_verdict(tables(by_destination), OPERATOR, outside)[0] == ACCEPT
    both_ways = "-A INPUT -m set --match-set wl src,dst -j DROP"  # two dimensions: not judged
    assert exchange_verdict(tables(both_ways), OPERATOR, inside)[0] == UNPROVEN


def test_changes_make_a_new_view_and_leave_the_old_one():
    before = SetView({"bl": ("hash:net", {"198.18.0.0/15"}), "gone": ("hash:ip", {"203.0.113.5"})})
    after = before.changed({"bl": ("hash:net", frozenset(["203.0.113.5"])), "gone": None})
    address = ipaddress.ip_address("203.0.113.5")
    assert before.member("bl", address) is False and after.member("bl", address) is True
    assert before.member("gone", address) is True and after.member("gone", address) is None
    assert after.member("bl", None) is None   # an address the guard does not know (neighbour discovery)


def test_uses_sets_and_which_sets_the_guard_may_read():
    assert uses_sets(tables(BLOCK).values()) and not uses_sets(tables().values())
    saved = _ipset.parse_save(
        "create bl hash:net family inet hashsize 1024 maxelem 65536\nadd bl 203.0.113.0/24\n"
        "create nm hash:net family inet hashsize 1024 maxelem 65536\nadd nm 203.0.113.0/24\nadd nm 203.0.113.5 nomatch\n"
        "create tt hash:ip family inet hashsize 1024 maxelem 65536 timeout 60\nadd tt 203.0.113.5 timeout 50\n"
        "create f2b hash:ip family inet hashsize 1024 maxelem 65536\nadd f2b 203.0.113.5\n"
        "create ironwall-sets list:set size 8\nadd ironwall-sets bl\nadd ironwall-sets nm\nadd ironwall-sets tt\n")
    # owned and exact only: not another program's set, not one with nomatch entries or timeouts
    assert _ipset.guard_contents(saved) == {"bl": ("hash:net", frozenset(["203.0.113.0/24"]))}
