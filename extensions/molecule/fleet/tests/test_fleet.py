# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Verify the fleet: the live ruleset of every host, and real packets from the clients.

Testinfra reaches each host over SSH (the same inventory as Ansible). The probes run on
the controller, ``ip netns exec <client> nc -z -w 2 <host> <port>``, from the two client
namespaces tools/fleet.py made (their names are inventory variables). Every host runs TCP
listeners on 80, 3306 and 8080 (IPv4 and IPv6), sshd on 22.

The SSH rate-limit test uses up the outsider's budget on each host for 60 s: run the
verify step once per converge (as ``molecule test`` does).
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

PROBE_TIMEOUT = 2

# (client, port): open? -- the classic firewall, the same on IPv4 and IPv6.
EXPECTED = {
    ("trusted", 80): True,
    ("trusted", 3306): True,
    ("trusted", 8080): False,
    ("outsider", 80): True,
    ("outsider", 3306): False,
    ("outsider", 8080): False,
}


def probe(netns, addr, port):
    """True if a TCP connection from namespace netns to addr:port succeeds."""
    proc = subprocess.run(["ip", "netns", "exec", netns, "nc", "-z", "-w", str(PROBE_TIMEOUT), addr, str(port)],
                          capture_output=True, text=True, timeout=PROBE_TIMEOUT + 20, check=False)
    return proc.returncode == 0


def addresses(hostvars):
    return {"IPv4": hostvars["ansible_host"], "IPv6": hostvars["sandbox_addr6"]}


def test_live_ruleset(host):
    for save, icmp in (("iptables-save", "-p icmp"), ("ip6tables-save", "-p ipv6-icmp")):
        out = host.check_output(save)
        assert icmp in out, out
        assert ":INPUT DROP" in out and ":FORWARD DROP" in out and ":OUTPUT ACCEPT" in out, out
        assert ":MYSQL_WHITELIST - " in out, out
        assert "--dport 3306" in out and "-j MYSQL_WHITELIST" in out, out
        assert "-m recent" in out and "--hitcount 4" in out and "SSH_brute_force" in out, out
        assert "--dport 80" in out, out


def test_persisted_files_and_boot_hook(host):
    for path in ("/etc/iptables.rules", "/etc/ip6tables.rules"):
        rules = host.file(path)
        assert rules.is_file and rules.mode == 0o600 and rules.user == "root", path
        assert ":INPUT DROP" in rules.content_string
    hook = host.file("/etc/network/if-pre-up.d/ironwall-iptables")
    assert hook.is_file and hook.mode == 0o755


def test_probe_table(host):
    hostvars = host.ansible.get_variables()
    clients = {"trusted": hostvars["fleet_trusted"], "outsider": hostvars["fleet_outsider"]}
    jobs = []
    for fam, addr in addresses(hostvars).items():
        for (client, port), expected in sorted(EXPECTED.items()):
            jobs.append((fam, client, port, addr, expected))
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(lambda j: probe(clients[j[1]]["netns"], j[3], j[2]), jobs))
    rows = ["%-4s %-5s %-8s %-5s %-8s %s" % ("host", "fam", "client", "port", "result", "expected")]
    wrong = []
    for (fam, client, port, addr, expected), ok in zip(jobs, results):
        rows.append("%-4s %-5s %-8s %-5d %-8s %s" % (hostvars["inventory_hostname"], fam, client, port,
                                                     "open" if ok else "blocked", "open" if expected else "blocked"))
        if ok != expected:
            wrong.append(rows[-1])
    print("\n" + "\n".join(rows))
    assert not wrong, "unexpected probe results:\n" + "\n".join(wrong)


def test_ssh_rate_limit_refuses_the_fourth_connection(host):
    hostvars = host.ansible.get_variables()
    outsider = hostvars["fleet_outsider"]["netns"]
    trusted = hostvars["fleet_trusted"]["netns"]
    for fam, addr in addresses(hostvars).items():
        # One warm-up connection to another port (neighbour discovery on IPv6), then count.
        assert probe(outsider, addr, 80)
        attempts = [probe(outsider, addr, 22) for attempt in range(4)]
        print("%s %s SSH from outsider: %s" % (hostvars["inventory_hostname"], fam,
                                               " ".join("open" if a else "refused" for a in attempts)))
        assert attempts == [True, True, True, False], (fam, attempts)
        # The limit is per source: the trusted client still gets in.
        assert probe(trusted, addr, 22), fam


def test_sentinel_ssh_session_survived_converge(host):
    """The SSH session opened before converge (keepalives every 2 s) still carries commands."""
    hostvars = host.ansible.get_variables()
    sock, addr = hostvars["fleet_sentinel"], hostvars["ansible_host"]
    check = subprocess.run(["ssh", "-S", sock, "-O", "check", "root@" + addr],
                           capture_output=True, text=True, timeout=10, check=False)
    assert check.returncode == 0, "sentinel master is gone: %s" % check.stderr
    run = subprocess.run(["ssh", "-S", sock, "-o", "ControlMaster=no", "-o", "BatchMode=yes", "root@" + addr,
                          "iptables -S INPUT | head -n 1"],
                         capture_output=True, text=True, timeout=20, check=False)
    assert run.returncode == 0 and "-P INPUT DROP" in run.stdout, run
