# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A TCP server that keeps up with many new connections, and a client that opens them in a loop.

``nc -l -k`` accepts one connection at a time with a tiny backlog: under load a probe's SYN can
find the queue full and time out although the firewall accepted it. ``Server`` (one Python
process in a namespace, backlog 4096, accepting and closing in a loop) answers every SYN the
firewall lets through. ``connect_rate`` runs one client process in a namespace that opens new
TCP connections in a tight loop for a while (closed with an RST, so no TIME_WAIT piles up) and
returns how many succeeded per second: the cost of the firewall's path for NEW connections, not
of process start-up. Standard library only; nothing here touches the machine's own namespace.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

_SERVER = r"""
import socket, sys
family = socket.AF_INET6 if sys.argv[2] == "6" else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if family == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", int(sys.argv[1])))
s.listen(4096)
print("ready", flush=True)
while True:
    c, _a = s.accept()
    c.close()
"""

_CLIENT = r"""
import json, socket, struct, sys, time
addr, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
family = socket.AF_INET6 if ":" in addr else socket.AF_INET
linger = struct.pack("ii", 1, 0)
ok = failed = 0
end = time.monotonic() + seconds
start = time.monotonic()
while time.monotonic() < end:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    s.settimeout(1.0)
    try:
        s.connect((addr, port))
        ok += 1
    except OSError:
        failed += 1
    s.close()
print(json.dumps({"ok": ok, "failed": failed, "seconds": time.monotonic() - start}))
"""


class Server(object):
    """``with Server(ns, 3306, family=6):`` a dual-stack (family 6) or IPv4 accept-and-close server."""

    def __init__(self, ns, port, family=6):
        self.argv = ns.argv([sys.executable, "-c", _SERVER, str(port), str(family)])
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError("the TCP server did not start")
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()   # our own child, by its pid
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()

    def __exit__(self, *exc):
        self.stop()


def connect_rate(client, addr, port, seconds=3.0):
    """{ok, failed, seconds, rate}: new TCP connections from namespace ``client`` to addr:port
    opened one after the other by one process for ``seconds``; rate = ok / seconds."""
    proc = subprocess.run(client.argv([sys.executable, "-c", _CLIENT, str(addr), str(port), str(seconds)]),
                          capture_output=True, text=True, timeout=seconds + 60, check=True)
    out = json.loads(proc.stdout)
    out["rate"] = out["ok"] / out["seconds"]
    return out


def wait_until(predicate, timeout=30.0, step=0.05):
    """Poll ``predicate`` until it is true (returns True) or ``timeout`` passes (returns False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
