#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Command line for the network-namespace sandboxes of ironwall.iptables.

    python3 tools/sandbox.py netns-create NAME
    python3 tools/sandbox.py netns-destroy NAME
    python3 tools/sandbox.py host-up --count 3 --prefix node --inventory inv.yml [--state FILE]
    python3 tools/sandbox.py host-down --state FILE
    python3 tools/sandbox.py cleanup
    python3 tools/sandbox.py rootfs

The sandbox itself, for tests, the demo, Molecule and benchmarks, is three modules beside
this one: sandbox_net.py (namespaces, the LAN, probes, iptables backends), sandbox_hosts.py
(full hosts, their rootfs and SSH key, removal) and sandbox_inventory.py (Ansible
inventories for hosts). Nothing here touches the machine's own firewall.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time

from sandbox_hosts import cleanup_stale, ensure_rootfs, holder_state, host_names, start_hosts, take_down
from sandbox_inventory import write_atomically, write_inventory
from sandbox_net import CACHE_DIR, Lan, Netns, unregister

STATE_DIR = os.path.join(CACHE_DIR, "state")


# --------------------------------------------------------------------------- CLI

def _cmd_host_up(args):
    state_path = args.state or os.path.join(STATE_DIR, "host-up-%d.json" % os.getpid())
    os.makedirs(os.path.dirname(os.path.abspath(state_path)), exist_ok=True)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    lan = Lan()
    hosts = []
    try:
        lan.create()
        t0 = time.monotonic()
        hosts = start_hosts(lan, host_names(args.prefix, args.count))
        elapsed = time.monotonic() - t0
        write_inventory(hosts, args.inventory)
        state = holder_state(lan, hosts, inventory=os.path.abspath(args.inventory))
        write_atomically(state_path, json.dumps(state, indent=2))
        print("READY %d hosts in %.2fs inventory=%s state=%s"
              % (len(hosts), elapsed, args.inventory, state_path), flush=True)
        while not stop.is_set():
            stop.wait(1)
            dead = [h.name for h in hosts if h.proc is not None and h.proc.poll() is not None]
            if dead:
                print("hosts died: %s" % ", ".join(dead), file=sys.stderr)
                return 1
        return 0
    finally:
        for h in reversed(hosts):
            h.stop()
        lan.destroy()
        try:
            os.unlink(state_path)
        except FileNotFoundError:
            pass


def _cmd_host_down(args):
    take_down(args.state, marker=b"python", timeout=60)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("netns-create", help="create a bare network namespace (lo up)")
    p.add_argument("name")
    p = sub.add_parser("netns-destroy", help="delete a network namespace")
    p.add_argument("name")
    p = sub.add_parser("host-up", help="start a lan with N hosts; foreground until SIGTERM/SIGINT")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--prefix", default="host")
    p.add_argument("--inventory", required=True)
    p.add_argument("--state", help="state json for host-down (default under tools/cache/state)")
    p = sub.add_parser("host-down", help="stop what host-up started")
    p.add_argument("--state", required=True)
    sub.add_parser("cleanup", help="remove leftovers of dead sandbox creators")
    p = sub.add_parser("rootfs", help="build the cached host rootfs if missing")
    args = parser.parse_args(argv)

    if args.cmd == "netns-create":
        ns = Netns(args.name).create()
        unregister(ns)  # outlives this process on purpose
        print(ns.name)
    elif args.cmd == "netns-destroy":
        Netns(args.name).destroy()
    elif args.cmd == "host-up":
        return _cmd_host_up(args)
    elif args.cmd == "host-down":
        return _cmd_host_down(args)
    elif args.cmd == "cleanup":
        cleanup_stale(verbose=True)
    elif args.cmd == "rootfs":
        print(ensure_rootfs())
    return 0


if __name__ == "__main__":
    sys.exit(main())
