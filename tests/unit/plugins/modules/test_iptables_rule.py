# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_rule with run_command mocked: what runs, changed, check and diff mode, errors."""

from __future__ import annotations

import json

import pytest

from ansible_collections.ironwall.iptables.plugins.modules import iptables_rule
from ansible_collections.ironwall.iptables.tests.unit.plugins.modules import modrunner
from ansible_collections.ironwall.iptables.tests.unit.plugins.modules.modrunner import run_module

EMPTY = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"


class FakeHost(modrunner.FakeHost):
    """iptables-save / iptables-restore per family, recording every call; any other command is an error."""

    def __init__(self, v4=EMPTY, v6=EMPTY):
        super().__init__({"iptables-save": v4, "ip6tables-save": v6}, other=None)


def run(args, host=None, check=False, diff=False):
    """(result with ``failed`` set, host) of one module run."""
    host = host or FakeHost()
    kind, result = run_module(iptables_rule, args, host, check=check, diff=diff)
    return dict(result, failed=kind == "Fail"), host


BASE = [
    {"name": "loopback", "priority": 100, "in_interface": "lo", "jump": "ACCEPT"},
    {"name": "established", "priority": 110, "ctstate": ["ESTABLISHED", "RELATED"], "state_match": "state",
     "jump": "ACCEPT"},
    {"name": "icmp", "priority": 120, "protocol": "icmp", "jump": "ACCEPT"},
    {"name": "http", "protocol": "tcp", "dports": [80], "ctstate": ["NEW"], "state_match": "state",
     "jump": "ACCEPT"},
]


def converged_save(result, family):
    lines = EMPTY.splitlines()[:-1] + result["rules"][family] + ["COMMIT"]
    return "\n".join(lines) + "\n"


def test_base_rules_one_task_both_families_then_no_change():
    result, host = run({"rules": BASE})
    assert not result["failed"] and result["changed"]
    # IPv6 --test, then both applied; each family's filter table read back once (rules inserted)
    assert result["calls"] == {"save": 4, "restore": 3}
    script6 = host.restores(test=False)[1][2]
    assert "-I INPUT 3 -p ipv6-icmp" in script6
    assert result["rules"]["ipv4"][2] == '-A INPUT -p icmp -m comment --comment "ironwall:120:rule:icmp" -j ACCEPT'
    host2 = FakeHost(converged_save(result, "ipv4"), converged_save(result, "ipv6"))
    again, host2 = run({"rules": BASE}, host2)
    assert again["changed"] is False
    assert again["calls"] == {"save": 2, "restore": 0} and host2.restores() == []


def test_check_mode_tests_but_does_not_apply():
    result, host = run({"name": "ssh", "protocol": "tcp", "dports": [22], "jump": "ACCEPT"},
                       check=True)
    assert result["changed"] is True
    assert host.restores(test=False) == []
    assert len(host.restores(test=True)) == 2
    assert result["commands"]["ipv4"][1].startswith("-I INPUT 1 -p tcp -m tcp --dport 22")


def test_diff_mode_shows_before_and_after():
    result, _host = run({"name": "ssh", "protocol": "tcp", "dports": [22], "jump": "ACCEPT",
                         "ip_version": "ipv4"}, diff=True)
    (d,) = result["diff"]
    assert "ironwall:500:rule:ssh" not in d["before"]
    assert '-A INPUT -p tcp -m tcp --dport 22 -m comment --comment "ironwall:500:rule:ssh" -j ACCEPT' in d["after"]


def test_single_family_reads_only_that_family():
    result, host = run({"name": "a", "jump": "DROP", "ip_version": "ipv6"})
    assert [c[0] for c in host.calls if c[0].endswith("-save")] == ["ip6tables-save", "ip6tables-save"]
    assert [c[1] for c in host.calls if c[0].endswith("-save")] == [[], ["-t", "filter"]]  # read, read-back
    assert result["rules"] == {"ipv6": ['-A INPUT -m comment --comment "ironwall:500:rule:a" -j DROP']}


def test_absent_removes_the_tagged_lines():
    line = '-A INPUT -p tcp -m tcp --dport 22 -m comment --comment "ironwall:500:rule:ssh" -j ACCEPT'
    v4 = EMPTY.replace("COMMIT", "-A INPUT -j ACCEPT\n%s\nCOMMIT" % line)
    result, host = run({"name": "ssh", "state": "absent"}, FakeHost(v4, EMPTY))
    assert result["changed"] is True
    assert result["commands"]["ipv4"] == ["*filter", "-D INPUT" + line[len("-A INPUT"):], "COMMIT"]
    assert result["commands"]["ipv6"] == []


# Bad input: fails naming the option, and no binary ran at all.
BAD = [
    ({"name": "a", "source": ["198.51.100.0/33"], "jump": "ACCEPT"}, "source:"),
    ({"name": "a", "source": ["2001:db8::1"], "ip_version": "ipv4", "jump": "ACCEPT"}, "source:"),
    ({"name": "a", "protocol": "tcp", "dports": [65536], "jump": "ACCEPT"}, "dports:"),
    ({"name": "a", "protocol": "tcp", "dports": ["abc"], "jump": "ACCEPT"}, "dports:"),
    ({"name": "a", "icmp_type": 8, "jump": "ACCEPT"}, "icmp_type:"),
    ({"name": "a", "jump": "ACCEPT", "log_prefix": "x"}, "log_prefix:"),
    ({"name": "a", "jump": "ACCEPT", "reject_with": "tcp-reset"}, "reject_with:"),
    ({"name": "a", "jump": "ACCEPT", "priority": 1000}, "priority:"),
    ({"rules": [{"name": "a", "jump": "ACCEPT"}, {"name": "a", "jump": "DROP"}]}, "rules[1].name:"),
    ({"rules": [{"name": "a", "jump": "ACCEPT", "dports": [22]}]}, "rules[0].dports:"),
]


@pytest.mark.parametrize("args,prefix", BAD, ids=[b[1] for b in BAD])
def test_bad_input_fails_before_any_binary(args, prefix):
    result, host = run(args)
    assert result["failed"] is True
    assert result["msg"].startswith(prefix), result["msg"]
    assert host.calls == []


def test_name_and_rules_are_exclusive():
    result, host = run({"name": "a", "rules": [{"name": "b", "jump": "DROP"}]})
    assert result["failed"] and "name" in result["msg"] and "rules" in result["msg"]
    assert host.calls == []


def test_missing_jump_chain_fails_after_read_without_restore():
    result, host = run({"name": "wl", "jump": "MYSQL_WHITELIST"})
    assert result["failed"] is True
    assert result["msg"].startswith("jump: ") and "MYSQL_WHITELIST" in result["msg"]
    assert host.restores() == []


def test_result_is_json_serialisable():
    result, _host = run({"rules": BASE}, diff=True)
    json.dumps(result)
