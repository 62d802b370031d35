#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The README's demo command: playbooks/site.yml applied to a sandbox host, shown as a person wants to see it.

1. start a sandbox host (own network namespace, own /etc, sshd) and two client namespaces on
   a switch namespace: `trusted` (198.51.100.3, 2001:db8:100::3, listed in MYSQL_WHITELIST by
   playbooks/inventory/group_vars/firewall.yml) and `outsider` (203.0.113.2, 2001:db8:203::2);
2. run playbooks/site.yml (the firewall role with the example inventory's variables) against
   the host over real SSH with pipelining on, as the README recommends (the example
   inventory's group_vars/all.yml sets ``ansible_pipelining: true`` per host, and the demo
   exports ANSIBLE_PIPELINING=1 for the whole run), twice: the second run must change nothing;
3. probe from both clients over IPv4 and IPv6 (TCP 22, 80, 3306, 8080 and ping) and print a
   table of open/blocked with what the classic firewall expects, then five SSH connections in
   a row from the outsider (the rate limit drops the 4th);
4. print the host's ``iptables -L -v -n --line-numbers`` and ``ip6tables`` listings;
5. remove everything. The machine's own firewall is never touched.

Exits non-zero when the second run changed something or a probe differs from the expectation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import site_sandbox
from ansible_runs import ROOT, ansible_bin, checkout_env
from sandbox_hosts import Host, cleanup_stale, ensure_rootfs
from sandbox_net import Lan, probe

PORTS = (22, 80, 3306, 8080)


def banner(text):
    print("\n" + "=" * 78 + "\n" + text + "\n" + "=" * 78, flush=True)


def expected(port, client_label):
    if port == 3306:
        return client_label == "trusted"
    return port in (22, 80, "ping")


def probe_table(host, clients):
    """Rows (port, client, family, result, expected) probed from each client."""
    rows = []
    for label, client in clients:
        for fam, addr in ((4, host.addr4), (6, host.addr6)):
            caddr = client.addr4 if fam == 4 else client.addr6
            for port in PORTS + ("ping",):
                if port == "ping":
                    ok = site_sandbox.ping(client, addr, fam)
                else:
                    ok = probe(client, addr, port, timeout=1)
                rows.append((str(port), "%s %s" % (label, caddr), "IPv%d" % fam,
                             "open" if ok else "blocked", "open" if expected(port, label) else "blocked"))
    return rows


def format_table(rows):
    head = ("port", "client", "family", "result", "expected")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        mark = "" if r[3] == r[4] else "   <-- UNEXPECTED"
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + mark)
    return "\n".join(lines)


def pipelining(inventory, hostname):
    """How pipelining is set for hostname in inventory: the inventory variable, else the environment."""
    proc = subprocess.run([ansible_bin("ansible-inventory"), "-i", inventory, "--host", hostname],
                          env=checkout_env(), capture_output=True, text=True, timeout=120, check=False)
    hostvars = json.loads(proc.stdout) if proc.returncode == 0 and proc.stdout.strip() else {}
    if "ansible_pipelining" in hostvars:
        value = hostvars["ansible_pipelining"]
        on = value is True or str(value).lower() in ("1", "true", "yes", "on")
        return "%s (inventory: ansible_pipelining: %s)" % ("on" if on else "OFF", json.dumps(value))
    value = os.environ.get("ANSIBLE_PIPELINING", "")
    on = value.lower() in ("1", "true", "yes", "on")
    return "%s (ANSIBLE_PIPELINING=%s)" % ("on" if on else "OFF", value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--playbook", default=site_sandbox.SITE,
                        help="playbook to apply (default playbooks/site.yml); its hosts: firewall")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("the demo needs root: it creates network namespaces")
    # One SSH command per module, no temporary file upload (README: Pipelining). The example
    # inventory sets it per host already; this sets it for the whole run as well.
    os.environ["ANSIBLE_PIPELINING"] = "1"
    cleanup_stale()
    banner("Building the sandbox: a Debian host with sshd and two clients (198.51.100.0/24, 203.0.113.0/24)")
    t0 = time.time()
    ensure_rootfs()
    playbook = os.path.relpath(args.playbook, ROOT)
    ok = True
    with Lan(prefix="iwl") as lan:
        host = Host("demo-fw", lan)
        try:
            host.start()
            trusted = lan.add_client(subnet="198.51.100")
            outsider = lan.add_client(subnet="203.0.113")
            print("host demo-fw at %s / %s, ready in %.1f s" % (host.addr4, host.addr6, time.time() - t0))
            print("clients: trusted %s / %s, outsider %s / %s"
                  % (trusted.addr4, trusted.addr6, outsider.addr4, outsider.addr6))
            with tempfile.TemporaryDirectory() as tmp:
                inventory = site_sandbox.write_site_inventory([host], os.path.join(tmp, "inventory"))
                print("SSH pipelining for demo-fw: %s" % pipelining(inventory, "demo-fw"))
                for run, what in ((1, "first run: converges"), (2, "second run: must change nothing")):
                    banner("ANSIBLE_PIPELINING=1 ansible-playbook -i <sandbox + playbooks/inventory/group_vars> %s\n(%s)"
                           % (playbook, what))
                    rc, out, recap, took = site_sandbox.run_site(inventory, args.playbook)
                    print(out, end="")
                    print("(%.1f s)" % took)
                    if rc != 0:
                        raise SystemExit("ansible-playbook failed (rc=%d)" % rc)
                idempotent = recap.get("demo-fw", {}).get("changed") == 0
                host.end_ssh_masters()
            host.start_listeners([p for p in PORTS if p != 22])
            banner("Probes from each client to demo-fw (TCP connect; ping = ICMP / ICMPv6 echo)")
            rows = probe_table(host, [("trusted", trusted), ("outsider", outsider)])
            print(format_table(rows))
            ok = idempotent and all(r[3] == r[4] for r in rows)
            banner("SSH rate limit: 5 new connections in a row from the outsider (limit: 4 in 60 s)")
            for fam, addr in ((4, host.addr4), (6, host.addr6)):
                # The probe table already made one SSH connection from the outsider per family.
                attempts = site_sandbox.ssh_attempts(outsider, addr, 4)
                want = [True, True, False, False]
                shown = "  ".join("open" if a else "blocked" for a in attempts)
                print("IPv%d  attempts 2-5: %s%s" % (fam, shown, "" if attempts == want else "   <-- UNEXPECTED"))
                ok = ok and attempts == want
            print("(the 4th attempt is the first dropped: --set records it before --rcheck counts 4)")
            banner("iptables -L -v -n --line-numbers  (on demo-fw; the counters include the probes above)")
            print(host.exec(["iptables", "-L", "-v", "-n", "--line-numbers"]).stdout)
            banner("ip6tables -L -v -n --line-numbers  (on demo-fw; the counters include the probes above)")
            print(host.exec(["ip6tables", "-L", "-v", "-n", "--line-numbers"]).stdout)
            banner("/etc/iptables.rules on demo-fw: what the boot hook loads with iptables-restore --noflush\n"
                   "(only what the collection owns; /etc/ip6tables.rules is the same for IPv6)")
            print(host.exec(["cat", "/etc/iptables.rules"]).stdout)
            print("\nsecond run changed nothing: %s" % ("yes" if idempotent else "NO"))
            print("every probe as expected:    %s" % ("yes" if ok else "NO"))
        finally:
            host.stop()
    print("sandbox removed; the machine's own firewall was not touched.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
