# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every module's and fragment's documentation is valid YAML and every example uses FQCNs."""

from __future__ import annotations

import ast
import glob
import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
MODULES = sorted(glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py")))
FRAGMENTS = sorted(glob.glob(os.path.join(ROOT, "plugins", "doc_fragments", "*.py")))


def doc_strings(path):
    tree = ast.parse(open(path).read())
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str) and node.targets[0].id.isupper():
                out[node.targets[0].id] = node.value.value
    return out


def test_there_are_modules():
    names = [os.path.basename(p) for p in MODULES]
    assert "iptables_policy.py" in names and "iptables_info.py" in names


@pytest.mark.parametrize("path", MODULES + FRAGMENTS, ids=os.path.basename)
def test_docs_are_yaml(path):
    docs = doc_strings(path)
    assert docs
    for name, text in docs.items():
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as exc:
            pytest.fail("%s %s: %s" % (os.path.basename(path), name, exc))


@pytest.mark.parametrize("path", MODULES, ids=os.path.basename)
def test_examples_use_fqcn(path):
    examples = yaml.safe_load(doc_strings(path)["EXAMPLES"])
    modules = [k for task in examples for k in task if k not in ("name", "register", "when", "loop", "vars")]
    assert modules
    assert all(k.startswith(("ironwall.iptables.", "ansible.builtin.")) for k in modules), modules


def test_rule_options_fragment_is_generated_from_the_option_table():
    # the rule options are documented once, in _options.OPTIONS; the fragment is its copy
    from ansible_collections.ironwall.iptables.plugins.module_utils._options import doc_options
    fragment = yaml.safe_load(doc_strings(os.path.join(ROOT, "plugins", "doc_fragments", "rule_options.py"))
                              ["DOCUMENTATION"])
    assert fragment["options"] == doc_options(), "run: python3 tools/rule_docs.py"


def test_ruleset_rules_fragment_is_generated_from_the_option_table():
    from ansible_collections.ironwall.iptables.plugins.module_utils._options import ruleset_rules_doc
    fragment = yaml.safe_load(doc_strings(os.path.join(ROOT, "plugins", "doc_fragments", "rule_options.py"))
                              ["RULESET"])
    assert fragment["options"] == ruleset_rules_doc(), "run: python3 tools/rule_docs.py"
    # every reference inside an item points inside the item: iptables_ruleset has no top-level O(protocol)
    text = yaml.safe_dump(fragment)
    assert "O(protocol)" not in text and "O(rules[].protocol)" in text


def test_rule_argspec_matches_the_documented_options():
    from ansible_collections.ironwall.iptables.plugins.module_utils._options import argspec, doc_options
    docs = doc_options()
    for key, spec in argspec(top=True).items():
        assert spec["type"] == docs[key]["type"] and spec.get("default") == docs[key].get("default"), key
    items = docs["rules"]["suboptions"]
    for key, spec in argspec(top=False).items():
        assert spec["type"] == items[key]["type"] and "default" not in spec, key
