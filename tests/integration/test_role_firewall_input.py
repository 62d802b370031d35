# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bad role variables are refused, naming the variable, before the firewall changes.

The role runs with a local connection inside a throwaway network namespace, so even a
validation that wrongly passed could only touch that namespace's netfilter.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ansible_runs import ansible_env

ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
PLAY = "- hosts: localhost\n  gather_facts: false\n  roles: [ironwall.iptables.firewall]\n"

CASES = [
    ("firewall_ssh_port: abc", "firewall_ssh_port"),
    ("firewall_allow_icmp: maybe", "firewall_allow_icmp"),
    ("firewall_policies: {INPUT: REJECT}", "firewall_policies"),
    ("firewall_policies: {OUTPUT: ACCEPT, PREROUTING: DROP}", "PREROUTING"),
    ("firewall_restore: sometimes", "firewall_restore"),
    ("firewall_whitelists: [{name: MYSQL_WHITELIST, bogus: 1}]", "firewall_whitelists.bogus"),
    ("firewall_ratelimits: [{name: ssh, action: ACCEPT}]", "firewall_ratelimits"),
    ("firewall_open_ports: [{prot: 80}]", "firewall_open_ports"),
    ("firewall_ssh_accept: false\nfirewall_ratelimits: []", "firewall_ssh_port=22"),
    ("firewall_open_ports: [{port: 80, interface: lan0}]", "firewall_open_ports"),
    ("firewall_forwarded_ports: [{port: 8080}]", "firewall_forwarded_ports"),
    ("firewall_forwarded_ports: [{port: 8080, to: 198.51.100.10, protocol: icmp}]", "firewall_forwarded_ports"),
    ("firewall_forwarded_ports: [{port: 8080, to: '198.51.100.0/24'}]", "firewall_forwarded_ports[0].to"),
    ("firewall_forwarded_ports: [{port: 22, to: 198.51.100.10}]", "firewall_forwarded_ports[0] (tcp-22)"),
    ("firewall_masquerade: [{sources: [198.51.100.0/24]}]", "firewall_masquerade"),
    ("firewall_ip_forward: maybe", "firewall_ip_forward"),
    ("firewall_extra_rules: [accept-all]", "firewall_extra_rules"),
    ("firewall_extra_rules: [{name: firewall-ssh, jump: ACCEPT}]", "firewall_extra_rules[0]"),
    ("firewall_extra_rules: [{name: x, jump: NOSUCHCHAIN}]", "rules[0].jump"),
]


@pytest.mark.parametrize("variables,named", CASES, ids=[c[1] for c in CASES])
def test_bad_variables_are_refused(netns, tmp_path, variables, named):
    (tmp_path / "vars.yml").write_text(variables + "\n")
    (tmp_path / "play.yml").write_text(PLAY)
    proc = subprocess.run(
        ["ip", "netns", "exec", netns.name, ANSIBLE_PLAYBOOK if os.path.exists(ANSIBLE_PLAYBOOK) else "ansible-playbook", "-i", "localhost,", "-c", "local",
         "-e", "ansible_python_interpreter=/usr/bin/python3", "-e", "@%s" % (tmp_path / "vars.yml"),
         str(tmp_path / "play.yml")],
        env=dict(ansible_env("nft"), ANSIBLE_STDOUT_CALLBACK="default"), capture_output=True, text=True,
        timeout=300, check=False, cwd=str(tmp_path))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert named in out, out
    for family in (4, 6):
        assert "ironwall" not in netns.save(family), "the firewall changed"
