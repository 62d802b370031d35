#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The README's first command: a demo firewall applied to a sandbox host, shown as a person wants to see it.

1. start a sandbox host (own network namespace, own /etc, sshd) and two client namespaces,
   one in 198.51.100.0/24 and one in 203.0.113.0/24, on a switch namespace;
2. run the demo playbook against the host over real SSH, twice (the second run changes nothing);
3. print the host's ``iptables -L -v -n --line-numbers`` and ``ip6tables`` listings;
4. probe TCP ports from both clients over IPv4 and IPv6 and print open/blocked;
5. remove everything. The machine's own firewall is never touched.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import sandbox  # noqa: E402

PLAYBOOK = os.path.join(ROOT, "playbooks", "demo.yml")
PORTS = (22, 80, 3306, 8080)


def banner(text):
    print("\n" + "=" * 78 + "\n" + text + "\n" + "=" * 78, flush=True)


def collections_path():
    base = os.path.join(ROOT, ".cache", "collections")
    link = os.path.join(base, "ansible_collections", "ironwall", "iptables")
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(ROOT, link)
    return base


def ansible_playbook(inventory, playbook, extra_vars=None):
    exe = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    argv = [exe if os.path.exists(exe) else "ansible-playbook", "-i", inventory, playbook]
    for k, v in (extra_vars or {}).items():
        argv += ["-e", "%s=%s" % (k, v)]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_HOST_KEY_CHECKING="0",
               ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(argv, env=env, text=True, capture_output=True, check=False)
    print(proc.stdout, end="")
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        raise SystemExit("ansible-playbook failed (rc=%d)" % proc.returncode)
    return proc.stdout


def start_listeners(host):
    """nc listeners inside the host for every probed port, IPv4 and IPv6 (22 is sshd)."""
    for port in PORTS:
        if port == 22:
            continue
        for fam in ("4", "6"):
            host.exec(["sh", "-c", "nohup nc -%s -l -k %d >/dev/null 2>&1 &" % (fam, port)])
    time.sleep(0.3)


def probe_table(host, clients):
    rows = []
    for label, client in clients:
        for fam, addr in (("IPv4", host.addr4), ("IPv6", host.addr6)):
            for port in PORTS:
                ok = sandbox.probe(client, addr, port, timeout=1)
                rows.append((port, "%s (%s)" % (label, client.addr4 if fam == "IPv4" else client.addr6),
                             fam, "open" if ok else "blocked"))
    width = max(len(r[1]) for r in rows)
    lines = ["%-6s %-*s %-5s %s" % ("port", width, "client", "fam", "result")]
    lines += ["%-6d %-*s %-5s %s" % (r[0], width, r[1], r[2], r[3]) for r in rows]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--playbook", default=PLAYBOOK)
    parser.add_argument("--keep-going", action="store_true", help="leave nothing behind even on error (default)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("the demo needs root: it creates network namespaces")
    sandbox.cleanup_stale()
    banner("Building the sandbox: a Debian host with sshd and two clients (198.51.100.0/24, 203.0.113.0/24)")
    t0 = time.time()
    sandbox.ensure_rootfs()
    with sandbox.Lan(prefix="iwl") as lan:
        host = sandbox.Host("demo-fw", lan)
        try:
            host.start()
            trusted = lan.add_client(subnet="198.51.100")
            outsider = lan.add_client(subnet="203.0.113")
            print("host demo-fw at %s / %s, ready in %.1f s" % (host.addr4, host.addr6, time.time() - t0))
            with tempfile.TemporaryDirectory() as tmp:
                inventory = sandbox.write_inventory([host], os.path.join(tmp, "inventory.yml"))
                extra = {"demo_trusted_v4": trusted.addr4, "demo_trusted_v6": trusted.addr6}
                banner("ansible-playbook %s  (first run: converges)" % os.path.relpath(args.playbook, ROOT))
                ansible_playbook(inventory, args.playbook, extra)
                banner("ansible-playbook %s  (second run: must change nothing)" % os.path.relpath(args.playbook, ROOT))
                out = ansible_playbook(inventory, args.playbook, extra)
                host.end_ssh_masters()
            idempotent = "changed=0" in out and "failed=0" in out
            start_listeners(host)
            banner("iptables -L -v -n --line-numbers  (on demo-fw)")
            print(host.exec(["iptables", "-L", "-v", "-n", "--line-numbers"]).stdout)
            banner("ip6tables -L -v -n --line-numbers  (on demo-fw)")
            print(host.exec(["ip6tables", "-L", "-v", "-n", "--line-numbers"]).stdout)
            banner("Probes: TCP connect from each client to demo-fw")
            print(probe_table(host, [("trusted", trusted), ("outsider", outsider)]))
            print("\nsecond run changed nothing: %s" % ("yes" if idempotent else "NO"))
        finally:
            host.stop()
    print("sandbox removed; the machine's own firewall was not touched.")
    return 0 if idempotent else 1


if __name__ == "__main__":
    sys.exit(main())
