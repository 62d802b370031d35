# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""When does an IPv6 ``-m recent`` list that shares its name with an IPv4 one count a whole /32?

Measured with real TCP connections, on iptables-nft and iptables-legacy. Two namespaces joined
by a veth pair: the server (198.51.100.1, 2001:db8:1::1) and a client with two sources per
family, A and B: 198.51.100.2 / .3, and 2001:db8:1::2 / 2001:db8:1:2::3 (the same /32, not the
same /64). Every source makes one warm-up connection to an unlimited port first (neighbour
discovery), then A opens HITCOUNT-1 new connections to the limited port and B one: B's goes
through if the list counts A and B apart ("own"), and is dropped if the list counts them as one
source ("shared"). The list's entries in /proc/net/xt_recent/<name> must say the same.

What this shows (the kernel keeps one list per name and network namespace for both families,
with the address mask of the rule that created the list):

- IPv4 list created by a rule with an explicit ``--mask 255.255.255.255`` (what iptables-save
  prints, so also any IPv4 rule loaded by iptables-restore from saved text, and what
  iptables_ratelimit writes), then an IPv6 rule with the same name: IPv6 sources are masked to
  their first 32 bits, one count per /32, whatever ``--mask`` the IPv6 rule gives.
- IPv4 rule created with ``iptables -A`` without ``--mask``: iptables-save prints the same
  ``--mask 255.255.255.255``, but the list keeps whole IPv6 addresses apart.
- IPv6 rule first (default or explicit full mask): both families keep whole addresses. An IPv6
  rule with a short mask that creates the list masks IPv4 sources with it as well.
- The mask stays as long as the list exists (a rule of either family still names it): removing
  the IPv4 rules does not give the IPv6 sources back their own counts.
- A separate IPv6 list name (iptables_ratelimit's ``<name>_v6``) is never shared.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys

import pytest

from sandbox_net import Netns

BACKENDS = ("nft", "legacy")
PORT, WARM = 2222, 8080  # the limited port; an unlimited one for the warm-up
HITCOUNT = 3
SERVER = {4: "198.51.100.1", 6: "2001:db8:1::1"}
SOURCES = {4: ("198.51.100.2", "198.51.100.3"), 6: ("2001:db8:1::2", "2001:db8:1:2::3")}
PREFIX = {4: 24, 6: 32}  # on-link prefix of the veth addresses
FULL4, FULL6 = "255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"

# (id, steps, {family: "own" | the one entry A and B share}). A step: ("add", family, list name,
# --mask or None) adds the --set and the --rcheck rule; ("reload", family) saves the family's
# ruleset, flushes INPUT (the list goes when no rule names it) and restores the saved text;
# ("flush", family) empties INPUT.
V6_32 = "2001:db8::"  # A and B masked to their first 32 bits
CASES = [
    ("v4-then-v6", [("add", 4, "ssh", None), ("add", 6, "ssh", None)], {4: "own", 6: "own"}),
    ("v6-then-v4", [("add", 6, "ssh", None), ("add", 4, "ssh", None)], {4: "own", 6: "own"}),
    ("v4-mask-then-v6", [("add", 4, "ssh", FULL4), ("add", 6, "ssh", None)], {4: "own", 6: V6_32}),
    ("v4-mask-then-v6-mask", [("add", 4, "ssh", FULL4), ("add", 6, "ssh", FULL6)], {4: "own", 6: V6_32}),
    ("v6-mask-then-v4-mask", [("add", 6, "ssh", FULL6), ("add", 4, "ssh", FULL4)], {4: "own", 6: "own"}),
    ("v4-restored-then-v6", [("add", 4, "ssh", None), ("reload", 4), ("add", 6, "ssh", None)],
     {4: "own", 6: V6_32}),
    ("v4-mask-then-v6-then-v4-removed", [("add", 4, "ssh", FULL4), ("add", 6, "ssh", None), ("flush", 4)],
     {6: V6_32}),
    # ffff:ff00:: keeps 24 bits: 198.51.100.x -> 198.51.100.0, 2001:db8:... -> 2001:d00::
    ("v6-mask24-then-v4", [("add", 6, "ssh", "ffff:ff00::"), ("add", 4, "ssh", None)],
     {4: "198.51.100.0", 6: "2001:d00::"}),
    ("v4-mask-then-v6-named-ssh_v6", [("add", 4, "ssh", FULL4), ("add", 6, "ssh_v6", None)],
     {4: "own", 6: "own"}),
]

LISTENER = r"""
import selectors, socket, sys
sel = selectors.DefaultSelector()
for port in sys.argv[1:]:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", int(port)))
    s.listen(512)
    sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _events in sel.select():
        conn, _peer = key.fileobj.accept()
        conn.close()
"""

# One connection per [source, destination, port], one after the other: "open" or "dropped"
# (no answer to the SYN within the timeout; a SYN the recent rule drops is never answered).
CONNECT = r"""
import json, socket, sys
out = []
for src, dst, port in json.loads(sys.argv[1]):
    s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(float(sys.argv[2]))
    s.bind((src, 0))
    try:
        s.connect((dst, port))
        out.append("open")
    except socket.timeout:
        out.append("dropped")
    except OSError as exc:
        out.append("error: %s" % exc)
    finally:
        s.close()
print(json.dumps(out))
"""


def connect(client, attempts, timeout=1.5):
    proc = client.run([sys.executable, "-c", CONNECT, json.dumps(attempts), str(timeout)], timeout=300)
    return json.loads(proc.stdout)


def rules(family, name, mask):
    """The --set rule and the --rcheck ... -j DROP rule for new connections to PORT."""
    head = ["-A", "INPUT", "-p", "tcp", "--dport", str(PORT), "-m", "conntrack", "--ctstate", "NEW",
            "-m", "recent"]
    tail = ["--name", name] + (["--mask", mask] if mask else []) + ["--rsource"]
    return [head + ["--set"] + tail,
            head + ["--rcheck", "--seconds", "60", "--hitcount", str(HITCOUNT)] + tail + ["-j", "DROP"]]


def recent_entries(ns, name):
    """{address: hits} of the kernel's recent list ``name`` in namespace ns."""
    text = ns.run(["cat", "/proc/net/xt_recent/" + name]).stdout
    entries = {}
    for line in text.splitlines():
        m = re.match(r"^src=(\S+) ttl: \d+ last_seen: \d+ oldest_pkt: \d+ (.*)$", line)
        assert m, "unexpected line in /proc/net/xt_recent/%s: %r" % (name, line)
        entries[ipaddress.ip_address(m.group(1))] = len(m.group(2).split(","))
    return entries


@pytest.fixture
def wire():
    """(server, client) namespaces on one veth pair, the server listening on PORT and WARM."""
    with Netns() as server, Netns() as client:
        for ns in (server, client):
            ns.run(["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"])
        # Born inside the server namespace, its peer moved straight into the client's.
        server.run(["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", client.name])
        for ns, dev, addrs in ((server, "v0", {4: [SERVER[4]], 6: [SERVER[6]]}), (client, "v1", SOURCES)):
            for fam in (4, 6):
                for addr in addrs[fam]:
                    ns.run(["ip", "addr", "add", "%s/%d" % (addr, PREFIX[fam]), "dev", dev]
                           + (["nodad"] if fam == 6 else []))
            ns.run(["ip", "link", "set", dev, "up"])
        listener = subprocess.Popen(server.argv([sys.executable, "-c", LISTENER, PORT, WARM]),
                                    stdout=subprocess.PIPE, text=True)
        try:
            assert listener.stdout.readline().strip() == "ready"
            yield server, client
        finally:
            listener.kill()
            listener.wait()
            listener.stdout.close()


def apply(server, steps, backend):
    for step in steps:
        op, fam = step[0], step[1]
        if op == "add":
            for rule in rules(fam, step[2], step[3]):
                server.iptables(*rule, family=fam, backend=backend)
        elif op == "reload":
            saved = server.save(fam, backend)
            server.iptables("-F", "INPUT", family=fam, backend=backend)
            server.load(saved, fam, backend)
        elif op == "flush":
            server.iptables("-F", "INPUT", family=fam, backend=backend)


@pytest.mark.parametrize("case_id,steps,expected", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("backend", BACKENDS)
def test_recent_list_shared_by_name(wire, backend, case_id, steps, expected):
    server, client = wire
    apply(server, steps, backend)
    saved = server.save(4, backend) + server.save(6, backend)
    if ("add", 4, "ssh", None) in steps:
        # iptables-save prints the IPv4 rule added without --mask with the same --mask as one
        # added with it: the difference between them is not visible in the saved text.
        assert "--name ssh --mask %s --rsource" % FULL4 in saved, saved
    # Warm-up: one connection from every source to the unlimited port (retried: an unanswered
    # first SYN while the neighbour entry resolves is not what is measured here).
    for fam in (4, 6):
        for src in SOURCES[fam]:
            results = []
            while "open" not in results and len(results) < 10:
                results += connect(client, [[src, SERVER[fam], WARM]])
            assert "open" in results, "warm-up from %s never got through: %s" % (src, results)
    lists = {fam: ("ssh_v6" if fam == 6 and ("add", 6, "ssh_v6", None) in steps else "ssh") for fam in expected}
    observed, evidence = {}, {}
    for fam in sorted(expected):
        a, b = SOURCES[fam]
        got = connect(client, [[a, SERVER[fam], PORT]] * (HITCOUNT - 1) + [[b, SERVER[fam], PORT]])
        assert got[:-1] == ["open"] * (HITCOUNT - 1), (fam, got)  # under the limit
        observed[fam] = {"open": "own", "dropped": "shared"}.get(got[-1], got[-1])
        entries = recent_entries(server, lists[fam])
        evidence[fam] = {str(addr): hits for addr, hits in entries.items() if addr.version == fam}
    print("\n%s %s: %s  /proc/net/xt_recent: %s" % (backend, case_id, observed, evidence))
    assert observed == {fam: "own" if want == "own" else "shared" for fam, want in expected.items()}, evidence
    for fam, want in expected.items():
        a, b = SOURCES[fam]
        if want == "own":
            assert evidence[fam] == {str(ipaddress.ip_address(a)): HITCOUNT - 1,
                                     str(ipaddress.ip_address(b)): 1}, evidence
        else:
            # A and B are one entry, the masked address, holding the connections of both (at
            # least HITCOUNT: a retransmitted SYN of B's dropped connection is recorded too).
            assert list(evidence[fam]) == [want] and evidence[fam][want] >= HITCOUNT, evidence
