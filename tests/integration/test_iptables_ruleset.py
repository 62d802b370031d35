# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_ruleset against real iptables (nft and legacy) in throwaway network namespaces.

1. Atomic: a failure injected in any part of one ruleset task leaves both families
   byte-identical (``iptables-save``/``ip6tables-save`` without counters) and the saved files
   untouched. Failures come from a PATH shim directory put in front of the backend's binaries
   for that task only (the shims run the real binary otherwise):

   * ``whitelist-v4``: ``iptables-restore`` refuses every script that holds ``MYSQL_WHITELIST``
     (``line N failed``, like the kernel refusing that part);
   * ``whitelist-v6``: the same refusal from ``ip6tables-restore``;
   * ``restore-v6``: ``ip6tables-restore`` fails for the real (non ``--test``) call, after the
     IPv4 part was applied: the IPv4 change must be taken back;
   * ``loop-v6``, no shim: the kernel itself refuses an IPv6 rule that closes a jump loop
     through an admin's chains, only at commit, after IPv4 was applied.

   The contrast: the OLD way (``iptables_rule`` for the base rules, then ``iptables_whitelist``,
   then ``iptables_policy``, as separate tasks) under the same refusal leaves the first task's
   rules applied.
4. ``exclusive`` removes a whitelist dropped from the list and a rule an ``iptables_rule`` task
   placed (reported under ``removed``); check mode changes neither the rules nor the files;
   ``--diff`` shows the file diff; with ``rollback_timeout`` the files are staged, and
   ``iptables_confirm`` writes them (``saved``); when the rollback fires instead, they are
   never written. Also when the deadline passes while the run still applies (a restore slower
   than ``rollback_timeout``): the rollback must stand and nothing be saved.
5. Bad input fails naming the option inside the list (``whitelists[1].ports``...) and changes
   nothing, not even with a foreign chain of the same name in the way.

Several module runs share one ansible-playbook (``play``), with shell steps that capture the
ruleset and the files between them, so the file stays fast. Rollback waits are events (a
watchdog pid gone), with generous bounds: the deadline is long and the test ends the
watchdog's ``sleep`` (a process its run started, by pid), as test_rollback_races.py does.
"""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

import ansible_runs
import sandbox_net
from ansible_runs import BACKENDS

BOUND = 120          # seconds; only turns a hang into a failure
LONG = 600           # a rollback deadline the test never waits for (it ends the sleep itself)
WL = "MYSQL_WHITELIST"
CAPTURE = "iptables-save; echo '#--- ipv6'; ip6tables-save"
FILES_MARK = "#=== files"

# Docker (filter and nat) and fail2ban, as they leave a host, per family.
FOREIGN = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s {net} ! -o docker0 -j MASQUERADE
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination {dnat}
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-USER - [0:0]
:f2b-sshd - [0:0]
-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -j DOCKER
-A DOCKER -d {host} ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-USER -j RETURN
-A f2b-sshd -s {ban} -j REJECT --reject-with {unreach}
-A f2b-sshd -j RETURN
COMMIT
"""
FOREIGN_V4 = FOREIGN.format(net="203.0.113.0/24", dnat="203.0.113.2:80", host="203.0.113.2/32",
                            ban="203.0.113.9/32", unreach="icmp-port-unreachable")
FOREIGN_V6 = FOREIGN.format(net="2001:db8:17::/64", dnat="[2001:db8:17::2]:80", host="2001:db8:17::2/128",
                            ban="2001:db8:203::9/128", unreach="icmp6-port-unreachable")

# A restore that fails when {condition} holds (``line N failed``, as iptables-restore says when the
# kernel refuses line N) and otherwise runs {real}, the backend's real binary, on the same input.
SHIM = """#!/bin/sh
# ironwall test shim ({case}): fails like iptables-restore when the kernel refuses a line.
real={real}
tmp=$(mktemp)
cat > "$tmp"
testing=no
for a in "$@"; do [ "$a" = --test ] && testing=yes; done
if {condition}; then
    n={line}
    echo "$(basename "$0"): line $n failed" >&2
    rm -f "$tmp"
    exit 1
fi
"$real" "$@" < "$tmp"
rc=$?
rm -f "$tmp"
exit $rc
"""
# case -> (binary shadowed, condition, line number reported)
SHIM_CASES = {
    "whitelist-v4": ("iptables-restore", "grep -q %s \"$tmp\"" % WL,
                     "$(grep -n %s \"$tmp\" | head -n 1 | cut -d: -f1)" % WL),
    "whitelist-v6": ("ip6tables-restore", "grep -q %s \"$tmp\"" % WL,
                     "$(grep -n %s \"$tmp\" | head -n 1 | cut -d: -f1)" % WL),
    "restore-v6": ("ip6tables-restore", "[ $testing = no ]", "$(wc -l < \"$tmp\")"),
}


# --------------------------------------------------------------------------- helpers

def rule(name, priority=None, **spec):
    out = {"name": name}
    if priority is not None:
        out["priority"] = priority
    out.update(spec)
    return out


BASE_RULES = [
    rule("loopback", 100, in_interface="lo", jump="ACCEPT"),
    rule("established", 110, ctstate=["ESTABLISHED", "RELATED"], jump="ACCEPT"),
    rule("ssh", 120, protocol="tcp", dports=[22], jump="ACCEPT"),
]
MYSQL = {"name": WL, "ports": [3306], "sources": ["198.51.100.25", "203.0.113.0/24", "2001:db8:100::/64"]}
PG = {"name": "PG_WHITELIST", "ports": [5432], "sources": ["198.51.100.30", "2001:db8:100::30"]}
SSH_LIMIT = {"name": "ssh", "ports": [22], "hitcount": 4, "seconds": 60}


def shim_dir(base, case, backend):
    """A directory holding the failing restore of ``case``; returns the PATH to run the module with."""
    binary, condition, line = SHIM_CASES[case]
    family = 4 if binary.startswith("iptables") else 6
    directory = os.path.join(str(base), "shim-%s-%s" % (case, backend))
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, binary)
    with open(path, "w") as fh:
        fh.write(SHIM.format(case=case, real=sandbox_net.family_bin(family, backend, "restore"),
                             condition=condition, line=line))
    os.chmod(path, 0o755)
    return os.pathsep.join([directory, sandbox_net.backend_bin_dir(backend), os.environ.get("PATH", "")])


def env_for(tmp_path):
    """Every run: its own rollback state directory, and no SSH client (the guard stays out of it)."""
    return {"IRONWALL_STATE_DIR": str(tmp_path / "state"), "SSH_CONNECTION": ""}


def play(ns, backend, steps, env, diff=False, ignore_errors=True):
    """Run steps as the tasks of ONE playbook in ns and return their results, in order.

    A step is ``("sh", script)`` (its result's ``stdout``) or ``(module, args)`` or
    ``(module, args, {"check": bool, "diff": bool, "path": PATH, "register": var, "when": expr})``.
    Module steps may fail (``ignore_errors``) unless ``ignore_errors`` is false: then the play stops
    at the first failure and the results stop there too.
    """
    tasks = []
    for i, step in enumerate(steps):
        if step[0] == "sh":
            tasks.append({"name": "step %d sh" % i, "ansible.builtin.command": {"argv": ["sh", "-c", step[1]]},
                          "changed_when": False})
            continue
        module, args = step[0], step[1]
        opts = step[2] if len(step) > 2 else {}
        task = {"name": "step %d %s" % (i, module), "ironwall.iptables." + module: args,
                "ignore_errors": ignore_errors}
        if opts.get("check"):
            task["check_mode"] = True
        if opts.get("diff"):
            task["diff"] = True
        if opts.get("path"):
            task["environment"] = {"PATH": opts["path"]}
        for key in ("register", "when"):
            if opts.get(key):
                task[key] = opts[key]
        tasks.append(task)
    playbook = json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}], indent=1)
    data = ansible_runs.run_playbook(ns, playbook, backend, diff=diff, env=env)
    results = [res for _name, res in ansible_runs.task_results(data)]
    if ignore_errors:
        assert len(results) == len(steps), data
    return results, data


def comparable(ns, backend):
    return sandbox_net.comparable_save(ns.save(4, backend) + ns.save(6, backend))


def captured(res):
    """A CAPTURE step's output, comparable with ``comparable``."""
    assert res.get("rc") == 0, res
    return sandbox_net.comparable_save(res["stdout"].replace("#--- ipv6\n", ""))


def snapshot_step(files):
    """A shell step printing both families' rulesets, then the saved files (MISSING for one not there)."""
    return "%s; echo '%s'; for f in %s %s; do echo \"== $f\"; cat \"$f\" 2>/dev/null || echo MISSING; done" % (
        CAPTURE, FILES_MARK, files[4], files[6])


def snapshot(res):
    """A snapshot step's output: (the rulesets as ``comparable`` gives them, the files' text)."""
    assert res.get("rc") == 0, res
    rulesets, _sep, text = res["stdout"].partition(FILES_MARK + "\n")
    return sandbox_net.comparable_save(rulesets.replace("#--- ipv6\n", "")), text


def failed(res):
    return res.get("failed") is True or res.get("_status") == "FAILED!"


def lines(text, prefix):
    return [x for x in text.splitlines() if x.startswith(prefix)]


def read(path):
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def state_of(base, ns):
    """The rollback state directory of namespace ns under the IRONWALL_STATE_DIR base."""
    inode = int(ns.run(["stat", "-L", "-c", "%i", "/proc/self/ns/net"]).stdout)
    return os.path.join(str(base), "net-%d" % inode)


def rolled_back(sdir):
    return read(os.path.join(sdir, "rolled-back"))


def _children(pid):
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = (read("/proc/%s/stat" % name) or "").rpartition(")")[2].split()
            if len(fields) > 1 and fields[1] == str(pid):
                out.append(int(name))
    return out


def finish_watchdog(sdir):
    """End the sleep of the watchdog of ``sdir`` (a process this test's run started): it goes on at
    once, as when its deadline passes; then wait until it has exited."""
    pid = int((read(os.path.join(sdir, "watchdog.pid")) or "0").strip() or 0)
    with open("/proc/%d/cmdline" % pid, "rb") as fh:
        assert b"ironwall-rollback" in fh.read(), pid
    sleeper = wait_for(lambda: [c for c in _children(pid) if (read("/proc/%d/comm" % c) or "").strip() == "sleep"])
    assert sleeper, "watchdog %d is not sleeping" % pid
    sandbox_net.kill(sleeper[0])
    assert sandbox_net.wait_pid_gone(pid, BOUND), "watchdog %d still runs" % pid


def wait_for(predicate, timeout=BOUND, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


# --------------------------------------------------------------------------- 1. atomic

# A rule in fb jumping back to fa: a loop the kernel refuses only when the transaction is
# committed (iptables-restore --test passes); IPv6 only, so IPv4 is applied before it fails.
LOOP_IN_IPV6 = rule("loop", 600, chain="fb", source=["2001:db8::9"], jump="fa")


def failing_ruleset(files):
    """One whole firewall, with a whitelist, a rate limit, policies and an exclusive list: every part
    changes something (web-80 goes, MYSQL_WHITELIST and RATELIMIT_SSH come, INPUT becomes DROP)."""
    return {"policies": {"INPUT": "DROP", "FORWARD": "DROP"},
            "rules": BASE_RULES + [rule("icmp", 130, protocol="icmp", jump="ACCEPT", ip_version="ipv4"),
                                   rule("web-443", protocol="tcp", dports=[443], ctstate=["NEW"], jump="ACCEPT")],
            "whitelists": [MYSQL], "ratelimits": [SSH_LIMIT], "exclusive": True,
            "save": {"ipv4": files[4], "ipv6": files[6]}}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failure_in_any_part_leaves_both_families_and_the_files_as_they_were(netns, backend, tmp_path):
    env = env_for(tmp_path)
    files = {4: str(tmp_path / "iptables.rules"), 6: str(tmp_path / "ip6tables.rules")}
    snap = snapshot_step(files)
    keep = {4: str(tmp_path / "before.v4"), 6: str(tmp_path / "before.v6")}
    netns.load(FOREIGN_V4, 4, backend)
    netns.load(FOREIGN_V6, 6, backend)
    for family in (4, 6):  # an admin's chains INPUT -> fa -> fb (see LOOP_IN_IPV6)
        for args in (("-N", "fa"), ("-N", "fb"), ("-A", "INPUT", "-j", "fa"), ("-A", "fa", "-j", "fb")):
            netns.iptables(*args, family=family, backend=backend)
    first = {"rules": BASE_RULES + [rule("web-80", protocol="tcp", dports=[80], jump="ACCEPT")],
             "save": {"ipv4": files[4], "ipv6": files[6]}}
    ruleset = failing_ruleset(files)
    steps = [("iptables_ruleset", first),
             ("sh", "iptables-save > %s && ip6tables-save > %s && %s" % (keep[4], keep[6], snap))]
    cases = list(SHIM_CASES) + ["loop-v6"]
    for case in SHIM_CASES:
        steps += [("iptables_ruleset", ruleset, {"path": shim_dir(tmp_path, case, backend)}), ("sh", snap)]
    # The kernel itself refuses one part: the IPv6 loop, at commit, after IPv4 was applied.
    steps += [("iptables_ruleset", dict(ruleset, rules=ruleset["rules"] + [LOOP_IN_IPV6])), ("sh", snap)]
    # The old way, under the refusals of the whitelist: three tasks, the play stopping at the first
    # failure (the policy task runs only when the whitelist task succeeded); then back to the start.
    for case in ("whitelist-v4", "whitelist-v6"):
        path = shim_dir(tmp_path, case, backend)
        var = case.replace("-", "_")
        steps += [("iptables_rule", {"rules": ruleset["rules"]}, {"path": path}),
                  ("iptables_whitelist", MYSQL, {"path": path, "register": var}),
                  ("iptables_policy", {"policies": ruleset["policies"]}, {"path": path, "when": var + " is succeeded"}),
                  ("sh", "%s && iptables-restore < %s && ip6tables-restore < %s" % (snap, keep[4], keep[6]))]
    # Without a shim the same task goes through: the failures above are the shims' and the loop's.
    steps += [("sh", snap), ("iptables_ruleset", ruleset), ("sh", snap)]
    results, _data = play(netns, backend, steps, env)

    setup, (before, saved) = results[0], snapshot(results[1])
    assert setup.get("changed") is True and not failed(setup), setup
    assert "ironwall:500:rule:web-80" in before and "DOCKER-USER" in before and "f2b-sshd" in before
    assert saved.count("web-80") == 2 and "MISSING" not in saved, saved
    at = 2
    for case in cases:
        res, (after, files_after) = results[at], snapshot(results[at + 1])
        at += 2
        assert failed(res) and res.get("changed") is False, (case, res)
        if case == "whitelist-v4":
            assert "iptables-restore rejected line" in res["msg"] and WL in res["msg"], res["msg"]
        elif case == "whitelist-v6":
            assert "ip6tables-restore rejected line" in res["msg"] and WL in res["msg"], res["msg"]
        else:  # IPv4 was applied, then IPv6 failed: the IPv4 part is taken back
            assert "ip6tables-restore" in res["msg"] and "the ipv4 change was rolled back" in res["msg"], res["msg"]
        assert after == before, "%s left the ruleset changed" % case
        assert files_after == saved, "%s changed a saved file" % case
    for case in ("whitelist-v4", "whitelist-v6"):
        rules_res, wl_res, policy_res = results[at:at + 3]
        after = snapshot(results[at + 3])[0]
        at += 4
        assert rules_res.get("changed") is True and not failed(rules_res), (case, rules_res)
        assert failed(wl_res) and "rejected line" in wl_res["msg"], (case, wl_res)
        assert policy_res.get("skipped") is True, (case, policy_res)
        assert after != before, "the old way: the first task's rules were applied and stay (%s)" % case
        for name in ("loopback", "established", "ssh", "web-443"):
            assert after.count("rule:%s\"" % name) == 2, (case, name, after)  # one line per family
        assert ":%s -\n" % WL not in after and ":INPUT DROP" not in after, (case, after)
    assert snapshot(results[at]) == (before, saved), "the start was put back"
    # The control: the same declaration without a shim applies, saves, and drops web-80.
    good, (final, saved_final) = results[at + 1], snapshot(results[at + 2])
    assert good.get("changed") is True and not failed(good), good
    assert final != before and ":INPUT DROP" in final and ":%s -\n" % WL in final and "web-80" not in final
    assert "f2b-sshd" in final and "DOCKER-USER" in final
    assert saved_final.count(":%s - " % WL) == 2 and "web-80" not in saved_final, saved_final


# --------------------------------------------------------------------------- 4. exclusive, check, diff, staging

def test_exclusive_check_diff_staging_and_a_rollback_that_drops_the_staged_files(netns, tmp_path):
    backend = "nft"
    env = env_for(tmp_path)
    files = {4: str(tmp_path / "iptables.rules"), 6: str(tmp_path / "ip6tables.rules")}
    save = {"ipv4": files[4], "ipv6": files[6]}
    snap = snapshot_step(files)
    netns.load(FOREIGN_V4, 4, backend)
    netns.load(FOREIGN_V6, 6, backend)
    full = {"policies": {"INPUT": "DROP"}, "rules": BASE_RULES, "whitelists": [MYSQL, PG], "save": save}
    smaller = dict(full, whitelists=[MYSQL], exclusive=True)
    staged = dict(smaller, rules=BASE_RULES + [rule("web-443", protocol="tcp", dports=[443], jump="ACCEPT")],
                  rollback_timeout=LONG)
    ftp = {"name": "legacy-ftp", "priority": 400, "protocol": "tcp", "dports": [21], "jump": "ACCEPT"}
    steps = [
        ("iptables_rule", ftp),                                         # 0 a separate task's rule
        ("iptables_ruleset", full),                                     # 1
        ("sh", snap),                                                   # 2
        ("iptables_ruleset", smaller, {"check": True, "diff": True}),   # 3 check mode
        ("sh", snap),                                                   # 4
        ("iptables_ruleset", smaller, {"diff": True}),                  # 5 for real
        ("sh", snap),                                                   # 6
        ("iptables_ruleset", smaller),                                  # 7 again: nothing to do
        ("iptables_ruleset", staged),                                   # 8 armed: the files are staged
        ("sh", snap),                                                   # 9
        ("iptables_confirm", {}),                                       # 10 writes them
        ("sh", snap),                                                   # 11
    ]
    results, _data = play(netns, backend, steps, env)
    for i in (0, 1, 3, 5, 7, 8, 10):
        assert not failed(results[i]), (i, results[i])

    before, files_before = snapshot(results[2])
    assert "ironwall:400:rule:legacy-ftp" in before and ":PG_WHITELIST -\n" in before
    assert "PG_WHITELIST" in files_before and "legacy-ftp" in files_before

    removed = ["rule:legacy-ftp", "whitelist:PG_WHITELIST"]
    check = results[3]
    assert check["changed"] is True and check["removed"] == {"ipv4": removed, "ipv6": removed}, check
    assert check["saved"]["ipv4"]["changed"] is True and check["saved"]["ipv6"]["changed"] is True, check
    assert snapshot(results[4]) == (before, files_before), "check mode changed the ruleset or a file"
    file_diffs = {d["before_header"]: d for d in check["diff"] if d["before_header"] in files.values()}
    assert sorted(file_diffs) == sorted(files.values()), check["diff"]
    for d in file_diffs.values():
        assert "PG_WHITELIST" in d["before"] and "PG_WHITELIST" not in d["after"], d
        assert "legacy-ftp" in d["before"] and "legacy-ftp" not in d["after"], d
        assert WL in d["after"], d

    real = results[5]
    assert real["changed"] is True and real["removed"] == {"ipv4": removed, "ipv6": removed}, real
    assert sorted(d["before_header"] for d in real["diff"] if d["before_header"] in files.values()) == \
        sorted(files.values()), real["diff"]
    after, files_after = snapshot(results[6])
    assert "PG_WHITELIST" not in after and "legacy-ftp" not in after, after
    assert lines(after, "-A INPUT -p tcp -m tcp --dport 3306") and ":%s -\n" % WL in after
    # only the removed lines went: the foreign chains and every other line are as they were
    assert [x for x in before.splitlines() if "PG_WHITELIST" not in x and "legacy-ftp" not in x] == \
        after.splitlines()
    assert "PG_WHITELIST" not in files_after and "legacy-ftp" not in files_after and WL in files_after
    assert "DOCKER" not in files_after and "f2b-" not in files_after and "*nat" not in files_after
    for f in files.values():
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600

    again = results[7]
    assert again["changed"] is False and again["calls"]["restore"] == 0, again
    assert again["removed"] == {"ipv4": [], "ipv6": []}, again

    armed = results[8]
    assert armed["changed"] is True and armed["rollback"]["armed"] is True, armed
    for fam in ("ipv4", "ipv6"):
        assert armed["saved"][fam]["changed"] is True and armed["saved"][fam].get("staged") is True, armed
    staged_rules, staged_files = snapshot(results[9])
    assert "web-443" in staged_rules
    assert staged_files == files_after, "a staged file was written before the confirmation"
    ok = results[10]
    assert ok["changed"] is True and ok["state"] == "confirmed", ok
    assert sorted(ok["saved"]) == sorted(files.values()), ok
    confirmed_files = snapshot(results[11])[1]
    assert confirmed_files.count("web-443") == 2, confirmed_files
    confirmed = [read(files[4]), read(files[6])]  # the play ended with the confirmation
    sdir = state_of(tmp_path / "state", netns)
    # The confirmed series' watchdog wakes (its sleep ended here), finds nothing pending and leaves.
    kept = comparable(netns, backend)
    finish_watchdog(sdir)
    assert comparable(netns, backend) == kept and rolled_back(sdir) is None

    # A rollback instead of a confirmation: the staged files are never written.
    later = dict(staged, rules=staged["rules"] + [rule("alt-8443", protocol="tcp", dports=[8443], jump="ACCEPT")])
    res = ansible_runs.run_module(netns, "iptables_ruleset", later, backend, env=env)
    assert res["_status"] == "CHANGED" and res["saved"]["ipv4"].get("staged") is True, res
    assert "alt-8443" in comparable(netns, backend)
    finish_watchdog(sdir)
    assert rolled_back(sdir), "the watchdog did not roll back"
    assert comparable(netns, backend) == kept, "the rollback did not restore the confirmed ruleset"
    assert "alt-8443" not in read(files[4]) and "alt-8443" not in read(files[6])
    assert [read(files[4]), read(files[6])] == confirmed
    assert not [n for n in os.listdir(sdir) if n.startswith("stage-")], os.listdir(sdir)
    late = ansible_runs.run_module(netns, "iptables_confirm", {}, backend, env=env)
    assert late["_status"] == "FAILED!" and "too late" in late["msg"] and not late.get("saved"), late
    assert "alt-8443" not in read(files[4])


# A restore that takes longer than the rollback deadline (waiting for the xtables lock, a slow host):
# here the module's own ip6tables-restore call waits until the watchdog has rolled back (the event,
# bounded: a module whose watchdog waits for the run would never let it happen), then goes on.
SLOW_SHIM = """#!/bin/sh
# ironwall test shim: the module's real (non --test) ip6tables-restore starts only once the rollback
# deadline has passed: the watchdog has rolled back, or waits for the run's lock (its `flock` child).
tmp=$(mktemp)
cat > "$tmp"
testing=no
for a in "$@"; do [ "$a" = --test ] && testing=yes; done
if [ $testing = no ] && ! grep -q ironwall-rollback /proc/$PPID/cmdline; then
    i=0
    while [ -z "$(ls {state}/net-*/rolled-back 2>/dev/null)" ] && [ $i -lt {polls} ]; do
        pid=$(cat {state}/net-*/watchdog.pid 2>/dev/null)
        [ -n "$pid" ] && pgrep -P "$pid" -x flock >/dev/null && break
        sleep 0.1; i=$((i+1))
    done
fi
{real} "$@" < "$tmp"
rc=$?
rm -f "$tmp"
exit $rc
"""


def test_a_rollback_that_fires_during_the_run_stands_and_nothing_is_saved(netns, tmp_path):
    """rollback_timeout shorter than the run: the watchdog rolls back while the module still applies.
    What iptables_confirm then reports ("the watchdog undid the change") must be true: the ruleset
    is as before the run, and the unconfirmed firewall is not written to the files."""
    backend = "nft"
    env = env_for(tmp_path)
    files = {4: str(tmp_path / "iptables.rules"), 6: str(tmp_path / "ip6tables.rules")}
    shim = tmp_path / "shim-slow"
    shim.mkdir()
    (shim / "ip6tables-restore").write_text(SLOW_SHIM.format(
        state=tmp_path / "state", polls=BOUND * 10 // 4, real=sandbox_net.family_bin(6, backend, "restore")))
    (shim / "ip6tables-restore").chmod(0o755)
    env["PATH"] = os.pathsep.join([str(shim), sandbox_net.backend_bin_dir(backend), os.environ.get("PATH", "")])
    netns.load(FOREIGN_V4, 4, backend)
    netns.load(FOREIGN_V6, 6, backend)
    before = comparable(netns, backend)
    args = {"rules": BASE_RULES, "whitelists": [MYSQL], "save": {"ipv4": files[4], "ipv6": files[6]},
            "rollback_timeout": 1}
    res = ansible_runs.run_module(netns, "iptables_ruleset", args, backend, env=env)
    sdir = state_of(tmp_path / "state", netns)
    assert rolled_back(sdir), ("the watchdog did not roll back", res)
    pid = (read(os.path.join(sdir, "watchdog.pid")) or "").strip()
    assert not pid or sandbox_net.wait_pid_gone(int(pid), BOUND)
    late = ansible_runs.run_module(netns, "iptables_confirm", {}, backend, env=env)
    assert late["_status"] == "FAILED!" and "undid the change" in late["msg"], late
    assert comparable(netns, backend) == before, (
        "iptables_confirm says the change was undone, but it is in place (module result: %s)" % res)
    assert read(files[4]) is None and read(files[6]) is None, (
        "an unconfirmed, rolled-back firewall was saved (module result: %s)" % res)


# --------------------------------------------------------------------------- 5. errors

GOOD = {"policies": {"INPUT": "DROP"}, "rules": BASE_RULES, "whitelists": [MYSQL], "ratelimits": [SSH_LIMIT]}


def bad(**override):
    out = dict(GOOD)
    out.update(override)
    return out


def error_cases(tmp):
    """(the option the message must start with, the task's arguments, a word the message must hold)"""
    never = {"ipv4": str(tmp / "never.v4"), "ipv6": str(tmp / "never.v6")}  # refused before anything runs
    return [
        ("whitelists[1].ports", bad(whitelists=[MYSQL, dict(PG, ports=[70000])]), "70000"),
        ("ratelimits[0].hitcount", bad(ratelimits=[dict(SSH_LIMIT, hitcount=100000)]), "100000"),
        ("whitelists[1].name", bad(whitelists=[MYSQL, dict(PG, name=WL)]), "duplicate"),
        ("ratelimits[0].chain_name", bad(whitelists=[dict(MYSQL, name="RATELIMIT_SSH")]), "whitelists[0].name"),
        ("whitelists[0].name", bad(whitelists=[dict(MYSQL, name="f2b-sshd")]), "'f2b-sshd'"),
        ("ratelimits[0].chain_name", bad(ratelimits=[dict(SSH_LIMIT, chain_name="DOCKER-USER")]), "'DOCKER-USER'"),
        ("whitelists[0].bogus", bad(whitelists=[dict(MYSQL, bogus=1)]), "unknown option"),
        ("whitelists[0].ip_version", bad(ip_version="ipv4", whitelists=[dict(MYSQL, ip_version="ipv6")]), "outside"),
        ("rules[3].dports", bad(rules=BASE_RULES + [rule("x", protocol="tcp", dports=["99999"], jump="ACCEPT")]),
         "99999"),
        ("save.ipv4", bad(save={"ipv4": "etc/iptables.rules"}), "absolute"),
        ("save.ipv6", bad(ip_version="ipv4", whitelists=[dict(MYSQL, sources=["198.51.100.25"])], save=never),
         "ip_version"),
        ("purge", dict((k, v) for k, v in bad(purge=True).items() if k != "policies"), "policies"),
    ]


def test_bad_items_fail_naming_the_option_and_change_nothing(netns, tmp_path):
    backend = "nft"  # validation is the backend's business only for the foreign chains, read the same way
    env = env_for(tmp_path)
    netns.load(FOREIGN_V4, 4, backend)
    netns.load(FOREIGN_V6, 6, backend)
    earlier = {"rules": [rule("web-80", protocol="tcp", dports=[80], jump="ACCEPT")]}
    steps = [("iptables_rule", earlier), ("sh", CAPTURE)]
    cases = error_cases(tmp_path)
    steps += [("iptables_ruleset", args) for _option, args, _word in cases]
    steps += [("sh", CAPTURE), ("iptables_ruleset", GOOD, {"check": True})]
    results, _data = play(netns, backend, steps, env)
    assert results[0].get("changed") is True, results[0]
    before = captured(results[1])
    for (option, _args, word), res in zip(cases, results[2:]):
        assert failed(res) and res.get("changed") is False, (option, res)
        assert res.get("msg", "").startswith(option + ":") and word in res["msg"], (option, word, res.get("msg"))
    after = captured(results[-2])
    assert after == before, "a refused task changed the ruleset"
    assert "-A f2b-sshd -s 203.0.113.9/32 -j REJECT" in after and "-A DOCKER-USER -j RETURN" in after
    assert not os.path.exists(str(tmp_path / "never.v4"))
    # The declaration the cases were made from is valid: they fail for their one bad item.
    control = results[-1]
    assert not failed(control) and control["changed"] is True, control
