#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/site.yml against sandbox hosts, and the probes that show what it does.

Shared by tools/demo.py (`make demo`) and tests/integration/test_role_site.py:

* ``write_site_inventory`` -- an inventory directory with the sandbox hosts in the
  ``firewall`` group and the example ``playbooks/inventory/group_vars`` linked in, so the
  run uses exactly the example inventory's variables;
* ``run_site`` -- ansible-playbook over real SSH; returns the output and the recap counts;
* ``ping`` -- one ICMP / ICMPv6 echo from a client namespace (raw socket; no ping binary
  needed on this machine);
* ``ssh_attempts`` -- consecutive new TCP connections to port 22, as a scanner makes them.

Everything runs in namespaces made by tools/sandbox_net.py and sandbox_hosts.py; the
machine's firewall is never touched.
"""

from __future__ import annotations

import os
import sys

from ansible_runs import ROOT, ansible_bin, checkout_env, play_recap, timed_run
from sandbox_inventory import write_inventory
from sandbox_net import probe

SITE = os.path.join(ROOT, "playbooks", "site.yml")
GROUP_VARS = os.path.join(ROOT, "playbooks", "inventory", "group_vars")

_PING = r"""
import os, socket, struct, sys, time
family, addr = int(sys.argv[1]), sys.argv[2]
if family == 4:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    kind, reply = 8, 0
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    kind, reply = 128, 129
ident = os.getpid() & 0xFFFF
def checksum(data):
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF
payload = b"ironwall-ping"
header = struct.pack("!BBHHH", kind, 0, 0, ident, 1)
if family == 4:
    header = struct.pack("!BBHHH", kind, 0, checksum(header + payload), ident, 1)
s.settimeout(0.2)
s.sendto(header + payload, (addr, 0))
deadline = time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    try:
        data, peer = s.recvfrom(2048)
    except socket.timeout:
        continue
    icmp = data[20:] if family == 4 else data
    if peer[0] == addr and len(icmp) >= 8 and icmp[0] == reply and struct.unpack("!H", icmp[4:6])[0] == ident:
        sys.exit(0)
sys.exit(1)
"""


def write_site_inventory(hosts, directory):
    """An inventory dir: the sandbox hosts, in group `firewall`, with the example group_vars."""
    os.makedirs(directory, exist_ok=True)
    write_inventory(hosts, os.path.join(directory, "sandbox.yml"))
    with open(os.path.join(directory, "firewall.yml"), "w") as fh:
        fh.write("# The sandbox hosts get the example firewall (group_vars/firewall.yml).\n"
                 "all:\n  children:\n    firewall:\n      children:\n        sandbox: {}\n")
    link = os.path.join(directory, "group_vars")
    if not os.path.islink(link):
        os.symlink(GROUP_VARS, link)
    return directory


def run_site(inventory, playbook=SITE, extra_args=()):
    """ansible-playbook playbook over SSH; returns (rc, output, {host: recap counts}, seconds)."""
    proc, took = timed_run([ansible_bin("ansible-playbook"), "-i", inventory, playbook] + list(extra_args),
                           env=checkout_env(ANSIBLE_FORCE_COLOR="0"), timeout=900)
    return proc.returncode, proc.stdout + proc.stderr, play_recap(proc.stdout), took


def ping(client, addr, family, timeout=2.0):
    """True if addr answers one ICMP (family 4) / ICMPv6 (6) echo request from client."""
    proc = client.run([sys.executable, "-c", _PING, str(family), addr, str(timeout)],
                      check=False, timeout=timeout + 10)
    return proc.returncode == 0


def ssh_attempts(client, addr, count, timeout=1):
    """Open `count` new TCP connections to addr:22 one after the other; [True/False, ...]."""
    return [probe(client, addr, 22, timeout=timeout) for attempt in range(count)]
