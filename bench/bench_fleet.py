#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fleet benchmark: converge time of the firewall role on 1, 10 and 30 hosts in one run.

Starts 1 + 10 + 30 fresh sandbox hosts at once (tools/fleet.py; each host is converged
exactly once, from an empty ruleset), then runs the fleet scenario's converge playbook
(extensions/molecule/fleet/converge.yml: the classic firewall through
ironwall.iptables.firewall, rollback deadline and confirmation over a new SSH connection)
on each group with ``--limit``, over real SSH with forks >= 30, pipelining and
ControlPersist. A second, no-change run of each group is timed too.

The anchor is the 1-host converge: the table prints each size's ratio to it. Target:
30 hosts in under 3 times the 1-host time. Hosts are reached through the switch
namespace; nothing touches the machine's own firewall.

    python3 bench/bench_fleet.py            # sizes 1 10 30
    BENCH_FLEET_SIZES="1 10 50" python3 bench/bench_fleet.py
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))

import fleet  # noqa: E402
from ansible_runs import ansible_bin, checkout_env, play_recap, timed_run  # noqa: E402
from sandbox_hosts import host_names  # noqa: E402

PLAYBOOK = os.path.join(ROOT, "extensions", "molecule", "fleet", "converge.yml")
SIZES = tuple(int(n) for n in os.environ.get("BENCH_FLEET_SIZES", "1 10 30").split())
TARGET_RATIO = 3.0


def ansible_env(forks):
    return checkout_env(
        ANSIBLE_FORKS=str(forks),
        ANSIBLE_PIPELINING="1",
        ANSIBLE_SSH_ARGS="-C -o ControlMaster=auto -o ControlPersist=600s",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        ANSIBLE_GATHERING="explicit",
    )


def converge(inventory, group, forks):
    """Run the converge playbook on one group; return (seconds, controller CPU seconds, {host: recap counts})."""
    argv = [ansible_bin("ansible-playbook"), "-i", inventory, "--limit", group, PLAYBOOK]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc, elapsed = timed_run(argv, env=ansible_env(forks))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime)
    recap = play_recap(proc.stdout)
    bad = [host for host, counts in recap.items() if counts.get("unreachable") or counts.get("failed")]
    if proc.returncode != 0 or bad:
        print(proc.stdout[-6000:])
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit("converge of %s failed (rc=%d)" % (group, proc.returncode))
    return elapsed, cpu, recap


def changed_total(recap):
    return sum(counts.get("changed", 0) for counts in recap.values())


def main():
    if os.geteuid() != 0:
        raise SystemExit("bench_fleet: needs root (network namespaces)")
    total = sum(SIZES)
    forks = max(30, *SIZES)
    groups, names, first = {}, host_names("fw", total, width=2), 0
    for size in SIZES:
        groups["bench%d" % size] = names[first:first + size]
        first += size
    t0 = time.monotonic()
    with fleet.Fleet(total, listeners=False, sentinels=False) as hosts, \
            tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        started = time.monotonic() - t0
        inventory = hosts.write_inventory(os.path.join(tmp, "inventory.yml"), groups=groups)
        print("%d sandbox hosts up in %.1f s; forks=%d, pipelining, ControlPersist; %d CPUs"
              % (total, started, forks, os.cpu_count() or 0), flush=True)
        rows = []
        for size in SIZES:
            group = "bench%d" % size
            first_s, cpu, recap = converge(inventory, group, forks)
            changed = changed_total(recap)
            again = converge(inventory, group, forks)
            again_s, recap2 = again[0], again[2]
            if changed_total(recap2):
                raise SystemExit("second converge of %s changed something: %s" % (group, recap2))
            rows.append((size, first_s, changed, again_s, cpu))
            print("  %2d hosts: converge %.1f s (%d changes), no-change rerun %.1f s"
                  % (size, first_s, changed, again_s), flush=True)
    anchor = rows[0][1]
    anchor_again = rows[0][3]
    print()
    # controller CPU: ansible-playbook, its workers and the ssh clients (the hosts' side,
    # module runs in the namespaces, is not counted); the machine has os.cpu_count() CPUs.
    print("%-6s %12s %8s %14s %8s %10s %14s" % ("hosts", "converge s", "ratio", "no-change s", "ratio", "s/host",
                                                "ctl CPU s"))
    for size, first_s, changed, again_s, cpu in rows:
        print("%-6d %12.1f %7.2fx %14.1f %7.2fx %10.2f %14.1f"
              % (size, first_s, first_s / anchor, again_s, again_s / anchor_again, first_s / size, cpu))
    largest = rows[-1]
    ratio = largest[1] / anchor
    verdict = "met" if ratio < TARGET_RATIO else "MISSED"
    print("\ntarget: %d hosts converge in under %.0fx the 1-host time: %.2fx, %s"
          % (largest[0], TARGET_RATIO, ratio, verdict))
    return 0


if __name__ == "__main__":
    sys.exit(main())
