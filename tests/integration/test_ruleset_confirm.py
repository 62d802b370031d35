# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_ruleset ``confirm``: apply, reconnect and confirm in one task, over REAL SSH.

A sandbox host reached through the switch (SSH client 198.51.100.1), every Ansible command on a
connection of its own, pipelining on:

- a change that keeps SSH, with a deadline and ``confirm``: the action plugin confirms it over a
  new connection in the same task (``confirm.state`` confirmed, ``confirm.waited`` below the
  deadline), nothing is left pending and the change stays;
- a forced change that locks new connections out: the confirmation cannot connect, the task
  reports the host unreachable, and the host restores its previous ruleset by itself when the
  deadline passes (waited for with a generous bound, never raced).
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

import ansible_runs
import sandbox_hosts
import sandbox_inventory
import sandbox_net

pytestmark = pytest.mark.host

ROLLBACK = 15
CONFIRM_ROLLBACK = 120
EVENT_BOUND = 180
BASELINE = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\nCOMMIT\n")
KEEPS_SSH = {
    "policies": {"INPUT": "DROP"},
    "rules": [{"name": "established", "priority": 110, "ctstate": ["ESTABLISHED", "RELATED"], "jump": "ACCEPT"},
              {"name": "ssh", "priority": 210, "protocol": "tcp", "dports": [22], "jump": "ACCEPT"}],
    "ip_version": "ipv4",
}


@pytest.fixture
def fw(tmp_path):
    with sandbox_net.Lan() as lan:
        host = sandbox_hosts.Host("confirm-fw", lan)
        try:
            host.start()
            host.exec(["iptables-restore"], input=BASELINE)
            host.inventory = sandbox_inventory.write_inventory([host], str(tmp_path / "inventory.yml"))
            yield host
        finally:
            host.stop()


def adhoc(host, module, args=None):
    argv = [ansible_runs.ansible_bin("ansible"), "all", "-i", host.inventory, "-m", "ironwall.iptables." + module]
    if args is not None:
        argv += ["-a", json.dumps(args)]
    env = ansible_runs.ansible_env("nft")
    env.pop("ANSIBLE_STDOUT_CALLBACK")
    env.update(ANSIBLE_PIPELINING="1", ANSIBLE_SSH_ARGS="-o ControlMaster=no", ANSIBLE_TIMEOUT="10")
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    head, _sep, body = proc.stdout.partition(" => ")
    try:
        result = json.loads(body)
    except ValueError:
        raise AssertionError("no result (rc=%d)\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr))
    result["_status"] = head.rpartition("| ")[2].strip()
    return result


def ssh_works(host, timeout=30):
    argv = host.ssh_argv("true")
    argv[argv.index("ConnectTimeout=10")] = "ConnectTimeout=%d" % timeout
    argv[1:1] = ["-o", "ControlMaster=no"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 20, check=False).returncode == 0


def filter_table(host):
    return sandbox_net.comparable_save(host.exec(["iptables-save", "-t", "filter"]).stdout)


def test_confirm_in_the_task_keeps_a_good_change(fw):
    res = adhoc(fw, "iptables_ruleset", dict(KEEPS_SSH, rollback_timeout=CONFIRM_ROLLBACK, confirm=True))
    assert res["_status"] == "CHANGED", res
    assert res["rollback"]["armed"] is True and res["confirm"]["state"] == "confirmed", res
    assert 0 <= res["confirm"]["waited"] < CONFIRM_ROLLBACK, res["confirm"]
    assert adhoc(fw, "iptables_confirm")["state"] == "nothing"  # nothing left pending
    assert ":INPUT DROP" in filter_table(fw) and ssh_works(fw)
    again = adhoc(fw, "iptables_ruleset", dict(KEEPS_SSH, rollback_timeout=CONFIRM_ROLLBACK, confirm=True))
    assert again["_status"] == "SUCCESS" and "rollback" not in again and "confirm" not in again, again


def test_without_a_deadline_confirm_does_nothing(fw):
    res = adhoc(fw, "iptables_ruleset", dict(KEEPS_SSH, confirm=True))
    assert res["_status"] == "CHANGED" and "rollback" not in res and "confirm" not in res, res


def test_a_change_that_locks_out_is_unreachable_then_rolled_back(fw):
    before = filter_table(fw)
    t0 = time.monotonic()
    res = adhoc(fw, "iptables_ruleset", {"policies": {"INPUT": "DROP"}, "ip_version": "ipv4", "force": True,
                                         "rollback_timeout": ROLLBACK, "confirm": True})
    assert res["_status"] == "UNREACHABLE!", res
    assert "a new connection to confirm it failed" in res["msg"], res["msg"]
    deadline = time.monotonic() + ROLLBACK + EVENT_BOUND
    while not ssh_works(fw, timeout=5):
        assert time.monotonic() < deadline, "no rollback %.0f s after the run" % (time.monotonic() - t0)
        time.sleep(1)
    assert filter_table(fw) == before
    late = adhoc(fw, "iptables_confirm")
    assert late["_status"] == "FAILED!" and "too late" in late["msg"], late
