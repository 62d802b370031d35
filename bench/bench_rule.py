#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_rule benchmark: 200 rules, one ``rules:`` task versus 200 ansible.builtin.iptables tasks.

Same throwaway namespace (real iptables-nft unless BENCH_BACKEND=legacy), same run, both
through ansible-playbook so both pay the same start-up:
1. ironwall.iptables.iptables_rule with ``rules:`` (200 items) on an empty INPUT (best of
   BENCH_REPEAT=3 runs, each from an empty INPUT: the run is short, so it is the one that
   other load on the machine distorts);
2. INPUT flushed, then the same 200 rules as 200 ansible.builtin.iptables tasks;
3. no-change reruns of (1) after putting its rules back, which must run no iptables-restore.
Every iptables binary runs through a counting shim, so the table shows how many processes
each approach started. Rule content addresses come from 198.18.0.0/15 (benchmark range).
Exit status 1 if the rerun changed anything or ran a restore, or the ratio misses the target.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import harness  # noqa: E402
import sandbox  # noqa: E402

N_RULES = int(os.environ.get("BENCH_RULES", "200"))
BACKEND = os.environ.get("BENCH_BACKEND", "nft")
TARGET_RATIO = 50.0
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
BINARIES = ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore")


def address(i):
    return "198.18.%d.%d" % divmod(i + 1, 256)


def rule_items(n):
    return [{"name": "bench-%03d" % i, "protocol": "tcp", "source": [address(i)], "dports": [10000 + i],
             "jump": "ACCEPT"} for i in range(n)]


def ironwall_play(n):
    task = {"name": "rules", "ironwall.iptables.iptables_rule": {"ip_version": "ipv4", "rules": rule_items(n)}}
    return json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [task]}])


def builtin_play(n):
    tasks = [{"name": "rule %d" % i, "ansible.builtin.iptables": {
        "chain": "INPUT", "protocol": "tcp", "source": address(i), "destination_port": str(10000 + i),
        "jump": "ACCEPT", "ip_version": "ipv4", "comment": "bench-%03d" % i}} for i in range(n)]
    return json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}])


def make_shims(directory, log):
    """Wrappers that log each call, then run the backend's real binary."""
    real = sandbox.backend_bin_dir(BACKEND)
    for name in BINARIES:
        path = os.path.join(directory, name)
        with open(path, "w") as fh:
            fh.write('#!/bin/sh\necho "%s $*" >> "%s"\nexec "%s/%s" "$@"\n' % (name, log, real, name))
        os.chmod(path, 0o755)


def count_calls(log):
    counts = dict((b, 0) for b in BINARIES)
    if os.path.exists(log):
        with open(log) as fh:
            for line in fh:
                counts[line.split(" ", 1)[0]] += 1
        os.unlink(log)
    return counts


def play(ns, text, shim_dir):
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as fh:
        fh.write(text)
        path = fh.name
    env = harness.ansible_env(BACKEND)
    env["PATH"] = shim_dir + os.pathsep + env["PATH"]
    argv = ["ip", "netns", "exec", ns.name, harness._bin("ansible-playbook"), "-i", "localhost,", "-c", "local",
            "-e", "ansible_python_interpreter=" + harness.TARGET_PYTHON, path]
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=3600, check=False)
    finally:
        os.unlink(path)
    elapsed = time.monotonic() - start
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise SystemExit("ansible-playbook printed no JSON (rc=%d)\n%s\n%s"
                         % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    results = [r for _name, r in harness.task_results(data)]
    failed = [r for r in results if r.get("failed")]
    if proc.returncode != 0 or failed:
        raise SystemExit("playbook failed: %s" % (failed[:1] or proc.stderr[-2000:]))
    return elapsed, results


def input_rules(ns):
    return [line for line in ns.save(family=4, backend=BACKEND).splitlines() if line.startswith("-A INPUT ")]


def main():
    tmp = tempfile.mkdtemp(prefix="iw-bench-rule-")
    log = os.path.join(tmp, "calls.log")
    make_shims(tmp, log)
    rows = []
    try:
        with sandbox.Netns(prefix="iwt") as ns:
            # The one-task run is short, so machine load shows in it: best of REPEAT, each from empty.
            samples_iw = []
            for _i in range(REPEAT):
                ns.iptables("-F", "INPUT", backend=BACKEND)
                t, res = play(ns, ironwall_play(N_RULES), tmp)
                calls_iw = count_calls(log)
                assert res[0]["changed"] is True
                samples_iw.append(t)
            t_iw = min(samples_iw)
            n_iw = len(input_rules(ns))
            rows.append(("iptables_rule, 1 task (rules:)", t_iw, n_iw, res[0]["calls"], calls_iw, True))

            ns.iptables("-F", "INPUT", backend=BACKEND)
            t_bi, res = play(ns, builtin_play(N_RULES), tmp)
            calls_bi = count_calls(log)
            n_bi = len(input_rules(ns))
            rows.append(("ansible.builtin.iptables, %d tasks" % N_RULES, t_bi, n_bi, None, calls_bi,
                         sum(1 for r in res if r.get("changed"))))

            ns.iptables("-F", "INPUT", backend=BACKEND)
            play(ns, ironwall_play(N_RULES), tmp)
            count_calls(log)
            samples_re = []
            for _i in range(REPEAT):
                t, res = play(ns, ironwall_play(N_RULES), tmp)
                calls_re = count_calls(log)
                samples_re.append(t)
                if res[0]["changed"] or calls_re["iptables-restore"]:
                    break
            t_re = min(samples_re)
            rows.append(("iptables_rule rerun, no change", t_re, len(input_rules(ns)), res[0]["calls"], calls_re,
                         res[0]["changed"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    ratio = t_bi / t_iw
    print()
    print("bench_rule: %d rules into INPUT (IPv4), iptables-%s, one namespace, one run" % (N_RULES, BACKEND))
    header = ("approach", "wall s", "rules", "save", "restore", "iptables", "changed")
    print("%-38s %9s %7s %8s %8s %8s %8s" % header)
    for name, t, n, mod_calls, calls, changed in rows:
        print("%-38s %9.2f %7d %8d %8d %8d %8s" % (
            name, t, n, calls["iptables-save"] + calls["ip6tables-save"],
            calls["iptables-restore"] + calls["ip6tables-restore"], calls["iptables"] + calls["ip6tables"],
            changed))
    print("module-reported calls: first run %s, rerun %s" % (rows[0][3], rows[2][3]))
    print("iptables_rule samples (s): apply %s, rerun %s; best of %d kept, load average %s"
          % (", ".join("%.2f" % x for x in samples_iw), ", ".join("%.2f" % x for x in samples_re), REPEAT,
             " ".join("%.2f" % x for x in os.getloadavg())))
    print("ratio builtin / iptables_rule: %.1fx (target >= %.0fx)" % (ratio, TARGET_RATIO))
    ok = True
    if rows[0][2] != N_RULES or rows[1][2] != N_RULES:
        print("FAIL: expected %d rules in INPUT after each approach" % N_RULES)
        ok = False
    if rows[2][5] is not False or rows[2][3]["restore"] != 0 or rows[2][4]["iptables-restore"] != 0:
        print("FAIL: the no-change rerun changed something or ran iptables-restore")
        ok = False
    if ratio < TARGET_RATIO:
        print("MISS: ratio below the %.0fx target" % TARGET_RATIO)
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
