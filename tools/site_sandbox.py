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
* ``start_listeners`` -- TCP listeners inside a host (IPv4 and IPv6);
* ``ping`` -- one ICMP / ICMPv6 echo from a client namespace (raw socket; no ping binary
  needed on this machine);
* ``ssh_attempts`` -- consecutive new TCP connections to port 22, as a scanner makes them.

Everything runs in namespaces made by tools/sandbox.py; the machine's firewall is never touched.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import sandbox  # noqa: E402

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


def ansible_env():
    env = dict(os.environ)
    base = sandbox.collections_link(ROOT)
    env.update(ANSIBLE_COLLECTIONS_PATH=env.get("ANSIBLE_COLLECTIONS_PATH") or base,
               ANSIBLE_HOST_KEY_CHECKING="0", ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return env


def _bin(name):
    cand = os.path.join(os.path.dirname(sys.executable), name)
    return cand if os.path.exists(cand) else name


def write_site_inventory(hosts, directory):
    """An inventory dir: the sandbox hosts, in group `firewall`, with the example group_vars."""
    os.makedirs(directory, exist_ok=True)
    sandbox.write_inventory(hosts, os.path.join(directory, "sandbox.yml"))
    with open(os.path.join(directory, "firewall.yml"), "w") as fh:
        fh.write("# The sandbox hosts get the example firewall (group_vars/firewall.yml).\n"
                 "all:\n  children:\n    firewall:\n      children:\n        sandbox: {}\n")
    link = os.path.join(directory, "group_vars")
    if not os.path.islink(link):
        os.symlink(GROUP_VARS, link)
    return directory


def run_site(inventory, playbook=SITE, extra_args=()):
    """ansible-playbook playbook over SSH; returns (rc, output, {host: recap counts})."""
    t0 = time.monotonic()
    proc = subprocess.run([_bin("ansible-playbook"), "-i", inventory, playbook] + list(extra_args),
                          env=ansible_env(), text=True, capture_output=True, timeout=900, check=False)
    out = proc.stdout + proc.stderr
    recap = {}
    for m in re.finditer(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", proc.stdout, re.M):
        recap[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return proc.returncode, out, recap, time.monotonic() - t0


def start_listeners(host, ports):
    """Dual-family TCP listeners inside host (they die with the host)."""
    for port in ports:
        for fam in ("4", "6"):
            host.exec(["sh", "-c", "nohup nc -%s -l -k %d >/dev/null 2>&1 &" % (fam, port)])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        ss = host.exec(["ss", "-Hltn"]).stdout
        if all(":%d " % p in ss for p in ports):
            return
        time.sleep(0.05)
    raise RuntimeError("listeners on %s did not start: %s" % (ports, ss))


def ping(client, addr, family, timeout=2.0):
    """True if addr answers one ICMP (family 4) / ICMPv6 (6) echo request from client."""
    proc = client.run([sys.executable, "-c", _PING, str(family), addr, str(timeout)],
                      check=False, timeout=timeout + 10)
    return proc.returncode == 0


def ssh_attempts(client, addr, count, timeout=1):
    """Open `count` new TCP connections to addr:22 one after the other; [True/False, ...]."""
    return [sandbox.probe(client, addr, 22, timeout=timeout) for attempt in range(count)]
