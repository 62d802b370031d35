#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_whitelist benchmark: 1,000 and 10,000 sources, and a loop of ansible.builtin.iptables as the anchor.

One throwaway namespace (real iptables-nft unless BENCH_BACKEND=legacy), one run, IPv4:
1. for 1,000 and 10,000 sources: ironwall.iptables.iptables_whitelist through ansible-playbook,
   first converge from an empty firewall, then a no-change rerun (wall time of the playbook);
2. the same two runs timed as the module process alone (tools/module_timer.py:
   a fresh interpreter importing the module, the save/restore calls and the planning) -
   the no-change rerun of 10,000 sources must take under 1 s;
3. the anchor: the same 1,000 sources as one ``ansible.builtin.iptables`` task with ``loop:``
   (plus the chain, the jump and the DROP as three more tasks), in one playbook.
Every iptables binary runs through a counting shim, so the table shows how many save and
restore processes each approach started. Sources are rule content from 198.18.0.0/15 (the
benchmark range); nothing is ever a target. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import json
import os
import sys

import _common
import module_timer  # tools/, on sys.path through _common
from sandbox_net import Netns  # tools/

BACKEND = os.environ.get("BENCH_BACKEND", "nft")
SIZES = tuple(int(x) for x in os.environ.get("BENCH_SIZES", "1000,10000").split(","))
ANCHOR_SIZE = int(os.environ.get("BENCH_ANCHOR", "1000"))
TARGET_RATIO = 100.0
TARGET_RERUN = 1.0
NAME = "MYSQL_WHITELIST"
EMPTY = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"


def sources(n):
    """n distinct hosts of 198.18.0.0/15 (benchmark range, rule content only)."""
    return ["198.%d.%d.%d" % (18 + i // 65536, (i // 256) % 256, i % 256 + 0) for i in range(1, n + 1)]


def whitelist_args(n):
    return {"name": NAME, "ports": [3306], "sources": sources(n), "ip_version": "ipv4"}


def whitelist_play(n):
    task = {"name": "whitelist", "ironwall.iptables.iptables_whitelist": whitelist_args(n)}
    return json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [task]}])


def builtin_play(n):
    """The classic whitelist with ansible.builtin.iptables: chain, one looped task per source, jump, DROP."""
    match = {"protocol": "tcp", "destination_port": "3306", "ctstate": ["NEW"], "ip_version": "ipv4"}
    tasks = [
        {"name": "chain",
         "ansible.builtin.iptables": {"chain": NAME, "chain_management": True, "ip_version": "ipv4"}},
        {"name": "sources",
         "ansible.builtin.iptables": {"chain": NAME, "source": "{{ item }}", "jump": "ACCEPT", "ip_version": "ipv4"},
         "loop": sources(n)},
        {"name": "jump", "ansible.builtin.iptables": dict(match, chain="INPUT", jump=NAME)},
        {"name": "drop", "ansible.builtin.iptables": dict(match, chain="INPUT", jump="DROP")},
    ]
    return json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}])


def count_calls(log):
    counts = _common.count_calls(log)
    return {"save": counts["iptables-save"] + counts["ip6tables-save"],
            "restore": counts["iptables-restore"] + counts["ip6tables-restore"],
            "iptables": counts["iptables"] + counts["ip6tables"]}


def play(ns, text, shim_dir):
    return _common.play(ns, text, shim_dir, BACKEND, 7200)


def timed_module(ns, n):
    """(result, seconds) of the module process alone; its calls are the ones it reports."""
    res, t = module_timer.run_timed(ns, "iptables_whitelist", whitelist_args(n), BACKEND)
    if "calls" not in res:
        raise SystemExit("iptables_whitelist failed: %s" % res.get("msg"))
    return res, t


def reset(ns):
    ns.load(EMPTY, family=4, backend=BACKEND)  # flushes filter and deletes its user chains


def chain_rules(ns):
    return [line for line in ns.save(family=4, backend=BACKEND).splitlines() if line.startswith("-A %s " % NAME)]


def main():
    rows = []   # (label, wall playbook s or None, module s or None, calls, changed, chain rules)
    problems = []
    module_timer.warm_up()
    with _common.counting_shims(BACKEND) as (tmp, log):
        with Netns(prefix="iwt") as ns:
            for n in SIZES:
                reset(ns)
                count_calls(log)
                t, res = play(ns, whitelist_play(n), tmp)
                rows.append(("iptables_whitelist %d, first (playbook)" % n, t, None, count_calls(log),
                             res[0]["changed"], len(chain_rules(ns))))
                if n == ANCHOR_SIZE:
                    t_anchor_iw = t
                    anchor_chain = chain_rules(ns)
                t, res = play(ns, whitelist_play(n), tmp)
                rows.append(("iptables_whitelist %d, rerun (playbook)" % n, t, None, count_calls(log),
                             res[0]["changed"], len(chain_rules(ns))))
                reset(ns)
                res, t = timed_module(ns, n)
                rows.append(("iptables_whitelist %d, first (module)" % n, None, t, dict(res["calls"], iptables=0),
                             res.get("changed"), len(chain_rules(ns))))
                res, t = timed_module(ns, n)
                rows.append(("iptables_whitelist %d, rerun (module)" % n, None, t, dict(res["calls"], iptables=0),
                             res.get("changed"), len(chain_rules(ns))))
                if res.get("changed") is not False or rows[-1][3]["restore"]:
                    problems.append("FAIL: the no-change rerun of %d sources changed something or ran a restore" % n)
                if t >= TARGET_RERUN and n <= 10000:
                    problems.append("MISS: no-change rerun of %d sources took %.2f s (target < %.1f s)"
                                    % (n, t, TARGET_RERUN))
                if rows[-4][5] != n or rows[-1][5] != n:
                    problems.append("FAIL: expected %d rules in %s" % (n, NAME))

            reset(ns)
            count_calls(log)
            t_bi, res = play(ns, builtin_play(ANCHOR_SIZE), tmp)
            calls = count_calls(log)
            bi_chain = chain_rules(ns)
            rows.append(("ansible.builtin.iptables loop %d (playbook)" % ANCHOR_SIZE, t_bi, None, calls,
                         any(r.get("changed") for r in res), len(bi_chain)))
            if bi_chain != anchor_chain:
                problems.append("FAIL: the builtin loop and iptables_whitelist left different %s chains" % NAME)

    ratio = t_bi / t_anchor_iw
    print()
    print("bench_whitelist: %s sources into %s (IPv4, from 198.18.0.0/15), iptables-%s, one namespace, one run"
          % (" and ".join("{:,}".format(n) for n in SIZES), NAME, BACKEND))
    header = ("approach", "wall s", "module s", "save", "restore", "iptables", "changed", "rules")
    print("%-46s %9s %9s %6s %8s %9s %8s %8s" % header)
    for label, wall, mod, calls, changed, n in rows:
        print("%-46s %9s %9s %6d %8d %9d %8s %8d" % (
            label, "%.2f" % wall if wall is not None else "-", "%.3f" % mod if mod is not None else "-",
            calls["save"], calls["restore"], calls["iptables"], changed, n))
    print("wall s: ansible-playbook end to end, binaries counted by shims; module s: the module process alone\n"
          "(interpreter start included), calls as the module reports them")
    print("ratio builtin loop / iptables_whitelist, %d sources, playbook wall: %.1fx (target >= %.0fx)"
          % (ANCHOR_SIZE, ratio, TARGET_RATIO))
    print("load average %s" % " ".join("%.2f" % x for x in os.getloadavg()))
    if ratio < TARGET_RATIO:
        problems.append("MISS: ratio %.1fx below the %.0fx target" % (ratio, TARGET_RATIO))
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
