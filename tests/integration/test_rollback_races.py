# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Rollback faults and races (issue 12, items 5 and 6), with real iptables in namespaces.

- A killed watchdog is replaced by the next run (``restarted``), and the new one undoes
  the whole series.
- An unwritable state directory fails the run naming ``rollback_timeout`` and the directory,
  before anything changes; without ``rollback_timeout`` the same run works.
- Two namespaces armed at once under one state base keep separate rollbacks.
- A rollback undoes only the collection's change: a fail2ban ban added meanwhile stays.
- A run that fails after arming (a jump loop the kernel refuses only at commit, in the
  second family) leaves nothing armed; a joined run that fails takes back only its part.
- After a rollback exactly one confirm says "too late".
- A foreign writer inserting at INPUT 1 all the time, and two runs of the collection at
  once, never leave tagged rules missing or out of priority order behind a reported success.

Every test waits for events (the rolled-back marker, a process gone) with a generous bound,
never for a wall-clock deadline. Where something must happen inside the rollback window,
the deadline is long and the test then ends the watchdog's ``sleep`` (a process it started,
by pid): the watchdog goes on at once, exactly as when its deadline passes. The watchdogs
(``<state>/net-<inode>/watchdog.pid``) and the foreign writer are ended by pid.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

import ansible_runs
import sandbox_net
from ansible_runs import BACKENDS, run_module, save

# Seconds. BOUND only turns a hang into a failure. SHORT is a deadline the test lets pass
# (it waits for the rollback as an event); LONG is one the test never waits for.
BOUND = 60
SHORT = 3
LONG = 600

TAG_RE = re.compile(r'--comment "?ironwall:(\d+):rule:([^" ]+)"?')
TOO_LATE = "too late"
RACE_MSG = "another program kept changing"


# --------------------------------------------------------------------------- helpers

def wait_for(predicate, timeout=BOUND, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def read(path):
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def net_inode(ns):
    return int(ns.run(["stat", "-L", "-c", "%i", "/proc/self/ns/net"]).stdout)


def state_of(base, ns):
    """The state directory of namespace ns under the base IRONWALL_STATE_DIR."""
    return os.path.join(str(base), "net-%d" % net_inode(ns))


def rolled_back(sdir):
    """The watchdog's marker ('<epoch> undo|snapshot|failed'), or None."""
    return read(os.path.join(sdir, "rolled-back"))


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def _children(pid):
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        stat = read("/proc/%s/stat" % name) or ""
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and fields[1] == str(pid):
            out.append(int(name))
    return out


def watchdog(sdir):
    """The pid in ``sdir/watchdog.pid`` while that process is the watchdog of sdir, else None."""
    text = (read(os.path.join(sdir, "watchdog.pid")) or "").strip()
    if not text.isdigit():
        return None
    pid = int(text)
    cmd = _cmdline(pid)
    if sandbox_net.pid_alive(pid) and b"ironwall-rollback" in cmd and sdir.encode() in cmd:
        return pid
    return None


def watchdogs_in(ns):
    """Watchdogs running in namespace ns (started by this test's runs)."""
    pids = ns.run(["ip", "netns", "pids", ns.name], check=False).stdout.split()
    return [int(p) for p in pids if p.isdigit() and b"ironwall-rollback" in _cmdline(int(p))
            and sandbox_net.pid_alive(int(p))]


def _sleeper(pid):
    for child in _children(pid):
        if (read("/proc/%d/comm" % child) or "").strip() == "sleep":
            return child
    return None


def fast_forward(sdir):
    """End the watchdog's ``sleep``: it goes on at once as if its deadline had passed."""
    pid = watchdog(sdir)
    assert pid, "no watchdog running for %s" % sdir
    sleeper = wait_for(lambda: _sleeper(pid), step=0.02)
    assert sleeper, "watchdog %d is not sleeping" % pid
    sandbox_net.kill(sleeper)
    return pid


def end_watchdog(pid):
    """End a watchdog this test started, and its sleep."""
    for child in _children(pid):
        sandbox_net.kill(child)
    sandbox_net.kill(pid)
    sandbox_net.wait_pid_gone(pid, BOUND)


@pytest.fixture
def state_base(tmp_path):
    """An IRONWALL_STATE_DIR for the test; watchdogs still running under it are ended after."""
    base = str(tmp_path / "state")
    yield base
    if os.path.isdir(base):
        for name in os.listdir(base):
            pid = watchdog(os.path.join(base, name))
            if pid:
                end_watchdog(pid)


def both(ns, backend):
    return save(ns, 4, backend) + save(ns, 6, backend)


def comparable(ns, backend):
    return sandbox_net.comparable_save(both(ns, backend))


def tagged(ns, family, backend, chain="INPUT"):
    """[(priority, name)] of the tagged rules of chain, in ruleset order (untagged ones left out)."""
    out = []
    for line in save(ns, family, backend).splitlines():
        if line.startswith("-A %s " % chain):
            m = TAG_RE.search(line)
            if m:
                out.append((int(m.group(1)), m.group(2)))
    return out


def tagged_lines(ns, family, backend, chain="INPUT"):
    return [line for line in save(ns, family, backend).splitlines()
            if line.startswith("-A %s " % chain) and TAG_RE.search(line)]


def rule(name, priority, port, **extra):
    out = {"name": name, "priority": priority, "protocol": "tcp", "dports": [port], "jump": "ACCEPT"}
    out.update(extra)
    return out


def changed(res):
    return res["_status"] == "CHANGED" and res.get("changed") is True


def confirm(ns, env, backend="nft"):
    return run_module(ns, "iptables_confirm", {}, backend, env=env)


def fam_iptables(ns, backend, *args):
    """The same iptables command in both families (address-free)."""
    for fam in (4, 6):
        ns.iptables(*args, family=fam, backend=backend)


# --------------------------------------------------------------------------- 1. watchdog killed

@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_watchdog_is_replaced_and_the_new_one_undoes_the_whole_series(netns, backend, state_base):
    env = {"IRONWALL_STATE_DIR": state_base}
    netns.iptables("-A", "INPUT", "-s", "203.0.113.5", "-j", "DROP", backend=backend)
    netns.iptables("-A", "INPUT", "-s", "2001:db8::5", "-j", "DROP", family=6, backend=backend)
    before = comparable(netns, backend)
    first = run_module(netns, "iptables_rule", dict(rule("web", 100, 80), rollback_timeout=LONG), backend, env=env)
    assert changed(first) and first["rollback"]["armed"] is True and first["rollback"]["joined"] is False, first
    sdir = state_of(state_base, netns)
    killed = wait_for(lambda: watchdog(sdir))
    assert killed, "the first run left no watchdog"
    sleeper = wait_for(lambda: _sleeper(killed), step=0.02)
    sandbox_net.kill(killed, signal.SIGKILL)
    assert sandbox_net.wait_pid_gone(killed, BOUND)
    if sleeper:
        sandbox_net.kill(sleeper)

    # LONG, then fast_forward: the state between the run and the deadline is read while the
    # test holds the deadline (with SHORT it could pass before a slow machine reads it).
    second = run_module(netns, "iptables_policy", {"chain": "FORWARD", "policy": "DROP", "rollback_timeout": LONG},
                        backend, env=env)
    assert changed(second), second
    rb = second["rollback"]
    assert rb["armed"] is True and rb["joined"] is True and rb.get("restarted") is True, rb
    assert rb["token"] != first["rollback"]["token"]
    assert ":FORWARD DROP" in both(netns, backend) and "ironwall:100:rule:web" in both(netns, backend)

    # Nobody confirms: the new watchdog undoes both runs' changes.
    fast_forward(sdir)
    marker = wait_for(lambda: rolled_back(sdir))
    assert marker and marker.split()[1] == "undo", marker
    assert wait_for(lambda: not watchdogs_in(netns)), watchdogs_in(netns)
    assert comparable(netns, backend) == before
    late = confirm(netns, env, backend)
    assert late["_status"] == "FAILED!" and TOO_LATE in late["msg"], late


# --------------------------------------------------------------------------- 2. state dir unwritable

@pytest.mark.parametrize("where", ["is-a-file", "under-a-file"])
@pytest.mark.parametrize("module, args", [
    ("iptables_rule", rule("web", 100, 80)),
    ("iptables_policy", {"chain": "FORWARD", "policy": "DROP"}),
])
def test_unwritable_state_dir_fails_naming_it_and_changes_nothing(netns, tmp_path, where, module, args):
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file\n")
    base = str(blocker if where == "is-a-file" else blocker / "state")
    env = {"IRONWALL_STATE_DIR": base}
    netns.iptables("-A", "INPUT", "-s", "203.0.113.5", "-j", "DROP")
    before4, before6 = save(netns, 4), save(netns, 6)

    res = run_module(netns, module, dict(args, rollback_timeout=5), env=env)
    assert res["_status"] == "FAILED!", res
    assert "rollback_timeout" in res["msg"] and base in res["msg"], res["msg"]
    assert save(netns, 4) == before4 and save(netns, 6) == before6
    assert not watchdogs_in(netns)

    res = run_module(netns, module, args, env=env)
    assert changed(res) and "rollback" not in res, res
    assert save(netns, 4) != before4 and save(netns, 6) != before6
    assert blocker.read_text() == "a regular file\n"


# --------------------------------------------------------------------------- 3. two namespaces at once

@pytest.mark.parametrize("backend", BACKENDS)
def test_two_namespaces_armed_at_once_keep_separate_rollbacks(netns, backend, state_base):
    env = {"IRONWALL_STATE_DIR": state_base}
    with sandbox_net.Netns() as other:
        a, b = netns, other
        a.iptables("-A", "INPUT", "-s", "198.51.100.50", "-j", "DROP", backend=backend)
        a.iptables("-A", "INPUT", "-s", "2001:db8::50", "-j", "DROP", family=6, backend=backend)
        fam_iptables(b, backend, "-N", "b-only")
        b.iptables("-A", "INPUT", "-s", "203.0.113.60", "-j", "b-only", backend=backend)
        before_b = comparable(b, backend)

        # A's deadline is never reached (A is confirmed); B's passes with nobody confirming.
        ra = run_module(a, "iptables_rule", dict(rule("a-web", 100, 8080), rollback_timeout=LONG), backend, env=env)
        armed_a = both(a, backend)
        rb = run_module(b, "iptables_rule", dict(rule("b-web", 100, 9090), rollback_timeout=SHORT), backend, env=env)
        assert changed(ra) and changed(rb), (ra, rb)
        assert ra["rollback"]["joined"] is False and rb["rollback"]["joined"] is False
        assert ra["rollback"]["token"] != rb["rollback"]["token"]
        sa, sb = state_of(state_base, a), state_of(state_base, b)
        assert sa != sb and sorted(os.listdir(state_base)) == sorted([os.path.basename(sa), os.path.basename(sb)])

        marker = wait_for(lambda: rolled_back(sb), SHORT + BOUND)
        assert marker and marker.split()[1] == "undo", marker
        assert comparable(b, backend) == before_b
        # Nothing of B's was restored into A: A's change and its own rules are as its run left them.
        assert both(a, backend) == armed_a and "ironwall:100:rule:a-web" in armed_a
        assert rolled_back(sa) is None and os.path.exists(os.path.join(sa, "pending"))

        ok = confirm(a, env, backend)
        assert ok["_status"] == "CHANGED" and ok["state"] == "confirmed", ok
        late = confirm(b, env, backend)
        assert late["_status"] == "FAILED!" and TOO_LATE in late["msg"], late
        # A's watchdog at its deadline (brought forward) finds the change confirmed and keeps it.
        pid = fast_forward(sa)
        assert sandbox_net.wait_pid_gone(pid, BOUND)
        assert rolled_back(sa) is None
        assert both(a, backend) == armed_a
        assert confirm(a, env, backend)["state"] == "nothing"


# --------------------------------------------------------------------------- 4. undo only ours

@pytest.mark.parametrize("backend", BACKENDS)
def test_rollback_undoes_only_our_change_and_keeps_bans_added_meanwhile(netns, backend, state_base):
    env = {"IRONWALL_STATE_DIR": state_base}
    # fail2ban's chain and its jump exist before the change
    fam_iptables(netns, backend, "-N", "f2b-sshd")
    fam_iptables(netns, backend, "-A", "f2b-sshd", "-j", "RETURN")
    fam_iptables(netns, backend, "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "f2b-sshd")
    res = run_module(netns, "iptables_rule", {"rules": [rule("ssh", 10, 22), rule("web", 100, 80)],
                                              "rollback_timeout": LONG}, backend, env=env)
    assert changed(res) and res["rollback"]["joined"] is False, res
    res = run_module(netns, "iptables_policy", {"chain": "FORWARD", "policy": "DROP", "rollback_timeout": LONG},
                     backend, env=env)
    assert changed(res) and res["rollback"]["joined"] is True, res
    sdir = state_of(state_base, netns)

    # Inside the window: fail2ban bans, an admin inserts at INPUT 1.
    netns.iptables("-I", "f2b-sshd", "1", "-s", "203.0.113.9", "-j", "REJECT", backend=backend)
    netns.iptables("-I", "f2b-sshd", "1", "-s", "2001:db8::9", "-j", "REJECT", family=6, backend=backend)
    netns.iptables("-I", "INPUT", "1", "-s", "203.0.113.10", "-j", "DROP", backend=backend)
    netns.iptables("-I", "INPUT", "1", "-s", "2001:db8::10", "-j", "DROP", family=6, backend=backend)
    assert os.path.exists(os.path.join(sdir, "pending")) and rolled_back(sdir) is None
    expected = [line.replace(":FORWARD DROP", ":FORWARD ACCEPT")
                for line in comparable(netns, backend).splitlines() if "ironwall:" not in line]

    fast_forward(sdir)
    marker = wait_for(lambda: rolled_back(sdir))
    assert marker and marker.split()[1] == "undo", marker
    after = comparable(netns, backend)
    assert after.splitlines() == expected
    assert "203.0.113.9" in after and "2001:db8::9" in after and "ironwall:" not in after
    for fam, src in ((4, "203.0.113.9/32"), (6, "2001:db8::9/128")):
        lines = [line for line in save(netns, fam, backend).splitlines() if line.startswith("-A f2b-sshd ")]
        assert lines[0].startswith("-A f2b-sshd -s %s -j REJECT" % src) and lines[1] == "-A f2b-sshd -j RETURN"


# --------------------------------------------------------------------------- 5. failed run after arming

def _loop_chains(ns, backend):
    """Foreign chains INPUT -> fa -> fb in both families: a rule in fb jumping to fa is a loop the
    kernel refuses only when the transaction is committed (iptables-restore --test passes)."""
    fam_iptables(ns, backend, "-N", "fa")
    fam_iptables(ns, backend, "-N", "fb")
    fam_iptables(ns, backend, "-A", "INPUT", "-j", "fa")
    fam_iptables(ns, backend, "-A", "fa", "-j", "fb")


# IPv4 gets only "ok" and is applied first; IPv6's script also holds the loop and fails at commit.
LOOP_IN_IPV6 = {"name": "loop", "priority": 600, "chain": "fb", "source": ["2001:db8::9"], "jump": "fa"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_failing_after_arming_leaves_nothing_armed(netns, backend, state_base):
    env = {"IRONWALL_STATE_DIR": state_base}
    _loop_chains(netns, backend)
    before = both(netns, backend)
    bad = run_module(netns, "iptables_rule", {"rules": [rule("ok", 10, 80), LOOP_IN_IPV6],
                                              "rollback_timeout": SHORT}, backend, env=env)
    assert bad["_status"] == "FAILED!", bad
    assert "ip6tables-restore" in bad["msg"] and "ipv4 change was rolled back" in bad["msg"], bad["msg"]
    assert both(netns, backend) == before
    sdir = state_of(state_base, netns)
    # Nothing armed: no token, no undo script (a snapshot left behind is inert: it is only read
    # by a watchdog whose token is pending, and the next series starts by removing it).
    assert sorted(n for n in os.listdir(sdir) if n in ("pending", "rolled-back") or n.startswith("undo-")) == []

    good = run_module(netns, "iptables_rule", rule("later", 20, 443), backend, env=env)
    assert changed(good) and "rollback" not in good, good
    after_good = both(netns, backend)
    # The failed run's watchdog, if one was started, finds nothing pending at its deadline.
    assert wait_for(lambda: not watchdogs_in(netns), SHORT + BOUND), watchdogs_in(netns)
    assert rolled_back(sdir) is None
    assert both(netns, backend) == after_good
    assert confirm(netns, env, backend)["state"] == "nothing"


@pytest.mark.parametrize("backend", BACKENDS)
def test_joined_run_that_fails_takes_back_only_its_part(netns, backend, state_base):
    env = {"IRONWALL_STATE_DIR": state_base}
    _loop_chains(netns, backend)
    before = both(netns, backend)
    first = run_module(netns, "iptables_rule", dict(rule("kept", 10, 80), rollback_timeout=LONG), backend, env=env)
    assert changed(first) and first["rollback"]["joined"] is False, first
    sdir = state_of(state_base, netns)
    undo_first = sorted(n for n in os.listdir(sdir) if n.startswith("undo-"))
    bad = run_module(netns, "iptables_rule", {"rules": [rule("ok", 20, 443), LOOP_IN_IPV6],
                                              "rollback_timeout": LONG}, backend, env=env)
    assert bad["_status"] == "FAILED!" and "ipv4 change was rolled back" in bad["msg"], bad
    # Only the first run's part is armed, under its token.
    assert sorted(n for n in os.listdir(sdir) if n.startswith("undo-")) == undo_first
    assert (read(os.path.join(sdir, "pending")) or "").strip() == first["rollback"]["token"]
    # A foreign rule added meanwhile survives: the undo applies, no snapshot restore is needed.
    netns.iptables("-I", "INPUT", "1", "-s", "203.0.113.11", "-j", "DROP", backend=backend)
    expected = [line for line in comparable(netns, backend).splitlines() if "ironwall:" not in line]
    fast_forward(sdir)
    marker = wait_for(lambda: rolled_back(sdir))
    assert marker and marker.split()[1] == "undo", marker
    assert comparable(netns, backend).splitlines() == expected
    assert "-A INPUT -s 203.0.113.11/32 -j DROP" in expected and len(expected) == len(before.splitlines()) + 1


# --------------------------------------------------------------------------- 6. too late, once

def test_after_a_rollback_exactly_one_confirm_says_too_late(netns, state_base):
    env = {"IRONWALL_STATE_DIR": state_base}
    res = run_module(netns, "iptables_rule", dict(rule("web", 100, 80), rollback_timeout=SHORT), env=env)
    assert changed(res), res
    sdir = state_of(state_base, netns)
    assert wait_for(lambda: rolled_back(sdir), SHORT + BOUND)
    assert "ironwall:" not in both(netns, "nft")

    first = confirm(netns, env)
    assert first["_status"] == "FAILED!" and TOO_LATE in first["msg"] and first["state"] == "rolled-back", first
    for _i in range(2):
        again = confirm(netns, env)
        assert again["_status"] == "SUCCESS" and again["state"] == "nothing", again
        assert TOO_LATE not in str(again.get("msg", ""))
    # The next change starts a new series, which a confirm keeps.
    res = run_module(netns, "iptables_rule", dict(rule("web", 100, 80), rollback_timeout=LONG), env=env)
    assert changed(res) and res["rollback"]["joined"] is False and "restarted" not in res["rollback"], res
    ok = confirm(netns, env)
    assert ok["_status"] == "CHANGED" and ok["state"] == "confirmed", ok
    pid = fast_forward(sdir)
    assert sandbox_net.wait_pid_gone(pid, BOUND)
    assert rolled_back(sdir) is None and "ironwall:100:rule:web" in both(netns, "nft")


# --------------------------------------------------------------------------- 7. concurrent foreign writer

WRITER = r"""
i=0
while [ "$i" -lt "$1" ]; do
  a=$((i % 200 + 1))
  iptables -w -I INPUT 1 -s 203.0.113.$a -j ACCEPT
  ip6tables -w -I INPUT 1 -s 2001:db8::f:$a -j ACCEPT
  iptables -w -D INPUT -s 203.0.113.$a -j ACCEPT
  ip6tables -w -D INPUT -s 2001:db8::f:$a -j ACCEPT
  i=$((i + 1))
done
"""
WRITER_ITERATIONS = 20000  # the bound (minutes); the test ends the writer by pid once its runs are done


class ForeignWriter(object):
    """A shell loop in the namespace inserting an untagged rule at INPUT 1 and deleting it."""

    def __init__(self, ns, backend, iterations=WRITER_ITERATIONS):
        self.proc = subprocess.Popen(ns.argv(["/bin/sh", "-c", WRITER, "writer", str(iterations)]),
                                     env=sandbox_net.backend_env(backend), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def running(self):
        return self.proc.poll() is None

    def stop(self):
        sandbox_net.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=BOUND)
        except subprocess.TimeoutExpired:
            sandbox_net.kill(self.proc.pid)
            self.proc.wait()


def _prioritized(i):
    """Five rules in priority order; rule i % 5 gets a new port, and 'mid' comes and goes."""
    rules = [rule("p%d" % k, 10 * k, 1000 + k) for k in range(1, 6)]
    rules[i % 5]["dports"] = [2000 + i]
    rules.append(rule("mid", 25, 3000 + i) if i % 2 == 0 else {"name": "mid", "state": "absent"})
    return rules


def _check_order(ns, backend, rules, label):
    present = sorted((r for r in rules if r.get("state") != "absent"), key=lambda r: (r["priority"], r["name"]))
    want = [(r["priority"], r["name"]) for r in present]
    for fam in (4, 6):
        have = tagged(ns, fam, backend)
        assert have == want, "%s ipv%d: tagged rules %s, wanted %s" % (label, fam, have, want)
        lines = tagged_lines(ns, fam, backend)
        for r, line in zip(present, lines):
            assert "--dport %d " % r["dports"][0] in line, (label, fam, line)


@pytest.mark.parametrize("backend", BACKENDS)
def test_foreign_writer_at_input_1_never_leaves_misorder_behind_a_success(netns, backend):
    runs, overlapped = 10, 0
    raced, wrong = [], []  # failures saying the writer kept changing the chain / saying something else
    writer = ForeignWriter(netns, backend)
    try:
        for i in range(runs):
            rules = _prioritized(i)
            alive = writer.running()
            res = run_module(netns, "iptables_rule", {"rules": rules}, backend)
            overlapped += alive and writer.running()
            if res["_status"] == "FAILED!":
                (raced if RACE_MSG in res["msg"] else wrong).append((i, res["msg"]))
                continue
            # A success is only reported when it is true.
            assert changed(res), res
            _check_order(netns, backend, rules, "run %d (calls %s)" % (i, res["calls"]))
        assert overlapped == runs, "the writer ended before the runs did (%d of %d overlapped)" % (overlapped, runs)
    finally:
        writer.stop()
    # Once the writer is gone, the last list converges and stays.
    rules = _prioritized(runs)
    res = run_module(netns, "iptables_rule", {"rules": rules}, backend)
    assert changed(res), res
    _check_order(netns, backend, rules, "after the writer")
    assert run_module(netns, "iptables_rule", {"rules": rules}, backend)["changed"] is False
    # A run that does fail says why: another program kept changing the chain.
    assert not wrong, "%d of %d runs failed without saying %r (%d did), first: run %d: %s" % (
        len(wrong), runs, RACE_MSG, len(raced), wrong[0][0], wrong[0][1])
    assert len(raced) < runs, "every run failed against the writer"


# --------------------------------------------------------------------------- 8. two runs at once

def start_module(ns, module, args, backend):
    """run_module's command, started in the background."""
    argv = ["ip", "netns", "exec", ns.name, ansible_runs.ansible_bin("ansible"), "localhost", "-c", "local",
            "-e", "ansible_python_interpreter=" + ansible_runs.TARGET_PYTHON,
            "-m", "ironwall.iptables." + module, "-a", json.dumps(args)]
    env = ansible_runs.ansible_env(backend)
    env.pop("ANSIBLE_STDOUT_CALLBACK")
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_module(proc):
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        sandbox_net.kill(proc.pid)
        out, err = proc.communicate()
    return ansible_runs.adhoc_result(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_concurrent_runs_in_one_namespace_both_land_in_order(netns, backend):
    netns.iptables("-A", "INPUT", "-s", "203.0.113.7", "-j", "DROP", backend=backend)
    for i in range(8):
        xs = [rule("x%d" % k, 10 + 20 * k, 4000 + 10 * k + i) for k in range(3)]  # 10 30 50
        ys = [rule("y%d" % k, 20 + 20 * k, 5000 + 10 * k + i) for k in range(3)]  # 20 40 60
        procs = [start_module(netns, "iptables_rule", {"rules": xs}, backend),
                 start_module(netns, "iptables_rule", {"rules": ys}, backend)]
        results = [finish_module(p) for p in procs]
        for res in results:
            assert changed(res), ("trial %d" % i, res)
        _check_order(netns, backend, xs + ys, "trial %d" % i)
        assert "-A INPUT -s 203.0.113.7/32 -j DROP" in save(netns, 4, backend)
