# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible inventories for sandbox hosts (sandbox_hosts.Host), and the files that describe them.

``write_inventory`` puts the hosts in one group with what Ansible needs to reach them over
real SSH through the switch namespace: the sandbox key, ``ansible_ssh_common_args`` with the
``ip netns exec SWITCH nc`` ProxyCommand, a per-host ControlPath directory (so SSH control
masters can be ended before a host goes away) and the target's Python.  tools/sandbox.py
``host-up``, tools/fleet.py and the tests write their inventories with it.  Standard library
only.
"""

from __future__ import annotations

import json
import os

from sandbox_hosts import SSH_KEY, ssh_common_options


def write_atomically(path, text):
    """Write text to path so that a reader sees the old file or the new one, never a part."""
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path


def _yaml_scalar(value):
    # JSON scalars and flow collections are valid YAML.
    return json.dumps(value)


def _shell_quote(opt):
    # ProxyCommand=ip netns exec X nc ... -> ProxyCommand='ip netns exec X nc ...'
    if " " in opt:
        key, _sep, val = opt.partition("=")
        return "%s='%s'" % (key, val)
    return opt


def ssh_common_args(lan):
    """``ansible_ssh_common_args`` for hosts on lan: ssh_common_options as one command line."""
    return " ".join("-o %s" % _shell_quote(o) for o in ssh_common_options(lan))


def write_inventory(hosts, path, group="sandbox", group_vars=None, host_vars=None, groups=None):
    """Write a YAML Ansible inventory of hosts, all in ``group``; returns path.

    ``group_vars`` are added to the group's connection variables, ``host_vars(host)`` (a
    function) gives extra variables per host, ``groups`` maps more group names to lists of
    host names.
    """
    hosts = list(hosts)
    if not hosts:
        raise ValueError("no hosts")
    common_vars = {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": SSH_KEY,
        "ansible_ssh_common_args": ssh_common_args(hosts[0].lan),
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    common_vars.update(group_vars or {})
    lines = ["# Written by tools/sandbox_inventory.py; the hosts live only while their sandbox runs.",
             "all:", "  children:", "    %s:" % group, "      hosts:"]
    for host in hosts:
        lines.append("        %s:" % host.name)
        hv = {
            "ansible_host": host.addr4,
            "sandbox_addr6": host.addr6,
            "sandbox_netns": host.netns.name,
            "ansible_control_path_dir": host.control_dir,
        }
        hv.update(host_vars(host) if host_vars else {})
        lines += ["          %s: %s" % (k, _yaml_scalar(v)) for k, v in hv.items()]
    lines.append("      vars:")
    lines += ["        %s: %s" % (k, _yaml_scalar(v)) for k, v in common_vars.items()]
    for name, members in (groups or {}).items():
        lines += ["    %s:" % name, "      hosts:"]
        lines += ["        %s: {}" % member for member in members]
    return write_atomically(path, "\n".join(lines) + "\n")
