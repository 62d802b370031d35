# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every failure is a clear ``failed: true`` naming its cause, never a traceback, and nothing is
changed: unreadable save text, an unwritable rollback state directory, a missing binary, a
rejected restore; for every changing module."""

from __future__ import annotations

import pytest

from ansible_collections.ironwall.iptables.plugins.modules import (
    iptables_info, iptables_policy, iptables_ratelimit, iptables_rule, iptables_whitelist)
from ansible_collections.ironwall.iptables.tests.unit.plugins.modules.modrunner import FakeHost, run_module

EMPTY = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
MODULES = [
    (iptables_policy, {"chain": "INPUT", "policy": "DROP"}),
    (iptables_rule, {"name": "web", "protocol": "tcp", "dports": [80], "jump": "ACCEPT"}),
    (iptables_whitelist, {"name": "MYSQL_WHITELIST", "ports": ["3306"], "sources": ["198.51.100.7"]}),
    (iptables_ratelimit, {"name": "ssh"}),
]
IDS = [m.__name__.rsplit(".", 1)[-1] for m, _a in MODULES]


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("IRONWALL_STATE_DIR", str(tmp_path / "state"))


def _no_restore(host):
    return [c for c in host.calls if c[0].endswith("-restore")] == []


@pytest.mark.parametrize("module,args", MODULES, ids=IDS)
def test_unparsable_save_output_fails_quoting_the_line(module, args):
    garbled = EMPTY.replace(":OUTPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]\nthis is not iptables-save")
    host = FakeHost({"iptables-save": garbled, "ip6tables-save": EMPTY})
    kind, res = run_module(module, args, host)
    assert kind == "Fail", res
    assert "line 5" in res["msg"] and "this is not iptables-save" in res["msg"] and "iptables-save" in res["msg"]
    assert _no_restore(host)


def test_info_fails_the_same_way_on_unparsable_output():
    host = FakeHost({"iptables-save": "*filter\n:INPUT ACCEPT [0:0]\n", "ip6tables-save": EMPTY})
    kind, res = run_module(iptables_info, {}, host)
    assert kind == "Fail" and "table without COMMIT" in res["msg"], res


@pytest.mark.parametrize("module,args", MODULES, ids=IDS)
def test_unwritable_state_directory_fails_before_any_change(module, args, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("IRONWALL_STATE_DIR", str(blocker / "state"))
    host = FakeHost({"iptables-save": EMPTY, "ip6tables-save": EMPTY})
    kind, res = run_module(module, dict(args, rollback_timeout=30), host)
    assert kind == "Fail", res
    assert res["msg"].startswith("rollback_timeout: cannot keep the rollback state in") and "nothing was changed" in \
        res["msg"]
    assert [c for c in host.calls if c[0].endswith("-restore") and "--test" not in c[1]] == []


@pytest.mark.parametrize("module,args", MODULES, ids=IDS)
def test_unwritable_state_directory_does_not_stop_a_run_without_rollback(module, args, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("IRONWALL_STATE_DIR", str(blocker / "state"))
    kind, res = run_module(module, args, FakeHost({"iptables-save": EMPTY, "ip6tables-save": EMPTY}))
    assert kind == "Exit" and res["changed"], res


@pytest.mark.parametrize("module,args", MODULES, ids=IDS)
def test_missing_binary_names_it(module, args):
    host = FakeHost({"iptables-save": EMPTY, "ip6tables-save": EMPTY}, missing=("ip6tables-save",))
    kind, res = run_module(module, args, host)
    assert kind == "Fail" and "ip6tables-save not found on the target" in res["msg"], res
    assert _no_restore(host)


@pytest.mark.parametrize("module,args", MODULES, ids=IDS)
def test_rejected_restore_quotes_the_line(module, args):
    host = FakeHost({"iptables-save": EMPTY, "ip6tables-save": EMPTY}, restore_rc={("ip6tables-restore", True): 1},
                    restore_stderr="%s: line 2 failed\n")
    kind, res = run_module(module, args, host)
    assert kind == "Fail" and "rejected line 2" in res["msg"] and "Nothing was changed" in res["msg"], res
    assert [c for c in host.calls if c[0].endswith("-restore") and "--test" not in c[1]] == []


def test_failed_apply_after_arming_disarms_the_rollback(tmp_path, monkeypatch):
    # a run that fails after arming must not leave its watchdog armed: a later good run would
    # otherwise be undone by it
    from ansible_collections.ironwall.iptables.plugins.module_utils import _rollback
    monkeypatch.setattr(_rollback, "_start_watchdog", lambda nf, base, token, timeout: None)
    host = FakeHost({"iptables-save": EMPTY, "ip6tables-save": EMPTY}, restore_rc={("iptables-restore", False): 4})
    kind, res = run_module(iptables_policy, {"chain": "INPUT", "policy": "DROP", "ip_version": "ipv4",
                                             "rollback_timeout": 30}, host)
    assert kind == "Fail", res
    assert not _rollback.pending()
    assert list((tmp_path / "state").rglob("undo-*")) == []


def test_an_insert_refused_because_another_writer_moved_the_chain_is_planned_again():
    # between our read and our write a foreign rule was removed: the insert position is gone
    moved = {"n": 0}
    first = EMPTY.replace("COMMIT", "-A INPUT -s 203.0.113.9/32 -j ACCEPT\n-A INPUT -s 203.0.113.8/32 -j ACCEPT\n"
                                    "COMMIT")

    def rc(name, argv):
        if "--test" in argv:
            return 0
        moved["n"] += 1
        if moved["n"] == 1:  # the writer removed its rules just before our first apply
            host.saves["iptables-save"] = EMPTY
            return 1
        return 0
    host = FakeHost({"iptables-save": first, "ip6tables-save": EMPTY}, restore_rc=rc,
                    restore_stderr="%s: line 2 failed\n")
    kind, res = run_module(iptables_rule, {"name": "web", "protocol": "tcp", "dports": [80], "jump": "ACCEPT",
                                           "priority": 1, "ip_version": "ipv4"}, host)
    assert kind == "Exit" and res["changed"], res
    applied = [c[2] for c in host.calls if c[0] == "iptables-restore" and "--test" not in c[1]]
    assert len(applied) == 2 and "-I INPUT 1 " in applied[-1]


def test_an_insert_the_kernel_refuses_in_an_unchanged_ruleset_is_reported_as_such():
    host = FakeHost({"iptables-save": EMPTY, "ip6tables-save": EMPTY},
                    restore_rc={("iptables-restore", False): 1}, restore_stderr="%s: line 2 failed\n")
    kind, res = run_module(iptables_rule, {"name": "web", "protocol": "tcp", "dports": [80], "jump": "ACCEPT",
                                           "ip_version": "ipv4"}, host)
    assert kind == "Fail" and "rejected line 2" in res["msg"] and "another program" not in res["msg"], res


def test_the_watchdog_is_started_through_the_counted_runner(tmp_path):
    # every binary runs through Netfilter.run: the watchdog's setsid shows in calls
    host = FakeHost({"iptables-save": EMPTY, "ip6tables-save": EMPTY})
    kind, res = run_module(iptables_policy, {"chain": "INPUT", "policy": "DROP", "ip_version": "ipv4",
                                             "rollback_timeout": 30}, host)
    assert kind == "Exit" and res["changed"] and res["rollback"]["armed"], res
    assert res["calls"] == {"save": 1, "restore": 1, "watchdog": 1}
    assert [c[0] for c in host.calls] == ["iptables-save", "setsid", "iptables-restore"]
