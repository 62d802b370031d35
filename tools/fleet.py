#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A fleet of sandbox hosts plus client namespaces, for the fleet Molecule scenario and bench.

One switch namespace (sandbox_net.Lan), then:

* two clients: ``trusted`` (198.51.100.2, 2001:db8:100::2: the address a whitelist lets
  in) and ``outsider`` (203.0.113.2, 2001:db8:203::2);
* N firewall hosts ``fw01``.. (sandbox_hosts.Host: own netns, own /etc, sshd), reached by
  Ansible over real SSH through the switch, so every SSH connection comes from the
  switch's address 198.51.100.1 (the "management" address);
* optionally TCP listeners on 80, 3306 and 8080 inside every host (IPv4 and IPv6) so
  clients can probe them, and a "sentinel" SSH session per host: a control master
  opened before the firewall is applied, with keepalives, that must still work
  afterwards (no established SSH session may be cut).

CLI (Molecule's create.yml / destroy.yml):

    python3 tools/fleet.py up --size 6 --inventory INV.yml --state STATE.json [--log LOG]
    python3 tools/fleet.py down --state STATE.json

``up`` returns once every host accepts SSH; a detached holder process keeps the fleet
alive (sandbox resources are named after their creator pid) until ``down`` sends it
SIGTERM. ``down`` first ends every SSH control master of the fleet (``ssh -O exit``),
then removes hosts, clients and the switch; if the holder is gone it cleans up directly.
Nothing here touches the machine's own firewall.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

from sandbox_hosts import (
    cleanup_stale, ensure_rootfs, ensure_ssh_key, holder_state, host_names, start_hosts, take_down)
from sandbox_inventory import write_atomically, write_inventory
from sandbox_net import Lan

LISTEN_PORTS = (80, 3306, 8080)
MANAGEMENT = {"v4": "198.51.100.1", "v6": "2001:db8:100::1"}
SENTINEL = "sentinel"


def sentinel_path(host):
    return os.path.join(host.control_dir, SENTINEL)


def open_sentinel(host):
    """A backgrounded SSH control master to host; keepalives end it if the session is cut."""
    os.makedirs(host.control_dir, exist_ok=True)
    argv = host.ssh_argv(options=["-M", "-S", sentinel_path(host), "-f", "-N",
                                  "-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=3"])
    # The backgrounded master keeps its stdout/stderr: no pipes here, or run() waits for it.
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, timeout=30, check=False)
    if proc.returncode != 0 or not sentinel_alive(sentinel_path(host), host.addr4):
        raise RuntimeError("sentinel SSH session to %s (%s) did not open (rc=%d)"
                           % (host.name, host.addr4, proc.returncode))


def sentinel_alive(control_path, addr):
    """True if the sentinel master still runs and can run a command over its session."""
    check = subprocess.run(["ssh", "-S", control_path, "-O", "check", "root@" + addr],
                           capture_output=True, text=True, timeout=10, check=False)
    if check.returncode != 0:
        return False
    # -o ControlMaster=no: reuse the existing session, never open a new TCP connection.
    run = subprocess.run(["ssh", "-S", control_path, "-o", "ControlMaster=no", "-o", "BatchMode=yes",
                          "root@" + addr, "echo sentinel-ok"],
                         capture_output=True, text=True, timeout=20, check=False)
    return run.returncode == 0 and "sentinel-ok" in run.stdout


class Fleet:
    """Switch + trusted and outsider clients + N hosts; ``with Fleet(6) as fleet: ...``."""

    def __init__(self, size, prefix="fw", listeners=True, sentinels=True):
        if size < 1:
            raise ValueError("fleet size must be at least 1")
        self.size = size
        self.names = host_names(prefix, size, width=2)
        self.listeners = listeners
        self.sentinels = sentinels
        self.lan = None
        self.trusted = None
        self.outsider = None
        self.hosts = []

    def start(self):
        self.lan = Lan()
        try:
            self.lan.create()
            # Clients first: their addresses stay the same whatever the fleet size.
            self.trusted = self.lan.add_client(subnet="198.51.100")
            self.outsider = self.lan.add_client(subnet="203.0.113")
            self.hosts = start_hosts(self.lan, self.names)
            errors = []
            threads = []
            for host in self.hosts:
                if self.listeners:
                    threads.append(threading.Thread(target=_capture(_start_listeners, host, errors)))
                if self.sentinels:
                    threads.append(threading.Thread(target=_capture(open_sentinel, host, errors)))
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise errors[0]
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for host in reversed(self.hosts):
            host.stop()  # its SSH control masters first, the sentinel's too
        self.hosts = []
        if self.lan is not None:
            self.lan.destroy()  # also the clients
            self.lan = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def client_vars(self, client):
        return {"netns": client.name, "v4": client.addr4, "v6": client.addr6}

    def write_inventory(self, path, groups=None, extra_vars=None):
        """YAML inventory: every host in group `fleet` (plus `groups`: name -> host names)."""
        group_vars = {
            "fleet_switch_netns": self.lan.name,
            "fleet_management": MANAGEMENT,
            "fleet_trusted": self.client_vars(self.trusted),
            "fleet_outsider": self.client_vars(self.outsider),
            "fleet_listen_ports": list(LISTEN_PORTS) if self.listeners else [],
        }
        group_vars.update(extra_vars or {})
        return write_inventory(self.hosts, path, group="fleet", group_vars=group_vars, groups=groups,
                               host_vars=lambda h: {"fleet_sentinel": sentinel_path(h) if self.sentinels else ""})

    def state(self, inventory):
        return holder_state(self.lan, self.hosts, clients=(self.trusted, self.outsider),
                            inventory=os.path.abspath(inventory),
                            trusted=self.client_vars(self.trusted), outsider=self.client_vars(self.outsider))


def _start_listeners(host):
    host.start_listeners(LISTEN_PORTS)


def _capture(func, host, errors):
    def wrapped():
        try:
            func(host)
        except Exception as exc:  # re-raised by the starting thread
            errors.append(exc)
    return wrapped


# --------------------------------------------------------------------------- CLI

def _hold(args, ready_fd):
    """The detached holder: build the fleet, report, wait for SIGTERM, tear down."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    fleet = Fleet(args.size, prefix=args.prefix, listeners=not args.no_listeners,
                  sentinels=not args.no_sentinels)
    t0 = time.monotonic()
    try:
        fleet.start()
        fleet.write_inventory(args.inventory)
        write_atomically(args.state, json.dumps(fleet.state(args.inventory), indent=2))
        msg = "READY %d hosts in %.2fs: %s\n" % (len(fleet.hosts), time.monotonic() - t0,
                                                 ", ".join("%s=%s" % (h.name, h.addr4) for h in fleet.hosts))
        os.write(ready_fd, msg.encode())
        os.close(ready_fd)
        while not stop.is_set():
            stop.wait(1)
        return 0
    except BaseException as exc:
        try:
            os.write(ready_fd, ("FAILED %s\n" % exc).encode())
        except OSError:
            pass
        raise
    finally:
        fleet.stop()
        for path in (args.state, args.inventory):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def cmd_up(args):
    if os.geteuid() != 0:
        raise SystemExit("fleet: needs root (network namespaces)")
    for path in (args.state, args.inventory):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if os.path.exists(args.state):
        raise SystemExit("fleet: %s exists: run `fleet.py down --state %s` first" % (args.state, args.state))
    cleanup_stale()
    ensure_rootfs()  # here, so a build error shows up in the caller's output
    ensure_ssh_key()
    log = args.log or args.state + ".log"
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the holder: its own session, no terminal, output to the log
        os.close(read_fd)
        os.setsid()
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        rc = 1
        try:
            rc = _hold(args, write_fd)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc)  # never return into the caller's code
    os.close(write_fd)
    with os.fdopen(read_fd) as ready:
        line = ready.readline().strip()
    if line.startswith("READY"):
        print("%s (holder pid %d, state %s)" % (line, pid, args.state))
        return 0
    os.waitpid(pid, 0)
    with open(log) as fh:
        print("fleet: could not start:\n%s\n%s" % (line, fh.read()[-4000:]), file=sys.stderr)
    return 1


def cmd_down(args):
    state, how = take_down(args.state, marker=b"fleet.py", timeout=120)
    if state is None:
        print("fleet: no state file %s; nothing to remove" % args.state)
        return 0
    if os.path.exists(state["inventory"]):
        os.unlink(state["inventory"])
    print("fleet: removed %d hosts%s" % (len(state["hosts"]), " (directly)" if how == "direct" else ""))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("up", help="start the fleet; returns when every host accepts SSH")
    p.add_argument("--size", type=int, default=int(os.environ.get("FLEET_SIZE") or 6))
    p.add_argument("--prefix", default="fw")
    p.add_argument("--inventory", required=True)
    p.add_argument("--state", required=True)
    p.add_argument("--log", help="the holder's log (default: STATE.log)")
    p.add_argument("--no-listeners", action="store_true")
    p.add_argument("--no-sentinels", action="store_true")
    p = sub.add_parser("down", help="end SSH masters, remove everything `up` made")
    p.add_argument("--state", required=True)
    args = parser.parse_args(argv)
    return cmd_up(args) if args.cmd == "up" else cmd_down(args)


if __name__ == "__main__":
    sys.exit(main())
