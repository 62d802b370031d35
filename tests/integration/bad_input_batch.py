# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run many module invocations in ONE Python process inside a network namespace.

    ip netns exec NS python bad_input_batch.py COLLECTIONS_ROOT MODE OUT_JSON [ID...]

(with the PATH of one iptables backend first, as the sandbox's backend_env makes it). Each invocation is the
real module code - ``main()`` with its arguments through ansible's ``patch_module_args``, the real
``AnsibleModule`` and its ``run_command`` on the real iptables binaries of the namespace - only
without a new interpreter per run (about 0.3 s each), so a corpus of a thousand cases takes
seconds instead of minutes. Every command a module runs is recorded.

MODE ``bad``: the cases of tests/corpus/bad_inputs.py (all, or the IDs given). After each case both
families are saved again and compared byte for byte (timestamp comments and chain counters
removed) with the save taken before the first case; a case that changed anything is recorded with
the difference, and the first save is loaded back so the next case starts from the same ruleset.

MODE ``good``: the GOOD boundary cases (all, or the IDs given), each run twice; the second run must
find nothing to change.

OUT_JSON gets ``{"before": {family: text}, "seconds": s, "cases": {id: record}}``, a record being
``{"result": module result or None, "crash": traceback or None, "commands": [[name, args...]],
"changed": {family: unified diff or ""}}`` (``good``: ``{"runs": [record, record]}``).
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(os.path.dirname(HERE), "corpus", "bad_inputs.py")
SAVE = {"ipv4": "iptables-save", "ipv6": "ip6tables-save"}
RESTORE = {"ipv4": "iptables-restore", "ipv6": "ip6tables-restore"}
_COUNTERS = re.compile(rb" \[\d+:\d+\]$")


def load_corpus():
    spec = importlib.util.spec_from_file_location("bad_inputs_corpus", CORPUS)
    corpus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(corpus)
    return corpus


def comparable(raw):
    """iptables-save bytes without '#' lines and chain counters; split on b"\\n" only."""
    return b"\n".join(_COUNTERS.sub(b"", line) for line in raw.split(b"\n") if not line.startswith(b"#"))


def save_both():
    """{family: iptables-save bytes}, both saves running at once."""
    procs = dict((f, subprocess.Popen([SAVE[f]], stdout=subprocess.PIPE, stderr=subprocess.PIPE)) for f in SAVE)
    out = {}
    for family, proc in procs.items():
        stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError("%s failed: %s" % (SAVE[family], text(stderr)))
        out[family] = stdout
    return out


def tables(raw):
    """{table name: its block of save lines (bytes, '*table' to 'COMMIT')}."""
    out = {}
    name = None
    for line in raw.split(b"\n"):
        if line.startswith(b"*"):
            name = line[1:].decode()
            out[name] = []
        if name is not None and not line.startswith(b"#"):
            out[name].append(line)
        if line == b"COMMIT":
            name = None
    return dict((n, b"\n".join(lines) + b"\n") for n, lines in out.items())


def put_back(family, before_raw, now_raw):
    """Load the tables of ``before_raw`` that differ in ``now_raw`` (iptables-restore without --noflush
    replaces a table whole); a table that did not exist before cannot be removed this way."""
    before, now = tables(before_raw), tables(now_raw)
    extra = sorted(set(now) - set(before))
    if extra:
        raise RuntimeError("%s: tables %s appeared; the baseline must hold every table" % (family, extra))
    changed = [n for n in before if comparable(before[n]) != comparable(now.get(n, b""))]
    if changed:
        subprocess.run([RESTORE[family], "-w", "10"], input=b"".join(before[n] for n in changed),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)


def text(raw):
    return raw.decode("utf-8", "backslashreplace")


class Runner(object):
    """Runs module main()s in this process, recording every command they run."""

    def __init__(self, collections_root):
        sys.path.insert(0, collections_root)
        from ansible.module_utils import basic
        from ansible.module_utils.testing import patch_module_args
        self.patch_module_args = patch_module_args
        self.commands = []
        real_run_command = basic.AnsibleModule.run_command
        runner = self

        def run_command(module, args, *a, **kw):
            argv = args if isinstance(args, (list, tuple)) else str(args).split()
            runner.commands.append([os.path.basename(str(argv[0]))] + [str(x) for x in argv[1:]])
            return real_run_command(module, args, *a, **kw)

        basic.AnsibleModule.run_command = run_command
        # Every invocation would also write "Invoked with ..." to the journal; a thousand of
        # them say nothing a test needs.
        basic.AnsibleModule.log = lambda module, msg, log_args=None: None
        self._modules = {}

    def module(self, name):
        if name not in self._modules:
            self._modules[name] = importlib.import_module("ansible_collections.ironwall.iptables.plugins.modules."
                                                          + name)
        return self._modules[name]

    def run(self, module, args):
        """One invocation: {"result", "crash", "commands"}."""
        del self.commands[:]
        out = io.StringIO()
        crash = None
        mod = self.module(module)
        try:
            with self.patch_module_args(args), contextlib.redirect_stdout(out):
                mod.main()
            crash = "main() returned without exit_json or fail_json"
        except SystemExit:
            pass
        except Exception:  # the module crashed: that is a result too
            crash = traceback.format_exc()
        try:
            result = json.loads(out.getvalue())
        except ValueError:
            result = None
            if crash is None:
                crash = "no JSON result on stdout: %r" % out.getvalue()[-2000:]
        return {"result": result, "crash": crash, "commands": list(self.commands)}


def run_bad(runner, corpus, ids):
    before_raw = save_both()
    before = dict((f, comparable(raw)) for f, raw in before_raw.items())
    cases = {}
    for case in corpus.CASES:
        if ids and case.id not in ids:
            continue
        record = runner.run(case.module, case.args)
        record["changed"] = {}
        now_raw = save_both()
        for family in SAVE:
            now = comparable(now_raw[family])
            diff = ""
            if now != before[family]:
                diff = "\n".join(difflib.unified_diff(text(before[family]).split("\n"), text(now).split("\n"),
                                                      "before", "after", lineterm="", n=1))
                put_back(family, before_raw[family], now_raw[family])  # the next case starts from the same ruleset
            record["changed"][family] = diff
        if any(record["changed"].values()):
            again = save_both()
            for family in SAVE:
                if comparable(again[family]) != before[family]:
                    raise RuntimeError("could not put the %s ruleset back after %s" % (family, case.id))
        cases[case.id] = record
    return before, cases


def run_good(runner, corpus, ids):
    before = dict((f, comparable(raw)) for f, raw in save_both().items())
    cases = {}
    for case_id, module, args in corpus.GOOD:
        if ids and case_id not in ids:
            continue
        cases[case_id] = {"runs": [runner.run(module, args), runner.run(module, args)]}
    return before, cases


def main():
    collections_root, mode, out_path = sys.argv[1:4]
    ids = set(sys.argv[4:])
    corpus = load_corpus()
    runner = Runner(collections_root)
    start = time.monotonic()
    before, cases = (run_bad if mode == "bad" else run_good)(runner, corpus, ids)
    with open(out_path, "w") as fh:
        json.dump({"before": dict((f, text(b)) for f, b in before.items()), "cases": cases,
                   "seconds": time.monotonic() - start}, fh)


if __name__ == "__main__":
    main()
