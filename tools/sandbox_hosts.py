# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Full sandbox hosts on a sandbox_net.Lan, the Debian rootfs they share, and their removal.

A ``Host`` is DESIGN.md section 6's host: a network namespace plus private mount/UTS/PID
namespaces whose root is an overlay of a shared read-only Debian rootfs (``ensure_rootfs``,
built once with mmdebstrap and cached under tools/cache) and a per-host upper dir, running
``sshd -D``; root logs in with one generated key (``ensure_ssh_key``).  SSH goes through the
switch namespace (``ssh_common_options``), never through the machine's own network.

``start_hosts`` starts several at once.  A process that keeps hosts up for others
(``sandbox.py host-up``, ``fleet.py up``) records them in a state file (``holder_state``);
``take_down`` removes them from that file, through the holder or directly.
``cleanup_stale`` removes what dead creators left behind.  Standard library only.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

from sandbox_net import (
    CACHE_DIR, DEFAULT_SUBNET, NAME_PREFIXES, NAME_RE, SYS_PATH, Netns, creator_alive, delete_netns, kill,
    probe, register, run, unregister, wait_pid_gone)

ROOTFS_DIR = os.path.join(CACHE_DIR, "rootfs")
ROOTFS_STAMP = os.path.join(CACHE_DIR, "rootfs.stamp")
HOSTS_DIR = os.path.join(CACHE_DIR, "hosts")
SSH_DIR = os.path.join(CACHE_DIR, "ssh")
SSH_KEY = os.path.join(SSH_DIR, "id_ed25519")
CONTROL_DIR = os.path.join(CACHE_DIR, "cp")

ROOTFS_PACKAGES = (
    "python3", "iptables", "ipset", "ifupdown", "iproute2", "netcat-openbsd",
    "openssh-server", "procps", "sudo",
)
ROOTFS_SUITE = "bookworm"


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
            run(["mmdebstrap", "--variant=minbase",
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
        run(["chroot", root, "ssh-keygen", "-A"])
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
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ironwall-sandbox",
                 "-f", SSH_KEY])
    os.chmod(SSH_KEY, 0o600)
    return SSH_KEY


# --------------------------------------------------------------------------- SSH

def ssh_common_options(lan):
    """ssh -o options that reach hosts on lan through its switch namespace."""
    return [
        "ProxyCommand=ip netns exec %s nc -q 0 %%h %%p" % lan.name,
        "StrictHostKeyChecking=no",
        "UserKnownHostsFile=/dev/null",
    ]


def end_ssh_masters(control_dir):
    """`ssh -O exit` every control master under control_dir (Ansible's and any other), then
    remove the directory: a socket left to a dead host can make a later ssh hang."""
    if not os.path.isdir(control_dir):
        return
    for entry in os.listdir(control_dir):
        sock = os.path.join(control_dir, entry)
        run(["ssh", "-o", "ControlPath=" + sock, "-O", "exit", "sandbox-host"], check=False, timeout=10)
        try:
            os.unlink(sock)
        except FileNotFoundError:
            pass
    shutil.rmtree(control_dir, ignore_errors=True)


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
        unregister(self.netns)
        register(self)
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
            env={"PATH": SYS_PATH, "LANG": "C.UTF-8"},
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
        end_ssh_masters(self.control_dir)

    def stop(self):
        """SIGKILL the unshare process (its --kill-child ends the rest), remove all traces."""
        unregister(self)
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
        if init is not None and not wait_pid_gone(init, timeout=10):
            raise RuntimeError("host %s: init pid %d survived SIGKILL" % (self.name, init))
        self.netns.destroy()  # also kills anything left in the netns (nsenter'd commands)
        if self._log:
            self._log.close()
            self._log = None
        remove_host_dir(self.dir)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def state(self):
        """What take_down needs to remove this host when its creator is gone (JSON-able)."""
        return {"name": self.name, "netns": self.netns.name, "pid": self.pid, "dir": self.dir,
                "control_dir": self.control_dir, "addr4": self.addr4, "addr6": self.addr6}

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
                "--root", "--wd=/", "--", "/usr/bin/env", "-i", "PATH=" + SYS_PATH,
                "HOME=/root", "LANG=C.UTF-8", "TERM=dumb"] + [str(a) for a in argv]
        return run(full, input=input, check=check, timeout=timeout)

    def start_listeners(self, ports, timeout=10):
        """TCP listeners on ports inside the host, IPv4 and IPv6 (they end with the host)."""
        script = " ".join("nohup nc -%s -l -k %d >/dev/null 2>&1 &" % (fam, port)
                          for port in ports for fam in ("4", "6"))
        self.exec(["sh", "-c", script + " true"])
        want = set(ports)
        deadline = time.monotonic() + timeout
        while True:
            out = self.exec(["ss", "-Hltn"]).stdout
            # column 4 is the local address: 0.0.0.0:80, [::]:80, *:80
            if want <= {int(f.rpartition(":")[2]) for line in out.splitlines() for f in line.split()[3:4]}:
                return
            if time.monotonic() > deadline:
                raise RuntimeError("listeners on %s did not start: %s" % (self.name, out))
            time.sleep(0.05)

    def ssh_argv(self, command=None, options=()):
        """ssh argv (for subprocess) that logs in as root on this host through the switch;
        ``options`` go before the destination (e.g. ``["-M", "-S", PATH]``)."""
        argv = ["ssh", "-i", SSH_KEY, "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                "-o", "ConnectTimeout=10"]
        for opt in ssh_common_options(self.lan):
            argv += ["-o", opt]
        argv += list(options)
        argv.append("root@" + self.addr4)
        if command is not None:
            argv.append(command)
        return argv

    def ssh(self, command, input=None, check=True, timeout=60):
        """Run a shell command on the host over real SSH."""
        return run(self.ssh_argv(command), input=input, check=check, timeout=timeout)


def remove_host_dir(path):
    # The overlay was mounted in the host's private mount namespace, which is gone by now;
    # refuse to recurse into a directory that is still a mount point on this machine.
    merged = os.path.join(path, "merged")
    if os.path.ismount(merged):
        raise RuntimeError("%s is still mounted; not removing it" % merged)
    shutil.rmtree(path, ignore_errors=True)


def host_names(prefix, count, width=1):
    """prefix1..prefixN, numbers zero-padded to at least width digits (all the same length)."""
    width = max(width, len(str(count)))
    return ["%s%0*d" % (prefix, width, i) for i in range(1, count + 1)]


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


# --------------------------------------------------------------------------- removal

def holder_state(lan, hosts, clients=(), **extra):
    """What take_down reads, for a process that keeps lan, its clients and hosts up for
    others: its pid, the namespaces, Host.state() of every host, and extra (JSON-able)."""
    state = {"pid": os.getpid(), "lan": lan.name, "clients": [c.name for c in clients],
             "hosts": [h.state() for h in hosts]}
    state.update(extra)
    return state


def take_down(state_path, marker, timeout=60):
    """Remove what the holder_state in the JSON file state_path records, then the file.

    SSH control masters first; then SIGTERM to the holder (state["pid"], recognised by
    ``marker`` in its command line), which tears its hosts down itself.  If it is gone or
    does not exit within timeout seconds, the hosts, the clients and the switch are
    removed directly.  Returns (state, "holder" or "direct"), or (None, None) when there
    is no state file.
    """
    try:
        with open(state_path) as fh:
            state = json.load(fh)
    except FileNotFoundError:
        return None, None
    for h in state["hosts"]:
        end_ssh_masters(h["control_dir"])
    how = "holder"
    pid = state["pid"]
    if not (creator_alive(pid, marker) and _terminate(pid, timeout)):
        how = "direct"
        for h in state["hosts"]:
            kill(h["pid"])  # unshare --fork ignores SIGTERM; --kill-child ends the host
            delete_netns(h["netns"], check=False)
            remove_host_dir(h["dir"])
        for name in state.get("clients", []) + [state["lan"]]:
            delete_netns(name, check=False)
    try:
        os.unlink(state_path)
    except FileNotFoundError:
        pass  # the holder removes it on its way out
    return state, how


def _terminate(pid, timeout):
    kill(pid, signal.SIGTERM)
    if wait_pid_gone(pid, timeout=timeout):
        return True
    print("sandbox: holder pid %d did not exit; removing its hosts directly" % pid, file=sys.stderr)
    return False


def cleanup_stale(verbose=False):
    """Remove namespaces, host dirs and control dirs whose creating process is gone."""
    removed = []
    names = run(["ip", "netns", "list"], check=False).stdout.split("\n")
    for line in names:
        name = line.split(" ")[0].strip()
        m = NAME_RE.match(name)
        if not m or m.group("prefix") not in NAME_PREFIXES:
            continue
        if creator_alive(int(m.group("pid"))):
            continue
        delete_netns(name, check=False)
        removed.append("netns " + name)
    for base in (HOSTS_DIR, CONTROL_DIR):
        if not os.path.isdir(base):
            continue
        for entry in os.listdir(base):
            m = NAME_RE.match(entry)
            if not m or creator_alive(int(m.group("pid"))):
                continue
            path = os.path.join(base, entry)
            if base == CONTROL_DIR:
                end_ssh_masters(path)
            else:
                try:
                    remove_host_dir(path)
                except RuntimeError as exc:
                    print("sandbox: %s" % exc, file=sys.stderr)
                    continue
            removed.append(path)
    if verbose:
        for r in removed:
            print("removed", r)
    return removed
