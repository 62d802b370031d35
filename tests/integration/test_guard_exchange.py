# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lockout guard follows the whole SSH exchange: the holes of issue 12 item 4, with real TCP.

A server and a client namespace on a sandbox_net.Lan (different subnets, routed by the switch),
nft and legacy, IPv4 and IPv6. The server runs a small echo server (dual-stack, started and
ended by pid here); the client's "sessions" are connections opened before a change, standing in
for the operator's SSH session, and "exchanges" are new connections that must carry data both
ways (connect, send, get the echo back): a probe that only connects would miss a firewall that
drops the client's established packets. Each module run gets ``SSH_CONNECTION`` naming the
client, the session's real source port, the server and the echo port, so the guard evaluates
exactly the connection the test then exercises.

Each hole is shown three ways: the change is refused without ``force`` (``failed: true``, the
message names where the exchange breaks, both families' rulesets unchanged); the same change
forced really breaks the exchange; and the safe variant is accepted and traffic still flows.

1. ``iptables_policy OUTPUT: DROP`` (the server's replies).
2. INPUT accepting only ``--ctstate NEW`` to the port, then ``INPUT: DROP`` (the client's
   established packets); with an ESTABLISHED,RELATED accept the DROP goes through.
3. DROP policies and DROP rules for the port in ``mangle`` and ``raw``; a udp DROP there is fine.
4. ``iptables_ratelimit hitcount: 1`` (``--set`` before ``--rcheck`` drops every new connection);
   hitcount 4 lets the operator's connections through.

5. An ip6tables DROP policy that accepts the operator's TCP exchange but not ICMPv6 neighbour
   discovery (found while writing this file): it cut IPv6 off once the neighbour entries expired
   (the test flushes them instead of waiting); the guard now refuses it.

Bounds: a connection expected to work gets OK_WAIT seconds (it returns at once when it works);
one expected to be dropped is given NO_WAIT seconds to fail. No duration is asserted.
"""

from __future__ import annotations

import json
import select
import subprocess
import time

import pytest

import ansible_runs
import sandbox_net

PORT = 2222
OK_WAIT = 20    # an exchange that should work: generous, it returns as soon as it has worked
NO_WAIT = 3     # an exchange that should be dropped: how long it is given to get through anyway
FAMILIES = (4, 6)

# Foreign rules in every table the change could touch, so that "unchanged" compares real content.
BASELINE = ("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A PREROUTING -p udp -m udp --dport 53 -j ACCEPT\nCOMMIT\n"
            "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
            ":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            "-A PREROUTING -p udp -m udp --dport 53 -j ACCEPT\nCOMMIT\n"
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A INPUT -p udp -m udp --dport 53 -j ACCEPT\nCOMMIT\n")

ECHO_SERVER = r"""
import socket, sys, threading
srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
srv.bind(("::", int(sys.argv[1])))
srv.listen(64)
print("ready", flush=True)

def serve(conn):
    with conn:
        while True:
            data = conn.recv(4096)
            if not data:
                return
            conn.sendall(data)

while True:
    conn, _peer = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""

# Connects, prints "connected <local port>" (or "connect-failed"), then for every line
# "<seconds> <word>" (the 4th argument, else each stdin line) sends the word and prints
# "echo <word>" or "lost" (after <seconds>).
CLIENT = r"""
import socket, sys
addr, port, wait = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
lines = sys.argv[4:] or sys.stdin
try:
    conn = socket.create_connection((addr, port), timeout=wait)
except OSError as exc:
    print("connect-failed %s" % exc, flush=True)
    sys.exit(1)
print("connected %d" % conn.getsockname()[1], flush=True)
for line in lines:
    wait, word = line.split()
    conn.settimeout(float(wait))
    try:
        conn.sendall(word.encode())
        got = b""
        while len(got) < len(word):
            data = conn.recv(4096)
            if not data:
                raise OSError("closed by the server")
            got += data
        print("echo %s" % got.decode(), flush=True)
    except OSError as exc:
        print("lost %s" % exc, flush=True)
        sys.exit(2)
"""


# --------------------------------------------------------------------------- helpers

def addr(ns, family):
    return ns.addr4 if family == 4 else ns.addr6


def ssh_env(client, server, family, client_port=50123):
    """SSH_CONNECTION as sshd sets it for the client's connection to the echo port."""
    return {"SSH_CONNECTION": "%s %d %s %d" % (addr(client, family), client_port, addr(server, family), PORT)}


def ruleset(ns, backend):
    """Both families' rulesets, every table, without '#' lines and chain counters (traffic moves those)."""
    return tuple(sandbox_net.comparable_save(ansible_runs.save(ns, fam, backend)) for fam in FAMILIES)


def refused(res, *words):
    """The guard refused the change: failed, not applied, the message names where it breaks.

    (An ad-hoc run's ``failed: true`` is its ``FAILED!`` status and exit code 2: the default
    callback prints the result without the key; a playbook task's result keeps it.)
    """
    assert res.get("failed") is True or (res.get("_status") == "FAILED!" and res.get("_rc") == 2), res
    assert "lockout guard" in res["msg"] and "not applied" in res["msg"], res["msg"]
    for word in words:
        assert word in res["msg"], (word, res["msg"])
    assert res["guard"]["before"] == "ACCEPT" and res["guard"]["after"] != "ACCEPT", res["guard"]
    return res


def accepted(res):
    """Applied, and the guard proved the operator's exchange carried before and after."""
    assert res.get("_status", "CHANGED") == "CHANGED" and res.get("changed") is True, res
    assert not res.get("failed"), res
    assert res["guard"]["before"] == "ACCEPT" and res["guard"]["after"] == "ACCEPT", res["guard"]
    assert res["guard"]["forced"] is False
    return res


def forced(res):
    assert res["_status"] == "CHANGED", res
    assert res["guard"]["forced"] is True and res["guard"]["after"] != "ACCEPT", res["guard"]
    return res


class EchoServer:
    """The echo server in the server namespace, dual-stack on PORT; stopped by its pid."""

    def __init__(self, ns):
        self.proc = subprocess.Popen(ns.argv(["python3", "-c", ECHO_SERVER, str(PORT)]),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        ready, _w, _x = select.select([self.proc.stdout], [], [], OK_WAIT)
        if not ready or self.proc.stdout.readline().strip() != "ready":
            self.stop()
            raise RuntimeError("echo server in %s did not start" % ns.name)

    def stop(self):
        sandbox_net.kill(self.proc.pid)
        self.proc.wait(timeout=OK_WAIT)
        self.proc.stdout.close()


class Session:
    """A connection from the client opened now and kept: the operator's running SSH session."""

    def __init__(self, client, server, family):
        self.proc = subprocess.Popen(client.argv(["python3", "-c", CLIENT, addr(server, family), str(PORT), str(OK_WAIT)]),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.answer(OK_WAIT + 10)
        assert line.startswith("connected "), "session %s: %r" % (family, line)
        self.port = int(line.split()[1])
        self.word = None

    def answer(self, bound):
        ready, _w, _x = select.select([self.proc.stdout], [], [], bound)
        return self.proc.stdout.readline().strip() if ready else "no answer"

    def send(self, wait):
        """Send a word; it has ``wait`` seconds to come back (see ``echoed``)."""
        self.word = "w%d" % time.monotonic_ns()
        self.proc.stdin.write("%s %s\n" % (wait, self.word))
        self.proc.stdin.flush()

    def echoed(self, wait):
        return self.answer(wait + 10) == "echo " + self.word

    def close(self):
        sandbox_net.kill(self.proc.pid)
        self.proc.wait(timeout=OK_WAIT)
        for fh in (self.proc.stdin, self.proc.stdout):
            try:
                fh.close()
            except OSError:  # the pipe broke with the killed process
                pass


def outcome(text):
    if "echo probe" in text:
        return "echoed"
    return "no-echo" if text.startswith("connected") else "no-connect"


def traffic(client, server, wait, sessions=None):
    """What gets through now, all at once, each decided within ``wait`` seconds.

    A new connection per family, {family: "echoed" (data went both ways) | "no-echo" (the
    handshake completed but the data never came back) | "no-connect"}; with ``sessions``
    ({family: Session}), also whether each running session still echoes: (new, {family: bool}).
    """
    procs = dict((fam, subprocess.Popen(client.argv(["python3", "-c", CLIENT, addr(server, fam), str(PORT), str(wait),
                                                     "%s probe" % wait]),
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True))
                 for fam in FAMILIES)
    for session in (sessions or {}).values():
        session.send(wait)
    new = {}
    for fam, proc in procs.items():
        text, _err = proc.communicate(timeout=2 * wait + 30)
        new[fam] = outcome(text)
    if sessions is None:
        return new
    return new, dict((fam, session.echoed(wait)) for fam, session in sessions.items())


def all_(what):
    """The same outcome for every family."""
    return dict((fam, what) for fam in FAMILIES)


@pytest.fixture
def pair(lan, request):
    """(server, client, backend): the server has the baseline and an echo server; both families
    carry an exchange (this also warms up IPv6 neighbour discovery)."""
    backend = request.param
    server = lan.add_client()
    client = lan.add_client(subnet="203.0.113")
    for fam in FAMILIES:
        server.load(BASELINE, fam, backend)
    echo = EchoServer(server)
    try:
        assert traffic(client, server, OK_WAIT) == all_("echoed")
        yield server, client, backend
    finally:
        echo.stop()


def run(server, client, backend, module, args, family, port=50123):
    return ansible_runs.run_module(server, module, args, backend, env=ssh_env(client, server, family, port))


BACKENDS = pytest.mark.parametrize("pair", ansible_runs.BACKENDS, indirect=True)


# --------------------------------------------------------------------------- 1. OUTPUT DROP

@BACKENDS
def test_output_drop_is_refused_and_forced_it_cuts_the_replies(pair):
    server, client, backend = pair
    before = ruleset(server, backend)
    sessions = dict((fam, Session(client, server, fam)) for fam in FAMILIES)
    try:
        for fam in FAMILIES:
            res = run(server, client, backend, "iptables_policy", {"policies": {"OUTPUT": "DROP"}}, fam,
                      sessions[fam].port)
            refused(res, "filter OUTPUT", "replies", addr(client, fam))
            assert ruleset(server, backend) == before, fam
        assert traffic(client, server, OK_WAIT, sessions) == (all_("echoed"), all_(True))

        # The refusal was right: forced, the replies stop, for new and running connections alike.
        forced(run(server, client, backend, "iptables_policy", {"policies": {"OUTPUT": "DROP"}, "force": True}, 4,
                   sessions[4].port))
        assert traffic(client, server, NO_WAIT, sessions) == (all_("no-connect"), all_(False))
    finally:
        for session in sessions.values():
            session.close()

    # Restored (the guard lets a change through that carries the exchange again).
    res = run(server, client, backend, "iptables_policy", {"policies": {"OUTPUT": "ACCEPT"}}, 4)
    assert res["_status"] == "CHANGED" and res["guard"]["after"] == "ACCEPT", res
    assert ruleset(server, backend) == before
    assert traffic(client, server, OK_WAIT) == all_("echoed")


# --------------------------------------------------------------------------- 2. NEW only, then INPUT DROP

NEW_ONLY = {"name": "ssh-new", "priority": 100, "protocol": "tcp", "dports": [PORT], "ctstate": ["NEW"],
            "jump": "ACCEPT"}
ESTABLISHED = {"name": "established", "priority": 50, "ctstate": ["ESTABLISHED", "RELATED"], "jump": "ACCEPT"}
ICMP = {"name": "icmp", "priority": 60, "protocol": "icmp", "jump": "ACCEPT"}


@BACKENDS
def test_input_drop_with_only_new_accepted_is_refused_until_established_is_accepted(pair):
    server, client, backend = pair
    accepted(run(server, client, backend, "iptables_rule", NEW_ONLY, 4))
    before = ruleset(server, backend)
    sessions = dict((fam, Session(client, server, fam)) for fam in FAMILIES)
    try:
        for fam in FAMILIES:
            res = run(server, client, backend, "iptables_policy", {"chain": "INPUT", "policy": "DROP"}, fam,
                      sessions[fam].port)
            refused(res, "filter INPUT", "established", addr(client, fam))
            assert ruleset(server, backend) == before, fam

        # The refusal was right: forced, the SYN still gets in (the handshake completes) but the
        # client's established packets are dropped: no data arrives, running sessions stall.
        forced(run(server, client, backend, "iptables_policy", {"chain": "INPUT", "policy": "DROP", "force": True}, 4,
                   sessions[4].port))
        assert traffic(client, server, NO_WAIT, sessions) == (all_("no-echo"), all_(False))
    finally:
        for session in sessions.values():
            session.close()
    for fam in FAMILIES:  # back to ACCEPT (not the subject here: plain iptables)
        server.iptables("-P", "INPUT", "ACCEPT", family=fam, backend=backend)
    assert ruleset(server, backend) == before
    assert traffic(client, server, OK_WAIT) == all_("echoed")

    # With ESTABLISHED,RELATED accepted (and ICMP, which IPv6 needs for neighbour discovery), the
    # DROP policy is accepted, family by family, and the exchange (a running session and new
    # connections) still works under it.
    accepted(run(server, client, backend, "iptables_rule", {"rules": [ESTABLISHED, ICMP]}, 4))
    sessions = dict((fam, Session(client, server, fam)) for fam in FAMILIES)
    try:
        for fam in FAMILIES:
            accepted(run(server, client, backend, "iptables_policy",
                         {"chain": "INPUT", "policy": "DROP", "ip_version": "ipv%d" % fam}, fam, sessions[fam].port))
        assert all(":INPUT DROP" in text for text in ruleset(server, backend))
        assert traffic(client, server, OK_WAIT, sessions) == (all_("echoed"), all_(True))
    finally:
        for session in sessions.values():
            session.close()


# --------------------------------------------------------------------------- 3. mangle and raw

# (label, module, args, where the guard must say the exchange breaks)
MANGLE_RAW_REFUSED = [
    ("policy mangle PREROUTING", "iptables_policy", {"table": "mangle", "chain": "PREROUTING", "policy": "DROP"},
     "mangle PREROUTING"),
    ("policy mangle INPUT", "iptables_policy", {"table": "mangle", "chain": "INPUT", "policy": "DROP"}, "mangle INPUT"),
    ("policy mangle POSTROUTING", "iptables_policy", {"table": "mangle", "chain": "POSTROUTING", "policy": "DROP"},
     "mangle POSTROUTING"),
    ("policy raw PREROUTING", "iptables_policy", {"table": "raw", "chain": "PREROUTING", "policy": "DROP"},
     "raw PREROUTING"),
    ("policy raw OUTPUT", "iptables_policy", {"table": "raw", "chain": "OUTPUT", "policy": "DROP"}, "raw OUTPUT"),
    ("rule mangle PREROUTING", "iptables_rule", {"name": "drop-ssh", "table": "mangle", "chain": "PREROUTING",
                                                 "protocol": "tcp", "dports": [PORT], "jump": "DROP"},
     "mangle PREROUTING"),
    ("rule mangle INPUT", "iptables_rule", {"name": "drop-ssh", "table": "mangle", "chain": "INPUT",
                                            "protocol": "tcp", "dports": [PORT], "jump": "DROP"}, "mangle INPUT"),
    ("rule raw PREROUTING", "iptables_rule", {"name": "drop-ssh", "table": "raw", "chain": "PREROUTING",
                                              "protocol": "tcp", "dports": [PORT], "jump": "DROP"}, "raw PREROUTING"),
    ("rule raw OUTPUT (replies)", "iptables_rule", {"name": "drop-ssh", "table": "raw", "chain": "OUTPUT",
                                                    "protocol": "tcp", "sports": [PORT], "jump": "DROP"}, "raw OUTPUT"),
    ("rule mangle POSTROUTING (replies)", "iptables_rule", {"name": "drop-ssh", "table": "mangle",
                                                            "chain": "POSTROUTING", "protocol": "tcp",
                                                            "sports": [PORT], "jump": "DROP"}, "mangle POSTROUTING"),
]
UDP_DROPS = {"rules": [
    {"name": "udp-mangle", "table": "mangle", "chain": "PREROUTING", "protocol": "udp", "dports": [PORT], "jump": "DROP"},
    {"name": "udp-raw", "table": "raw", "chain": "PREROUTING", "protocol": "udp", "dports": [PORT], "jump": "DROP"},
]}
MANGLE_SSH_DROP = dict(MANGLE_RAW_REFUSED[5][2])


def task(label, module, args, env):
    return {"name": label, "ironwall.iptables." + module: args, "environment": env, "ignore_errors": True}


@BACKENDS
def test_drop_in_mangle_and_raw_on_the_ssh_path_is_refused(pair):
    server, client, backend = pair
    before = ruleset(server, backend)
    # One ansible-playbook run holds every case for both families (fast); each task is one module run.
    tasks = []
    for fam in FAMILIES:
        env = ssh_env(client, server, fam)
        tasks += [task("%s ipv%d" % (label, fam), module, args, env) for label, module, args, _where in MANGLE_RAW_REFUSED]
        tasks.append(task("udp ipv%d" % fam, "iptables_rule", dict(UDP_DROPS, ip_version="ipv%d" % fam), env))
    data = ansible_runs.run_playbook(server, json.dumps([{"hosts": "localhost", "gather_facts": False,
                                                          "tasks": tasks}]), backend)
    results = dict(ansible_runs.task_results(data))
    assert len(results) == len(tasks), data
    let_through = []  # every case that was not refused, not only the first
    for fam in FAMILIES:
        for label, _module, _args, where in MANGLE_RAW_REFUSED:
            try:
                refused(results["%s ipv%d" % (label, fam)], where, addr(client, fam))
            except AssertionError as exc:
                let_through.append("%s ipv%d: %s" % (label, fam, str(exc).splitlines()[0][:300]))
    assert not let_through, "\n".join(let_through)
    for fam in FAMILIES:
        # Dropping unrelated traffic (udp) there is fine.
        accepted(results["udp ipv%d" % fam])
    after = ruleset(server, backend)
    for fam, text_before, text_after in zip(FAMILIES, before, after):
        # Nothing of the refused changes landed: the only difference is the two udp rules.
        added = sorted(set(text_after.splitlines()) - set(text_before.splitlines()))
        assert len(added) == 2 and all("-p udp" in line and "-j DROP" in line for line in added), (fam, added)
        assert not set(text_before.splitlines()) - set(text_after.splitlines()), fam
        assert ":PREROUTING ACCEPT" in text_after and ":POSTROUTING ACCEPT" in text_after
    assert traffic(client, server, OK_WAIT) == all_("echoed")

    # The refusal was right: the mangle PREROUTING rule, forced, really drops the connection.
    forced(run(server, client, backend, "iptables_rule", dict(MANGLE_SSH_DROP, force=True), 4))
    assert traffic(client, server, NO_WAIT) == all_("no-connect")
    res = run(server, client, backend, "iptables_rule", dict(MANGLE_SSH_DROP, state="absent"), 4)
    assert res["_status"] == "CHANGED" and res["guard"]["after"] == "ACCEPT", res
    assert ruleset(server, backend) == after
    assert traffic(client, server, OK_WAIT) == all_("echoed")


# --------------------------------------------------------------------------- 4. ratelimit hitcount 1

LIMIT = {"name": "ssh", "ports": [PORT], "seconds": 60}


@BACKENDS
def test_ratelimit_the_operator_always_hits_is_refused(pair):
    server, client, backend = pair
    before = ruleset(server, backend)
    for fam in FAMILIES:
        res = run(server, client, backend, "iptables_ratelimit", dict(LIMIT, hitcount=1), fam)
        refused(res, "filter INPUT", addr(client, fam))
        assert ruleset(server, backend) == before, fam

    # hitcount 4: the operator's own connection is one hit, under the limit: accepted, and the
    # operator's next connections (Ansible opens one per task) get through: 3 before the 4th is
    # refused. The fixture's exchanges warmed IPv6 neighbour discovery up.
    for fam in FAMILIES:
        accepted(run(server, client, backend, "iptables_ratelimit", dict(LIMIT, hitcount=4, ip_version="ipv%d" % fam),
                     fam))
    assert all("--hitcount 4" in text for text in ruleset(server, backend))
    for _attempt in range(3):
        assert traffic(client, server, OK_WAIT) == all_("echoed")

    # The refusal was right: hitcount 1, forced, refuses every new connection.
    forced(run(server, client, backend, "iptables_ratelimit", dict(LIMIT, hitcount=1, force=True), 4))
    assert traffic(client, server, NO_WAIT) == all_("no-connect")


# --------------------------------------------------------------------------- IPv6 neighbour discovery

# Each accepts the operator's TCP exchange in ``chain`` but not ICMPv6 neighbour discovery,
# which conntrack leaves UNTRACKED (neither NEW nor ESTABLISHED,RELATED matches it).
ND_CASES = {
    "INPUT": [NEW_ONLY, ESTABLISHED],
    "OUTPUT": [dict(ESTABLISHED, chain="OUTPUT")],
}


@pytest.mark.parametrize("chain", sorted(ND_CASES))
@BACKENDS
def test_ipv6_drop_policy_must_keep_neighbour_discovery(pair, lan, chain):
    server, client, backend = pair
    accepted(run(server, client, backend, "iptables_rule", {"rules": ND_CASES[chain], "ip_version": "ipv6"}, 6))
    res = run(server, client, backend, "iptables_policy", {"chain": chain, "policy": "DROP", "ip_version": "ipv6"}, 6)
    if res["_status"] == "FAILED!":
        refused(res, chain)  # the guard saw it: nothing to prove with packets
        return
    accepted(res)
    assert traffic(client, server, OK_WAIT)[6] == "echoed"  # while the neighbour entries are fresh
    # What expiry does on its own after a minute or two: the kernels must ask again, and the
    # DROP policy drops the solicitations and advertisements coming in (INPUT) or going out (OUTPUT).
    for ns in (server, lan.switch, client):
        ns.run(["ip", "-6", "neigh", "flush", "all"])
    assert traffic(client, server, NO_WAIT)[6] == "echoed", "the guard accepted an IPv6 lockout"
