# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Network namespaces and a LAN between them: the bottom layer of the sandbox.

Nothing here touches the machine's own firewall (its root network namespace): every
iptables call goes through ``ip netns exec NS``, and every interface is created inside
a namespace this module made (veth pairs are created from inside the switch namespace
straight into the client namespace).

* ``Netns`` -- a bare network namespace (module tests: load, save, run iptables in it;
  ``listen`` for a TCP server).
* ``Lan`` -- a "switch" namespace with a Linux bridge that routes between
  198.51.100.0/24, 203.0.113.0/24 and 2001:db8:100::/64, 2001:db8:203::/64; clients are
  namespaces attached by veth.  ``probe`` makes a real TCP connection between them.
* ``Router`` -- a router namespace between networks (a WAN and a LAN by default, see
  ``ROUTED_NETS``), each network a switch namespace of its own; hosts are attached to one
  network, with or without the router as their gateway.
* ``backend_bin_dir`` / ``backend_env`` -- iptables of one xtables backend (nft, legacy)
  first on PATH.

Every resource name is ``<prefix>-<creator pid>-...`` (``unique_name``), so that
sandbox_hosts.cleanup_stale() can remove what dead creators left behind; live objects are
also torn down at exit (atexit, SIGTERM).  Full hosts on a Lan are in sandbox_hosts.py.
Standard library only.
"""

from __future__ import annotations

import atexit
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time

TOOLS_DIR = os.path.dirname(os.path.abspath(__file__))
CACHE_DIR = os.path.join(TOOLS_DIR, "cache")

XTABLES = {
    "legacy": "/usr/sbin/xtables-legacy-multi",
    "nft": "/usr/sbin/xtables-nft-multi",
}
XTABLES_NAMES = (
    "iptables", "iptables-save", "iptables-restore",
    "ip6tables", "ip6tables-save", "ip6tables-restore",
)

# Subnets a Lan routes.  Key = IPv4 /24 prefix; value = IPv6 /64 prefix.
SUBNETS = {
    "198.51.100": "2001:db8:100:",
    "203.0.113": "2001:db8:203:",
}
DEFAULT_SUBNET = "198.51.100"

# Networks a Router connects by default: name -> (IPv4 /24 prefix, IPv6 /64 prefix).
# Test addresses only (RFC 5737, RFC 3849).
ROUTED_NETS = (
    ("wan", ("203.0.113", "2001:db8:1:")),
    ("lan", ("198.51.100", "2001:db8:2:")),
)

# Every resource name starts with one of these, then "-<creator pid>-".
NAME_PREFIXES = ("iwt", "iwl", "iwc", "iwh")
NAME_RE = re.compile(r"^(?P<prefix>iw[a-z]*)-(?P<pid>\d+)-")

SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_counter = itertools.count(1)
_live = []  # objects with .destroy()/.stop(), torn down at exit, newest first
_live_lock = threading.Lock()


class SandboxError(subprocess.CalledProcessError):
    """A command failed; str() shows the command, exit code and stderr."""

    def __str__(self):
        cmd = self.cmd if isinstance(self.cmd, str) else " ".join(map(str, self.cmd))
        err = (self.stderr or "").strip()
        out = (self.output or "").strip()
        msg = "command failed (rc=%s): %s" % (self.returncode, cmd)
        if err:
            msg += "\nstderr: " + err
        if out and not err:
            msg += "\nstdout: " + out[-2000:]
        return msg


def run(argv, input=None, check=True, env=None, timeout=None):
    """Run argv in the root namespaces (only `ip`, `ssh`, `mmdebstrap`, etc. -- never iptables)."""
    proc = subprocess.run(
        [str(a) for a in argv], input=input, text=True, capture_output=True,
        env=env, timeout=timeout, check=False,
    )
    if check and proc.returncode != 0:
        raise SandboxError(proc.returncode, proc.args, proc.stdout, proc.stderr)
    return proc


# --------------------------------------------------------------------------- names and teardown

def unique_name(prefix):
    """``prefix-<pid>-<n>``: unique in this process, traceable to it by cleanup_stale()."""
    return "%s-%d-%d" % (prefix, os.getpid(), next(_counter))


def creator_alive(pid, marker=b"python"):
    """True while the process that created sandbox resources runs.

    A recycled pid running something else (its command line lacks ``marker``) is not
    the creator.
    """
    if pid == os.getpid():
        return True
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            cmd = fh.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return marker in cmd


def register(obj):
    """Tear obj down (``obj.stop()`` or ``obj.destroy()``) at exit unless unregistered first."""
    with _live_lock:
        _live.append(obj)
    _install_exit_handlers()


def unregister(obj):
    with _live_lock:
        if obj in _live:
            _live.remove(obj)


def _teardown_all():
    while True:
        with _live_lock:
            if not _live:
                return
            obj = _live.pop()
        try:
            (getattr(obj, "stop", None) or obj.destroy)()
        except Exception as exc:  # keep tearing down the rest
            print("sandbox: cleanup of %r failed: %s" % (obj, exc), file=sys.stderr)


_handlers_installed = False


def _install_exit_handlers():
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_teardown_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _exit_on_signal)


def _exit_on_signal(signum, frame):
    # SystemExit unwinds `with` blocks and then runs atexit: both clean up.
    raise SystemExit(128 + signum)


def pid_alive(pid):
    """True while pid runs; a zombie (dead, waiting for its reaper) counts as gone."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            stat = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def wait_pid_gone(pid, timeout=5.0):
    """Wait until pid is gone; False if it still runs after timeout seconds."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def kill(pid, sig=signal.SIGKILL):
    """Send sig to pid; a process that is already gone is fine."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


# --------------------------------------------------------------------------- backends

def backend_bin_dir(backend):
    """Directory with iptables*/ip6tables* symlinks to one xtables backend.

    Prepend it to PATH (or call its files directly) to make every iptables call use
    ``backend`` ("nft" or "legacy").
    """
    if backend not in XTABLES:
        raise ValueError("backend must be one of %s, not %r" % (sorted(XTABLES), backend))
    target = XTABLES[backend]
    if not os.path.exists(target):
        raise FileNotFoundError("%s not found: install the iptables package" % target)
    bindir = os.path.join(CACHE_DIR, "bin-" + backend)
    os.makedirs(bindir, exist_ok=True)
    for name in XTABLES_NAMES:
        link = os.path.join(bindir, name)
        if os.path.islink(link) and os.readlink(link) == target:
            continue
        tmp = "%s.tmp-%d" % (link, os.getpid())
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        os.symlink(target, tmp)
        os.replace(tmp, link)  # atomic, safe against concurrent callers
    return bindir


def backend_env(backend, env=None):
    """A copy of env (default os.environ) whose PATH starts with backend_bin_dir(backend)."""
    env = dict(os.environ if env is None else env)
    env["PATH"] = backend_bin_dir(backend) + os.pathsep + env.get("PATH", SYS_PATH)
    return env


def family_bin(family, backend, what=None):
    """Path of iptables (family 4) / ip6tables (6) of backend; what: None, "save", "restore"."""
    if family not in (4, 6):
        raise ValueError("family must be 4 or 6, not %r" % (family,))
    name = ("iptables" if family == 4 else "ip6tables") + ("-" + what if what else "")
    return os.path.join(backend_bin_dir(backend), name)


# --------------------------------------------------------------------------- Netns

class Netns:
    """A throwaway network namespace.

    ``with Netns() as ns: ns.load(text); print(ns.save())``
    """

    def __init__(self, name=None, prefix="iwt"):
        self.name = name or unique_name(prefix)
        self.addr4 = None
        self.addr6 = None
        self.created = False
        self._procs = {}  # listener pid -> Popen
        self._ifaces = 0  # eth0, eth1... attached by Lans

    def __repr__(self):
        return "Netns(%r)" % self.name

    def create(self):
        run(["ip", "netns", "add", self.name])
        self.created = True
        register(self)
        run(["ip", "-n", self.name, "link", "set", "lo", "up"])
        return self

    def destroy(self):
        unregister(self)
        for pid in list(self._procs):
            self.stop(pid)
        delete_netns(self.name)
        self.created = False

    def __enter__(self):
        if not self.created:
            self.create()
        return self

    def __exit__(self, *exc):
        self.destroy()

    # -- commands

    def argv(self, argv):
        return ["ip", "netns", "exec", self.name] + [str(a) for a in argv]

    def run(self, argv, input=None, check=True, env=None, *, backend=None, timeout=60):
        """Run argv inside the namespace; text mode, output captured.

        ``env`` is merged over os.environ; ``backend`` ("nft"/"legacy") puts that
        backend's iptables first on PATH.
        """
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        if backend:
            full_env = backend_env(backend, full_env)
        return run(self.argv(argv), input=input, check=check, env=full_env, timeout=timeout)

    def save(self, family=4, backend="nft", counters=False, table=None):
        """What iptables-save (family 4) / ip6tables-save (6) prints in this namespace."""
        argv = [family_bin(family, backend, "save")]
        if counters:
            argv.append("-c")
        if table:
            argv += ["-t", table]
        return self.run(argv).stdout

    def load(self, text, family=4, backend="nft", counters=False, noflush=False):
        """Feed text to iptables-restore / ip6tables-restore in this namespace."""
        argv = [family_bin(family, backend, "restore"), "-w"]
        if counters:
            argv.append("-c")
        if noflush:
            argv.append("--noflush")
        return self.run(argv, input=text)

    def iptables(self, *args, family=4, backend="nft", check=True):
        """Run one iptables/ip6tables command: ``ns.iptables("-A", "INPUT", "-j", "DROP")``."""
        return self.run([family_bin(family, backend), "-w"] + list(args), check=check)

    # -- TCP helpers

    def listen(self, port, family=4, timeout=5.0):
        """Start a background TCP listener (nc -l -k) on port; returns its pid.

        A family=6 listener is dual-stack (it also accepts IPv4 connections), as most
        servers are; the firewall still sees IPv4 packets in iptables, IPv6 in ip6tables.
        """
        if family not in (4, 6):
            raise ValueError("family must be 4 or 6")
        proc = subprocess.Popen(
            self.argv(["nc", "-%d" % family, "-l", "-k", str(port)]),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._procs[proc.pid] = proc
        # ss prints a dual-stack v6 listener as "*:PORT", a v6-only one as "[::]:PORT".
        want = {"0.0.0.0:%d" % port} if family == 4 else {"[::]:%d" % port, "*:%d" % port}
        deadline = time.monotonic() + timeout
        while True:
            ss = self.run(["ss", "-Hltn", "-%d" % family], check=False).stdout
            if any(want & set(line.split()) for line in ss.splitlines()):
                return proc.pid
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                self.stop(proc.pid)
                raise RuntimeError("listener on %s port %d died: %s" % (self.name, port, err))
            if time.monotonic() > deadline:
                self.stop(proc.pid)
                raise RuntimeError("listener on %s port %d did not start" % (self.name, port))
            time.sleep(0.02)

    def stop(self, pid):
        """Stop a listener started by listen()."""
        proc = self._procs.pop(pid, None)
        kill(pid, signal.SIGTERM)
        if proc is None:
            wait_pid_gone(pid)
            return
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def delete_netns(name, check=True):
    """End everything still running in namespace name, then delete it (gone already: fine)."""
    if not os.path.exists("/run/netns/" + name):
        return
    # Anything still running in the namespace was started by whoever used it.
    pids = [int(p) for p in run(["ip", "netns", "pids", name], check=False).stdout.split() if p.isdigit()]
    for pid in pids:
        kill(pid)
    for pid in pids:
        wait_pid_gone(pid)
    proc = run(["ip", "netns", "del", name], check=False)
    if check and proc.returncode != 0 and os.path.exists("/run/netns/" + name):
        raise SandboxError(proc.returncode, proc.args, proc.stdout, proc.stderr)


def probe(client, addr, port, timeout=2):
    """True if a TCP connection from namespace client to addr:port succeeds."""
    proc = client.run(["nc", "-z", "-w", str(timeout), str(addr), str(port)],
                      check=False, timeout=timeout + 10)
    return proc.returncode == 0


def comparable_save(text):
    """iptables-save output without its '#' lines and chain counters, so that two reads of an
    unchanged ruleset compare equal (the tests' own normalization, not the collection's)."""
    return "".join(re.sub(r" \[\d+:\d+\]$", "", line) + "\n"
                   for line in text.split("\n") if line and not line.startswith("#"))


# --------------------------------------------------------------------------- Lan

class Lan:
    """A switch namespace with bridge br0 that also routes between its subnets.

    The switch itself is .1 / ::1 on every subnet and the default gateway of clients.
    """

    def __init__(self, name=None, prefix="iwl"):
        self.switch = Netns(name=name, prefix=prefix)
        self.name = self.switch.name
        self.clients = []      # Netns created by add_client (destroyed with the Lan)
        self.attached = []     # every Netns attached
        self._next = {s: 2 for s in SUBNETS}
        self._port = 0
        self.created = False

    def __repr__(self):
        return "Lan(%r)" % self.name

    def create(self):
        if self.created:
            return self
        self.switch.create()
        unregister(self.switch)  # the Lan tears it down
        self.created = True
        register(self)
        # No duplicate address detection on this private wire: a tentative link-local
        # address would stall IPv6 routing between the subnets for about 2 seconds.
        _no_dad(self.switch)
        self.switch.run(["sysctl", "-qw", "net.ipv4.ip_forward=1",
                         "net.ipv6.conf.all.forwarding=1"])
        cmds = [
            "link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0",
            "link set br0 up",
        ]
        for v4, v6 in SUBNETS.items():
            cmds.append("addr add %s.1/24 dev br0" % v4)
            cmds.append("addr add %s:1/64 dev br0 nodad" % v6)
        _ip_batch(self.name, cmds)
        return self

    def __enter__(self):
        return self.create()

    def __exit__(self, *exc):
        self.destroy()

    def _allocate(self, subnet):
        if subnet not in SUBNETS:
            raise ValueError("subnet must be one of %s" % sorted(SUBNETS))
        n = self._next[subnet]
        if n > 254:
            raise RuntimeError("subnet %s.0/24 of %s is full" % (subnet, self.name))
        self._next[subnet] = n + 1
        return "%s.%d" % (subnet, n), "%s:%x" % (SUBNETS[subnet], n)

    def attach(self, netns, subnet=DEFAULT_SUBNET):
        """Connect netns to the bridge; give it an address on subnet.  Returns (v4, v6)."""
        self.create()
        if not netns.created:
            netns.create()
        v4, v6 = self._allocate(subnet)
        _no_dad(netns)
        self._port += 1
        port = "p%d" % self._port
        ifname = "eth%d" % netns._ifaces
        netns._ifaces += 1
        # The veth pair is born inside the switch ns, its peer moved straight into netns:
        # no interface ever appears in the machine's own namespace.
        _ip_batch(self.name, [
            "link add %s type veth peer name %s netns %s" % (port, ifname, netns.name),
            "link set %s master br0" % port,
            "link set %s up" % port,
        ])
        cmds = [
            "addr add %s/24 dev %s" % (v4, ifname),
            "addr add %s/64 dev %s nodad" % (v6, ifname),
            "link set %s up" % ifname,
        ]
        if netns.addr4 is None:
            cmds += [
                "route add default via %s.1" % subnet,
                "route add ::/0 via %s:1" % SUBNETS[subnet],
            ]
        _ip_batch(netns.name, cmds)
        if netns.addr4 is None:
            netns.addr4, netns.addr6 = v4, v6
        self.attached.append(netns)
        return v4, v6

    def add_client(self, name=None, subnet=DEFAULT_SUBNET):
        """A new namespace attached to the lan (destroyed with it)."""
        self.create()
        client = Netns(name=name, prefix="iwc")
        client.create()
        unregister(client)
        self.clients.append(client)
        try:
            self.attach(client, subnet=subnet)
        except Exception:
            client.destroy()
            raise
        return client

    def destroy(self):
        unregister(self)
        for client in reversed(self.clients):
            client.destroy()
        self.clients = []
        self.switch.destroy()
        self.created = False


def _no_dad(netns):
    if not getattr(netns, "_no_dad", False):
        netns.run(["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
                   "net.ipv6.conf.default.accept_dad=0"])
        netns._no_dad = True


def _ip_batch(ns, cmds):
    """Several `ip` commands in one process, inside namespace ns."""
    run(["ip", "-n", ns, "-batch", "-"], input="\n".join(cmds) + "\n")


# --------------------------------------------------------------------------- Router

class Router:
    """A router namespace between networks, each network a switch namespace of its own.

    ``nets`` is a sequence of (name, (IPv4 /24 prefix, IPv6 /64 prefix)), ``ROUTED_NETS`` (a
    WAN and a LAN) by default. Each network is a bridge in its own switch namespace that has
    no address and routes nothing; the router is attached to every network, in the order
    given (``eth0``, ``eth1``...), as ``.1`` / ``::1``, with IPv4 and IPv6 forwarding on.
    ``add_host(net)`` attaches a new namespace as ``.2``, ``.3``... (``::2``...); with
    ``gateway=True`` (the default) its default routes point at the router, with
    ``gateway=False`` it reaches only its own network -- as a host on the internet knows no
    route to a LAN's private addresses, so that only NAT on the router lets the LAN reach it.

    ``with Router() as r: c = r.add_host("wan", gateway=False); r.addr("wan", 4)``
    """

    def __init__(self, nets=ROUTED_NETS, prefix="iwt"):
        self.nets = tuple((name, tuple(pfx)) for name, pfx in nets)
        if len(set(name for name, _net in self.nets)) != len(self.nets):
            raise ValueError("network names must be unique: %r" % (nets,))
        self.router = Netns(prefix=prefix)
        self.name = self.router.name
        self.switches = {}     # net name -> Netns holding its bridge
        self.hosts = []        # Netns added by add_host (destroyed with the Router)
        self._ifaces = {}      # net name -> the router's interface on it
        self._next = {}
        self._port = 0
        self.created = False

    def __repr__(self):
        return "Router(%r)" % self.name

    def _net(self, net):
        for name, pfx in self.nets:
            if name == net:
                return pfx
        raise ValueError("no network %r (have %s)" % (net, ", ".join(n for n, _net in self.nets)))

    def addr(self, net, family=4, host=1):
        """Address number ``host`` (1: the router) on network ``net``, IPv4 (4) or IPv6 (6)."""
        v4, v6 = self._net(net)
        return "%s.%d" % (v4, host) if family == 4 else "%s:%x" % (v6, host)

    def network(self, net, family=4):
        """The network ``net`` in CIDR form: ``203.0.113.0/24``, ``2001:db8:1::/64``."""
        v4, v6 = self._net(net)
        return "%s.0/24" % v4 if family == 4 else "%s:/64" % v6

    def iface(self, net):
        """The router's interface on network ``net`` (``eth0``...)."""
        self._net(net)
        return self._ifaces[net]

    def create(self):
        if self.created:
            return self
        self.router.create()
        unregister(self.router)  # the Router tears it down
        self.created = True
        register(self)
        try:
            _no_dad(self.router)
            self.router.run(["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"])
            for net, _pfx in self.nets:
                switch = Netns(prefix="iwl")
                switch.create()
                unregister(switch)
                self.switches[net] = switch
                _ip_batch(switch.name, [
                    "link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0",
                    "link set br0 up",
                ])
                self._next[net] = 2
                self._ifaces[net] = self._plug(net, self.router, 1, gateway=False)
        except Exception:
            self.destroy()
            raise
        return self

    def __enter__(self):
        return self.create()

    def __exit__(self, *exc):
        self.destroy()

    def _plug(self, net, netns, host, gateway):
        """A veth from the switch of ``net`` into ``netns``, addressed as number ``host``."""
        switch = self.switches[net]
        _no_dad(netns)
        self._port += 1
        port = "p%d" % self._port
        ifname = "eth%d" % netns._ifaces
        netns._ifaces += 1
        # Born in the switch namespace, the peer moved straight into netns: no interface ever
        # appears in the machine's own namespace.
        _ip_batch(switch.name, [
            "link add %s type veth peer name %s netns %s" % (port, ifname, netns.name),
            "link set %s master br0" % port,
            "link set %s up" % port,
        ])
        v4, v6 = self.addr(net, 4, host), self.addr(net, 6, host)
        cmds = [
            "addr add %s/24 dev %s" % (v4, ifname),
            "addr add %s/64 dev %s nodad" % (v6, ifname),
            "link set %s up" % ifname,
        ]
        if gateway:
            cmds += ["route add default via %s" % self.addr(net, 4),
                     "route add ::/0 via %s" % self.addr(net, 6)]
        _ip_batch(netns.name, cmds)
        if netns.addr4 is None:
            netns.addr4, netns.addr6 = v4, v6
        return ifname

    def add_host(self, net, gateway=True, name=None):
        """A new namespace on network ``net`` (destroyed with the Router); its ``addr4`` /
        ``addr6`` are set. ``gateway``: route everything else via the router."""
        self.create()
        self._net(net)
        n = self._next[net]
        if n > 254:
            raise RuntimeError("network %s of %s is full" % (net, self.name))
        self._next[net] = n + 1
        host = Netns(name=name, prefix="iwc")
        host.create()
        unregister(host)
        self.hosts.append(host)
        try:
            self._plug(net, host, n, gateway)
        except Exception:
            self.hosts.remove(host)
            host.destroy()
            raise
        return host

    def destroy(self):
        unregister(self)
        for host in reversed(self.hosts):
            host.destroy()
        self.hosts = []
        for switch in self.switches.values():
            switch.destroy()
        self.switches = {}
        self.router.destroy()
        self.created = False
