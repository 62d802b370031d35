# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Netfilter.apply: which scripts are tested first and which are undone after a failure."""

from __future__ import annotations

import pytest

from ansible_collections.ironwall.iptables.plugins.module_utils._model import parse_save
from ansible_collections.ironwall.iptables.plugins.module_utils._netfilter import Netfilter, NetfilterError
from ansible_collections.ironwall.iptables.plugins.module_utils._plan import Desired, plan_changes
from ansible_collections.ironwall.iptables.tests.unit.plugins.modules.modrunner import FakeHost

SAVE = ("*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\nCOMMIT\n"
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")


def plan(*tables):
    current = parse_save(SAVE)
    return current, plan_changes(current, Desired(policies=tuple((t, "INPUT", "DROP") for t in tables)), "ipv4")


def test_a_failed_several_table_script_is_rolled_back_and_was_tested_first():
    current, two = plan("filter", "mangle")
    assert not two.atomic
    host = FakeHost({}, restore_rc={("iptables-restore", False, True): 1})
    with pytest.raises(NetfilterError):
        Netfilter(host).apply([("ipv4", two)], {"ipv4": current})
    # --test, the failing apply, the undo of only our change (it fails here too: every --noflush
    # apply does), then a full restore of both tables from the snapshot.
    assert [("--test" in c[1], "--noflush" in c[1]) for c in host.restores()] == [
        (True, True), (False, True), (False, True), (False, False)]
    assert host.restores()[2][2] == "*filter\n-P INPUT ACCEPT\nCOMMIT\n*mangle\n-P INPUT ACCEPT\nCOMMIT\n"
    snapshot = host.restores()[-1][2]
    assert "*filter" in snapshot and "*mangle" in snapshot and ":INPUT ACCEPT [0:0]" in snapshot


def test_a_partly_applied_script_is_undone_by_its_own_inverse_when_that_applies():
    # the undo touches only what the plan changed, so a rule another program added stays
    current, two = plan("filter", "mangle")
    calls = []

    def rc(name, argv):
        calls.append(argv)
        return 1 if len(calls) == 2 else 0  # the apply fails, the undo works
    host = FakeHost({}, restore_rc=rc)
    with pytest.raises(NetfilterError):
        Netfilter(host).apply([("ipv4", two)], {"ipv4": current})
    assert [("--test" in c[1], "--noflush" in c[1]) for c in host.restores()] == [
        (True, True), (False, True), (False, True)]
    assert "-P INPUT ACCEPT" in host.restores()[-1][2]


def test_a_failed_one_table_script_is_applied_untested_and_not_undone():
    current, one = plan("filter")
    assert one.atomic
    host = FakeHost({}, restore_rc={("iptables-restore", False, True): 1})
    with pytest.raises(NetfilterError):
        Netfilter(host).apply([("ipv4", one)], {"ipv4": current})
    assert [("--test" in c[1], "--noflush" in c[1]) for c in host.restores()] == [(False, True)]
