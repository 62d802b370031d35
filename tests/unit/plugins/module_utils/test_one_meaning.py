# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""reject_with, protocols, ports and ctstate mean the same in every module: the same value fed
to each module's validation is accepted or refused alike, and renders alike."""

from __future__ import annotations

import pytest

from ansible_collections.ironwall.iptables.plugins.module_utils import _ratelimit, _rules, _whitelist
from ansible_collections.ironwall.iptables.plugins.module_utils._errors import SpecError


def outcome(fn):
    try:
        return ("ok", fn())
    except SpecError as exc:
        return ("error", exc.option.rsplit(".", 1)[-1])


def rule_reject(value, fams="both"):
    rule = _rules.validate_rule({"name": "r", "protocol": "tcp", "jump": "REJECT", "reject_with": value,
                                 "ip_version": fams})
    return tuple(_rules.render_specs(rule, f)[0].rsplit("--reject-with ", 1)[1] for f in rule.families)


def ratelimit_reject(value, fams="both"):
    limit = _ratelimit.validate({"name": "ssh", "action": "REJECT", "reject_with": value, "ip_version": fams})
    return tuple(_ratelimit.chain_specs(limit, f)[-2].rsplit("--reject-with ", 1)[1] for f in limit.families)


@pytest.mark.parametrize("value", ["icmp-port-unreachable", "icmp6-port-unreachable", "icmp-host-prohibited",
                                   "icmp6-adm-prohibited", "tcp-reset", "port-unreach", "icmp-proto-unreachable",
                                   "icmp6-policy-fail", "bogus", "", "ICMP-PORT-UNREACHABLE"])
@pytest.mark.parametrize("fams", ["both", "ipv4", "ipv6"])
def test_reject_with(value, fams):
    assert outcome(lambda: rule_reject(value, fams)) == outcome(lambda: ratelimit_reject(value, fams))


def rule_protocol(value):
    return _rules.validate_rule({"name": "r", "protocol": value, "dports": [22], "jump": "ACCEPT"}).values["protocol"]


def whitelist_protocol(value):
    return _whitelist.validate({"name": "WL", "protocol": value, "ports": ["22"]}).protocol


def ratelimit_protocol(value):
    return _ratelimit.validate({"name": "ssh", "protocol": value, "ports": ["22"]}).protocol


@pytest.mark.parametrize("value", ["tcp", "TCP", "6", "udp", "17", "sctp", "132", "dccp", "33", "udplite", "136",
                                   " tcp ", "bogus", "\u00b2", "256", "-1", "t c p"])
def test_port_protocols(value):
    got = set(outcome(lambda f=f: f(value)) for f in (rule_protocol, whitelist_protocol, ratelimit_protocol))
    assert len(got) == 1, got


def rule_ports(value):
    rule = _rules.validate_rule({"name": "r", "protocol": "tcp", "dports": value, "jump": "ACCEPT"})
    return rule.values["dports"]


def whitelist_ports(value):
    return _whitelist.validate({"name": "WL", "ports": value}).ports


def ratelimit_ports(value):
    return _ratelimit.validate({"name": "ssh", "ports": value}).ports


@pytest.mark.parametrize("value", [["22"], [22], ["1000:2000"], ["1000-2000"], ["22", "22"], ["0"], ["65536"],
                                   ["2000:1000"], ["ssh"], [str(p) for p in range(1, 16)],
                                   [str(p) for p in range(1, 15)] + ["100:200"], ["\u00b2"], ["22\n"]])
def test_ports(value):
    # iptables_rule calls the option dports, the others ports
    got = set(outcome(lambda f=f: f(value)) for f in (rule_ports, whitelist_ports, ratelimit_ports))
    got = set((kind, "ports" if what == "dports" else what) for kind, what in got)
    assert len(got) == 1, got


def rule_ctstate(value):
    return _rules.validate_rule({"name": "r", "ctstate": value, "jump": "ACCEPT"}).values["ctstate"]


def whitelist_ctstate(value):
    return _whitelist.validate({"name": "WL", "ports": ["22"], "ctstate": value}).ctstates


@pytest.mark.parametrize("value", [["NEW"], ["new"], ["ESTABLISHED", "RELATED"], ["RELATED", "ESTABLISHED"],
                                   ["NEWISH"], ["DNAT", "SNAT"], [" new "]])
def test_ctstate(value):
    assert outcome(lambda: rule_ctstate(value)) == outcome(lambda: whitelist_ctstate(value))
