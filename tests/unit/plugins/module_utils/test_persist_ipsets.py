# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_persist and ipsets: save.sets, the set lines of the rules files, the hook loading sets first and failing closed.

tests/integration/test_ipset_boot.py runs the hook after a simulated reboot with real sets and packets.
"""

from __future__ import annotations

import subprocess

import pytest

from ansible_collections.ironwall.iptables.plugins.module_utils import _persist
from ansible_collections.ironwall.iptables.plugins.module_utils._errors import SpecError
from ansible_collections.ironwall.iptables.plugins.module_utils._model import parse_save

RULES = """*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m set --match-set blocklist src -m comment --comment "ironwall:050:rule:blocklist" -j DROP
-A INPUT -p tcp -m tcp --dport 3306 -m conntrack --ctstate NEW -m set --match-set W src -m comment --comment "ironwall:500:whitelist:W" -j ACCEPT
-A INPUT -p tcp -m tcp --dport 3306 -m conntrack --ctstate NEW -m comment --comment "ironwall:500:whitelist:W" -j DROP
-A INPUT -m set --match-set foreign src -j ACCEPT
COMMIT
"""


@pytest.fixture
def root(tmp_path):
    (tmp_path / "etc").mkdir()
    return str(tmp_path)


def test_save_sets_is_validated_naming_the_option(root):
    ok = _persist.validate({"ipv4": "/etc/iptables.rules", "sets": "/etc/iptables.ipsets"}, ("ipv4",), root)
    assert ok.sets == "/etc/iptables.ipsets"
    for save, words in (
            ({"ipv4": "/etc/iptables.rules", "sets": "etc/x"}, "absolute"),
            ({"ipv4": "/etc/iptables.rules", "sets": "/nowhere/x"}, "does not exist"),
            ({"ipv4": "/etc/iptables.rules", "sets": "/etc/iptables.rules"}, "a file of their own"),
            ({"sets": "/etc/iptables.ipsets"}, "give save.ipv4")):
        with pytest.raises(SpecError) as err:
            _persist.validate(save, ("ipv4", "ipv6"), root)
        assert err.value.option == "save.sets" and words in err.value.message


def test_resolving_the_boot_method_keeps_the_sets_file(root):
    save = _persist.Save((("ipv4", "/etc/iptables.rules"),), "owned", "none", "/etc/iptables.ipsets")
    assert _persist.resolved(save, root).sets == "/etc/iptables.ipsets"


def test_rules_files_name_the_sets_their_rules_match():
    ruleset = parse_save(RULES)
    text, _skipped = _persist.render(ruleset, "ipv4", "owned", {"INPUT"}, {"W": "hash:net", "blocklist": "hash:ip"})
    lines = text.split("\n")
    assert lines[1:3] == ["# ironwall-set: blocklist hash:ip inet", "# ironwall-set: W hash:net inet"]
    assert "foreign" not in text  # untagged: not ours, not saved, not named
    full, _sets = _persist.render(ruleset, "ipv6", "all", set(), {"W": "hash:net", "foreign": "hash:ip"})
    assert full.startswith("# ironwall-set: W hash:net inet6\n# ironwall-set: foreign hash:ip inet6\n*filter\n")
    plain, _sets = _persist.render(ruleset, "ipv4", "owned", {"INPUT"})
    assert "# ironwall-set" not in plain
    assert _persist.matched_sets(RULES) == ["blocklist", "W", "foreign"]


def test_hook_loads_the_sets_before_the_rules_and_is_valid_sh():
    save = _persist.Save((("ipv4", "/etc/iptables.rules"), ("ipv6", "/etc/ip6tables.rules")), "owned", "ifupdown",
                         "/etc/iptables.ipsets")
    script = _persist.hook_script(save)
    calls = [line for line in script.split("\n") if line.startswith(("restore ", "restore_sets "))]
    assert calls == ["restore_sets /etc/iptables.ipsets /etc/iptables.rules /etc/ip6tables.rules",
                     "restore iptables-restore /etc/iptables.rules",
                     "restore ip6tables-restore /etc/ip6tables.rules"]
    assert subprocess.run(["sh", "-n"], input=script, text=True, check=False).returncode == 0
    assert "fail closed" in script and "sed '/--match-set /d'" in script
    # without save.sets the hook still creates the sets the rules name (empty), so the rules load
    bare = _persist.hook_script(_persist.Save((("ipv4", "/etc/iptables.rules"),), "owned", "ifupdown"))
    assert "restore_sets '' /etc/iptables.rules" in bare


def test_hook_without_ipset_loads_the_rules_without_their_set_lines(tmp_path):
    """The fallback on its own: iptables-restore stand-ins that refuse any --match-set line (as when
    no set exists) and record what they are fed."""
    rules = tmp_path / "iptables.rules"
    rules.write_text("# ironwall-set: W hash:net inet\n" + RULES)
    fake = tmp_path / "bin"
    fake.mkdir()
    tool = fake / "iptables-restore"
    tool.write_text('#!/bin/sh\nfor a; do [ "$a" = --test ] && test=1; done\nlast=""\n'
                    'for a; do last=$a; done\n'
                    'if [ -f "$last" ]; then in=$(cat "$last"); else in=$(cat); fi\n'
                    'if echo "$in" | grep -q -e "--match-set"; then exit 2; fi\n'
                    '[ -z "$test" ] && echo "$in" > %s/loaded\nexit 0\n' % tmp_path)
    tool.chmod(0o755)
    save = _persist.Save((("ipv4", str(rules)),), "owned", "ifupdown", str(tmp_path / "missing.ipsets"))
    script = _persist.hook_script(save).replace("FLAG=/run/ironwall-iptables.restored", "FLAG=%s/flag" % tmp_path)
    # sed, grep and cat from /usr/bin; no ipset there (it is in /usr/sbin), no real iptables-restore first
    script = script.replace("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                            "PATH=%s:/usr/bin" % fake).replace('logger -t "$TAG"', "false")
    assert "PATH=%s:/usr/bin\n" % fake in script
    proc = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=False,
                          env={"PATH": "/usr/bin"})
    assert proc.returncode == 0, proc
    assert "ipset not found" in proc.stderr and "without its set-matching rules (fail closed)" in proc.stderr
    loaded = (tmp_path / "loaded").read_text()
    assert "--match-set" not in loaded
    assert '"ironwall:500:whitelist:W" -j DROP' in loaded and ":INPUT DROP" in loaded
