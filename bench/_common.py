# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What bench_rule.py and bench_whitelist.py share: counting shims and timed playbook runs.

Every iptables binary runs through a shim (``counting_shims``) that logs the call, then execs
the backend's real binary; ``count_calls`` reads (and empties) that log. ``play`` runs one playbook with
ansible-playbook inside a namespace, shims first on PATH, and returns its wall time
(tools/ansible_runs.timed_run, module_timer.py's clock too: the whole process, start-up
included) and the task results. Importing this module puts tools/ on sys.path.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))

from ansible_runs import run_playbook, task_results  # noqa: E402
from sandbox_net import XTABLES_NAMES, backend_bin_dir  # noqa: E402

BINARIES = XTABLES_NAMES


@contextlib.contextmanager
def counting_shims(backend):
    """(shim directory, call log): a temporary directory of wrappers that log each call, then
    run the backend's real binary; removed afterwards."""
    directory = tempfile.mkdtemp(prefix="iw-bench-shims-")
    log = os.path.join(directory, "calls.log")
    real = backend_bin_dir(backend)
    try:
        for name in BINARIES:
            path = os.path.join(directory, name)
            with open(path, "w") as fh:
                fh.write('#!/bin/sh\necho "%s $*" >> "%s"\nexec "%s/%s" "$@"\n' % (name, log, real, name))
            os.chmod(path, 0o755)
        yield directory, log
    finally:
        shutil.rmtree(directory, ignore_errors=True)


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
    # The shims exec the backend's binaries themselves: they only have to come first on PATH.
    data = run_playbook(ns, text, backend, env={"PATH": shim_dir + os.pathsep + os.environ["PATH"]}, timeout=timeout)
    results = [r for _name, r in task_results(data)]
    failed = [r for r in results if r.get("failed")]
    if data["_rc"] != 0 or failed:
        raise SystemExit("playbook failed: %s" % (failed[:1] or data["_stderr"][-2000:]))
    elapsed = data["_seconds"]
    if play_time:
        return elapsed, _seconds(data["plays"][0]["play"]["duration"]), results
    return elapsed, results


def _seconds(duration):
    """Seconds between the json callback's ISO 'start' and 'end' stamps."""
    start, end = (datetime.datetime.strptime(duration[k].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f")
                  for k in ("start", "end"))
    return (end - start).total_seconds()
