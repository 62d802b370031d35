# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The per-namespace state directory and its locks.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
Apart from _rollback (the undo state lives in the same directory) so that a module that only
needs the run lock (iptables_ipset) does not import the rule engine: a no-change run of a large
set is mostly interpreter start and imports.
"""

from __future__ import annotations

import fcntl
import os

STATE_DIR = "/run/ironwall-iptables"


def base_dir():
    """Where every namespace's state lives (IRONWALL_STATE_DIR overrides, for tests)."""
    return os.environ.get("IRONWALL_STATE_DIR") or STATE_DIR


def state_dir():
    """This network namespace's state directory."""
    try:
        netns = os.stat("/proc/self/ns/net").st_ino
    except OSError:
        netns = 0
    return os.path.join(base_dir(), "net-%d" % netns)


class Locked(object):
    """flock on the state directory: two runs never arm or confirm at once."""

    def __init__(self, base, name="lock"):
        self.path = os.path.join(base, name)
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


class serialized(object):
    """Hold this namespace's lock while a run reads, plans and writes, so two runs of the
    collection at once are applied one after the other. Best effort: where the state
    directory cannot be made (a read-only /run), the run goes on unserialized."""

    def __init__(self, enabled=True):
        self.enabled = enabled
        self.lock = None

    def __enter__(self):
        if self.enabled:
            base = state_dir()
            try:
                if not os.path.isdir(base):
                    os.makedirs(base, 0o700)
                self.lock = Locked(base, "run.lock").__enter__()
            except (IOError, OSError):
                self.lock = None
        return self

    def __exit__(self, *exc):
        if self.lock is not None:
            self.lock.__exit__(*exc)
