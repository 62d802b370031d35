#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A fleet of sandbox hosts plus client namespaces, for the fleet Molecule scenario and bench.

One switch namespace (sandbox.Lan), then:

* two clients: ``trusted`` (198.51.100.2, 2001:db8:100::2: the address a whitelist lets
  in) and ``outsider`` (203.0.113.2, 2001:db8:203::2);
* N firewall hosts ``fw01``.. (sandbox.Host: own netns, own /etc, sshd), reached by
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
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import sandbox  # noqa: E402

LISTEN_PORTS = (80, 3306, 8080)
MANAGEMENT = {"v4": "198.51.100.1", "v6": "2001:db8:100::1"}
SENTINEL = "sentinel"


def host_names(size, prefix="fw"):
    width = max(2, len(str(size)))
    return ["%s%0*d" % (prefix, width, i) for i in range(1, size + 1)]


def _ssh_base(host):
    return ["ssh", "-i", sandbox.SSH_KEY, "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
            "-o", "ConnectTimeout=10"] + \
        [arg for opt in sandbox.ssh_common_options(host.lan) for arg in ("-o", opt)]


def sentinel_path(host):
    return os.path.join(host.control_dir, SENTINEL)


def open_sentinel(host):
    """A backgrounded SSH control master to host; keepalives end it if the session is cut."""
    os.makedirs(host.control_dir, exist_ok=True)
    argv = _ssh_base(host) + ["-M", "-S", sentinel_path(host), "-f", "-N",
                              "-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=3",
                              "root@" + host.addr4]
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


def end_masters(control_dir):
    """`ssh -O exit` every control socket under control_dir (Ansible's and the sentinel)."""
    if not os.path.isdir(control_dir):
        return
    for entry in os.listdir(control_dir):
        subprocess.run(["ssh", "-o", "ControlPath=" + os.path.join(control_dir, entry), "-O", "exit",
                        "fleet-host"], capture_output=True, text=True, timeout=10, check=False)


def start_listeners(host, ports=LISTEN_PORTS):
    script = " ".join("nohup nc -%s -l -k %d >/dev/null 2>&1 &" % (fam, port)
                      for port in ports for fam in ("4", "6"))
    host.exec(["sh", "-c", script + " true"])
    want = set(ports)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = host.exec(["ss", "-Hltn"]).stdout
        seen = {int(f.rpartition(":")[2]) for line in out.splitlines() for f in line.split()[3:4]}
        if want <= seen:
            return
        time.sleep(0.05)
    raise RuntimeError("listeners on %s did not start" % host.name)


class Fleet:
    """Switch + trusted and outsider clients + N hosts; ``with Fleet(6) as fleet: ...``."""

    def __init__(self, size, prefix="fw", listeners=True, sentinels=True):
        if size < 1:
            raise ValueError("fleet size must be at least 1")
        self.size = size
        self.names = host_names(size, prefix)
        self.listeners = listeners
        self.sentinels = sentinels
        self.lan = None
        self.trusted = None
        self.outsider = None
        self.hosts = []

    def start(self):
        sandbox.ensure_rootfs()
        sandbox.ensure_ssh_key()
        self.lan = sandbox.Lan()
        try:
            self.lan.create()
            # Clients first: their addresses stay the same whatever the fleet size.
            self.trusted = self.lan.add_client(subnet="198.51.100")
            self.outsider = self.lan.add_client(subnet="203.0.113")
            self.hosts = sandbox.start_hosts(self.lan, self.names)
            errors = []
            threads = []
            for host in self.hosts:
                if self.listeners:
                    threads.append(threading.Thread(target=_capture(start_listeners, host, errors)))
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
        for host in self.hosts:
            end_masters(host.control_dir)
        for host in reversed(self.hosts):
            host.stop()
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
        common = " ".join("-o %s" % sandbox._shell_quote(o) for o in sandbox.ssh_common_options(self.lan))
        group_vars = {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": sandbox.SSH_KEY,
            "ansible_ssh_common_args": common,
            "ansible_python_interpreter": "/usr/bin/python3",
            "fleet_switch_netns": self.lan.name,
            "fleet_management": MANAGEMENT,
            "fleet_trusted": self.client_vars(self.trusted),
            "fleet_outsider": self.client_vars(self.outsider),
            "fleet_listen_ports": list(LISTEN_PORTS) if self.listeners else [],
        }
        group_vars.update(extra_vars or {})
        lines = ["# Written by tools/fleet.py; the hosts live only while the fleet runs.",
                 "all:", "  children:", "    fleet:", "      hosts:"]
        for host in self.hosts:
            lines.append("        %s:" % host.name)
            hostvars = {
                "ansible_host": host.addr4,
                "sandbox_addr6": host.addr6,
                "sandbox_netns": host.netns.name,
                "ansible_control_path_dir": host.control_dir,
                "fleet_sentinel": sentinel_path(host) if self.sentinels else "",
            }
            lines += ["          %s: %s" % (k, json.dumps(v)) for k, v in hostvars.items()]
        lines.append("      vars:")
        lines += ["        %s: %s" % (k, json.dumps(v)) for k, v in group_vars.items()]
        for group, members in (groups or {}).items():
            lines += ["    %s:" % group, "      hosts:"]
            lines += ["        %s: {}" % name for name in members]
        tmp = "%s.tmp-%d" % (path, os.getpid())
        with open(tmp, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
        return path

    def state(self, inventory):
        return {
            "pid": os.getpid(), "lan": self.lan.name, "inventory": os.path.abspath(inventory),
            "trusted": self.client_vars(self.trusted), "outsider": self.client_vars(self.outsider),
            "hosts": [{"name": h.name, "netns": h.netns.name, "pid": h.pid, "dir": h.dir,
                       "control_dir": h.control_dir, "addr4": h.addr4, "addr6": h.addr6,
                       "sentinel": sentinel_path(h) if self.sentinels else ""}
                      for h in self.hosts],
        }


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
        with open(args.state + ".tmp", "w") as fh:
            json.dump(fleet.state(args.inventory), fh, indent=2)
        os.replace(args.state + ".tmp", args.state)
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
    sandbox.cleanup_stale()
    sandbox.ensure_rootfs()  # here, so a build error shows up in the caller's output
    sandbox.ensure_ssh_key()
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


def _pid_is_holder(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            cmd = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return b"fleet.py" in cmd and b"up" in cmd


def cmd_down(args):
    try:
        with open(args.state) as fh:
            state = json.load(fh)
    except FileNotFoundError:
        print("fleet: no state file %s; nothing to remove" % args.state)
        return 0
    # SSH control masters first, or a later ssh can hang on a socket to a dead host.
    for h in state["hosts"]:
        end_masters(h["control_dir"])
    pid = state["pid"]
    if _pid_is_holder(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 120
        while _pid_is_holder(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not _pid_is_holder(pid) and not os.path.exists(args.state):
            print("fleet: removed %d hosts" % len(state["hosts"]))
            return 0
        print("fleet: holder %d did not finish; cleaning up directly" % pid, file=sys.stderr)
    for h in state["hosts"]:
        shutil.rmtree(h["control_dir"], ignore_errors=True)
        try:
            os.kill(h["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
        sandbox.Netns(h["netns"]).destroy()
        sandbox._remove_host_dir(h["dir"])
    for ns in (state["trusted"]["netns"], state["outsider"]["netns"], state["lan"]):
        sandbox.Netns(ns).destroy()
    for path in (args.state, state.get("inventory")):
        if path and os.path.exists(path):
            os.unlink(path)
    print("fleet: removed %d hosts (directly)" % len(state["hosts"]))
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
