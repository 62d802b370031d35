#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_ipset and the whitelist's ipset backend: converge cost and the packet path (issue 15).

In one run, in throwaway namespaces:

1. converge 100,000 CIDRs (198.18.0.0/15, the benchmark range) into a set with iptables_ipset:
   the playbook end to end with the list read from a file as one text, as the docs say (target
   < 2 s), the same list given as a YAML list for comparison (Ansible templates and checks a
   list item by item), and the module process alone, then the no-change rerun as the module
   process alone (target < 0.3 s, 1 ``ipset save``, no ``ipset restore``);
2. the packet path: NEW TCP connections per second from a client namespace to a whitelisted port
   with 10,000 listed sources, the client being the last listed source, for an empty ruleset,
   the chain backend and the ipset backend. One client process opens connections in a tight loop
   (tools/tcp_load.py), so the firewall and not process start-up is measured. The configurations
   are measured in interleaved rounds; each round's rates are divided by the same round's empty
   ruleset, and the median of those ratios is kept (the machine's load moves the absolute rates
   between rounds, not the ratios within one). Target: ipset >= 0.9x the empty ruleset's rate;
   the chain backend's ratio is printed beside it, and a ``conntrack`` configuration (one accept
   of the port's NEW connections, no source list) shows what connection tracking alone costs:
   the whitelist's rules match ``--ctstate NEW``, which turns conntrack on in the namespace;
   ``ipset-stateless`` is the ipset backend with ``ctstate: []`` (no conntrack), the set's own cost.

The server namespace's conntrack timeouts of closing TCP states are lowered to 1 s (settings of
that namespace only) so the connections of one round are gone before the next. Exit status 1 when a target is
missed.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import tempfile
import time

import _common
import module_timer  # tools/, on sys.path through _common
import tcp_load  # tools/
from sandbox_net import Lan, Netns  # tools/

BACKEND = os.environ.get("BENCH_BACKEND", "nft")
CIDRS = int(os.environ.get("BENCH_CIDRS", "100000"))
SOURCES = int(os.environ.get("BENCH_SOURCES", "10000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
PORT = 3306
CONFIGS = ("empty", "conntrack", "chain", "ipset", "ipset-stateless")
CONNTRACK_ONLY = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                  "-A INPUT -p tcp -m tcp --dport %d -m conntrack --ctstate NEW -j ACCEPT\nCOMMIT\n" % PORT)
TARGET_CONVERGE = 2.0
TARGET_RERUN = 0.3
TARGET_PACKET_RATIO = 0.9


def cidrs(n):
    """n distinct entries of 198.18.0.0/15: /32 hosts of 198.18/16, then /31 and /30 networks of 198.19/16."""
    out = ["198.18.%d.%d/32" % (i // 256, i % 256) for i in range(min(n, 65536))]
    for i in range(min(n - len(out), 32768)):
        out.append("198.19.%d.%d/31" % (i // 128, (i % 128) * 2))
    i = 0
    while len(out) < n:
        out.append("198.19.%d.%d/30" % (i // 64, (i % 64) * 4))
        i += 1
    return out


def converge_bench():
    """The converge rows: the playbook reading the list from a file as the docs say (one text, one
    entry per line), the same list given as a YAML list (what Ansible costs per list item), then
    the module process alone."""
    entries = cidrs(CIDRS)
    text = "".join(e + "\n" for e in entries)
    base = {"name": "bench_blocklist", "ip_version": "ipv4"}
    args = dict(base, entries=text)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ipset-") as tmp, Netns(prefix="iwt") as ns:
        listfile = os.path.join(tmp, "blocklist.txt")
        with open(listfile, "w") as fh:
            fh.write(text)
        for label, given in (("list file, first converge (playbook)", "{{ lookup('ansible.builtin.file', %r) }}"
                              % listfile),
                             ("YAML list, no-change rerun (playbook)", entries)):
            play = json.dumps([{"hosts": "localhost", "gather_facts": False,
                                "tasks": [{"name": "set", "ironwall.iptables.iptables_ipset": dict(base, entries=given)}]}])
            with _common.counting_shims(BACKEND) as (shims, _log):
                before = cpu_children()
                wall, results = _common.play(ns, play, shims, BACKEND, 600)
            rows.append(("%d CIDRs, %s" % (CIDRS, label), wall, cpu_children() - before, results[0]))
        res, t, cpu = timed(ns, "iptables_ipset", args)
        rows.append(("%d CIDRs, no-change rerun (module)" % CIDRS, t, cpu, res))
        destroy_sets(ns)
        res, t, cpu = timed(ns, "iptables_ipset", args)
        rows.append(("%d CIDRs, first converge (module)" % CIDRS, t, cpu, res))
        for _i in range(2):
            res, t, cpu = timed(ns, "iptables_ipset", args)
            rows.append(("%d CIDRs, no-change rerun (module)" % CIDRS, t, cpu, res))
        count = sum(1 for line in ns.run(["ipset", "save", "bench_blocklist"]).stdout.splitlines()
                    if line.startswith("add "))
    return rows, count


def cpu_children():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(ns, module, args):
    """(result, wall s, CPU s) of the module process alone (its CPU: user + system, children included)."""
    before = cpu_children()
    res, t = module_timer.run_timed(ns, module, args, BACKEND)
    return res, t, cpu_children() - before


def whitelist_args(sources, config):
    """The whitelist of a configuration: the module's defaults (``ctstate: [NEW]``, which turns
    conntrack on), or with ``-stateless`` ``ctstate: []`` (every packet to the port is matched,
    no connection tracking)."""
    backend, _sep, variant = config.partition("-")
    args = {"name": "BENCH_WL", "ports": [PORT], "sources": sources, "backend": backend, "ip_version": "ipv4"}
    if variant == "stateless":
        args["ctstate"] = []
    return args


def packet_bench():
    """{config: [rates]} and the connection counts, interleaved rounds of empty / chain / ipset."""
    rates = dict((c, []) for c in CONFIGS)
    failed = dict((c, 0) for c in CONFIGS)
    with Lan() as lan:
        server = lan.add_client(subnet="198.51.100")
        client = lan.add_client(subnet="198.51.100")
        # conntrack settings of this namespace only: the entries of a round expire within a second or
        # two, whatever state the server's FIN and the client's RST left them in (time_wait is 120 s).
        server.run(["sysctl", "-qw"] + ["net.netfilter.nf_conntrack_tcp_timeout_%s=1" % state for state in (
            "close", "time_wait", "fin_wait", "close_wait", "last_ack", "established", "syn_recv", "syn_sent",
            "unacknowledged", "max_retrans")], check=False)
        listed = ["198.18.%d.%d" % (i // 256, i % 256) for i in range(SOURCES)] + [client.addr4]
        empty = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
        with tcp_load.Server(server, PORT, family=4):
            tcp_load.connect_rate(client, server.addr4, PORT, 0.5)   # warm up caches and ARP
            for _round in range(ROUNDS):
                for config in CONFIGS:
                    server.load(empty, 4, BACKEND)   # flushes filter, deletes its user chains
                    if config == "conntrack":
                        server.load(CONNTRACK_ONLY, 4, BACKEND)
                    elif config != "empty":
                        res, _t = module_timer.run_timed(server, "iptables_whitelist",
                                                         whitelist_args(listed, config), BACKEND)
                        if res.get("failed") or "calls" not in res:
                            raise SystemExit("iptables_whitelist failed: %s" % res.get("msg"))
                    if config in ("empty", "conntrack"):
                        destroy_sets(server)
                    # Expired entries leave the count only when conntrack's garbage collector reaches
                    # them; they never block a new connection, so wait a little, not for zero.
                    tcp_load.wait_until(lambda: conntrack_count(server) < 100, timeout=10, step=0.5)
                    limit = int(server.run(["cat", "/proc/sys/net/netfilter/nf_conntrack_max"]).stdout)
                    if conntrack_count(server) > limit // 2:
                        raise SystemExit("conntrack entries of the last rounds fill half the table")
                    out = tcp_load.connect_rate(client, server.addr4, PORT, SECONDS)
                    rates[config].append(out["rate"])
                    failed[config] += out["failed"]
            rules = sum(1 for line in server.save(4, BACKEND).splitlines() if line.startswith("-A "))
    return rates, failed, rules


def destroy_sets(ns):
    """Every set of this throwaway namespace (no rule uses them now); the registry holds its members
    until it is flushed."""
    ns.run(["ipset", "flush", "ironwall-sets"], check=False)
    ns.run(["ipset", "destroy"])


def conntrack_count(ns):
    proc = ns.run(["cat", "/proc/sys/net/netfilter/nf_conntrack_count"], check=False)
    return int(proc.stdout.strip() or 0)


def main():
    problems = []
    module_timer.warm_up()
    rows, count = converge_bench()
    rates, failed, rules = packet_bench()

    print()
    print("bench_ipset: iptables-%s, ipset %s, one run, load average %s" % (
        BACKEND, os.popen("ipset --version").read().split()[1].rstrip(","),
        " ".join("%.2f" % x for x in os.getloadavg())))
    header = ("converge", "wall s", "CPU s", "changed", "ipset_save", "ipset_restore", "entries")
    print("%-50s %8s %7s %7s %11s %14s %8s" % header)
    for label, t, cpu, res in rows:
        calls = res.get("calls", {})
        entries = res.get("sets", {}).get("ipv4", {}).get("entries", "-")
        print("%-50s %8.3f %7.3f %7s %11s %14s %8s" % (
            label, t, cpu, res.get("changed"), calls.get("ipset_save", "-"), calls.get("ipset_restore", "-"), entries))
    print("wall s: the playbook end to end, or the module process alone (interpreter start included); CPU s: "
          "user + system of those processes and their children (ansible-playbook's workers, ipset)")
    print("set holds %d entries" % count)
    first_wall = rows[0][1]
    rerun = min(rows[4:], key=lambda r: r[1])
    if count != CIDRS:
        problems.append("FAIL: the set holds %d entries, not %d" % (count, CIDRS))
    if first_wall >= TARGET_CONVERGE:
        problems.append("MISS: converging %d CIDRs took %.2f s end to end (target < %.1f s)"
                        % (CIDRS, first_wall, TARGET_CONVERGE))
    if any(r[3].get("changed") is not False or r[3].get("calls") != {"ipset_save": 1, "ipset_restore": 0}
           for r in (rows[1], rows[2]) + tuple(rows[4:])):
        problems.append("FAIL: a no-change rerun changed something or ran more than one ipset save")
    if rerun[1] >= TARGET_RERUN:
        problems.append("MISS: the no-change rerun took %.3f s in the module (target < %.1f s)"
                        % (rerun[1], TARGET_RERUN))

    median = dict((k, statistics.median(v)) for k, v in rates.items())
    ratios = dict((k, statistics.median(r / e for r, e in zip(v, rates["empty"]))) for k, v in rates.items())
    print()
    print("packet path: NEW TCP connections/s to port %d from the last of %d listed sources, one client process, "
          "%d interleaved rounds of %.0f s" % (PORT, SOURCES + 1, ROUNDS, SECONDS))
    for config in CONFIGS:
        print("  %-15s median %6.0f /s, %5.2fx the empty ruleset (median of the rounds' ratios)   rounds: %s   "
              "failed connects: %d" % (config, median[config], ratios[config],
                                       " ".join("%.0f" % r for r in rates[config]), failed[config]))
    print("  (the last configuration left %d rules in the server's filter table)" % rules)
    ratio = ratios["ipset"]
    print("ratio ipset / empty: %.2fx (target >= %.1fx); chain / empty: %.2fx; conntrack alone / empty: %.2fx; "
          "ipset / chain: %.1fx; ipset with ctstate [] / empty: %.2fx" % (
              ratio, TARGET_PACKET_RATIO, ratios["chain"], ratios["conntrack"], ratios["ipset"] / ratios["chain"],
              ratios["ipset-stateless"]))
    print("the set lookup's own cost: ipset / conntrack alone %.2fx (same conntrack, plus the set); "
          "ipset with ctstate [] / empty %.2fx (the set, no conntrack)" % (
              ratios["ipset"] / ratios["conntrack"], ratios["ipset-stateless"]))
    if ratio < TARGET_PACKET_RATIO:
        problems.append("MISS: the ipset backend's rate is %.2fx the empty ruleset's (target >= %.1fx)"
                        % (ratio, TARGET_PACKET_RATIO))
    if any(failed.values()):
        problems.append("FAIL: connections from the listed client failed: %s" % failed)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    start = time.monotonic()
    rc = main()
    print("bench_ipset took %.0f s" % (time.monotonic() - start))
    sys.exit(rc)
