# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""bench/bench_role.py's counter of module runs per host (a notification callback).

Enabled with ANSIBLE_CALLBACK_PLUGINS=bench/role_peers/callback_plugins and
ANSIBLE_CALLBACKS_ENABLED=module_runs; writes JSON to the file named by
BENCH_MODULE_RUNS_FILE when the playbook ends:

    {"HOST": {"runs": N, "changed": C, "failed": F, "tasks": {"ACTION": N, ...}}, ...}

A run is one task result for a host whose action executes on that host: every ok, changed
or failed result counts once, a loop counts once per item that was not skipped (each item
runs the module once). Skipped tasks and items, unreachable hosts and the actions that
only run on the controller (CONTROLLER_ONLY) do not count. Handlers count like tasks.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: module_runs
type: aggregate
short_description: count module runs per host (bench/bench_role.py)
description:
  - Counts, per host, the task results (loop items counted one by one) of actions that run on
    the host, and writes them as JSON to the file named by E(BENCH_MODULE_RUNS_FILE).
requirements:
  - enabled in the callbacks_enabled setting
"""

CONTROLLER_ONLY = frozenset((
    "assert", "set_fact", "debug", "meta", "include_tasks", "import_tasks", "include_role",
    "import_role", "include_vars", "validate_argument_spec", "fail", "add_host", "group_by",
    "set_stats", "pause", "import_playbook",
))
PREFIXES = ("ansible.builtin.", "ansible.legacy.")


def short_action(action):
    for prefix in PREFIXES:
        if action.startswith(prefix):
            return action[len(prefix):]
    return action


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "module_runs"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self.hosts = {}

    def _count(self, result, failed=False):
        task = result._task
        action = short_action(getattr(task, "resolved_action", None) or task.action)
        if action in CONTROLLER_ONLY:
            return
        res = result._result
        items = res.get("results") if isinstance(res, dict) else None
        if isinstance(items, list) and all(isinstance(item, dict) and "ansible_loop_var" in item for item in items):
            # a loop: the module ran once per item that was not skipped
            done = [item for item in items if not item.get("skipped")]
            runs = len(done)
            changed = sum(1 for item in done if item.get("changed"))
            fails = sum(1 for item in done if item.get("failed"))
        else:
            runs = 1
            changed = 1 if res.get("changed") else 0
            fails = 1 if failed else 0
        if not runs:
            return
        host = self.hosts.setdefault(result._host.get_name(), {"runs": 0, "changed": 0, "failed": 0, "tasks": {}})
        host["runs"] += runs
        host["changed"] += changed
        host["failed"] += fails
        host["tasks"][action] = host["tasks"].get(action, 0) + runs

    def v2_runner_on_ok(self, result):
        self._count(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._count(result, failed=True)

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("BENCH_MODULE_RUNS_FILE")
        if not path:
            return
        tmp = "%s.tmp-%d" % (path, os.getpid())
        with open(tmp, "w") as fh:
            json.dump(self.hosts, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
