# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The EXAMPLES of the rule and policy modules run as written: each task, in the order the docs
give them, succeeds on real iptables in a throwaway namespace, and its rerun changes nothing.

(The examples of modules that write files on the host, such as iptables_ruleset's save, are
run by their own tests on sandbox hosts, never here.)
"""

from __future__ import annotations

import sys

import pytest
import yaml

import sandbox_net
from ansible_runs import collections_path, run_module

if collections_path() not in sys.path:
    sys.path.insert(0, collections_path())

from ansible_collections.ironwall.iptables.plugins.modules import iptables_policy, iptables_rule  # noqa: E402

MODULES = {"iptables_rule": iptables_rule, "iptables_policy": iptables_policy}


def examples(name):
    out = []
    for task in yaml.safe_load(MODULES[name].EXAMPLES):
        out.append((task["name"], task["ironwall.iptables." + name]))
    return out


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_example_runs_and_reruns_unchanged(module):
    tasks = examples(module)
    assert len(tasks) >= 3
    with sandbox_net.Netns() as ns:
        for title, args in tasks:
            first = run_module(ns, module, args)
            assert first["_rc"] == 0, (title, first.get("msg", first))
            again = run_module(ns, module, args)
            assert again["_rc"] == 0 and again["changed"] is False, (title, again.get("commands"))
