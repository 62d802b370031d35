#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Rollback window: seconds between arming a host's rollback and confirming it, per strategy and batch.

With ``firewall_rollback_timeout`` the role applies the firewall (the watchdog is armed on the
host), reconnects and confirms. Whatever happens on the controller between the two counts
against the deadline: when the reconnect and the confirmation were tasks of their own, with the
linear strategy every host waited at each task for every other host of the batch, so the window
grew with the batch, and a host whose confirmation came after the deadline was rolled back
although it was healthy. The role now confirms in the ruleset task (its ``confirm``).

One fleet of sandbox hosts (tools/fleet.py, real SSH through the switch namespace) runs
bench/window/role.yml, the role in one batch on the first N hosts (N from BENCH_WINDOW_SIZES,
default "10 30 60"), once per variant: this checkout with each strategy of
BENCH_WINDOW_STRATEGIES (default "linear", set through ANSIBLE_STRATEGY), and, with
BENCH_WINDOW_BEFORE_REF=<git ref>, that commit of this repository (a temporary git worktree)
with the linear strategy first, for a before/after comparison in the same run (b090685 is the
last commit with the confirmation as separate tasks). Forks = N (BENCH_WINDOW_FORKS overrides),
pipelining and ControlPersist as in bench_role.py. Every run opens one more port, so every run
changes the ruleset, arms a rollback (deadline BENCH_WINDOW_TIMEOUT, default 600 s: long enough
that nothing is rolled back while measuring) and confirms it. The window of each host is
iptables_confirm's ``waited``, measured on the host: from the arming of its rollback to the
confirmation. Printed per run: max, median and min window, run time.

Then the deadline check: the last variant at the largest size, with a deadline of
BENCH_WINDOW_DEADLINE (default 60) s: no host may be rolled back (every confirmation
``confirmed``) and the longest window must stay at most half the deadline.

    python3 bench/bench_window.py
    BENCH_WINDOW_SIZES="10 30 60" BENCH_WINDOW_BEFORE_REF=b090685 python3 bench/bench_window.py

Exit status 0 even when a target is missed (MISS is printed); 1 when a run fails otherwise.
Needs root (network namespaces); nothing touches the machine's own firewall.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))

import fleet  # noqa: E402
from ansible_runs import ansible_bin, checkout_env, timed_run  # noqa: E402
from sandbox_hosts import host_names  # noqa: E402

PLAYBOOK = os.path.join(HERE, "window", "role.yml")
SIZES = tuple(int(n) for n in os.environ.get("BENCH_WINDOW_SIZES", "10 30 60").split())
STRATEGIES = tuple(os.environ.get("BENCH_WINDOW_STRATEGIES", "linear").split())
BEFORE_REF = os.environ.get("BENCH_WINDOW_BEFORE_REF", "")
TIMEOUT = int(os.environ.get("BENCH_WINDOW_TIMEOUT", "600"))
DEADLINE = int(os.environ.get("BENCH_WINDOW_DEADLINE", "60"))
FORKS = os.environ.get("BENCH_WINDOW_FORKS")
CONFIRM_ACTION = "ironwall.iptables.iptables_confirm"


class Window:
    """One run: ``strategy`` is the variant's label (the code and the strategy)."""

    def __init__(self, strategy, size, forks, timeout, seconds, waited, states, failed):
        self.strategy, self.size, self.forks, self.timeout = strategy, size, forks, timeout
        self.seconds = seconds
        self.waited = waited    # {host: seconds}
        self.states = states    # {host: confirm state}
        self.failed = failed    # {host: msg}

    def line(self):
        w = sorted(self.waited.values())
        text = ("  %-22s %3d hosts forks %3d deadline %4d s: window max %6.1f s  median %6.1f s  min %5.1f s"
                "  (%.0f%% of the deadline), run %6.1f s"
                % (self.strategy, self.size, self.forks, self.timeout, w[-1] if w else float("nan"),
                   statistics.median(w) if w else float("nan"), w[0] if w else float("nan"),
                   100.0 * (w[-1] if w else 0) / self.timeout, self.seconds))
        if self.failed:
            text += "  %d host(s) FAILED (%s)" % (len(self.failed), sorted(set(self.failed.values()))[0][:120])
        return text


def env(strategy, forks, collections):
    return checkout_env(
        ANSIBLE_COLLECTIONS_PATH=collections,
        ANSIBLE_FORKS=str(forks),
        ANSIBLE_STRATEGY=strategy,
        ANSIBLE_PIPELINING="1",
        ANSIBLE_SSH_ARGS="-C -o ControlMaster=auto -o ControlPersist=600s",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        ANSIBLE_GATHERING="explicit",
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
    )


def windows(data):
    """({host: waited}, {host: state}, {host: failure msg}) from the json callback's output."""
    waited, states, failed = {}, {}, {}
    for play in data.get("plays", []):
        for task in play["tasks"]:
            for host, res in task["hosts"].items():
                if res.get("failed") or res.get("unreachable"):
                    failed[host] = "%s: %s" % (task["task"]["name"], res.get("msg", ""))
                # iptables_confirm as a task of its own, or run by iptables_ruleset's confirm
                for got in (res, res.get("confirm") or {}):
                    if got.get("action") == CONFIRM_ACTION or "waited" in got:
                        states[host] = got.get("state")
                        if "waited" in got:
                            waited[host] = got["waited"]
    return waited, states, failed


def run(inventory, group, variant, size, forks, timeout, port):
    label, collections, strategy = variant
    argv = [ansible_bin("ansible-playbook"), "-i", inventory, "--limit", group, PLAYBOOK,
            "-e", json.dumps({"bench_window_timeout": timeout, "bench_window_port": port})]
    proc, seconds = timed_run(argv, env=env(strategy, forks, collections), timeout=7200)
    try:
        data = json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError:
        print(proc.stdout[-4000:], proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit("bench_window: %s on %d hosts printed no JSON (rc=%d)" % (strategy, size, proc.returncode))
    waited, states, failed = windows(data)
    missing = size - len(waited) - len(failed)
    if missing > 0 and not failed:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit("bench_window: %s on %d hosts: %d confirmation(s) missing" % (strategy, size, missing))
    return Window(label, size, forks, timeout, seconds, waited, states, failed)


def before_collections(tmp):
    """A collections path where ironwall.iptables is BEFORE_REF of this repository (a git worktree)."""
    tree = os.path.join(tmp, "before")
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", "-f", tree, BEFORE_REF],
                   check=True, capture_output=True)
    base = os.path.join(tmp, "before-collections")
    os.makedirs(os.path.join(base, "ansible_collections", "ironwall"))
    os.symlink(tree, os.path.join(base, "ansible_collections", "ironwall", "iptables"))
    return base, tree


def main():
    if os.geteuid() != 0:
        raise SystemExit("bench_window: needs root (network namespaces)")
    largest = max(SIZES)
    names = host_names("fw", largest, width=2)
    groups = dict(("window%d" % size, names[:size]) for size in SIZES)
    t0 = time.monotonic()
    results = []
    port = 20000
    tree = None
    with fleet.Fleet(largest, listeners=False, sentinels=False) as hosts, \
            tempfile.TemporaryDirectory(prefix="bench-window-") as tmp:
        variants = [("%s %s" % ("now", s), checkout_env()["ANSIBLE_COLLECTIONS_PATH"], s) for s in STRATEGIES]
        try:
            if BEFORE_REF:
                before, tree = before_collections(tmp)
                variants.insert(0, ("%s linear" % BEFORE_REF[:10], before, "linear"))
            inventory = hosts.write_inventory(os.path.join(tmp, "inventory.yml"), groups=groups)
            print("bench_window: %d sandbox hosts up in %.1f s; %d CPUs; %s; deadline while measuring %d s"
                  % (largest, time.monotonic() - t0, os.cpu_count() or 0, ", ".join(v[0] for v in variants), TIMEOUT),
                  flush=True)
            for size in SIZES:
                for variant in variants:
                    port += 1
                    window = run(inventory, "window%d" % size, variant, size, int(FORKS or size), TIMEOUT, port)
                    results.append(window)
                    print(window.line(), flush=True)
            port += 1
            check = run(inventory, "window%d" % largest, variants[-1], largest, int(FORKS or largest), DEADLINE, port)
            print(check.line(), flush=True)
        finally:
            if tree:
                subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", tree], check=False,
                               capture_output=True)
    print()
    print("| window (max / median) | %s |" % " | ".join("%d hosts" % s for s in SIZES))
    print("| --- |%s" % (" --- |" * len(SIZES)))
    for label, _c, _s in variants:
        cells = []
        for size in SIZES:
            w = [r for r in results if r.strategy == label and r.size == size][0]
            cells.append("%.1f s / %.1f s" % (max(w.waited.values()), statistics.median(w.waited.values()))
                         if w.waited else "failed")
        print("| %s | %s |" % (label, " | ".join(cells)))
    rolled_back = [h for h, s in check.states.items() if s != "confirmed"] + sorted(check.failed)
    longest = max(check.waited.values()) if check.waited else float("inf")
    print("\ndeadline check, %s, %d hosts, deadline %d s: %d confirmed, %d rolled back or failed; longest window "
          "%.1f s = %.2f of the deadline (target <= 0.5): %s"
          % (variants[-1][0], largest, DEADLINE, len([s for s in check.states.values() if s == "confirmed"]),
             len(set(rolled_back)), longest, longest / DEADLINE,
             "met" if not rolled_back and longest <= DEADLINE / 2.0 else "MISS"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
