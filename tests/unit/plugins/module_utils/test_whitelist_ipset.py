# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_whitelist backend ipset: the set's accept instead of the chain, planned against real-looking saves."""

from __future__ import annotations

import pytest

from ansible_collections.ironwall.iptables.plugins.module_utils import _whitelist as w
from ansible_collections.ironwall.iptables.plugins.module_utils._errors import SpecError
from ansible_collections.ironwall.iptables.plugins.module_utils._model import parse_save
from ansible_collections.ironwall.iptables.plugins.module_utils._plan import plan_changes

TAG = '-m comment --comment "ironwall:500:whitelist:W"'
MATCH = "-p tcp -m tcp --dport 3306 -m conntrack --ctstate NEW"
CHAIN_SAVE = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:W - [0:0]
-A INPUT %(m)s %(t)s -j W
-A INPUT %(m)s %(t)s -j DROP
-A W -m comment --comment "ironwall:chain:whitelist:W"
-A W -s 198.51.100.7/32 -j ACCEPT
COMMIT
""" % dict(m=MATCH, t=TAG)


def validate(**kw):
    base = dict(name="W", sources=["198.51.100.7", "2001:db8::7/64"], ports=["3306"], backend="ipset")
    base.update(kw)
    return w.validate(base)


def test_group_is_the_set_accept_then_the_fallback():
    wl = validate()
    assert w.group_specs(wl, "ipv4") == ("%s -m set --match-set W src %s -j ACCEPT" % (MATCH, TAG),
                                         "%s %s -j DROP" % (MATCH, TAG))
    assert "--match-set W_v6 src" in w.group_specs(wl, "ipv6")[0]
    spec = w.WhitelistResource(wl).set_spec()
    assert [(s.name, s.type, s.entries) for s in spec.sets] == [
        ("W", "hash:net", ("198.51.100.7",)), ("W_v6", "hash:net", ("2001:db8::/64",))]


def test_switching_from_the_chain_is_one_transaction_replacing_the_jump_and_dropping_the_chain():
    wl = validate()
    resource = w.WhitelistResource(wl)
    ruleset = parse_save(CHAIN_SAVE)
    plan = plan_changes(ruleset, resource.desired("ipv4", ruleset), "ipv4")
    lines = plan.script.split("\n")
    assert lines[0] == "*filter" and lines[-2] == "COMMIT" and lines.count("COMMIT") == 1
    assert "-X W" in lines and any("--match-set W src" in line for line in lines)
    assert not resource.had_sets
    assert resource.current_sources("ipv4", ruleset) == ["198.51.100.7/32"]


def test_the_chain_backend_notices_sets_to_destroy():
    wl = validate(backend="chain")
    resource = w.WhitelistResource(wl)
    text = CHAIN_SAVE.replace("%s %s -j W" % (MATCH, TAG), "%s -m set --match-set W src %s -j ACCEPT" % (MATCH, TAG))
    resource.desired("ipv4", parse_save(text))
    assert resource.had_sets


def test_entries_round_trip_between_iptables_and_ipset_forms():
    assert w.set_entry("198.51.100.7/32") == "198.51.100.7" and w.set_source("198.51.100.7") == "198.51.100.7/32"
    assert w.set_entry("2001:db8::7/128") == "2001:db8::7" and w.set_source("2001:db8::7") == "2001:db8::7/128"
    assert w.set_entry("203.0.113.0/24") == w.set_source("203.0.113.0/24") == "203.0.113.0/24"


@pytest.mark.parametrize("kw,option", [
    (dict(sources=["0.0.0.0/0"]), "sources"),
    (dict(name="W@x"), "name"),
    (dict(backend="nftset"), "backend"),
])
def test_bad_input_names_the_option(kw, option):
    with pytest.raises(SpecError) as err:
        validate(**kw)
    assert err.value.option == option
