# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_policy and iptables_info through real Ansible, real iptables (nft and legacy), v4 and v6."""

from __future__ import annotations

import gzip
import os
import subprocess
import time

import pytest

import ansible_runs

FIXTURES = os.path.join(ansible_runs.ROOT, "tests", "unit", "fixtures")
LOCKDOWN = {"policies": {"INPUT": "DROP", "FORWARD": "DROP", "OUTPUT": "ACCEPT"}}
TAGGED = '-A INPUT -i lo -m comment --comment "ironwall:010:rule:loopback" -j ACCEPT'


def fixture(name):
    path = os.path.join(FIXTURES, name)
    if os.path.exists(path + ".gz"):
        with gzip.open(path + ".gz", "rt") as fh:
            return fh.read()
    with open(path) as fh:
        return fh.read()


def rules_only(text):
    """The rule lines and user chains of a save: everything a policy change must not touch."""
    return [line for line in text.splitlines()
            if line.startswith("-A ") or (line.startswith(":") and " - " in line) or line.startswith("*")]


def policies(text, table="filter"):
    out = {}
    current = None
    for line in text.splitlines():
        if line.startswith("*"):
            current = line[1:]
        elif line.startswith(":") and current == table:
            name, pol = line[1:].split(" ")[:2]
            out[name] = pol
    return out


def load_foreign(ns, backend):
    """Docker-like and fail2ban-like v4 rules, fail2ban-like v6 rules, plus one tagged rule."""
    ns.load(fixture("docker-like.%s.v4.save" % backend), 4, backend)
    ns.load(fixture("fail2ban-like.%s.v4.save" % backend), 4, backend, noflush=True)
    ns.load(fixture("fail2ban-like.%s.v6.save" % backend), 6, backend)
    ns.iptables("-I", "INPUT", "1", "-i", "lo", "-m", "comment", "--comment", "ironwall:010:rule:loopback",
                "-j", "ACCEPT", backend=backend)


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_lockdown_converges_once_and_leaves_foreign_rules(netns, backend):
    load_foreign(netns, backend)
    before4, before6 = ansible_runs.save(netns, 4, backend), ansible_runs.save(netns, 6, backend)

    first = ansible_runs.run_module(netns, "iptables_policy", LOCKDOWN, backend)
    assert first["_status"] == "CHANGED", first
    assert first["calls"] == {"save": 2, "restore": 3}  # IPv6 --test, then each family applied once
    after4, after6 = ansible_runs.save(netns, 4, backend), ansible_runs.save(netns, 6, backend)
    assert policies(after4) == {"INPUT": "DROP", "FORWARD": "DROP", "OUTPUT": "ACCEPT",
                                **{k: "-" for k, v in policies(before4).items() if v == "-"}}
    assert policies(after6)["INPUT"] == "DROP" and policies(after6)["FORWARD"] == "DROP"
    # Foreign rules identical, line for line and in order, in every table.
    assert rules_only(after4) == rules_only(before4)
    assert rules_only(after6) == rules_only(before6)

    second = ansible_runs.run_module(netns, "iptables_policy", LOCKDOWN, backend)
    assert second["_status"] == "SUCCESS" and second["changed"] is False
    assert second["calls"] == {"save": 2, "restore": 0}
    assert ansible_runs.save(netns, 4, backend) == after4


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_check_mode_writes_nothing_and_diff_shows_before_after(netns, backend):
    load_foreign(netns, backend)
    before4, before6 = ansible_runs.save(netns, 4, backend), ansible_runs.save(netns, 6, backend)
    data = ansible_runs.run_playbook(netns, """
- hosts: all
  gather_facts: false
  tasks:
    - name: plan
      ironwall.iptables.iptables_policy:
        chain: INPUT
        policy: DROP
""", backend, check=True, diff=True)
    [(_name, result)] = ansible_runs.task_results(data)
    assert result["changed"] is True
    assert ansible_runs.save(netns, 4, backend) == before4 and ansible_runs.save(netns, 6, backend) == before6
    diff4, diff6 = result["diff"]
    assert ":INPUT ACCEPT [0:0]" in diff4["before"] and ":INPUT DROP [0:0]" in diff4["after"]
    assert TAGGED in diff4["after"]  # the chain's rules are shown around the policy
    assert ":INPUT DROP [0:0]" in diff6["after"]


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_purge_removes_untagged_except_keep(netns, backend):
    load_foreign(netns, backend)
    before = ansible_runs.save(netns, 4, backend)
    args = {"chain": "INPUT", "policy": "DROP", "purge": True, "keep": ["f2b-"], "ip_version": "ipv4"}
    res = ansible_runs.run_module(netns, "iptables_policy", args, backend)
    assert res["_status"] == "CHANGED", res
    after = ansible_runs.save(netns, 4, backend)
    input_rules = [line for line in after.splitlines() if line.startswith("-A INPUT ")]
    assert TAGGED in input_rules
    assert all("ironwall:" in line or "f2b-" in line for line in input_rules)
    assert any("f2b-" in line for line in input_rules)
    removed = [line for line in before.splitlines() if line.startswith("-A INPUT ") and line not in input_rules]
    assert removed and sorted(res["purged"]["ipv4"]) == sorted(removed)
    # Other chains untouched, and a rerun is a no-op.
    assert [x for x in rules_only(after) if not x.startswith("-A INPUT ")] == \
        [x for x in rules_only(before) if not x.startswith("-A INPUT ")]
    again = ansible_runs.run_module(netns, "iptables_policy", args, backend)
    assert again["changed"] is False and again["calls"]["restore"] == 0


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_info_reports_backend_rules_owner_and_normalized_save(netns, backend):
    load_foreign(netns, backend)
    res = ansible_runs.run_module(netns, "iptables_info", {}, backend)
    assert res["_status"] == "SUCCESS" and res["changed"] is False, res
    for family, fam in (("ipv4", 4), ("ipv6", 6)):
        info = res[family]
        assert info["backend"] == backend
        live = ansible_runs.save(netns, fam, backend)
        # normalized save == live save with counters zeroed
        assert info["save"] == "".join(
            (line.rsplit(" ", 1)[0] + " [0:0]" if line.startswith(":") else line) + "\n"
            for line in live.splitlines())
    rules = res["ipv4"]["tables"]["filter"]["chains"]["INPUT"]["rules"]
    assert rules[0]["position"] == 1 and rules[0]["rule"] == TAGGED
    assert rules[0]["owner"] == {"priority": 10, "kind": "rule", "name": "loopback"}
    assert all(r["owner"] is None for r in rules[1:])
    assert "nat" in res["ipv4"]["tables"]
    assert res["calls"] == {"save": 2, "restore": 0, "ipset_list": 1} and res["sets"] == []


def test_info_counters(netns):
    netns.iptables("-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
    for _attempt in range(2):
        netns.run(["nc", "-z", "-w", "1", "127.0.0.1", "9"], check=False)
    res = ansible_runs.run_module(netns, "iptables_info", {"ip_version": "ipv4", "table": "filter"})
    rule = res["ipv4"]["tables"]["filter"]["chains"]["INPUT"]["rules"][0]
    assert rule["packets"] >= 2 and rule["bytes"] > 0
    assert list(res["ipv4"]["tables"]) == ["filter"]
    assert "[0:0]" in res["ipv4"]["save"] and "[2:" not in res["ipv4"]["save"]


BAD = [
    ({"chain": "INPUTX", "policy": "DROP"}, "chain", "not a built-in chain"),
    ({"chain": "INPUT", "policy": "REJECT"}, "policy", "ACCEPT, DROP"),
    ({"policies": {"INPUT": "REJECT"}}, "policies", "ACCEPT or DROP"),
    ({"policies": {"f2b-sshd": "DROP"}}, "policies", "not a built-in chain"),
    ({"chain": "INPUT", "policy": "DROP", "purge": True, "keep": ["f2b-("]}, "keep", "regular expression"),
    ({"chain": "INPUT", "policy": "DROP", "ip_version": "ipv5"}, "ip_version", "ipv4, ipv6, both"),
    ({"chain": "PREROUTING", "policy": "DROP"}, "chain", "INPUT, FORWARD, OUTPUT"),
    ({"chain": "INPUT"}, "policy", "required"),
]


@pytest.mark.parametrize("args,option,words", BAD, ids=[b[1] + "-" + str(i) for i, b in enumerate(BAD)])
def test_bad_input_fails_clearly_and_changes_nothing(netns, args, option, words):
    load_foreign(netns, "nft")
    before = ansible_runs.save(netns, 4) + ansible_runs.save(netns, 6)
    res = ansible_runs.run_module(netns, "iptables_policy", args)
    assert res["_status"] == "FAILED!", res
    assert option in res["msg"] and words in res["msg"], res["msg"]
    assert ansible_runs.save(netns, 4) + ansible_runs.save(netns, 6) == before


def test_lock_held_past_wait_fails_clearly(netns, tmp_path):
    lock = str(tmp_path / "xtables.lock")
    held = tmp_path / "held"
    # One process holds the lock until this test kills it (no deadline of its own to outlive)
    # and says when it holds it: the test waits for that event, not for a file that merely exists.
    holder = subprocess.Popen(["python3", "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'w'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); open(sys.argv[2], 'w').close(); time.sleep(3600)",
                               lock, str(held)])
    try:
        bound = time.monotonic() + 120  # generous: only turns a hang into a failure
        while not held.exists() and holder.poll() is None and time.monotonic() < bound:
            time.sleep(0.05)
        assert held.exists(), "the lock holder never took the lock"
        before = ansible_runs.save(netns, 4, "legacy")
        res = ansible_runs.run_module(netns, "iptables_policy", {"chain": "INPUT", "policy": "DROP", "wait": 1,
                                                                 "ip_version": "ipv4"}, "legacy",
                                      env={"XTABLES_LOCKFILE": lock})
    finally:
        holder.kill()
        holder.wait()
    assert res["_status"] == "FAILED!", res
    assert "lock" in res["msg"] and "wait" in res["msg"], res["msg"]
    assert "ROLLBACK" not in res["msg"], res["msg"]  # nothing was committed, nothing to undo
    assert ansible_runs.save(netns, 4, "legacy") == before


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_restore_commits_one_table_scripts_whole_and_longer_ones_table_by_table(netns, backend):
    """What _netfilter.apply relies on: it skips --test for a first one-table script and only
    rolls back scripts of several tables. If iptables-restore ever commits a table line by line,
    or several tables at once, this fails."""
    netns.iptables("-t", "mangle", "-A", "INPUT", "-s", "198.51.100.1", "-j", "ACCEPT", backend=backend)
    bad_line = "-A INPUT -p tcp --dport 99999 -j ACCEPT"
    one = "*filter\n-I INPUT 1 -s 198.51.100.2/32 -j ACCEPT\n%s\nCOMMIT\n" % bad_line
    assert netns.run(["iptables-restore", "--noflush"], input=one, check=False, backend=backend).returncode != 0
    assert "198.51.100.2" not in ansible_runs.save(netns, 4, backend)
    two = "*mangle\n-I INPUT 1 -s 198.51.100.3/32 -j ACCEPT\nCOMMIT\n*filter\n%s\nCOMMIT\n" % bad_line
    assert netns.run(["iptables-restore", "--noflush"], input=two, check=False, backend=backend).returncode != 0
    assert "198.51.100.3" in ansible_runs.save(netns, 4, backend)


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_kube_proxy_like_ruleset_untouched_and_no_change_run_reads_once(netns, backend):
    name = "kube-proxy-like.%s.v4.save" % backend  # the nft one holds ~20,000 rules
    netns.load(fixture(name), 4, backend)
    before = ansible_runs.save(netns, 4, backend)
    res = ansible_runs.run_module(netns, "iptables_policy", {"policies": {"FORWARD": "DROP"}, "ip_version": "ipv4",
                                                             "table": "filter"}, backend)
    assert res["_status"] == "CHANGED", res
    after = ansible_runs.save(netns, 4, backend)
    assert rules_only(after) == rules_only(before)
    assert len(rules_only(before)) > (20000 if backend == "nft" else 10)
    info = ansible_runs.run_module(netns, "iptables_info", {"ip_version": "ipv4"}, backend)
    assert info["ipv4"]["save"].count("\n-A ") == after.count("\n-A ")
    again = ansible_runs.run_module(netns, "iptables_policy", {"policies": {"FORWARD": "DROP"}, "ip_version": "ipv4"},
                                    backend)
    assert again["changed"] is False and again["calls"] == {"save": 1, "restore": 0}
