# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The README's "Migrating from ansible.builtin.iptables" table stays complete and true.

Its left column must list every option of the installed ansible-core's ``ansible.builtin.iptables``
(read from the module's own DOCUMENTATION), once each and nothing else; its right column must
start either with an option iptables_rule really has (taken from the argument spec the module
builds) or with a reason: "no equivalent", "not needed", or another module of the collection.
"""

from __future__ import annotations

import os
import re

import pytest
import yaml

from ansible.module_utils import basic

from ansible_collections.ironwall.iptables.plugins.modules import iptables_rule

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
README = os.path.join(ROOT, "README.md")
HEADING = "## Migrating from ansible.builtin.iptables"
REASONS = ("no equivalent", "not needed", "module `ironwall.iptables.")


def builtin_options():
    import ansible.modules.iptables as builtin
    return list(yaml.safe_load(builtin.DOCUMENTATION)["options"])


def table_rows():
    """[(builtin option, what the README says instead)] of the migration table."""
    text = open(README, encoding="utf-8").read()
    assert text.count(HEADING + "\n") == 1, "README needs exactly one %r section" % HEADING
    section = text.split(HEADING + "\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        m = re.match(r"\| `([a-z_]+)` \| (.+) \|$", line)
        if m:
            rows.append((m.group(1), m.group(2)))
    return rows


class _Spec(Exception):
    pass


def rule_options(monkeypatch):
    """Every option of iptables_rule: top level and ``rules`` items, as its main() declares them."""
    def capture(self, argument_spec, **kwargs):
        raise _Spec(argument_spec)

    monkeypatch.setattr(basic.AnsibleModule, "__init__", capture)
    with pytest.raises(_Spec) as exc:
        iptables_rule.main()
    spec = exc.value.args[0]
    return set(spec) | set(spec["rules"].get("options") or ())


def test_the_table_lists_every_builtin_option_once():
    listed = [name for name, _ours in table_rows()]
    builtin = builtin_options()
    assert len(builtin) > 40  # the DOCUMENTATION really was read
    assert sorted(set(builtin) - set(listed)) == [], "options of ansible.builtin.iptables missing from the table"
    assert sorted(set(listed) - set(builtin)) == [], "the table lists options ansible.builtin.iptables lacks"
    assert sorted(n for n in listed if listed.count(n) > 1) == []


def test_each_equivalent_is_a_real_option_or_a_reason(monkeypatch):
    ours = rule_options(monkeypatch)
    wrong = []
    for name, instead in table_rows():
        if instead.startswith(REASONS):
            continue
        m = re.match(r"`([a-z_]+)`", instead)
        if not m or m.group(1) not in ours:
            wrong.append((name, instead))
    assert wrong == [], "right column neither an iptables_rule option nor a reason"
