# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lockout guard and rollback deadline, with real iptables and real TCP in namespaces."""

from __future__ import annotations

import time

import pytest

import ansible_runs
import sandbox_net


def ssh_env(client_addr, server_addr, port=22, state_dir=None):
    env = {"SSH_CONNECTION": "%s 50123 %s %d" % (client_addr, server_addr, port)}
    if state_dir:
        env["IRONWALL_STATE_DIR"] = str(state_dir)
    return env


def input_policy(ns, family=4, backend="nft"):
    for line in ansible_runs.save(ns, family, backend).splitlines():
        if line.startswith(":INPUT "):
            return line.split()[1]
    return "ACCEPT"  # table not loaded yet


def wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return predicate()


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_guard_refuses_drop_without_ssh_accept_and_allows_it_after(netns, backend):
    env = ssh_env("198.51.100.7", "198.51.100.1")
    netns.iptables("-A", "INPUT", "-p", "udp", "-j", "ACCEPT", backend=backend)
    before = ansible_runs.save(netns, 4, backend)
    for check in (True, False):
        res = ansible_runs.run_module(netns, "iptables_policy", {"chain": "INPUT", "policy": "DROP"}, backend,
                                      check=check, env=env)
        assert res["_status"] == "FAILED!", res
        assert "lockout guard" in res["msg"] and "198.51.100.7" in res["msg"] and "port 22" in res["msg"]
        assert res["guard"]["before"] == "ACCEPT" and res["guard"]["after"] == "DROP"
        assert ansible_runs.save(netns, 4, backend) == before
    # A purge that would remove the only SSH accept is refused the same way.
    netns.iptables("-P", "INPUT", "DROP", backend=backend)
    netns.iptables("-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT", backend=backend)
    res = ansible_runs.run_module(netns, "iptables_policy", {"chain": "INPUT", "purge": True, "ip_version": "ipv4"},
                                  backend, env=env)
    assert res["_status"] == "FAILED!" and "lockout guard" in res["msg"], res
    # With an owned accept for SSH placed first, the purge (and the policy) go through.
    rule = {"name": "ssh", "priority": 10, "protocol": "tcp", "dports": [22], "jump": "ACCEPT",
            "ip_version": "ipv4"}
    assert ansible_runs.run_module(netns, "iptables_rule", rule, backend, env=env)["_status"] == "CHANGED"
    res = ansible_runs.run_module(netns, "iptables_policy", {"chain": "INPUT", "policy": "DROP", "purge": True,
                                                             "ip_version": "ipv4"}, backend, env=env)
    assert res["_status"] == "CHANGED", res
    assert res["guard"] == {"connection": "a NEW TCP connection from 198.51.100.7 to 198.51.100.1 port 22",
                            "before": "ACCEPT", "after": "ACCEPT", "forced": False}
    assert "-A INPUT -p udp -j ACCEPT" not in ansible_runs.save(netns, 4, backend)


def test_guard_ipv6_connection_checks_ipv6_only(netns):
    env = ssh_env("2001:db8:100::7", "2001:db8:100::1", 2222)
    res = ansible_runs.run_module(netns, "iptables_policy", {"chain": "INPUT", "policy": "DROP"}, env=env)
    assert res["_status"] == "FAILED!" and "2001:db8:100::7" in res["msg"] and "port 2222" in res["msg"], res
    assert input_policy(netns, 4) == "ACCEPT" and input_policy(netns, 6) == "ACCEPT"
    # the IPv4 family alone cannot cut an IPv6 session
    res = ansible_runs.run_module(netns, "iptables_policy", {"chain": "INPUT", "policy": "DROP", "ip_version": "ipv4"},
                                  env=env)
    assert res["_status"] == "CHANGED", res


def test_forced_lockout_rolls_back_within_timeout_with_real_packets(lan, tmp_path):
    import observe  # tools/observe.py

    # The test waits for events, never races the deadline: new connections are watched from
    # before the run, so the lockout is seen however late the run returns. `bound` only turns a
    # hang into a failure.
    deadline, bound = 10, 120
    server = lan.add_client()
    client = lan.add_client(subnet="203.0.113")
    server.listen(22)
    server.iptables("-A", "INPUT", "-p", "udp", "--dport", "53", "-j", "ACCEPT")
    assert sandbox_net.probe(client, server.addr4, 22)
    before = ansible_runs.save(server, 4)
    env = ssh_env(client.addr4, server.addr4, state_dir=tmp_path)
    args = {"chain": "INPUT", "policy": "DROP", "force": True, "rollback_timeout": deadline, "ip_version": "ipv4"}
    with observe.Watch(client, server.addr4, 22) as watch:
        assert watch.wait_for(lambda a: a.result == "open", bound), watch.summary()
        t0 = time.monotonic()
        res = ansible_runs.run_module(server, "iptables_policy", args, env=env)
        assert res["_status"] == "CHANGED", res
        assert res["guard"]["forced"] is True and res["guard"]["after"] == "DROP"
        assert res["rollback"]["armed"] is True and res["rollback"]["joined"] is False
        # Locked out: a new connection's SYN goes unanswered.
        locked = watch.wait_for(lambda a: a.result == "dropped" and a.start >= t0, bound)
        assert locked, "no new connection was dropped after a forced INPUT DROP: %s" % watch.summary(t0)
        # Nobody confirms: the rollback lets new connections through again, ruleset as before.
        back = watch.wait_for(lambda a: a.result in observe.THROUGH and a.start > locked.start, deadline + bound)
        assert back, "still unreachable: %s" % watch.summary(t0)
    # Not before the deadline: it started after t0, and a connection got through only after it.
    assert back.end - t0 >= deadline, watch.summary(t0)
    # The watch's own connections move the chain counters: compare without them.
    assert sandbox_net.comparable_save(ansible_runs.save(server, 4)) == sandbox_net.comparable_save(before)
    assert sandbox_net.probe(client, server.addr4, 22)
    late = ansible_runs.run_module(server, "iptables_confirm", {}, env=env)
    assert late["_status"] == "FAILED!" and "too late" in late["msg"], late


def test_confirmed_change_is_kept(netns, tmp_path):
    import observe  # tools/observe.py

    # Two runs and a confirmation must come before the deadline: a few seconds each even on a
    # loaded machine, so the deadline is generous; then the test waits for it to pass.
    deadline, bound = 30, 120
    env = {"IRONWALL_STATE_DIR": str(tmp_path)}
    args = {"chain": "INPUT", "policy": "DROP", "rollback_timeout": deadline, "ip_version": "ipv4"}
    res = ansible_runs.run_module(netns, "iptables_policy", args, env=env)
    t_armed = time.monotonic()  # the deadline started before this
    assert res["_status"] == "CHANGED" and res["rollback"]["armed"], res
    # a second change joins the armed series: one watchdog, the oldest snapshot kept
    res2 = ansible_runs.run_module(netns, "iptables_policy", {"chain": "FORWARD", "policy": "DROP",
                                                              "rollback_timeout": deadline, "ip_version": "ipv4"},
                                   env=env)
    assert res2["rollback"]["joined"] is True and res2["rollback"]["token"] == res["rollback"]["token"]
    ok = ansible_runs.run_module(netns, "iptables_confirm", {}, env=env)
    assert ok["_status"] == "CHANGED" and ok["state"] == "confirmed", ok
    # Past the deadline, and the watchdog (the only process left in the namespace) is gone.
    assert wait_for(lambda: time.monotonic() > t_armed + deadline and not observe.netns_pids(netns),
                    deadline + bound), observe.netns_pids(netns)
    assert input_policy(netns) == "DROP"
    assert "FORWARD DROP" in ansible_runs.save(netns, 4)
    again = ansible_runs.run_module(netns, "iptables_confirm", {}, env=env)
    assert again["_status"] == "SUCCESS" and again["state"] == "nothing"


def test_unconfirmed_series_restores_the_oldest_snapshot(netns, tmp_path):
    import observe  # tools/observe.py

    # The second run must join the series before the deadline: generous, then wait for the rollback.
    deadline, bound = 30, 120
    env = {"IRONWALL_STATE_DIR": str(tmp_path)}
    before = ansible_runs.save(netns, 4) + ansible_runs.save(netns, 6)
    ansible_runs.run_module(netns, "iptables_policy", {"chain": "INPUT", "policy": "DROP",
                                                       "rollback_timeout": deadline, "ip_version": "ipv4"}, env=env)
    res = ansible_runs.run_module(netns, "iptables_policy", {"chain": "FORWARD", "policy": "DROP",
                                                             "rollback_timeout": deadline}, env=env)
    assert res["rollback"]["joined"] is True
    # Rolled back: both families' policies are back and the watchdog has finished.
    assert wait_for(lambda: input_policy(netns) == "ACCEPT" and input_policy(netns, 6) == "ACCEPT"
                    and not observe.netns_pids(netns), deadline + bound)
    after = ansible_runs.save(netns, 4) + ansible_runs.save(netns, 6)
    assert ":FORWARD ACCEPT" in after and ":FORWARD DROP" not in after
    # the empty namespace comes back as empty built-in chains with ACCEPT policies
    assert [line for line in after.splitlines() if line.startswith("-A")] == \
        [line for line in before.splitlines() if line.startswith("-A")]


def test_negative_rollback_timeout_is_refused_before_anything_runs(netns):
    res = ansible_runs.run_module(netns, "iptables_policy", {"chain": "INPUT", "policy": "DROP", "rollback_timeout": -1})
    assert res["_status"] == "FAILED!" and "rollback_timeout" in res["msg"], res
    assert input_policy(netns) == "ACCEPT"
