# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bad-input corpus (tests/corpus/bad_inputs.py) through each module's main() on a fake host.

The host answers ``iptables-save`` / ``ip6tables-save`` with the corpus BASELINE (foreign chains
included, so ownership checks can read it). Every case must fail with a message naming its
option, and no ``*-restore`` may run at all, not even ``--test``: bad input is refused in the
argument check, before anything could reach the kernel. A traceback is a failure too.
The cases only iptables itself can judge (``KERNEL_JUDGED``: raw lines learned from the kernel)
are left to tests/integration/test_bad_inputs.py: a fake host would answer them like any other.
"""

from __future__ import annotations

import importlib

import pytest

from ansible_collections.ironwall.iptables.tests.corpus.bad_inputs import (
    BASELINE, CASES, GOOD, KERNEL_JUDGED, names_option)
from ansible_collections.ironwall.iptables.tests.unit.plugins.modules import modrunner

MODULES = dict(
    (name, importlib.import_module("ansible_collections.ironwall.iptables.plugins.modules." + name))
    for name in sorted(set(c.module for c in CASES) | set(g[1] for g in GOOD)))


@pytest.fixture(autouse=True)
def no_ssh_client_and_private_state(monkeypatch, tmp_path):
    """No lockout guard verdicts (no SSH_CONNECTION) and rollback state in tmp_path, never /run."""
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    monkeypatch.setenv("IRONWALL_STATE_DIR", str(tmp_path / "state"))


def run(module, args):
    """(kind, result, host) of one run of ``module`` (short name); a crash fails the test, naming it."""
    host = modrunner.FakeHost({"iptables-save": BASELINE["ipv4"], "ip6tables-save": BASELINE["ipv6"]})
    try:
        kind, result = modrunner.run_module(MODULES[module], args, host)
    except Exception as exc:  # a traceback instead of fail_json
        pytest.fail("%s crashed instead of failing: %s: %s" % (module, type(exc).__name__, exc))
    return kind, result, host


UNIT_CASES = [c for c in CASES if c.id not in KERNEL_JUDGED]


@pytest.mark.parametrize("case", UNIT_CASES, ids=[c.id for c in UNIT_CASES])
def test_bad_input_fails_naming_the_option_before_any_restore(case):
    kind, result, host = run(case.module, case.args)
    problems = []
    if kind != "Fail":
        problems.append("accepted (changed=%r)" % (result.get("changed"),))
    elif not names_option(result.get("msg"), case.option):
        problems.append("the message does not name %s: %r" % (" or ".join(case.option) if isinstance(
            case.option, tuple) else case.option, result.get("msg")))
    restores = [" ".join([c[0]] + c[1]) for c in host.restores()]
    if restores:
        problems.append("reached %s" % "; ".join(restores))
    assert not problems, "%s %r: %s" % (case.module, case.args, "; ".join(problems))


@pytest.mark.parametrize("good", GOOD, ids=[g[0] for g in GOOD])
def test_boundary_values_still_pass(good):
    _id, module, args = good
    kind, result, host = run(module, args)
    assert kind == "Exit", result.get("msg")
    assert result["changed"] is True and host.restores(test=False), result
