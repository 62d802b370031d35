#!/usr/bin/env python
"""Network-namespace sandboxes for ironwall.iptables tests, demo, Molecule and benchmarks.

Nothing here touches the machine's own firewall (its root network namespace): every
iptables call goes through ``ip netns exec NS``, and every interface is created inside
a namespace this module made (veth pairs are created from inside the switch namespace
straight into the client namespace).

Three levels:

* ``Netns`` -- a bare network namespace (module tests: load, save, run iptables in it).
* ``Lan`` -- a "switch" namespace with a Linux bridge that routes between
  198.51.100.0/24, 203.0.113.0/24 and 2001:db8:100::/64, 2001:db8:203::/64; clients are
  namespaces attached by veth.  Real TCP flows (``Netns.listen`` / ``probe``).
* ``Host`` -- a full host (DESIGN.md section 6): netns + private mount/UTS/PID namespaces,
  root = overlay of a shared read-only Debian rootfs and a per-host upper dir, ``sshd -D``
  inside, root login with one generated key.  Ansible reaches it through the switch
  namespace (``write_inventory``).

Every resource name is ``<prefix>-<creator pid>-...`` so ``cleanup_stale()`` can remove
what dead creators left behind; live objects are also torn down at exit (atexit, SIGTERM).

Standard library only.  Usable as ``import sandbox`` (tools/ on sys.path) and as a CLI:

    python3 tools/sandbox.py netns-create NAME
    python3 tools/sandbox.py netns-destroy NAME
    python3 tools/sandbox.py host-up --count 3 --prefix node --inventory inv.yml [--state FILE]
    python3 tools/sandbox.py host-down --state FILE
    python3 tools/sandbox.py cleanup
"""

from __future__ import annotations

import argparse
import atexit
import fcntl
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

TOOLS_DIR = os.path.dirname(os.path.abspath(__file__))
CACHE_DIR = os.path.join(TOOLS_DIR, "cache")
ROOTFS_DIR = os.path.join(CACHE_DIR, "rootfs")
ROOTFS_STAMP = os.path.join(CACHE_DIR, "rootfs.stamp")
HOSTS_DIR = os.path.join(CACHE_DIR, "hosts")
SSH_DIR = os.path.join(CACHE_DIR, "ssh")
SSH_KEY = os.path.join(SSH_DIR, "id_ed25519")
CONTROL_DIR = os.path.join(CACHE_DIR, "cp")
STATE_DIR = os.path.join(CACHE_DIR, "state")

ROOTFS_PACKAGES = (
    "python3", "iptables", "ipset", "ifupdown", "iproute2", "netcat-openbsd",
    "openssh-server", "procps", "sudo",
)
ROOTFS_SUITE = "bookworm"

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

# Every resource name starts with one of these, then "-<creator pid>-".
NAME_PREFIXES = ("iwt", "iwl", "iwc", "iwh")
_NAME_RE = re.compile(r"^(?P<prefix>iw[a-z]*)-(?P<pid>\d+)-")

_SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
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


def _run(argv, input=None, check=True, env=None, timeout=None):
    """Run argv in the root namespaces (only `ip`, `ssh`, `mmdebstrap`, etc. -- never iptables)."""
    proc = subprocess.run(
        [str(a) for a in argv], input=input, text=True, capture_output=True,
        env=env, timeout=timeout, check=False,
    )
    if check and proc.returncode != 0:
        raise SandboxError(proc.returncode, proc.args, proc.stdout, proc.stderr)
    return proc


def unique_name(prefix):
    """``prefix-<pid>-<n>``: unique in this process, traceable to it by cleanup_stale()."""
    return "%s-%d-%d" % (prefix, os.getpid(), next(_counter))


def _register(obj):
    with _live_lock:
        _live.append(obj)
    _install_exit_handlers()


def _unregister(obj):
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


def _pid_alive(pid):
    """True while pid runs; a zombie (dead, waiting for its reaper) counts as gone."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            stat = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _wait_pid_gone(pid, timeout=5.0):
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


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
    env["PATH"] = backend_bin_dir(backend) + os.pathsep + env.get("PATH", _SYS_PATH)
    return env


def collections_link(root=None):
    """A collections root where ironwall.iptables resolves to this checkout (``root``, default the
    parent of tools/): .cache/collections/ansible_collections/ironwall/iptables, a link made once."""
    root = root or os.path.dirname(TOOLS_DIR)
    base = os.path.join(root, ".cache", "collections")
    link = os.path.join(base, "ansible_collections", "ironwall", "iptables")
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(root, link)
    return base


def _family_bin(family, backend, what):
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
        self._listeners = []
        self._ifaces = 0  # eth0, eth1... attached by Lans

    def __repr__(self):
        return "Netns(%r)" % self.name

    def create(self):
        _run(["ip", "netns", "add", self.name])
        self.created = True
        _register(self)
        _run(["ip", "-n", self.name, "link", "set", "lo", "up"])
        return self

    def destroy(self):
        _unregister(self)
        for pid in list(self._listeners):
            self.stop(pid)
        if not os.path.exists("/run/netns/" + self.name):
            self.created = False
            return
        # Anything still running in the namespace was started by whoever uses it.
        _kill_netns_pids(self.name)
        proc = _run(["ip", "netns", "del", self.name], check=False)
        if proc.returncode != 0 and os.path.exists("/run/netns/" + self.name):
            raise SandboxError(proc.returncode, proc.args, proc.stdout, proc.stderr)
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
        return _run(self.argv(argv), input=input, check=check, env=full_env, timeout=timeout)

    def save(self, family=4, backend="nft", counters=False, table=None):
        """What iptables-save (family 4) / ip6tables-save (6) prints in this namespace."""
        argv = [_family_bin(family, backend, "save")]
        if counters:
            argv.append("-c")
        if table:
            argv += ["-t", table]
        return self.run(argv).stdout

    def load(self, text, family=4, backend="nft", counters=False, noflush=False):
        """Feed text to iptables-restore / ip6tables-restore in this namespace."""
        argv = [_family_bin(family, backend, "restore"), "-w"]
        if counters:
            argv.append("-c")
        if noflush:
            argv.append("--noflush")
        return self.run(argv, input=text)

    def iptables(self, *args, family=4, backend="nft", check=True):
        """Run one iptables/ip6tables command: ``ns.iptables("-A", "INPUT", "-j", "DROP")``."""
        return self.run([_family_bin(family, backend, None), "-w"] + list(args), check=check)

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
        self._listeners.append(proc.pid)
        self._procs = getattr(self, "_procs", {})
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
                self._listeners.remove(proc.pid)
                raise RuntimeError("listener on %s port %d died: %s" % (self.name, port, err))
            if time.monotonic() > deadline:
                self.stop(proc.pid)
                raise RuntimeError("listener on %s port %d did not start" % (self.name, port))
            time.sleep(0.02)

    def stop(self, pid):
        """Stop a listener started by listen()."""
        proc = getattr(self, "_procs", {}).pop(pid, None)
        if pid in self._listeners:
            self._listeners.remove(pid)
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr:
                proc.stderr.close()
        else:
            _wait_pid_gone(pid)


def probe(client, addr, port, timeout=2):
    """True if a TCP connection from namespace client to addr:port succeeds."""
    proc = client.run(["nc", "-z", "-w", str(timeout), str(addr), str(port)],
                      check=False, timeout=timeout + 10)
    return proc.returncode == 0


def comparable_save(text):
    """iptables-save output without its '#' lines and chain counters, so that two reads of an
    unchanged ruleset compare equal (the tests' own normalization, not the collection's)."""
    return "".join(re.sub(r" \[\d+:\d+\]$", "", line) + "\n"
                   for line in text.splitlines() if not line.startswith("#"))


def _netns_pids(name):
    proc = _run(["ip", "netns", "pids", name], check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def _kill_netns_pids(name):
    pids = _netns_pids(name)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in pids:
        _wait_pid_gone(pid)


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
        _unregister(self.switch)  # the Lan tears it down
        self.created = True
        _register(self)
        sw = self.name
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
        _ip_batch(sw, cmds)
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
        _unregister(client)
        self.clients.append(client)
        try:
            self.attach(client, subnet=subnet)
        except Exception:
            client.destroy()
            raise
        return client

    def destroy(self):
        _unregister(self)
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
    _run(["ip", "-n", ns, "-batch", "-"], input="\n".join(cmds) + "\n")


# --------------------------------------------------------------------------- rootfs and keys

def _rootfs_signature():
    return "mmdebstrap minbase %s %s\n" % (ROOTFS_SUITE, ",".join(ROOTFS_PACKAGES))


def _rootfs_ok():
    try:
        with open(ROOTFS_STAMP) as fh:
            stamp = fh.read()
    except FileNotFoundError:
        return False
    return stamp == _rootfs_signature() and all(
        os.path.exists(os.path.join(ROOTFS_DIR, p))
        for p in ("usr/sbin/sshd", "usr/bin/python3", "usr/sbin/xtables-nft-multi",
                  "etc/ssh/ssh_host_ed25519_key", "etc/ssh/sshd_config.d/ironwall-sandbox.conf")
    )


def ensure_rootfs():
    """The shared read-only Debian rootfs for hosts; built once (about 20 s), then cached."""
    os.makedirs(CACHE_DIR, exist_ok=True)
    if _rootfs_ok():
        return ROOTFS_DIR
    with open(os.path.join(CACHE_DIR, "rootfs.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it
        if _rootfs_ok():
            return ROOTFS_DIR
        build = "%s.build-%d" % (ROOTFS_DIR, os.getpid())
        shutil.rmtree(build, ignore_errors=True)
        try:
            _run(["mmdebstrap", "--variant=minbase",
                  "--include=" + ",".join(ROOTFS_PACKAGES), ROOTFS_SUITE, build],
                 timeout=1800)
            _prepare_rootfs(build)
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
        try:
            os.unlink(ROOTFS_STAMP)
        except FileNotFoundError:
            pass
        shutil.rmtree(ROOTFS_DIR, ignore_errors=True)
        os.rename(build, ROOTFS_DIR)
        with open(ROOTFS_STAMP, "w") as fh:
            fh.write(_rootfs_signature())
    return ROOTFS_DIR


def _prepare_rootfs(root):
    """One-time edits shared by all hosts (each host still gets its own /etc via overlay)."""
    keys = [f for f in os.listdir(os.path.join(root, "etc/ssh")) if f.startswith("ssh_host_")]
    if not keys:
        _run(["chroot", root, "ssh-keygen", "-A"])
    conf = os.path.join(root, "etc/ssh/sshd_config.d/ironwall-sandbox.conf")
    with open(conf, "w") as fh:
        fh.write(
            "# ironwall sandbox host: key-only root login, fast logins\n"
            "PermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\n"
            "UseDNS no\n"
            "MaxStartups 100:30:200\n"
            "MaxSessions 50\n"
        )
    os.makedirs(os.path.join(root, "root/.ssh"), mode=0o700, exist_ok=True)


def ensure_ssh_key():
    """Path of the private key authorized for root on every host (generated once)."""
    os.makedirs(SSH_DIR, mode=0o700, exist_ok=True)
    with open(os.path.join(SSH_DIR, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (os.path.exists(SSH_KEY) and os.path.exists(SSH_KEY + ".pub")):
            for p in (SSH_KEY, SSH_KEY + ".pub"):
                if os.path.exists(p):
                    os.unlink(p)
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ironwall-sandbox",
                  "-f", SSH_KEY])
    os.chmod(SSH_KEY, 0o600)
    return SSH_KEY


# --------------------------------------------------------------------------- Host

_HOST_SCRIPT = r"""
set -e
M="$1"; U="$2"; W="$3"; L="$4"; H="$5"; K="$6"
mount -t overlay overlay -o "lowerdir=$L,upperdir=$U,workdir=$W" "$M"
mount -t proc proc "$M/proc"
mount -t sysfs sysfs "$M/sys"
mount --rbind /dev "$M/dev"
mount -t tmpfs -o mode=755 tmpfs "$M/run"
mount -t tmpfs -o mode=1777 tmpfs "$M/tmp"
mkdir -p "$M/run/sshd" "$M/run/lock" "$M/root/.ssh"
hostname "$H"
echo "$H" > "$M/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$H" > "$M/etc/hosts"
cat "$K" > "$M/root/.ssh/authorized_keys"
chmod 700 "$M/root/.ssh"; chmod 600 "$M/root/.ssh/authorized_keys"
exec chroot "$M" /usr/sbin/sshd -D -e
"""


class Host:
    """A full Debian host in namespaces, reachable by SSH through the Lan's switch."""

    def __init__(self, name, lan, subnet=DEFAULT_SUBNET):
        if not re.match(r"^[a-z0-9][a-z0-9-]{0,30}$", name):
            raise ValueError("host name %r: use [a-z0-9-], at most 31 characters" % name)
        self.name = name
        self.lan = lan
        self.subnet = subnet
        self.netns = Netns(name="iwh-%d-%s" % (os.getpid(), name))
        self.id = self.netns.name
        self.dir = os.path.join(HOSTS_DIR, self.id)
        self.control_dir = os.path.join(CONTROL_DIR, self.id)
        self.addr4 = None
        self.addr6 = None
        self.proc = None
        self.pid = None
        self._log = None

    def __repr__(self):
        return "Host(%r, %s)" % (self.name, self.addr4)

    # -- lifecycle

    def start(self, wait=True, timeout=60):
        """Create netns, mount overlay root in private namespaces, run sshd."""
        rootfs = ensure_rootfs()
        key = ensure_ssh_key()
        self.lan.create()
        self.netns.create()
        _unregister(self.netns)
        _register(self)
        self.addr4, self.addr6 = self.lan.attach(self.netns, subnet=self.subnet)
        shutil.rmtree(self.dir, ignore_errors=True)
        for sub in ("upper", "work", "merged"):
            os.makedirs(os.path.join(self.dir, sub))
        os.makedirs(self.control_dir, exist_ok=True)
        self._log = open(os.path.join(self.dir, "host.log"), "w+")
        self.proc = subprocess.Popen(
            self.netns.argv([
                "unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child",
                "--propagation", "private",
                "sh", "-c", _HOST_SCRIPT, "host",
                os.path.join(self.dir, "merged"), os.path.join(self.dir, "upper"),
                os.path.join(self.dir, "work"), rootfs, self.name, key + ".pub",
            ]),
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
            env={"PATH": _SYS_PATH, "LANG": "C.UTF-8"},
        )
        self.pid = self.proc.pid  # `ip netns exec` execs, so this is unshare's pid
        if wait:
            self.wait_ready(timeout=timeout)
        return self

    def wait_ready(self, timeout=60):
        """Block until sshd accepts TCP connections through the switch."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("host %s exited (rc=%s) before sshd was ready:\n%s"
                                   % (self.name, self.proc.returncode, self.log()))
            if probe(self.lan.switch, self.addr4, 22, timeout=1):
                return self
            if time.monotonic() > deadline:
                raise RuntimeError("host %s: sshd not reachable on %s:22 after %ss:\n%s"
                                   % (self.name, self.addr4, timeout, self.log()))
            time.sleep(0.05)

    def log(self):
        if not self._log:
            return ""
        self._log.flush()
        with open(self._log.name) as fh:
            return fh.read()[-4000:]

    def end_ssh_masters(self):
        """`ssh -O exit` every control master under this host's control dir, remove sockets."""
        if not os.path.isdir(self.control_dir):
            return
        for entry in os.listdir(self.control_dir):
            sock = os.path.join(self.control_dir, entry)
            _run(["ssh", "-o", "ControlPath=" + sock, "-O", "exit", "sandbox-host"],
                 check=False, timeout=10)
            try:
                os.unlink(sock)
            except FileNotFoundError:
                pass
        shutil.rmtree(self.control_dir, ignore_errors=True)

    def stop(self):
        """SIGKILL the unshare process (its --kill-child ends the rest), remove all traces."""
        _unregister(self)
        self.end_ssh_masters()
        try:
            init = self._init_pid() if self.proc is not None else None
        except (OSError, RuntimeError, ValueError):
            init = None
        if self.proc is not None:
            try:
                self.proc.send_signal(signal.SIGKILL)  # unshare --fork ignores SIGTERM
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None
        if init is not None and not _wait_pid_gone(init, timeout=10):
            raise RuntimeError("host %s: init pid %d survived SIGKILL" % (self.name, init))
        self.netns.destroy()  # also kills anything left in the netns (nsenter'd commands)
        if self._log:
            self._log.close()
            self._log = None
        _remove_host_dir(self.dir)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- running commands inside

    def _init_pid(self):
        """Pid (in our pid namespace) of the host's pid 1 (sshd after chroot)."""
        with open("/proc/%d/task/%d/children" % (self.pid, self.pid)) as fh:
            kids = fh.read().split()
        if not kids:
            raise RuntimeError("host %s has no init process" % self.name)
        return int(kids[0])

    def exec(self, argv, input=None, check=True, timeout=120):
        """Run argv inside the host (nsenter into its namespaces and chroot)."""
        init = self._init_pid()
        full = ["nsenter", "-t", str(init), "--mount", "--uts", "--net", "--pid",
                "--root", "--wd=/", "--", "/usr/bin/env", "-i",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME=/root", "LANG=C.UTF-8", "TERM=dumb"] + [str(a) for a in argv]
        return _run(full, input=input, check=check, timeout=timeout)

    def ssh_argv(self, command=None):
        """ssh argv (for subprocess) that logs in as root on this host through the switch."""
        argv = ["ssh", "-i", SSH_KEY, "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                "-o", "ConnectTimeout=10"]
        for opt in ssh_common_options(self.lan):
            argv += ["-o", opt]
        argv.append("root@" + self.addr4)
        if command is not None:
            argv.append(command)
        return argv

    def ssh(self, command, input=None, check=True, timeout=60):
        """Run a shell command on the host over real SSH."""
        return _run(self.ssh_argv(command), input=input, check=check, timeout=timeout)


def _remove_host_dir(path):
    # The overlay was mounted in the host's private mount namespace, which is gone by now;
    # refuse to recurse into a directory that is still a mount point on this machine.
    merged = os.path.join(path, "merged")
    if os.path.ismount(merged):
        raise RuntimeError("%s is still mounted; not removing it" % merged)
    shutil.rmtree(path, ignore_errors=True)


def ssh_common_options(lan):
    return [
        "ProxyCommand=ip netns exec %s nc -q 0 %%h %%p" % lan.name,
        "StrictHostKeyChecking=no",
        "UserKnownHostsFile=/dev/null",
    ]


def start_hosts(lan, names, timeout=120):
    """Start several hosts in parallel (launch all, then wait for all).  Returns [Host]."""
    hosts = []
    try:
        for name in names:
            host = Host(name, lan)
            hosts.append(host)
            host.start(wait=False)
        for host in hosts:
            host.wait_ready(timeout=timeout)
    except BaseException:
        for host in reversed(hosts):
            host.stop()
        raise
    return hosts


# --------------------------------------------------------------------------- inventory

def _yaml_scalar(value):
    # JSON scalars and flow collections are valid YAML.
    return json.dumps(value)


def write_inventory(hosts, path, extra_vars=None):
    """Write a YAML Ansible inventory for hosts (all in group `all`, also `sandbox`)."""
    hosts = list(hosts)
    if not hosts:
        raise ValueError("no hosts")
    lan = hosts[0].lan
    common = " ".join("-o %s" % _shell_quote(o) for o in ssh_common_options(lan))
    group_vars = {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": SSH_KEY,
        "ansible_ssh_common_args": common,
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    group_vars.update(extra_vars or {})
    lines = ["# Written by tools/sandbox.py; hosts live only while their sandbox runs.",
             "all:", "  children:", "    sandbox:", "      hosts:"]
    for host in hosts:
        lines.append("        %s:" % host.name)
        hv = {
            "ansible_host": host.addr4,
            "sandbox_addr6": host.addr6,
            "sandbox_netns": host.netns.name,
            "ansible_control_path_dir": host.control_dir,
        }
        for k, v in hv.items():
            lines.append("          %s: %s" % (k, _yaml_scalar(v)))
    lines.append("      vars:")
    for k, v in group_vars.items():
        lines.append("        %s: %s" % (k, _yaml_scalar(v)))
    text = "\n".join(lines) + "\n"
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path


def _shell_quote(opt):
    # ProxyCommand=ip netns exec X nc ... -> ProxyCommand='ip netns exec X nc ...'
    if " " in opt:
        key, _sep, val = opt.partition("=")
        return "%s='%s'" % (key, val)
    return opt


# --------------------------------------------------------------------------- stale cleanup

def _creator_alive(pid):
    if pid == os.getpid():
        return True
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            cmd = fh.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return b"python" in cmd  # a recycled pid running something else is not our creator


def cleanup_stale(verbose=False):
    """Remove namespaces, host dirs and control dirs whose creating process is gone."""
    removed = []
    names = _run(["ip", "netns", "list"], check=False).stdout.split("\n")
    for line in names:
        name = line.split(" ")[0].strip()
        m = _NAME_RE.match(name)
        if not m or m.group("prefix") not in NAME_PREFIXES:
            continue
        if _creator_alive(int(m.group("pid"))):
            continue
        _kill_netns_pids(name)
        _run(["ip", "netns", "del", name], check=False)
        removed.append("netns " + name)
    for base in (HOSTS_DIR, CONTROL_DIR):
        if not os.path.isdir(base):
            continue
        for entry in os.listdir(base):
            m = _NAME_RE.match(entry)
            if not m or _creator_alive(int(m.group("pid"))):
                continue
            path = os.path.join(base, entry)
            if base == CONTROL_DIR:
                for sock in os.listdir(path):
                    _run(["ssh", "-o", "ControlPath=" + os.path.join(path, sock),
                          "-O", "exit", "sandbox-host"], check=False, timeout=10)
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    _remove_host_dir(path)
                except RuntimeError as exc:
                    print("sandbox: %s" % exc, file=sys.stderr)
                    continue
            removed.append(path)
    if verbose:
        for r in removed:
            print("removed", r)
    return removed


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
        width = len(str(args.count))
        names = ["%s%0*d" % (args.prefix, width, i) for i in range(1, args.count + 1)]
        t0 = time.monotonic()
        hosts = start_hosts(lan, names)
        elapsed = time.monotonic() - t0
        write_inventory(hosts, args.inventory)
        state = {
            "pid": os.getpid(), "lan": lan.name, "inventory": os.path.abspath(args.inventory),
            "hosts": [{"name": h.name, "netns": h.netns.name, "pid": h.pid, "dir": h.dir,
                       "control_dir": h.control_dir, "addr4": h.addr4, "addr6": h.addr6}
                      for h in hosts],
        }
        with open(state_path + ".tmp", "w") as fh:
            json.dump(state, fh, indent=2)
        os.replace(state_path + ".tmp", state_path)
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
    with open(args.state) as fh:
        state = json.load(fh)
    pid = state["pid"]
    if _creator_alive(pid):
        os.kill(pid, signal.SIGTERM)
        if _wait_pid_gone(pid, timeout=60):
            return 0
        print("host-up pid %d did not exit; cleaning up directly" % pid, file=sys.stderr)
    for h in state["hosts"]:
        for sock in os.listdir(h["control_dir"]) if os.path.isdir(h["control_dir"]) else []:
            _run(["ssh", "-o", "ControlPath=" + os.path.join(h["control_dir"], sock),
                  "-O", "exit", "sandbox-host"], check=False, timeout=10)
        shutil.rmtree(h["control_dir"], ignore_errors=True)
        try:
            os.kill(h["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
        _kill_netns_pids(h["netns"])
        _run(["ip", "netns", "del", h["netns"]], check=False)
        _remove_host_dir(h["dir"])
    _kill_netns_pids(state["lan"])
    _run(["ip", "netns", "del", state["lan"]], check=False)
    try:
        os.unlink(args.state)
    except FileNotFoundError:
        pass
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
        _unregister(ns)  # outlives this process on purpose
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
