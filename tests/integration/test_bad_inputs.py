# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bad-input corpus (tests/corpus/bad_inputs.py) on real iptables, nft and legacy.

Per backend, ONE network namespace gets the corpus BASELINE in both families (all five tables,
tagged and foreign rules, fail2ban's and Docker's chains), then every case runs in it, in one
Python process (bad_input_batch.py: the real module code on the real binaries, without a new
interpreter per case). Each case must fail with a message naming its option, run no
``iptables-restore`` / ``ip6tables-restore`` at all, and leave ``iptables-save`` and
``ip6tables-save`` byte-identical (timestamps and counters aside). The batch runs once per backend,
for the cases pytest selected, on the first test that needs it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile

import pytest

try:  # tools/sandbox_net.py and tools/ansible_runs.py
    import sandbox_net
    from ansible_runs import BACKENDS, collections_path
except ImportError:  # the same helpers before tools/ was split: tools/sandbox.py, tests/integration/harness.py
    import sandbox as sandbox_net
    from harness import BACKENDS, collections_path

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = os.path.join(HERE, "bad_input_batch.py")
CORPUS = os.path.join(os.path.dirname(HERE), "corpus", "bad_inputs.py")
_spec = importlib.util.spec_from_file_location("bad_inputs_corpus", CORPUS)
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)
FAMILIES = {"ipv4": 4, "ipv6": 6}


def run_batch(mode, backend, ids):
    """Load BASELINE into a fresh namespace and run bad_input_batch.py there; returns its JSON."""
    with sandbox_net.Netns() as ns, tempfile.TemporaryDirectory() as tmp:
        for family, fam in FAMILIES.items():
            ns.load(corpus.BASELINE[family], family=fam, backend=backend)
        out = os.path.join(tmp, "results.json")
        env = sandbox_net.backend_env(backend)
        env.pop("SSH_CONNECTION", None)  # no lockout guard verdicts: the namespace has no SSH client
        env["IRONWALL_STATE_DIR"] = os.path.join(tmp, "state")  # never the machine's /run
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        root = collections_path().split(os.pathsep)[0]
        argv = ns.argv([sys.executable, BATCH, root, mode, out] + list(ids))
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1200, check=False)
        if proc.returncode != 0:
            raise AssertionError("bad_input_batch.py failed (rc=%d)\nstdout:\n%s\nstderr:\n%s"
                                 % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
        with open(out) as fh:
            data = json.load(fh)
    for family, text in data["before"].items():  # the cases really met the baseline
        lines = text.split("\n")
        missing = [line for line in (re.sub(r" \[\d+:\d+\]$", "", x) for x in corpus.BASELINE[family].split("\n"))
                   if line and line not in lines]
        assert not missing, "%s baseline did not load as written: %s" % (family, missing)
    return data


def _selected_ids(session, function, backend, param):
    ids = []
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and item.originalname == function and callspec.params.get("backend") == backend:
            value = callspec.params[param]
            ids.append(value.id if param == "case" else value[0])
    return ids


@pytest.fixture(scope="module")
def batches(request):
    """batches(mode, backend) -> that batch's results, run once for the selected tests."""
    done = {}

    def get(mode, backend):
        if (mode, backend) not in done:
            if mode == "bad":
                ids = _selected_ids(request.session, "test_bad_input_fails_and_leaves_both_families_alone",
                                    backend, "case")
            else:
                ids = _selected_ids(request.session, "test_boundary_values_still_pass_and_converge", backend,
                                    "good")
            done[(mode, backend)] = run_batch(mode, backend, ids)
        return done[(mode, backend)]

    return get


def _restores(record):
    return [" ".join(c) for c in record["commands"] if c[0].endswith("-restore")]


@pytest.mark.parametrize("case", corpus.CASES, ids=[c.id for c in corpus.CASES])
@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_input_fails_and_leaves_both_families_alone(batches, backend, case):
    record = batches("bad", backend)["cases"][case.id]
    result = record["result"] or {}
    problems = []
    if record["crash"]:
        problems.append("crashed: %s" % record["crash"].strip().splitlines()[-1])
    if result.get("failed") is not True:
        problems.append("accepted (changed=%r)" % (result.get("changed"),))
    elif not corpus.names_option(result.get("msg"), case.option):
        problems.append("the message does not name %s: %r" % (" or ".join(case.option) if isinstance(
            case.option, tuple) else case.option, result.get("msg")))
    if _restores(record):
        problems.append("reached %s" % "; ".join(_restores(record)))
    for family, diff in sorted(record["changed"].items()):
        if diff:
            problems.append("%s changed:\n%s" % (family, diff))
    assert not problems, "%s %r: %s" % (case.module, case.args, "\n".join(problems))


@pytest.mark.parametrize("good", corpus.GOOD, ids=[g[0] for g in corpus.GOOD])
@pytest.mark.parametrize("backend", BACKENDS)
def test_boundary_values_still_pass_and_converge(batches, backend, good):
    first, again = batches("good", backend)["cases"][good[0]]["runs"]
    for record in (first, again):
        assert not record["crash"], record["crash"]
        assert record["result"].get("failed") is not True, record["result"].get("msg")
    assert first["result"]["changed"] is True and _restores(first), first
    assert again["result"]["changed"] is False and not _restores(again), again["result"]
