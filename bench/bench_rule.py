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
3. no-change reruns of (1) after putting its rules back, which must run no iptables-restore;
4. Ansible's floor: one ``ansible.builtin.ping`` task (best of BENCH_REPEAT), what any
   one-task approach costs before its module does anything, and the same task given the 200
   rule dictionaries as its ``data`` argument (a module that does nothing with the same
   input, which it echoes back). builtin / floor is the best ratio a one-task module could
   reach on this machine.
Besides the process wall times (what the target is judged on), the play time the json
callback records (play start to end: no interpreter start, inventory or exit) is printed.
Every iptables binary runs through a counting shim, so the table shows how many processes
each approach started. Rule content addresses come from 198.18.0.0/15 (benchmark range).
Exit status 1 if the rerun changed anything or ran a restore, or the ratio misses the target.
"""

from __future__ import annotations

import json
import os
import sys

import _common
from sandbox_net import Netns  # tools/, on sys.path through _common

N_RULES = int(os.environ.get("BENCH_RULES", "200"))
BACKEND = os.environ.get("BENCH_BACKEND", "nft")
TARGET_RATIO = 50.0
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))


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


def ping_play(data=None):
    args = {"data": data} if data is not None else {}
    return json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [{"ansible.builtin.ping": args}]}])


def play(ns, text, shim_dir):
    """(process wall s, play s, results)."""
    return _common.play(ns, text, shim_dir, BACKEND, 3600, play_time=True)


def input_rules(ns):
    return [line for line in ns.save(family=4, backend=BACKEND).splitlines() if line.startswith("-A INPUT ")]


def main():
    rows = []
    with _common.counting_shims(BACKEND) as (tmp, log):
        with Netns(prefix="iwt") as ns:
            # The one-task run is short, so machine load shows in it: best of REPEAT, each from empty.
            samples_iw = []
            for _i in range(REPEAT):
                ns.iptables("-F", "INPUT", backend=BACKEND)
                t, p, res = play(ns, ironwall_play(N_RULES), tmp)
                calls_iw = _common.count_calls(log)
                assert res[0]["changed"] is True
                samples_iw.append((t, p))
            t_iw, p_iw = min(samples_iw)
            n_iw = len(input_rules(ns))
            rows.append(("iptables_rule, 1 task (rules:)", t_iw, n_iw, res[0]["calls"], calls_iw, True))

            ns.iptables("-F", "INPUT", backend=BACKEND)
            t_bi, p_bi, res = play(ns, builtin_play(N_RULES), tmp)
            calls_bi = _common.count_calls(log)
            n_bi = len(input_rules(ns))
            rows.append(("ansible.builtin.iptables, %d tasks" % N_RULES, t_bi, n_bi, None, calls_bi,
                         sum(1 for r in res if r.get("changed"))))

            ns.iptables("-F", "INPUT", backend=BACKEND)
            play(ns, ironwall_play(N_RULES), tmp)
            _common.count_calls(log)
            samples_re = []
            for _i in range(REPEAT):
                t, _p, res = play(ns, ironwall_play(N_RULES), tmp)
                calls_re = _common.count_calls(log)
                samples_re.append(t)
                if res[0]["changed"] or calls_re["iptables-restore"]:
                    break
            t_re = min(samples_re)
            rows.append(("iptables_rule rerun, no change", t_re, len(input_rules(ns)), res[0]["calls"], calls_re,
                         res[0]["changed"]))

            floor = min(play(ns, ping_play(), tmp)[:2] for _i in range(REPEAT))
            floor_arg = min(play(ns, ping_play(rule_items(N_RULES)), tmp)[:2] for _i in range(REPEAT))
            _common.count_calls(log)

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
          % (", ".join("%.2f" % x for x, _p in samples_iw), ", ".join("%.2f" % x for x in samples_re), REPEAT,
             " ".join("%.2f" % x for x in os.getloadavg())))
    print("ratio builtin / iptables_rule: %.1fx (target >= %.0fx)" % (ratio, TARGET_RATIO))
    print("Ansible's floor, one ansible.builtin.ping task: %.2f s wall (play %.2f s), so no one-task approach "
          "can beat %.1fx here" % (floor[0], floor[1], t_bi / floor[0]))
    print("the same ping given the %d rules as its data: %.2f s wall (play %.2f s), so no one-task module taking "
          "these rules can beat %.1fx; iptables_rule costs %.2f s over that"
          % (N_RULES, floor_arg[0], floor_arg[1], t_bi / floor_arg[0], t_iw - floor_arg[0]))
    print("play time only (no ansible-playbook start-up or exit): builtin %.2f s / iptables_rule %.2f s = %.1fx"
          % (p_bi, p_iw, p_bi / p_iw))
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
