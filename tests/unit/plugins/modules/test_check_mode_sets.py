# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check mode and a set an earlier iptables_ipset task creates only in a real run: a warning, not a failure."""

from __future__ import annotations

from ansible.module_utils import basic

from ansible_collections.ironwall.iptables.plugins.modules import iptables_rule
from ansible_collections.ironwall.iptables.tests.unit.plugins.modules.modrunner import FakeHost, run_module

EMPTY = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
RULE = {"name": "blocklist", "priority": 50, "match_set": "abuse", "ip_version": "ipv4", "jump": "DROP"}


def host(stderr):
    return FakeHost({"iptables-save": EMPTY, "ip6tables-save": EMPTY}, restore_rc={("iptables-restore", True): 2},
                    restore_stderr=stderr)


def test_a_missing_set_in_check_mode_is_a_warning():
    h = host("%s v1.8.9 (nf_tables): Set abuse doesn't exist.\n\nError occurred at line: 2\n")
    seen = []
    kind, res = run_module(iptables_rule, RULE, h, check=True,
                           patches=[(basic.AnsibleModule, "warn", lambda self, msg: seen.append(msg))])
    assert kind == "Exit" and res["changed"] is True, res
    assert any("set abuse, which does not exist yet" in w for w in seen), seen
    assert all("--test" in c[1] for c in h.restores())


def test_any_other_refusal_still_fails_and_a_real_run_still_fails():
    h = host("%s v1.8.9 (nf_tables): Couldn't load match `set'\n\nError occurred at line: 2\n")
    kind, res = run_module(iptables_rule, RULE, h, check=True)
    assert kind == "Fail", res
    h = FakeHost({"iptables-save": EMPTY, "ip6tables-save": EMPTY}, restore_rc={("iptables-restore", False): 2},
                 restore_stderr="%s: Set abuse doesn't exist.\n\nError occurred at line: 2\n")
    kind, res = run_module(iptables_rule, RULE, h)
    assert kind == "Fail" and "Set abuse doesn't exist" in res["msg"], res
