# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared plumbing for the module unit tests: a fake host and a way to run a module's main().

``FakeHost`` stands in for the target: it answers ``*-save`` calls from canned text,
``*-restore`` calls with a return code looked up per call, records every call as
``(name, argv[1:] as a list, data)`` and finds binaries under /usr/sbin unless told they
are missing. A plan the engine applied changes what later saves print: the host's text
becomes the plan's tables after its operations (_plan.apply_ops), as the kernel would. ``run_module`` runs ``module.main()`` against such a host and returns
``("Exit" | "Fail", result dict)``.
"""

from __future__ import annotations

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ironwall.iptables.plugins.module_utils import _netfilter
from ansible_collections.ironwall.iptables.plugins.module_utils._model import Ruleset, parse_save, render_save

VERSION = (0, "iptables v1.8.9 (nf_tables)\n", "")


class Exit(Exception):
    pass


class Fail(Exception):
    pass


class FakeHost(object):
    """Records every command; answers save calls from ``saves``, restore calls with rc 0.

    saves           binary name (``iptables-save``) -> text; read at call time, so a
                    test may change the dict after making the host
    missing         binary names get_bin_path does not find
    restore_rc      either a callable ``(name, argv) -> rc`` or a dict whose keys are
                    ``(name, test, noflush)`` or ``(name, test)`` (the latter matches either
                    noflush); unlisted calls get rc 0
    restore_stderr  stderr of a failing restore, ``%s`` is the binary name
    other           answer to any other command (``iptables -V``); None: such a call is
                    an error (AssertionError)
    ipset           what every ``ipset`` command prints (rc 0): by default nothing, a host
                    without sets
    """

    def __init__(self, saves, missing=(), restore_rc=None, restore_stderr="%s: line 3 failed\n", other=VERSION,
                 ipset=""):
        self.saves = saves
        self.ipset = ipset
        self.missing = set(missing)
        self.restore_rc = restore_rc or {}
        self.restore_stderr = restore_stderr
        self.other = other
        self.calls = []
        self.after = {}  # what saves print once a plan was applied (see applied)

    def get_bin_path(self, name, *args, **kwargs):
        return None if name in self.missing else "/usr/sbin/" + name

    def _restore_rc(self, name, argv):
        if callable(self.restore_rc):
            return self.restore_rc(name, argv)
        test, noflush = "--test" in argv, "--noflush" in argv
        for key in ((name, test, noflush), (name, test)):
            if key in self.restore_rc:
                return self.restore_rc[key]
        return 0

    def run_command(self, argv, data=None, binary_data=False, **kwargs):
        name = argv[0].rsplit("/", 1)[-1]
        self.calls.append((name, list(argv[1:]), data))
        if name.endswith("-save"):
            return 0, self.save_text(name), ""
        if name.endswith("-restore"):
            rc = self._restore_rc(name, argv)
            return rc, "", self.restore_stderr % name if rc else ""
        if name == "ipset":
            return 0, self.ipset, ""
        if self.other is None:
            raise AssertionError("unexpected command %r" % (argv,))
        return self.other

    def applied(self, family, plan):
        """The kernel side of a successful apply: later saves print the tables after ``plan``."""
        name = _netfilter.BINARIES[family]["save"]
        current = parse_save(self.save_text(name))
        changed = dict((tp.table, plan.table_after(current.table(tp.table))) for tp in plan.tables)
        tables = [changed.pop(t.name, t) for t in current.tables] + list(changed.values())
        self.after[name] = render_save(Ruleset(tuple(tables), current.header))

    def save_text(self, name):
        return self.after.get(name, self.saves[name])

    def restores(self, test=None):
        """The restore calls, all or only those with (test=True) or without --test."""
        return [c for c in self.calls if c[0].endswith("-restore") and (test is None or ("--test" in c[1]) == test)]


def run_module(module, args, host, check=False, diff=False, patches=()):
    """Run ``module.main()`` with ``args`` against ``host``; returns ("Exit" | "Fail", result).

    ``patches`` are extra ``(target, attribute, value)`` set for the run only.
    """
    def exit_json(self, **kw):
        raise Exit(kw)

    def fail_json(self, **kw):
        raise Fail(kw)

    args = dict(args)
    if check:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    mp = pytest.MonkeyPatch()
    for target, attribute, value in patches:
        mp.setattr(target, attribute, value)
    mp.setattr(basic.AnsibleModule, "exit_json", exit_json)
    mp.setattr(basic.AnsibleModule, "fail_json", fail_json)
    mp.setattr(basic.AnsibleModule, "get_bin_path", lambda self, *a, **k: host.get_bin_path(*a, **k))
    mp.setattr(basic.AnsibleModule, "run_command", lambda self, *a, **k: host.run_command(*a, **k))
    real_apply = _netfilter.Netfilter.apply

    def apply(self, plans, snapshots):
        real_apply(self, plans, snapshots)
        for family, plan in plans:
            if plan.changed:
                host.applied(family, plan)

    mp.setattr(_netfilter.Netfilter, "apply", apply)
    try:
        with patch_module_args(args):
            module.main()
    except (Exit, Fail) as exc:
        return type(exc).__name__, exc.args[0]
    finally:
        mp.undo()
    raise AssertionError("module returned without exit_json/fail_json")
