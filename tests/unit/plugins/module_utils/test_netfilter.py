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
    # --test, the failing apply, then a full restore of both tables from the snapshot.
    assert [("--test" in c[1], "--noflush" in c[1]) for c in host.restores()] == [
        (True, True), (False, True), (False, False)]
    undo = host.restores()[-1][2]
    assert "*filter" in undo and "*mangle" in undo and ":INPUT ACCEPT [0:0]" in undo


def test_a_failed_one_table_script_is_applied_untested_and_not_undone():
    current, one = plan("filter")
    assert one.atomic
    host = FakeHost({}, restore_rc={("iptables-restore", False, True): 1})
    with pytest.raises(NetfilterError):
        Netfilter(host).apply([("ipv4", one)], {"ipv4": current})
    assert [("--test" in c[1], "--noflush" in c[1]) for c in host.restores()] == [(False, True)]
