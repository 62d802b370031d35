#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Role benchmark: ironwall.iptables.firewall against the two approaches users pick instead.

All three write the same classic firewall (bench/role_peers/firewall_vars.yml): policies
INPUT DROP, FORWARD DROP, OUTPUT ACCEPT; loopback, ESTABLISHED/RELATED, ICMP (and ICMPv6
133-136); SSH through a ``-m recent`` limit (LOG then DROP at 4 new connections in 60 s,
then ACCEPT; the management address every Ansible connection comes from is exempt, as in
extensions/molecule/fleet/converge.yml); tcp 80 and 443 open to NEW connections; tcp 3306
through the chain MYSQL_WHITELIST with a DROP fallback; IPv4 and IPv6; saved or scripted
so that it comes back at boot. The approaches (playbooks under bench/role_peers/):

* ``ours``: ours.yml, the role ironwall.iptables.firewall from its variables (persistence
  defaults: both rules files and the boot hook);
* ``script``: script.yml, bench/role_peers/script_role, written the way the most popular
  firewall role works: a template renders /etc/firewall.bash (flush, then add every
  rule), a handler runs it when the template changed; a boot hook runs it at boot;
* ``builtin``: builtin.yml, ansible.builtin.iptables tasks, one per rule, chain and
  policy, looped over IPv4 and IPv6 (the three ``recent`` rules are ``iptables -C || -A``
  shell tasks, the module has no recent match); every change notifies a handler that
  saves both rulesets with iptables-save; an ifupdown hook restores them at boot.

For every size (BENCH_ROLE_SIZES, default "1 10 30") one fleet of fresh sandbox hosts is
started (tools/fleet.py: network namespaces with a real sshd, reached over real SSH
through the switch namespace) and split into groups: each approach gets its own hosts,
never used by another approach. The peers run at the sizes in BENCH_ROLE_PEER_SIZES
(default "1 10"); at the other sizes only ``ours`` runs. Every run is ``ansible-playbook
--limit GROUP`` with the same settings: forks = the largest size, ANSIBLE_PIPELINING=1,
``ControlMaster=auto ControlPersist=600s`` (so reruns reuse the connection the converge
opened), gathering explicit and ``gather_facts: false`` in every playbook. Every host's
resolver points at 127.0.0.1 (quick_dns_failure): the sandbox's nameserver is unreachable,
and ansible.builtin.iptables resolves the addresses of a chain it lists.

* First converge, from an empty ruleset: once per fresh group. At 1 host each approach
  gets BENCH_ROLE_CONVERGE_REPEAT (default 3) fresh hosts and the median is reported; at
  larger sizes one fresh group per approach is converged once.
* No-change rerun: BENCH_ROLE_REPEAT (default 3) reruns of each approach's first group,
  interleaved (ours, script, builtin, ours, ...) so machine load drifts hit all three;
  median.

Per cell: wall time of the ansible-playbook process; controller CPU per host (the
RUSAGE_CHILDREN delta of the run, i.e. ansible-playbook, its workers and the ssh clients
it waited for, divided by the hosts; the hosts' side is not counted, nor the detached
ControlPersist masters); module runs per host, counted exactly by the callback
bench/role_peers/callback_plugins/module_runs.py: every ok, changed or failed result of a
task (or handler) whose action runs on the host counts once, a loop once per item that
was not skipped, while skipped results and controller-only actions (assert, set_fact,
debug, meta, include_*/import_*, validate_argument_spec, fail, add_host, group_by...) do
not count. So ``template`` or ``copy`` counts as one module run although its action
plugin runs stat (and file) on the host: the row "SSH commands per host" shows that cost,
counted from the ``<host> SSH: EXEC`` lines of one extra, untimed ``-vvv`` rerun of the
smallest group of each approach. Host CPU per host is the CPU time every process of the
group's hosts used during the run (sshd sessions, shells, the modules, iptables; read from
/proc before and after, children included): the hosts share this machine's CPUs with the
controller, so it is what limits how well a run scales with the number of hosts here.

After the first converge at the smallest size, one host of each approach is checked
(reported, never fatal): real TCP probes from the outsider client (203.0.113.2 /
2001:db8:203::2: 80 and 443 open, 3306 and 8080 closed) and the trusted client
(198.51.100.2 / 2001:db8:100::2: 3306 and 22 open), IPv4 and IPv6, plus a comparison of
its filter table with the one ours wrote (comments and ownership markers left out).

Prints a markdown table, the ratios ours / script role with the targets (rerun <= 0.6x,
first converge <= 0.8x, <= 3 module runs per host on a rerun, controller CPU per host
<= 0.8 s at 10 hosts, 30-host rerun < 5x the 1-host rerun) and MISS for each missed
target; BENCH_ROLE_OUT names a file that gets the same text. Exit status 0 even when a
target is missed; 1 when a playbook run fails. Needs root (network namespaces); nothing
touches the machine's own firewall.

    python3 bench/bench_role.py                      # sizes 1 10 30, peers at 1 and 10
    BENCH_ROLE_SIZES="1 10" python3 bench/bench_role.py
    BENCH_ROLE_PEER_SIZES="1 10 30" BENCH_ROLE_OUT=/tmp/role.md python3 bench/bench_role.py
"""

from __future__ import annotations

import json
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))

import fleet  # noqa: E402
from ansible_runs import ansible_bin, checkout_env, play_recap, timed_run  # noqa: E402
from sandbox_hosts import host_names  # noqa: E402
from sandbox_net import probe  # noqa: E402

PEERS_DIR = os.path.join(HERE, "role_peers")
CALLBACK_DIR = os.path.join(PEERS_DIR, "callback_plugins")
# (key, playbook, column title)
APPROACHES = (
    ("ours", "ours.yml", "ours"),
    ("script", "script.yml", "script role"),
    ("builtin", "builtin.yml", "builtin playbook"),
)
TITLES = dict((key, title) for key, _book, title in APPROACHES)


def _sizes(name, default):
    return tuple(int(n) for n in os.environ.get(name, default).split())


SIZES = _sizes("BENCH_ROLE_SIZES", "1 10 30")
PEER_SIZES = _sizes("BENCH_ROLE_PEER_SIZES", "1 10")
REPEAT = int(os.environ.get("BENCH_ROLE_REPEAT", "3"))
CONVERGE_REPEAT = int(os.environ.get("BENCH_ROLE_CONVERGE_REPEAT", "3"))
TIMEOUT = int(os.environ.get("BENCH_ROLE_TIMEOUT", "7200"))
FORKS = max(SIZES)

TARGET_RERUN = 0.6      # ours / script role, no-change rerun
TARGET_CONVERGE = 0.8   # ours / script role, first converge
TARGET_RUNS = 3         # module runs per host on a rerun
TARGET_CPU = 0.8        # controller CPU seconds per host
TARGET_SCALE = 5.0      # largest-size rerun / 1-host rerun
CPU_SIZE = 10 if 10 in SIZES else max(SIZES)

LISTEN_PORTS = (80, 443, 3306, 8080)
# (client, port, expected open?), IPv4 and IPv6
PROBES = (
    ("outsider", 80, True), ("outsider", 443, True), ("outsider", 3306, False), ("outsider", 8080, False),
    ("trusted", 3306, True), ("trusted", 22, True),
)
COMMENT = re.compile(r' -m comment --comment (?:"(?:[^"\\]|\\.)*"|\S+)')
SSH_EXEC = re.compile(r"^<([^>]+)> SSH: EXEC ", re.M)


class Run:
    """One ansible-playbook run of one approach on one group."""

    def __init__(self, seconds, cpu, hosts, counts, stdout, host_cpu=0.0):
        self.seconds = seconds
        self.cpu = cpu
        self.host_cpu = host_cpu  # CPU seconds of every process of the group's hosts
        self.hosts = hosts
        self.counts = counts    # {host: {"runs": n, "changed": n, "failed": n, "tasks": {...}}}
        self.stdout = stdout

    def runs_per_host(self):
        values = [c["runs"] for c in self.counts.values()]
        return sum(values) / float(self.hosts) if values else 0.0

    def uneven(self):
        return len(set(c["runs"] for c in self.counts.values())) > 1

    def changed(self):
        return sum(c["changed"] for c in self.counts.values())


def ansible_env(runs_file):
    return checkout_env(
        ANSIBLE_FORKS=str(FORKS),
        ANSIBLE_PIPELINING="1",
        ANSIBLE_SSH_ARGS="-C -o ControlMaster=auto -o ControlPersist=600s",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        ANSIBLE_GATHERING="explicit",
        ANSIBLE_CALLBACK_PLUGINS=CALLBACK_DIR,
        ANSIBLE_CALLBACKS_ENABLED="module_runs",
        BENCH_MODULE_RUNS_FILE=runs_file,
    )


def tree_cpu(pid):
    """CPU seconds of pid and every descendant, with what they reaped (utime, stime,
    cutime and cstime from /proc): a process that ends during a run moves into its
    parent's cutime, so the difference of two readings is what the tree used between them."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open("/proc/%d/stat" % current) as fh:
                fields = fh.read().rpartition(")")[2].split()
            total += sum(int(f) for f in fields[11:15])
            for tid in os.listdir("/proc/%d/task" % current):
                with open("/proc/%d/task/%s/children" % (current, tid)) as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue  # gone meanwhile: counted in its parent's cutime
    return total / float(os.sysconf("SC_CLK_TCK"))


def hosts_cpu(members):
    return sum(tree_cpu(h.pid) for h in members)


def play(inventory, group, key, size, tmp, members, verbose=False):
    """Run approach key's playbook on group (the Host objects members); a failed run ends the bench."""
    book = dict((k, b) for k, b, _t in APPROACHES)[key]
    runs_file = os.path.join(tmp, "runs-%s.json" % group)
    if os.path.exists(runs_file):
        os.unlink(runs_file)
    argv = [ansible_bin("ansible-playbook"), "-i", inventory, "--limit", group, os.path.join(PEERS_DIR, book)]
    if verbose:
        argv.append("-vvv")
    host_before = hosts_cpu(members)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc, elapsed = timed_run(argv, env=ansible_env(runs_file), timeout=TIMEOUT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    host_cpu = hosts_cpu(members) - host_before
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    recap = play_recap(proc.stdout)
    bad = [host for host, counts in recap.items() if counts.get("unreachable") or counts.get("failed")]
    if proc.returncode != 0 or bad or len(recap) != size or not os.path.exists(runs_file):
        print(proc.stdout[-8000:])
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit("bench_role: %s on %s failed (rc=%d)" % (key, group, proc.returncode))
    with open(runs_file) as fh:
        counts = json.load(fh)
    return Run(elapsed, cpu, size, counts, proc.stdout if verbose else "", host_cpu)


# --------------------------------------------------------------------------- correctness

def filter_table(host, family):
    """{"policies": {chain: policy}, "rules": {chain: [rule, ...]}} of the host's filter table,
    comments and the bare ownership marker rules left out."""
    text = host.exec(["iptables-save" if family == 4 else "ip6tables-save", "-t", "filter"]).stdout
    policies, rules = {}, {}
    for line in text.splitlines():
        if line.startswith(":"):
            name, policy = line[1:].split()[:2]
            policies[name] = policy
        elif line.startswith("-A "):
            chain, _sep, rest = COMMENT.sub("", line)[3:].partition(" ")
            if rest.strip():
                rules.setdefault(chain, []).append(rest.strip())
    return {"policies": policies, "rules": rules}


def compare_tables(mine, ours):
    """A short verdict: the same rules as ours (in the same order or not), or what differs."""
    notes = []
    same_order = True
    for family in (4, 6):
        a, b = mine[family], ours[family]
        if a["policies"] != b["policies"]:
            notes.append("IPv%d chains/policies %s vs ours %s" % (family, a["policies"], b["policies"]))
        for chain in sorted(set(a["rules"]) | set(b["rules"])):
            ra, rb = a["rules"].get(chain, []), b["rules"].get(chain, [])
            if sorted(ra) != sorted(rb):
                extra = [r for r in ra if r not in rb]
                missing = [r for r in rb if r not in ra]
                notes.append("IPv%d %s: %d extra, %d missing (%s)"
                             % (family, chain, len(extra), len(missing), "; ".join((extra + missing)[:2])))
            elif ra != rb:
                same_order = False
    if notes:
        return False, "differs from ours: " + " | ".join(notes)
    return True, "same rules as ours" + ("" if same_order else " (other order among rules of equal effect)")


def quick_dns_failure(hosts):
    """Point every host's resolver at 127.0.0.1, where nothing listens: a lookup fails at once.

    The sandbox rootfs names a nameserver the hosts cannot reach, so every lookup would wait
    for its timeout; ansible.builtin.iptables lists a chain (``iptables -L`` without -n
    unless ``numeric: true``) to check a policy or a chain, which resolves every address in
    it. A real resolver answers such reverse lookups quickly; so does this one, by refusing.
    """
    script = "printf 'nameserver 127.0.0.1\\n' > /etc/resolv.conf"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda h: h.exec(["sh", "-c", script]), hosts))


def check(fleet_obj, host):
    """[(what, expected, got)] from real TCP probes of host, both families."""
    clients = {"outsider": fleet_obj.outsider, "trusted": fleet_obj.trusted}
    jobs = [(client, port, want, family, addr) for client, port, want in PROBES
            for family, addr in (("v4", host.addr4), ("v6", host.addr6))]
    with ThreadPoolExecutor(len(jobs)) as pool:
        got = list(pool.map(lambda j: probe(clients[j[0]], j[4], j[1], timeout=2), jobs))
    return [("%s->%d/%s" % (client, port, family), want, g)
            for (client, port, want, family, _addr), g in zip(jobs, got)]


# --------------------------------------------------------------------------- one size

def report(key, size, what, run):
    print("  %-8s %2d host(s) %-15s %7.1f s  CPU/host %5.2f s controller, %5.2f s host  %4.1f module runs/host"
          "  %d changed" % (key, size, what, run.seconds, run.cpu / size, run.host_cpu / size, run.runs_per_host(),
                            run.changed()), flush=True)


def bench_size(size, first_size, results, checks):
    keys = [k for k, _b, _t in APPROACHES if k == "ours" or size in PEER_SIZES]
    fresh = CONVERGE_REPEAT if size == 1 else 1
    total = len(keys) * fresh * size
    groups, names = {}, host_names("fw", total, width=2)
    for rep in range(fresh):
        for i, key in enumerate(keys):
            start = (rep * len(keys) + i) * size
            groups["%s_%d_g%d" % (key, size, rep + 1)] = names[start:start + size]
    t0 = time.monotonic()
    with fleet.Fleet(total, listeners=False, sentinels=False) as hosts, \
            tempfile.TemporaryDirectory(prefix="bench-role-") as tmp:
        inventory = hosts.write_inventory(os.path.join(tmp, "inventory.yml"), groups=groups)
        quick_dns_failure(hosts.hosts)
        by_name = dict((h.name, h) for h in hosts.hosts)

        def members(group):
            return [by_name[name] for name in groups[group]]

        print("%d hosts: %d sandbox hosts up in %.1f s (%s, %d fresh group(s) each); forks=%d, %d CPUs"
              % (size, total, time.monotonic() - t0, ", ".join(keys), fresh, FORKS, os.cpu_count() or 0), flush=True)
        probed = {}
        if size == first_size:
            for key in keys:
                probed[key] = by_name[groups["%s_%d_g1" % (key, size)][0]]
                probed[key].start_listeners(LISTEN_PORTS)
        cell = dict((key, {"converge": [], "rerun": [], "verbose": None}) for key in keys)
        for rep in range(fresh):
            for key in keys:
                group = "%s_%d_g%d" % (key, size, rep + 1)
                run = play(inventory, group, key, size, tmp, members(group))
                cell[key]["converge"].append(run)
                report(key, size, "first converge", run)
        if probed:
            tables = dict((key, {4: filter_table(h, 4), 6: filter_table(h, 6)}) for key, h in probed.items())
            for key, host in probed.items():
                probes = check(hosts, host)
                wrong = ["%s %s" % (what, "open" if g else "closed") for what, want, g in probes if want != g]
                same, verdict = compare_tables(tables[key], tables["ours"]) if key != "ours" else (True, "")
                checks[key] = {"ok": not wrong, "wrong": wrong, "rules": verdict, "same_rules": same,
                               "probes": len(probes)}
                status = "%d probes as expected" % len(probes) if not wrong else "MISS " + ", ".join(wrong)
                print("  %-8s check on %s: %s%s" % (key, host.name, status, "; " + verdict if verdict else ""),
                      flush=True)
        for _rep in range(REPEAT):
            for key in keys:
                group = "%s_%d_g1" % (key, size)
                run = play(inventory, group, key, size, tmp, members(group))
                cell[key]["rerun"].append(run)
                report(key, size, "no-change rerun", run)
        if size == first_size:
            for key in keys:
                group = "%s_%d_g1" % (key, size)
                run = play(inventory, group, key, size, tmp, members(group), verbose=True)
                cell[key]["verbose"] = len(SSH_EXEC.findall(run.stdout)) / float(size)
                print("  %-8s %2d host(s) -vvv rerun (untimed): %.0f SSH commands/host"
                      % (key, size, cell[key]["verbose"]), flush=True)
        results[size] = cell


# --------------------------------------------------------------------------- report

def med(runs, attr):
    return statistics.median(getattr(r, attr) for r in runs)


def summary(results, checks):
    """The report: markdown table, then the ratios and targets."""
    first = SIZES[0]
    head = [TITLES[k] for k, _b, _t in APPROACHES]
    lines = ["| | %s |" % " | ".join(head), "| --- |%s" % (" --- |" * len(head))]

    def row(label, fmt):
        cells = []
        for key, _b, _t in APPROACHES:
            try:
                cells.append(fmt(key))
            except KeyError:
                cells.append("-")
        lines.append("| %s | %s |" % (label, " | ".join(cells)))

    for size in SIZES:
        row("%d host%s, first converge / rerun (s)" % (size, "" if size == 1 else "s"),
            lambda k, s=size: "%.1f / %.1f" % (med(results[s][k]["converge"], "seconds"),
                                               med(results[s][k]["rerun"], "seconds")))
    for size in SIZES:
        row("controller CPU per host, %d host%s, converge / rerun (s)" % (size, "" if size == 1 else "s"),
            lambda k, s=size: "%.2f / %.2f" % (med(results[s][k]["converge"], "cpu") / s,
                                               med(results[s][k]["rerun"], "cpu") / s))

    for size in SIZES:
        row("host CPU per host, %d host%s, converge / rerun (s)" % (size, "" if size == 1 else "s"),
            lambda k, s=size: "%.2f / %.2f" % (med(results[s][k]["converge"], "host_cpu") / s,
                                               med(results[s][k]["rerun"], "host_cpu") / s))

    def runs(key):
        cell = results[first][key]
        conv, again = cell["converge"][0], cell["rerun"][-1]
        uneven = " (uneven)" if conv.uneven() or again.uneven() else ""
        return "%g / %g%s" % (conv.runs_per_host(), again.runs_per_host(), uneven)

    row("module runs per host, converge / rerun", runs)
    row("SSH commands per host, rerun (-vvv, %d host%s)" % (first, "" if first == 1 else "s"),
        lambda k: "%.0f" % results[first][k]["verbose"])

    def changes(key):
        counts = [r.changed() for s in SIZES if key in results[s] for r in results[s][key]["rerun"]]
        if not counts:
            raise KeyError(key)
        return "%d" % max(counts)

    row("changes reported by a rerun (max)", changes)
    row("correctness after converge (1 host)",
        lambda k: ("ok" if checks[k]["ok"] else "MISS: " + ", ".join(checks[k]["wrong"]))
        + ("" if k == "ours" or checks[k]["same_rules"] else "; rules differ"))

    out = ["\n".join(lines), ""]
    misses = []

    def target(label, value, limit, met, unit="x"):
        if not met:
            misses.append(label.strip())
        out.append("%-56s %9s   target %-9s %s" % (label, "%.2f%s" % (value, unit), limit, "met" if met else "MISS"))

    out.append("ours / script role (targets) and ours / builtin playbook:")
    for size in [s for s in SIZES if "script" in results[s]]:
        for what, attr, limit in (("rerun", "rerun", TARGET_RERUN), ("first converge", "converge", TARGET_CONVERGE)):
            ours = med(results[size]["ours"][attr], "seconds")
            ratio = ours / med(results[size]["script"][attr], "seconds")
            target("  %s, %d host%s: ours / script role" % (what, size, "" if size == 1 else "s"),
                   ratio, "<= %gx" % limit, ratio <= limit)
            ratio = ours / med(results[size]["builtin"][attr], "seconds")
            label = "  %s, %d host%s: ours / builtin playbook" % (what, size, "" if size == 1 else "s")
            out.append("%-56s %9s" % (label, "%.2fx" % ratio))
    again = results[first]["ours"]["rerun"][-1].runs_per_host()
    target("ours: module runs per host on a rerun", again, "<= %d" % TARGET_RUNS, again <= TARGET_RUNS, unit="")
    cpu = max(med(results[CPU_SIZE]["ours"][attr], "cpu") / CPU_SIZE for attr in ("converge", "rerun"))
    target("ours: controller CPU per host, %d hosts (max of both)" % CPU_SIZE, cpu, "<= %g s" % TARGET_CPU,
           cpu <= TARGET_CPU, unit=" s")
    largest = max(SIZES)
    if largest != first:
        scale = med(results[largest]["ours"]["rerun"], "seconds") / med(results[first]["ours"]["rerun"], "seconds")
        target("ours: rerun %d hosts / rerun %d host%s" % (largest, first, "" if first == 1 else "s"), scale,
               "< %gx" % TARGET_SCALE, scale < TARGET_SCALE)
    for key in ("script", "builtin"):
        if key in checks and not (checks[key]["ok"] and checks[key]["same_rules"]):
            out.append("note: %s is not the same firewall: %s %s"
                       % (TITLES[key], ", ".join(checks[key]["wrong"]), checks[key]["rules"]))
    out.append("")
    out.append("MISS: %d target(s) missed: %s" % (len(misses), "; ".join(misses))
               if misses else "all targets met")
    return "\n".join(out)


def main():
    if os.geteuid() != 0:
        raise SystemExit("bench_role: needs root (network namespaces)")
    if not SIZES or REPEAT < 1 or CONVERGE_REPEAT < 1:
        raise SystemExit("bench_role: BENCH_ROLE_SIZES, BENCH_ROLE_REPEAT and BENCH_ROLE_CONVERGE_REPEAT must be set")
    print("bench_role: sizes %s (peers at %s), %d reruns, %d fresh 1-host converges; %s"
          % (" ".join(map(str, SIZES)), " ".join(str(s) for s in SIZES if s in PEER_SIZES) or "none",
             REPEAT, CONVERGE_REPEAT, ", ".join(TITLES.values())), flush=True)
    results, checks = {}, {}
    for size in SIZES:
        bench_size(size, SIZES[0], results, checks)
    text = summary(results, checks)
    print()
    print(text)
    out = os.environ.get("BENCH_ROLE_OUT")
    if out:
        with open(out, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
