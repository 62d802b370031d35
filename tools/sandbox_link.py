# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Point-to-point links between sandbox namespaces, and a TCP service that names its peer.

* ``link(a, b, ...)`` -- a veth pair between two sandbox_net.Netns (a sandbox host's is
  ``host.netns``), addressed on both ends, with optional default routes on ``b``'s side: gives
  a sandbox host extra interfaces, e.g. a router between a LAN namespace and a WAN namespace
  (tests/integration/test_role_router.py). The pair is born inside ``a`` and its peer moved
  straight into ``b``; no interface ever appears in the machine's own namespace.
* ``PeerServer`` -- TCP listeners in a namespace that answer every connection with
  ``peer <address>`` (the address the server sees: proof of NAT) and close;
  ``ask(ns, addr, port)`` connects from a namespace and returns that line, ``refused``,
  ``timeout`` or ``error ...``.

Standard library only; nothing here touches the machine's own firewall.
"""

from __future__ import annotations

import subprocess
import sys

from sandbox_net import kill, run, wait_pid_gone

_SERVER = r"""
import select, socket, sys
socks = []
for port in sys.argv[1:]:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", int(port)))
    s.listen(64)
    socks.append(s)
print("ready", flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        conn, peer = s.accept()
        host = peer[0][7:] if peer[0].startswith("::ffff:") else peer[0]
        try:
            conn.sendall(("peer %s\n" % host).encode())
        finally:
            conn.close()
"""

_CLIENT = r"""
import socket, sys
addr, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    conn = socket.create_connection((addr, port), timeout=timeout)
    print(conn.makefile().readline().strip() or "closed")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
except OSError as exc:
    print("error %s" % exc)
"""


def _ifname(netns):
    name = "eth%d" % netns._ifaces
    netns._ifaces += 1
    return name


def link(a, b, a_addrs=(), b_addrs=(), b_gateways=()):
    """A veth pair between Netns ``a`` and ``b``; returns (a's interface, b's interface).

    ``a_addrs`` / ``b_addrs``: addresses with prefix length (``198.51.100.129/28``,
    ``2001:db8:14a::1/64``; IPv6 ones without duplicate address detection). ``b_gateways``:
    addresses of ``a`` that become ``b``'s default routes (one per family).
    """
    a_if, b_if = _ifname(a), _ifname(b)
    for ns in (a, b):  # no tentative link-local addresses stalling IPv6 for 2 s
        ns.run(["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"])
    _batch(a.name, ["link add %s type veth peer name %s netns %s" % (a_if, b_if, b.name)])
    for ns, ifname, addrs in ((a, a_if, a_addrs), (b, b_if, b_addrs)):
        _batch(ns.name, ["addr add %s dev %s%s" % (addr, ifname, " nodad" if ":" in addr else "")
                         for addr in addrs] + ["link set %s up" % ifname])
    _batch(b.name, ["route add %s via %s" % ("::/0" if ":" in gw else "default", gw) for gw in b_gateways])
    return a_if, b_if


def _batch(ns, cmds):
    if cmds:
        run(["ip", "-n", ns, "-batch", "-"], input="\n".join(cmds) + "\n")


class PeerServer:
    """``with PeerServer(ns, [80, 9090]):`` -- dual-stack listeners that answer ``peer <address>``."""

    def __init__(self, netns, ports):
        self.netns = netns
        self.ports = [int(p) for p in ports]
        self.proc = None

    def start(self, timeout=30):
        self.proc = subprocess.Popen(self.netns.argv([sys.executable, "-c", _SERVER] + self.ports),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        line = self.proc.stdout.readline()  # the event: the sockets listen (or the server died)
        if line.strip() != "ready":
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.stop()
            raise RuntimeError("peer server in %s on %s did not start: %s" % (self.netns.name, self.ports, err))
        return self

    def stop(self):
        if self.proc is None:
            return
        kill(self.proc.pid)
        self.proc.wait()
        wait_pid_gone(self.proc.pid)
        for pipe in (self.proc.stdout, self.proc.stderr):
            pipe.close()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def ask(netns, addr, port, timeout=15):
    """Connect from ``netns`` to addr:port; ``peer <address>`` from a PeerServer, ``refused``,
    ``timeout`` (nothing came back within timeout seconds) or ``error ...``."""
    proc = netns.run([sys.executable, "-c", _CLIENT, str(addr), str(port), str(timeout)], timeout=timeout + 30)
    return proc.stdout.strip()
