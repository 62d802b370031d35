# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lockout guard and rollback deadline over REAL SSH to a sandbox host.

The module runs on a full namespace host (own netns, own /etc, sshd) reached by Ansible
over SSH through the switch namespace, so ``SSH_CONNECTION`` is real: the SSH client is
the switch's 198.51.100.1. Every Ansible call opens a fresh SSH connection
(``ControlMaster=no``), with pipelining, as a user's fleet run would.

- A policy DROP with no SSH accept is refused by the guard, naming the SSH client.
- Forced, with ``rollback_timeout: 15``: new connections to sshd really fail (locked out),
  then the rollback lets them through again, a new SSH login succeeds and the ruleset from
  before is back; a late iptables_confirm says it is too late. The test waits for these
  events (generous bounds), it never races the deadline: new connections are watched
  continuously from before the run, so the lockout is seen however late the run returns.
- A good change with a deadline, confirmed over a new connection, is kept.
- playbooks/site.yml's canary batch: a configuration the role refuses fails on the first
  host, and the rollout stops there (the other hosts are never touched).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest

import ansible_runs
import sandbox_hosts
import sandbox_inventory
import sandbox_net

pytestmark = pytest.mark.host

# Seconds. The deadline runs from the moment the module applies, somewhere inside the ansible
# run. Nothing the test does has to happen before it (a Watch started before the run sees the
# lockout), except the confirmation of CONFIRM_ROLLBACK: one ansible run over SSH, a few seconds
# even on a loaded machine. EVENT_BOUND only turns a hang into a failure.
ROLLBACK = 15
CONFIRM_ROLLBACK = 60
EVENT_BOUND = 120

BASELINE = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT
COMMIT
"""
SSH_ACCEPT = "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n"


@pytest.fixture
def fw(tmp_path):
    """One sandbox host with the baseline ruleset, and its inventory."""
    with sandbox_net.Lan() as lan:
        host = sandbox_hosts.Host("lockout-fw", lan)
        try:
            host.start()
            host.inventory = sandbox_inventory.write_inventory([host], str(tmp_path / "inventory.yml"))
            yield host
        finally:
            host.stop()


def load(host, text):
    host.exec(["iptables-restore"], input=text)


def saved(host):
    """iptables-save over a fresh SSH connection, without timestamps and counters."""
    return sandbox_net.comparable_save(host.ssh("iptables-save", timeout=30).stdout)


def ssh_works(host, timeout=30):
    """A NEW SSH connection (no control master) runs a command; ``timeout`` bounds the connect
    and the key exchange (generous: a loaded machine is slow, not unreachable)."""
    argv = host.ssh_argv("true")
    argv[argv.index("ConnectTimeout=10")] = "ConnectTimeout=%d" % timeout
    argv[1:1] = ["-o", "ControlMaster=no"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 20, check=False)
    return proc.returncode == 0


def run_over_ssh(host, module, args=None):
    """Run ironwall.iptables.<module> on host over SSH (fresh connection); return its result."""
    argv = [ansible_runs.ansible_bin("ansible"), "all", "-i", host.inventory, "-m", "ironwall.iptables." + module]
    if args:
        argv += ["-a", json.dumps(args)]
    env = ansible_runs.ansible_env("nft")
    env.pop("ANSIBLE_STDOUT_CALLBACK")
    env.update(ANSIBLE_PIPELINING="1", ANSIBLE_SSH_ARGS="-o ControlMaster=no", ANSIBLE_TIMEOUT="10")
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    head, sep, body = proc.stdout.partition(" => ")
    try:
        result = json.loads(body)
    except ValueError:
        raise AssertionError("ansible printed no result (rc=%d)\nstdout:\n%s\nstderr:\n%s"
                             % (proc.returncode, proc.stdout, proc.stderr))
    result["_status"] = head.rpartition("| ")[2].strip()
    return result


def test_guard_refuses_drop_without_ssh_accept_over_ssh(fw):
    load(fw, BASELINE)
    before = saved(fw)
    for args in ({"chain": "INPUT", "policy": "DROP"},
                 {"policies": {"INPUT": "DROP", "FORWARD": "DROP"}, "ip_version": "ipv4"}):
        res = run_over_ssh(fw, "iptables_policy", args)
        assert res["_status"] == "FAILED!", res
        assert "lockout guard" in res["msg"], res["msg"]
        # the guard names the real SSH client (the switch: every connection comes through it)
        assert "198.51.100.1" in res["msg"] and "port 22" in res["msg"], res["msg"]
        assert res["guard"]["before"] == "ACCEPT" and res["guard"]["after"] == "DROP", res
    assert saved(fw) == before
    assert ssh_works(fw)


def test_forced_lockout_rolls_back_and_the_host_is_reachable_again(fw):
    import observe  # tools/observe.py

    load(fw, BASELINE)
    before = saved(fw)
    assert ":INPUT ACCEPT" in before
    # New TCP connections to sshd from the switch, the path of every SSH client here (ProxyCommand),
    # watched from before the run until after the rollback.
    with observe.Watch(fw.lan.name, fw.addr4, 22) as watch:
        assert watch.wait_for(lambda a: a.result == "open", EVENT_BOUND), watch.summary()
        t0 = time.monotonic()  # the deadline starts later, when the module applies
        res = run_over_ssh(fw, "iptables_policy", {"chain": "INPUT", "policy": "DROP", "force": True,
                                                   "rollback_timeout": ROLLBACK, "ip_version": "ipv4"})
        t_returned = time.monotonic()
        # The session that applied it survives (ESTABLISHED is accepted) and reports back.
        assert res["_status"] == "CHANGED", res
        assert res["guard"]["forced"] is True and res["guard"]["after"] == "DROP", res
        assert res["rollback"]["armed"] is True, res
        # Locked out for real: a new connection to sshd goes unanswered (its SYN is dropped).
        locked = watch.wait_for(lambda a: a.result == "dropped" and a.start >= t0, EVENT_BOUND)
        assert locked, "no new connection to port 22 was dropped after a forced INPUT DROP: %s" % watch.summary(t0)
        # Nobody confirms: the rollback lets new connections through again.
        back = watch.wait_for(lambda a: a.result == "open" and a.start > locked.start, ROLLBACK + EVENT_BOUND)
        assert back, "port 22 still unreachable %ds after the run: %s" % (
            time.monotonic() - t_returned, watch.summary(t0))
    # Not before the deadline: it started after t0, and a connection got through only after it.
    assert back.end - t0 >= ROLLBACK, "reachable again %.1fs after the run began: %s" % (
        back.end - t0, watch.summary(t0))
    print("forced lockout: module returned after %.1fs, first dropped connection at %.1fs, "
          "through again at %.1fs (rollback_timeout %ds)"
          % (t_returned - t0, locked.start - t0, back.end - t0, ROLLBACK))
    assert saved(fw) == before
    assert ssh_works(fw), "a new SSH login does not get in after the rollback"
    late = run_over_ssh(fw, "iptables_confirm")
    assert late["_status"] == "FAILED!" and "too late" in late["msg"], late


def test_confirmed_change_over_a_new_connection_is_kept(fw):
    load(fw, BASELINE.replace("COMMIT\n", SSH_ACCEPT + "COMMIT\n"))
    res = run_over_ssh(fw, "iptables_policy", {"chain": "INPUT", "policy": "DROP",
                                               "rollback_timeout": CONFIRM_ROLLBACK, "ip_version": "ipv4"})
    assert res["_status"] == "CHANGED" and res["rollback"]["armed"] is True, res
    assert res["guard"]["after"] == "ACCEPT" and res["guard"]["forced"] is False, res
    ok = run_over_ssh(fw, "iptables_confirm")  # a new connection: it proves the host is reachable
    assert ok["_status"] == "CHANGED" and ok["state"] == "confirmed", ok
    assert run_over_ssh(fw, "iptables_confirm")["state"] == "nothing"  # disarmed for good
    assert ":INPUT DROP" in saved(fw)
    assert ssh_works(fw)


def test_site_canary_batch_stops_a_bad_rollout(tmp_path):
    """playbooks/site.yml: a configuration the role refuses fails on the canary host only."""
    import fleet  # tools/fleet.py (tools/ is on sys.path, see conftest.py)

    with fleet.Fleet(4, listeners=False, sentinels=False) as hosts:
        inventory = hosts.write_inventory(str(tmp_path / "fleet.yml"))
        groups = tmp_path / "groups.ini"
        groups.write_text("[firewall:children]\nfleet\n")
        bad = {"firewall_ssh_accept": False, "firewall_ratelimits": []}  # nothing accepts SSH
        argv = [ansible_runs.ansible_bin("ansible-playbook"), "-i", inventory, "-i", str(groups),
                "-e", "@" + os.path.join(ansible_runs.ROOT, "playbooks", "inventory", "group_vars", "firewall.yml"),
                "-e", json.dumps(bad), os.path.join(ansible_runs.ROOT, "playbooks", "site.yml")]
        env = ansible_runs.ansible_env("nft")
        env.pop("ANSIBLE_STDOUT_CALLBACK")
        env.update(ANSIBLE_PIPELINING="1")
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
        for h in hosts.hosts:
            sandbox_hosts.end_ssh_masters(h.control_dir)
        assert proc.returncode != 0, proc.stdout
        assert "Refusing to apply" in proc.stdout, proc.stdout
        recap = [line.split()[0] for line in proc.stdout.split("PLAY RECAP", 1)[1].splitlines()
                 if re.match(r"^fw\d+ +: ok=", line)]
        assert recap == ["fw01"], proc.stdout  # the canary batch; the rollout stopped there
        for h in hosts.hosts:
            assert "ironwall" not in h.exec(["iptables-save"]).stdout, h.name
