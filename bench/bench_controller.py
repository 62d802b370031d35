#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller cost per host: the firewall role against a play of as many ``ping`` tasks, and what
pipelining and SSH compression cost.

One fleet of sandbox hosts (tools/fleet.py, real SSH through the switch namespace), size from
BENCH_CONTROLLER_SIZES (default "10 30"), every run an ``ansible-playbook`` on the whole fleet
with forks = its size, ControlPersist, no fact gathering. Controller CPU is the RUSAGE_CHILDREN
delta of the run (ansible-playbook, its workers and the ssh clients it waited for) divided by
the hosts. The rows, each the median of BENCH_CONTROLLER_REPEAT (default 3) runs, interleaved
so that load drifts hit all of them:

* ``ping xK``: a play of as many ``ansible.builtin.ping`` tasks as the role's play runs per
  host (K, counted from the recap of the first converge: the argument spec validation, the plan,
  the two checks, the ruleset task and the skipped forwarding include) - what the same number of
  tasks costs Ansible itself; the target (role <= 1.3x) is against this play;
* ``ping x1``: one ping task, as many module runs as a rerun of the role (informational);
* ``role rerun``: the firewall role (bench/window/role.yml, deadline 120 s) when nothing
  changes: one module run per host;
* ``ping x2``: two ping tasks, as many module runs as a converge (informational);
* ``ping xK, reconnect before the last``: ping xK with a ``meta: reset_connection`` before its last
  task, the new SSH login a converge makes to confirm (informational);
* ``role converge``: the role when every run changes the ruleset (one more port each run): the
  ruleset module, then the reconnect and iptables_confirm of its ``confirm``, two module runs;
  held to the target against ``ping xK, reconnect before the last`` (the same tasks and logins);
* ``role converge, no rollback``: the same change with the role's default
  ``firewall_rollback_timeout: 0``: one module run, no new login; held to the target against ping xK;
* ``role rerun, no pipelining`` (ANSIBLE_PIPELINING=0) and ``role rerun, no compression``
  (ssh_args without ``-C``): the same rerun with one setting changed.

Prints a table (wall time, controller CPU per host), the ratios role / ping of the same number
of tasks against the target 1.3x, and role / ping of the same number of module runs. Needs root (network namespaces); nothing
touches the machine's own firewall.

    python3 bench/bench_controller.py
    BENCH_CONTROLLER_SIZES=10 BENCH_CONTROLLER_REPEAT=5 python3 bench/bench_controller.py
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))

import fleet  # noqa: E402
from ansible_runs import ansible_bin, checkout_env, play_recap, timed_run  # noqa: E402

ROLE = os.path.join(HERE, "window", "role.yml")
SIZES = tuple(int(n) for n in os.environ.get("BENCH_CONTROLLER_SIZES", "10 30").split())
REPEAT = int(os.environ.get("BENCH_CONTROLLER_REPEAT", "3"))
TARGET = 1.3
SSH_ARGS = "-C -o ControlMaster=auto -o ControlPersist=600s"
PING = """---
- name: Ping
  hosts: all
  gather_facts: false
  tasks:
%s
"""


def ping_book(tmp, count, reconnect=False):
    """A play of ``count`` ping tasks; with ``reconnect`` a meta reset_connection before the last one
    (the new SSH login the role's confirmation makes)."""
    path = os.path.join(tmp, "ping%d%s.yml" % (count, "r" if reconnect else ""))
    tasks = ["    - name: Ping %d\n      ansible.builtin.ping:" % (i + 1) for i in range(count)]
    if reconnect:
        tasks.insert(-1, "    - name: Reconnect\n      ansible.builtin.meta: reset_connection")
    with open(path, "w") as fh:
        fh.write(PING % "\n".join(tasks))
    return path


class Row:
    def __init__(self, key, label, book, settings=None, converge=False, timeout=120):
        self.key, self.label, self.book = key, label, book
        self.settings = settings or {}
        self.converge = converge
        self.timeout = timeout  # firewall_rollback_timeout of the role's rows (0: the role's default, no confirm)
        self.runs = []   # (seconds, cpu per host)


def run(row, inventory, size, port):
    env = checkout_env(ANSIBLE_FORKS=str(size), ANSIBLE_PIPELINING="1", ANSIBLE_SSH_ARGS=SSH_ARGS,
                       ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_GATHERING="explicit")
    env.update(row.settings)
    argv = [ansible_bin("ansible-playbook"), "-i", inventory, row.book, "-v"]
    if row.book == ROLE:
        argv += ["-e", json.dumps({"bench_window_timeout": row.timeout, "bench_window_port": port})]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc, seconds = timed_run(argv, env=env, timeout=3600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    recap = play_recap(proc.stdout)
    bad = [h for h, c in recap.items() if c.get("failed") or c.get("unreachable")]
    if proc.returncode != 0 or bad or len(recap) != size:
        print(proc.stdout[-5000:], proc.stderr[-2000:], file=sys.stderr)
        raise SystemExit("bench_controller: %s failed (rc=%d)" % (row.label, proc.returncode))
    changed = sum(c.get("changed", 0) for c in recap.values())
    if row.book == ROLE and bool(changed) != row.converge:
        print(proc.stdout[-6000:], file=sys.stderr)
        raise SystemExit("bench_controller: %s reported %d changes" % (row.label, changed))
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    row.runs.append((seconds, cpu / size))
    return recap


def median(row, i):
    return statistics.median(r[i] for r in row.runs)


def main():
    if os.geteuid() != 0:
        raise SystemExit("bench_controller: needs root (network namespaces)")
    out = []
    for size in SIZES:
        t0 = time.monotonic()
        with fleet.Fleet(size, listeners=False, sentinels=False) as hosts, \
                tempfile.TemporaryDirectory(prefix="bench-controller-") as tmp:
            inventory = hosts.write_inventory(os.path.join(tmp, "inventory.yml"))
            print("bench_controller: %d hosts up in %.1f s; forks %d; %d CPUs"
                  % (size, time.monotonic() - t0, size, os.cpu_count() or 0), flush=True)
            warm = Row("warm", "first converge (untimed)", ROLE, converge=True)
            recap = run(warm, inventory, size, 20000)  # the firewall in place and the SSH masters open
            counts = list(recap.values())[0]
            tasks = sum(counts.get(k, 0) for k in ("ok", "skipped", "failed"))  # ok counts the changed too
            rows = [
                Row("pingk", "ping x%d (as many tasks)" % tasks, ping_book(tmp, tasks)),
                Row("rerun", "role rerun", ROLE),
                Row("ping1", "ping x1 (as many module runs)", ping_book(tmp, 1)),
                Row("converge", "role converge", ROLE, converge=True),
                Row("converge0", "role converge, no rollback", ROLE, converge=True, timeout=0),
                Row("ping2", "ping x2", ping_book(tmp, 2)),
                Row("pingkr", "ping x%d, reconnect before the last" % tasks, ping_book(tmp, tasks, reconnect=True)),
                Row("nopipe", "role rerun, no pipelining", ROLE, {"ANSIBLE_PIPELINING": "0"}),
                Row("nocomp", "role rerun, no compression", ROLE,
                    {"ANSIBLE_SSH_ARGS": SSH_ARGS.replace("-C ", "")}),
            ]
            print("the role's play runs %d tasks per host (%s)" % (tasks, counts), flush=True)
            port = 20000  # the port the last converge opened: a rerun passes it again
            for _rep in range(REPEAT):
                for row in rows:
                    if row.converge:
                        port += 1
                    run(row, inventory, size, port)
                    print("  %3d hosts %-28s %6.1f s  %5.3f s CPU/host" % ((size, row.label) + row.runs[-1]),
                          flush=True)
        by = dict((r.key, r) for r in rows)
        out.append("")
        out.append("%d hosts (median of %d): | wall | controller CPU per host |" % (size, REPEAT))
        for row in rows:
            out.append("  %-28s %6.1f s  %6.3f s" % (row.label, median(row, 0), median(row, 1)))
        for ours, ping, target in (("rerun", "pingk", True), ("converge0", "pingk", True),
                                   ("converge", "pingkr", True), ("converge", "pingk", False), ("rerun", "ping1", False),
                                   ("converge", "ping2", False)):
            ratio = median(by[ours], 1) / median(by[ping], 1)
            out.append("  %s / %s, CPU per host: %.2fx%s"
                       % (by[ours].label, by[ping].label, ratio,
                          (" (target <= %.1fx) %s" % (TARGET, "met" if ratio <= TARGET else "MISS")) if target else ""))
        for key in ("nopipe", "nocomp"):
            out.append("  %s / role rerun: wall %.2fx, CPU per host %.2fx"
                       % (by[key].label, median(by[key], 0) / median(by["rerun"], 0),
                          median(by[key], 1) / median(by["rerun"], 1)))
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
