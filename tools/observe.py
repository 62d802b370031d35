# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Wait for events, not for deadlines: helpers for tests that watch a firewall change and undo.

A test cannot control how long a step takes on a busy machine, so it must never assert that
something happened (or was seen) within a fixed time. What it can do:

* ``wait_for(predicate, bound)`` -- poll until the predicate holds; the bound is generous and
  only turns a hang into a failure.
* ``Watch(netns, addr, port)`` -- a state that lasts a few seconds (a forced lockout until its
  rollback deadline) cannot be checked once after the step that caused it: that step may
  return after the state is gone. A Watch starts one prober process in the client namespace
  BEFORE the step; it opens a new TCP connection to addr:port again and again and keeps every
  attempt as ``Attempt(start, end, result)``, stamped with CLOCK_MONOTONIC (the clock of the
  test's own ``time.monotonic()``). The test then waits for events in that timeline: "a
  dropped attempt that started after t0", "an attempt that got through after that".
* ``netns_pids(name)`` -- the processes left in a network namespace (a rollback watchdog is
  one until its deadline passed).

Results: ``open`` (connected), ``refused`` (RST: the SYN got through the firewall, nothing
listens), ``dropped`` (no answer to the SYN within ``timeout``), ``error: ...`` (anything else).
Nothing here touches the machine's own firewall: the prober runs under ``ip netns exec``.
"""

from __future__ import annotations

import collections
import subprocess
import sys
import threading
import time

Attempt = collections.namedtuple("Attempt", "start end result")

THROUGH = ("open", "refused")

_PROBER = r"""
import socket, sys, time
addr, port, interval, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
family = socket.AF_INET6 if ":" in addr else socket.AF_INET
while True:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    start = time.monotonic()
    try:
        s.connect((addr, port))
        result = "open"
    except socket.timeout:
        result = "dropped"
    except ConnectionRefusedError:
        result = "refused"
    except OSError as exc:
        result = "error: %s" % exc
    finally:
        s.close()
    end = time.monotonic()
    sys.stdout.write("%.6f %.6f %s\n" % (start, end, result))
    sys.stdout.flush()
    time.sleep(max(0.0, interval - (end - start)))
"""


def wait_for(predicate, bound, interval=0.25):
    """Poll ``predicate()`` until it returns something true (returned) or ``bound`` seconds
    passed (then one last try). Choose a bound no loaded machine reaches: it only ends a hang."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def netns_pids(name):
    """Pids of the processes whose network namespace is ``name`` (asked from outside it)."""
    name = getattr(name, "name", name)
    proc = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


class Watch:
    """New TCP connections from namespace ``netns`` to ``addr:port``, one every ``interval``
    seconds (an unanswered SYN counts as dropped after ``timeout``), recorded in the
    background from ``start()`` (or ``with``) to ``stop()``."""

    def __init__(self, netns, addr, port, interval=0.2, timeout=2.0):
        self.netns = getattr(netns, "name", netns)
        self.addr, self.port = str(addr), int(port)
        self.interval, self.timeout = interval, timeout
        self.proc = None
        self._attempts = []
        self._cond = threading.Condition()
        self._reader = None

    def __repr__(self):
        return "Watch(%s -> %s:%d)" % (self.netns, self.addr, self.port)

    def start(self):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, sys.executable, "-u", "-c", _PROBER,
             self.addr, str(self.port), str(self.interval), str(self.timeout)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._reader = threading.Thread(target=self._read, name=repr(self), daemon=True)
        self._reader.start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            start, end, result = line.rstrip("\n").split(" ", 2)
            with self._cond:
                self._attempts.append(Attempt(float(start), float(end), result))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def stop(self):
        """End the prober (the process this Watch started, by its pid) and its reader."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=10)
        self.proc.stdout.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def attempts(self):
        with self._cond:
            return list(self._attempts)

    def wait_for(self, predicate, bound):
        """The first recorded attempt (already recorded or yet to come) for which
        ``predicate(attempt)`` holds; None if there is none after ``bound`` seconds."""
        deadline = time.monotonic() + bound
        seen = 0
        with self._cond:
            while True:
                for attempt in self._attempts[seen:]:
                    if predicate(attempt):
                        return attempt
                seen = len(self._attempts)
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    return None
                self._cond.wait(min(left, 1.0))

    def summary(self, since=0.0):
        """The timeline as runs of equal results, for failure messages: 'open x12, dropped x5, ...'."""
        runs = []
        for attempt in self.attempts():
            if attempt.start < since:
                continue
            if runs and runs[-1][0] == attempt.result:
                runs[-1][1] += 1
            else:
                runs.append([attempt.result, 1])
        return ", ".join("%s x%d" % (result, n) for result, n in runs) or "no attempt"
