# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What bench_rule.py and bench_whitelist.py share: counting shims and timed playbook runs.

Every iptables binary runs through a shim that logs the call, then execs the backend's real
binary; ``count_calls`` reads (and empties) that log. ``play`` runs one playbook with
ansible-playbook inside a namespace, shims first on PATH, and returns its wall time
(tests/integration/module_timer.py's clock: the whole process, start-up included) and the
task results. Importing this module puts tests/integration and tools on sys.path.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import harness  # noqa: E402
import module_timer  # noqa: E402
import sandbox  # noqa: E402

BINARIES = ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore")


def make_shims(directory, log, backend):
    """Wrappers that log each call, then run the backend's real binary."""
    real = sandbox.backend_bin_dir(backend)
    for name in BINARIES:
        path = os.path.join(directory, name)
        with open(path, "w") as fh:
            fh.write('#!/bin/sh\necho "%s $*" >> "%s"\nexec "%s/%s" "$@"\n' % (name, log, real, name))
        os.chmod(path, 0o755)


def count_calls(log):
    """Calls per binary logged since the last count; empties the log."""
    counts = dict((b, 0) for b in BINARIES)
    if os.path.exists(log):
        with open(log) as fh:
            for line in fh:
                counts[line.split(" ", 1)[0]] += 1
        os.unlink(log)
    return counts


def play(ns, text, shim_dir, backend, timeout, play_time=False):
    """(wall seconds, task results) of one ansible-playbook run of ``text`` in namespace ``ns``.

    With ``play_time``: (wall seconds, play seconds, task results), the play seconds being the
    first play's start to end as the json callback records them (no interpreter start, no
    inventory, no exit).
    """
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as fh:
        fh.write(text)
        path = fh.name
    env = harness.ansible_env(backend)
    env["PATH"] = shim_dir + os.pathsep + env["PATH"]
    try:
        proc, elapsed = module_timer.timed_run(harness.playbook_argv(ns, path), env=env, timeout=timeout)
    finally:
        os.unlink(path)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise SystemExit("ansible-playbook printed no JSON (rc=%d)\n%s\n%s"
                         % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    results = [r for _name, r in harness.task_results(data)]
    failed = [r for r in results if r.get("failed")]
    if proc.returncode != 0 or failed:
        raise SystemExit("playbook failed: %s" % (failed[:1] or proc.stderr[-2000:]))
    if play_time:
        return elapsed, _seconds(data["plays"][0]["play"]["duration"]), results
    return elapsed, results


def _seconds(duration):
    """Seconds between the json callback's ISO 'start' and 'end' stamps."""
    start, end = (datetime.datetime.strptime(duration[k].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f")
                  for k in ("start", "end"))
    return (end - start).total_seconds()
