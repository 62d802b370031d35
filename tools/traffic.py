# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Real TCP and UDP traffic between network namespaces, for tests of what a ruleset does to packets.

* ``Server(ns, ports)`` -- in namespace ns, one process serving TCP and UDP on every port given
  (dual-stack: IPv4 and IPv6). Each TCP connection is answered with the address and port the
  server sees (``"198.51.100.1 40001"``) and the segment size it may send (``mss``: what the
  client's SYN announced, less TCP options), and held open until the client closes it, so parallel
  connections stay parallel; each UDP datagram is answered the same way and counted per port
  and source address (``counts()``).
* ``connect(ns, addr, port, count)`` -- ``count`` TCP connections from ns, one after the other,
  all held open until the last was tried; one result per connection. ``Held`` does the same
  and keeps them open until its ``with`` block ends.
* ``udp(ns, addr, port, count)`` -- ``count`` datagrams from one socket; with ``reply=True``
  (one datagram) the answer decides the result.

Results: ``open`` (with ``seen``: what the server saw), ``refused`` (a TCP RST or an ICMP
unreachable: the firewall rejected, or nothing listens), ``dropped`` (no answer within
``timeout``), ``error: ...``. Nothing here touches the machine's own firewall: every process runs
under ``ip netns exec``. Standard library only; this file is also the script those processes run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

SCRIPT = os.path.abspath(__file__)


# --------------------------------------------------------------------------- the script side

def _family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def _peer(sockaddr):
    host = sockaddr[0]
    if host.startswith("::ffff:") and "." in host:
        host = host[len("::ffff:"):]
    return "%s %d" % (host, sockaddr[1])


def _serve(ports, counts_path):
    counts = {}
    lock = threading.Lock()

    def write_counts():
        tmp = counts_path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(counts, fh)
        os.replace(tmp, counts_path)

    def hold(conn, sockaddr):
        with conn:
            try:
                mss = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
                conn.sendall(("%s %d\n" % (_peer(sockaddr), mss)).encode())
                while conn.recv(4096):
                    pass
            except OSError:
                pass

    def tcp(port):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", port))
        s.listen(128)
        return s

    def udp(port):
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", port))
        return s

    def accept_loop(s):
        while True:
            conn, sockaddr = s.accept()
            threading.Thread(target=hold, args=(conn, sockaddr), daemon=True).start()

    def udp_loop(s):
        port = str(s.getsockname()[1])
        while True:
            _data, sockaddr = s.recvfrom(65535)
            with lock:
                addr = _peer(sockaddr).split(" ")[0]
                counts[port][addr] = counts[port].get(addr, 0) + 1
                if counts_path:
                    write_counts()
            try:
                s.sendto((_peer(sockaddr) + "\n").encode(), sockaddr)
            except OSError:
                pass  # no route back (a LAN address seen without NAT): counted all the same

    socks = [(accept_loop, tcp(p)) for p in ports] + [(udp_loop, udp(p)) for p in ports]
    counts.update((str(p), {}) for p in ports)
    if counts_path:
        write_counts()
    for loop, s in socks:
        threading.Thread(target=loop, args=(s,), daemon=True).start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        time.sleep(3600)


def _connect(addr, port, count, timeout, hold=False):
    results, held = [], []
    for _i in range(count):
        s = socket.socket(_family(addr), socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect((addr, port))
            line = b""
            while not line.endswith(b"\n"):
                chunk = s.recv(100)
                if not chunk:
                    break
                line += chunk
            if line.endswith(b"\n"):
                seen_addr, seen_port, mss = line.decode().split()
                results.append({"result": "open", "seen": "%s %s" % (seen_addr, seen_port), "mss": int(mss)})
                held.append(s)
                continue
            results.append({"result": "error: closed before the answer"})
        except socket.timeout:
            results.append({"result": "dropped"})
        except (ConnectionRefusedError, ConnectionResetError):
            results.append({"result": "refused"})
        except OSError as exc:
            results.append({"result": "error: %s" % exc})
        s.close()
    if hold:  # report, then keep the connections until the caller closes stdin
        sys.stdout.write(json.dumps(results) + "\n")
        sys.stdout.flush()
        sys.stdin.read()
    for s in held:
        s.close()
    return results


def _udp(addr, port, count, reply, timeout):
    s = socket.socket(_family(addr), socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.connect((addr, port))
        for i in range(count):
            s.send(b"%d\n" % i)
        if not reply:
            return [{"result": "sent", "count": count}]
        data = s.recv(100)
        return [{"result": "open", "seen": data.decode().strip()}]
    except socket.timeout:
        return [{"result": "dropped"}]
    except ConnectionRefusedError:
        return [{"result": "refused"}]
    except OSError as exc:
        return [{"result": "error: %s" % exc}]
    finally:
        s.close()


def main(argv):
    mode = argv[0]
    if mode == "serve":
        counts_path, ports = argv[1], [int(p) for p in argv[2:]]
        _serve(ports, counts_path or None)
        return
    addr, port, count, timeout = argv[1], int(argv[2]), int(argv[3]), float(argv[4])
    if mode in ("connect", "hold"):
        out = _connect(addr, port, count, timeout, hold=mode == "hold")
        if mode == "hold":
            return
    else:
        out = _udp(addr, port, count, mode == "udp-reply", timeout)
    sys.stdout.write(json.dumps(out) + "\n")


# --------------------------------------------------------------------------- the test side

def _argv(ns, args):
    name = getattr(ns, "name", ns)
    return ["ip", "netns", "exec", name, sys.executable, "-u", SCRIPT] + [str(a) for a in args]


class Server:
    """A TCP and UDP server on ``ports`` in namespace ``ns`` (``with Server(ns, [80]) as s:``).

    ``counts()`` is {port: {source address: datagrams received}} (UDP only; ports as text);
    it needs ``counts_dir``, a directory for the file the server keeps them in.
    """

    def __init__(self, ns, ports, counts_dir=None):
        self.ns = ns
        self.ports = list(ports)
        self.counts_path = None
        if counts_dir:
            self.counts_path = os.path.join(str(counts_dir), "udp-counts-%s-%s.json" % (
                getattr(ns, "name", ns), "-".join(map(str, self.ports))))
        self.proc = None

    def start(self, bound=30):
        import sandbox_net
        self.proc = subprocess.Popen(_argv(self.ns, ["serve", self.counts_path or ""] + self.ports),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        sandbox_net.register(self)
        ready = []
        reader = threading.Thread(target=lambda: ready.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(bound)
        if not ready or ready[0].strip() != "ready":
            err = ""
            if self.proc.poll() is not None:
                err = self.proc.stderr.read()
            self.stop()
            raise RuntimeError("server on %s ports %s did not start: %s" % (self.ns, self.ports, err))
        return self

    def counts(self):
        with open(self.counts_path) as fh:
            return json.load(fh)

    def stop(self):
        """End the server process this object started (by its pid)."""
        import sandbox_net
        sandbox_net.unregister(self)
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Held:
    """``count`` TCP connections from ``ns`` to addr:port (as connect()), held open for the
    ``with`` block: ``with Held(ns, addr, 80, 3) as held: held.results``."""

    def __init__(self, ns, addr, port, count=1, timeout=5.0):
        self.args = ["hold", addr, port, count, timeout]
        self.bound = count * timeout + 60
        self.ns = ns
        self.proc = None
        self.results = None

    def __enter__(self):
        import sandbox_net
        self.proc = subprocess.Popen(_argv(self.ns, self.args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        sandbox_net.register(self)
        line = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.bound)
        if not line or not line[0].strip():
            self.stop()
            raise RuntimeError("traffic hold in %s gave no result" % (self.ns,))
        self.results = json.loads(line[0])
        return self

    def stop(self):
        """Close the connections: end the process this object started (stdin closed, then by pid)."""
        import sandbox_net
        sandbox_net.unregister(self)
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        self.proc = None

    def __exit__(self, *exc):
        self.stop()


def _run(ns, args, bound):
    proc = subprocess.run(_argv(ns, args), capture_output=True, text=True, timeout=bound, check=False)
    if proc.returncode != 0:
        raise RuntimeError("traffic %s failed in %s: %s" % (args[0], ns, proc.stderr.strip()))
    return json.loads(proc.stdout)


def connect(ns, addr, port, count=1, timeout=5.0):
    """``count`` TCP connections from ``ns`` to addr:port, each held open until all were tried:
    [{"result": "open", "seen": "ADDR PORT", "mss": n} | {"result": "refused"} | ...]."""
    return _run(ns, ["connect", addr, port, count, timeout], bound=count * timeout + 60)


def udp(ns, addr, port, count=1, reply=True, timeout=5.0):
    """Datagrams from one socket in ``ns``: with ``reply``, one whose answer is the result
    ([{"result": "open", "seen": ...}], "refused", "dropped"); else ``count`` sent at once."""
    return _run(ns, ["udp-reply" if reply else "udp", addr, port, count, timeout], bound=timeout + 60)


def results(runs):
    """The bare results of connect()/udp(): ["open", "open", "refused"]."""
    return [r["result"] for r in runs]


if __name__ == "__main__":
    main(sys.argv[1:])
