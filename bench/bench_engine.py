#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Engine benchmark: parse and plan against a 50,000-rule foreign ruleset.

Loads the ruleset into a throwaway namespace (real iptables-nft), then measures:
- the anchor: one ``iptables-save`` of that ruleset (the read every run must make);
- pure parse + plan for a no-change run and for a one-rule change;
- iptables_policy through real Ansible: a no-change run and a one-change run, with the
  number of iptables-save / iptables-restore calls the module reports.
Rule content addresses come from 198.18.0.0/15 (benchmark range); nothing is a target.
"""

from __future__ import annotations

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))

from ansible_runs import collections_path, run_module  # noqa: E402
from sandbox_net import Netns  # noqa: E402

sys.path.insert(0, collections_path())

from ansible_collections.ironwall.iptables.plugins.module_utils._model import Tag, parse_save  # noqa: E402
from ansible_collections.ironwall.iptables.plugins.module_utils._options import spec as build_spec  # noqa: E402
from ansible_collections.ironwall.iptables.plugins.module_utils._plan import (  # noqa: E402
    Desired, TaggedGroup, plan_changes)

N_RULES = int(os.environ.get("BENCH_RULES", "50000"))


def foreign_ruleset(n):
    """A kube-proxy-like filter table: half the rules in INPUT, half in 500 service chains."""
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    chains = ["KUBE-SVC-%05d" % i for i in range(500)]
    lines += [":%s - [0:0]" % c for c in chains]
    body = []
    for i in range(n // 2):
        a, b = divmod(i, 256)
        body.append("-A INPUT -s 198.18.%d.%d/32 -p tcp -m tcp --dport %d -m comment --comment "
                    "\"ns%d/svc:port\" -j %s" % (a % 256, b, 1 + i % 65535, i % 97, chains[i % 500]))
    for i in range(n - n // 2):
        a, b = divmod(i, 256)
        body.append("-A %s -d 198.19.%d.%d/32 -m statistic --mode random --probability 0.5 -j RETURN"
                    % (chains[i % 500], a % 256, b))
    # iptables-save groups rules by chain in declaration order
    body.sort(key=lambda line: 0 if line.startswith("-A INPUT ") else 1 + chains.index(line.split(" ")[1]))
    return "\n".join(lines + body + ["COMMIT"]) + "\n"


def timed(fn, repeat=3):
    best = None
    value = None
    for _attempt in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        dt = time.perf_counter() - t0
        best = dt if best is None or dt < best else best
    return best, value


def main():
    rows = []
    with Netns(prefix="iwbench") as ns:
        t0 = time.perf_counter()
        ns.load(foreign_ruleset(N_RULES), 4, "nft")
        load_s = time.perf_counter() - t0
        anchor, text = timed(lambda: ns.save(4, "nft"))
        n = sum(1 for line in text.splitlines() if line.startswith("-A "))
        parse_s, current = timed(lambda: parse_save(text))
        tag = Tag(100, "rule", "bench")
        spec = build_spec("ipv4", protocol="tcp", dports=("8443",), tag=tag, jump="ACCEPT")
        group = TaggedGroup("filter", "INPUT", tag, (spec,))
        nochange = Desired(policies=(("filter", "INPUT", "ACCEPT"),))
        change = Desired(groups=(group,))
        plan0_s, plan0 = timed(lambda: plan_changes(current, nochange))
        plan1_s, plan1 = timed(lambda: plan_changes(current, change))
        assert not plan0.changed and plan1.script.count("\n") == 3, plan1.script
        rows.append(("iptables-save of %d rules (anchor)" % n, anchor, 1.0, "1 save"))
        rows.append(("parse", parse_s, parse_s / anchor, "-"))
        rows.append(("parse + plan, no change", parse_s + plan0_s, (parse_s + plan0_s) / anchor, "-"))
        rows.append(("parse + plan, one-rule change", parse_s + plan1_s, (parse_s + plan1_s) / anchor, "-"))

        for label, args in (("iptables_policy no-change run (Ansible)", {"chain": "INPUT", "policy": "ACCEPT",
                                                                         "ip_version": "ipv4"}),
                            ("iptables_policy one-change run (Ansible)", {"chain": "INPUT", "policy": "DROP",
                                                                          "ip_version": "ipv4"})):
            t0 = time.perf_counter()
            res = run_module(ns, "iptables_policy", args, "nft")
            dt = time.perf_counter() - t0
            assert res["_status"] in ("SUCCESS", "CHANGED"), res
            calls = "%d save, %d restore" % (res["calls"]["save"], res["calls"]["restore"])
            rows.append((label, dt, dt / anchor, calls))
    print("\nEngine benchmark: %d-rule foreign ruleset (iptables-nft; loaded in %.2f s)" % (n, load_s))
    print("%-48s %10s %10s  %s" % ("measure", "seconds", "x anchor", "calls"))
    for label, secs, ratio, calls in rows:
        print("%-48s %10.3f %10.2f  %s" % (label, secs, ratio, calls))
    nochange_plan = parse_s + plan0_s
    verdict = "PASS" if nochange_plan < 0.5 else "FAIL"
    print("target: a no-change run parses and plans in under 0.5 s -> %.3f s %s" % (nochange_plan, verdict))
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
