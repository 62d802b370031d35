# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_rule on a router, with real packets, on iptables-nft and iptables-legacy, IPv4 and IPv6.

A ROUTER namespace sits between a WAN network (203.0.113.0/24, 2001:db8:1::/64) and a LAN
network (198.51.100.0/24, 2001:db8:2::/64), each a switch namespace of its own
(sandbox_net.Router). LAN hosts route via the router; WAN hosts know only their own network, as
a host on the internet knows no route to a LAN's addresses: without NAT on the router they
cannot answer a LAN client. The rules are set by the real module, run through Ansible
(ansible-playbook) inside the router namespace with the backend's iptables first on PATH, and
every playbook runs twice: the second run must change nothing and run no iptables-restore.

What the packets must show, in both families:
- a DNAT port forward (nat PREROUTING) plus a FORWARD accept: a WAN client reaches a LAN server
  through the router's WAN address, and the server sees the client's own address; a FORWARD
  accept by the connection's original destination (ctorigdst, ctorigdstport) lets one forwarded
  port through and not another;
- MASQUERADE (nat POSTROUTING, out_interface): a LAN client reaches a WAN server, which sees the
  router's WAN address (and with to_ports, a source port in that range);
- connlimit_above N: the (N+1)th parallel connection of one source is refused, another source
  is not, connlimit_mask groups sources, a closed connection frees its slot;
- limit and hashlimit (1/hour, burst 5): of a burst of 40 datagrams exactly 5 pass (hashlimit:
  5 per source); at 1 per hour no credit comes back while a test runs, so the count is exact;
- syn: match / negate split a connection's packets (every SYN and only SYNs / the rest), and a
  syn: match REJECT refuses new connections;
- negation: source "!A", dports ["!7002"], protocol "!tcp" match what they say;
- SNAT (to_source) picks the source the server sees, REDIRECT (to_ports) hands a connection to
  the router's own port, a MARK set in mangle is matched (mark) in filter, and TCPMSS (set_mss)
  lowers the segment size the server may send.

Events are waited for (rule counters reaching the number of packets sent, a server's count
reaching the accepted number), with generous bounds that only turn a hang into a failure.
Nothing here touches the machine's own firewall: everything runs in namespaces made here.
"""

from __future__ import annotations

import json
import re
import tempfile

import pytest

import sandbox_net
import traffic
from ansible_runs import BACKENDS, run_playbook, task_results
from observe import wait_for

FAMILIES = (4, 6)
BOUND = 60  # seconds: generous, only ends a hang


def _at_least(counts, key, low):
    """``counts`` when counts[key] reached ``low``, else None (for wait_for)."""
    return counts if counts[key] >= low else None


@pytest.fixture
def net():
    """A router between a WAN and a LAN (sandbox_net.ROUTED_NETS), removed afterwards."""
    with sandbox_net.Router() as router:
        yield router


@pytest.fixture
def counts_dir():
    with tempfile.TemporaryDirectory(prefix="iw-traffic-") as path:
        yield path


def both(net, netname, host=1):
    """[IPv4 address, IPv6 address] of host number ``host`` on network ``netname``."""
    return [net.addr(netname, 4, host), net.addr(netname, 6, host)]


def addrs(ns):
    return [ns.addr4, ns.addr6]


def at(ns, family):
    return ns.addr4 if family == 4 else ns.addr6


def converge(net, backend, tasks):
    """Run the tasks (name, module, args) as one playbook in the router namespace, twice: the
    first run must succeed and change each iptables_rule task, the second change nothing and
    run no iptables-restore. Returns the first run's results."""
    play = [{"hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": name, "ironwall.iptables." + module: args} for name, module, args in tasks]}]
    runs = []
    for attempt in ("first", "again"):
        data = run_playbook(net.router, json.dumps(play), backend=backend)
        results = task_results(data)
        failed = [(name, r.get("msg")) for name, r in results if r.get("failed")]
        assert not failed and data["_rc"] == 0, "%s run failed: %s\n%s" % (attempt, failed, data["_stderr"][-2000:])
        assert [name for name, _result in results] == [t[0] for t in tasks], results
        runs.append(results)
    for (name, first), (_name, again) in zip(*runs):
        if name.startswith("rules"):
            assert first["changed"] is True, (name, first)
        assert again["changed"] is False, ("a rerun changed something", name, again.get("diff"), again)
        if "calls" in again:
            assert again["calls"]["restore"] == 0, (name, again["calls"])
    return runs[0]


def rule_lines(net, backend, family, name, table="filter"):
    """The save lines of the tagged rule ``name`` (one per address pair)."""
    tag = re.compile(r'"ironwall:\d{3}:rule:%s"' % re.escape(name))
    return [line for line in net.router.save(family, backend, table=table).splitlines() if tag.search(line)]


def packets(net, backend, family, table="filter"):
    """{rule name: packets its rule(s) matched} from iptables-save -c of the router."""
    out = {}
    for line in net.router.save(family, backend, counters=True, table=table).splitlines():
        m = re.match(r'\[(\d+):\d+\] -A .*"ironwall:\d{3}:rule:([^" ]+)"', line)
        if m:
            out[m.group(2)] = out.get(m.group(2), 0) + int(m.group(1))
    return out


def seen(run):
    """(address, port) a server saw for one successful connection or datagram."""
    assert run["result"] == "open", run
    addr, port = run["seen"].split(" ")
    return addr, int(port)


def one(runs):
    """The single result of connect()/udp() with count 1."""
    assert len(runs) == 1, runs
    return runs[0]


def masquerade(net, name="masq", priority=900):
    """A rule that hides the LAN behind the router's WAN address (nat POSTROUTING)."""
    return {"name": name, "priority": priority, "table": "nat", "chain": "POSTROUTING",
            "out_interface": net.iface("wan"), "source": [net.network("lan", 4), net.network("lan", 6)],
            "jump": "MASQUERADE"}


# --------------------------------------------------------------------------- NAT

@pytest.mark.parametrize("backend", BACKENDS)
def test_port_forward_reaches_the_lan_server_through_the_wan_address(net, backend):
    client = net.add_host("wan", gateway=False)
    server = net.add_host("lan")
    wan_if = net.iface("wan")
    dnat = {"table": "nat", "chain": "PREROUTING", "in_interface": wan_if, "destination": both(net, "wan"),
            "protocol": "tcp", "jump": "DNAT"}
    to81 = ["%s:81" % server.addr4, "[%s]:81" % server.addr6]
    tasks = [
        ("policy", "iptables_policy", {"policies": {"FORWARD": "DROP"}}),
        ("rules: port forward", "iptables_rule", {"rules": [
            {"name": "web-dnat", "table": "nat", "chain": "PREROUTING", "in_interface": wan_if,
             "destination": both(net, "wan"), "protocol": "tcp", "dports": [8080], "jump": "DNAT",
             "to_destination": ["%s:80" % server.addr4, "[%s]:80" % server.addr6]},
            {"name": "fwd-established", "priority": 100, "chain": "FORWARD",
             "ctstate": ["ESTABLISHED", "RELATED"], "jump": "ACCEPT"},
            {"name": "web-forward", "chain": "FORWARD", "in_interface": wan_if, "destination": addrs(server),
             "protocol": "tcp", "dports": [80], "ctstate": ["NEW"], "jump": "ACCEPT"},
            # 8082 and 8083 both go to port 81; only connections that were sent to 8082 pass, judged
            # by the connection's original destination (as Docker accepts its published ports)
            dict(dnat, name="alt-dnat", dports=[8082], to_destination=to81),
            dict(dnat, name="other-dnat", dports=[8083], to_destination=to81),
            {"name": "alt-forward", "chain": "FORWARD", "protocol": "tcp", "ctorigdst": both(net, "wan"),
             "ctorigdstport": 8082, "ctstate": ["DNAT"], "jump": "ACCEPT"},
        ]}),
    ]
    with traffic.Server(server, [80, 81]):
        for fam in FAMILIES:  # before: nothing listens on the router's port 8080
            assert traffic.results(traffic.connect(client, net.addr("wan", fam), 8080)) == ["refused"], fam
        converge(net, backend, tasks)
        for fam in FAMILIES:
            (dnat,) = rule_lines(net, backend, fam, "web-dnat", table="nat")
            to = "%s:80" % server.addr4 if fam == 4 else "[%s]:80" % server.addr6
            assert dnat.startswith("-A PREROUTING ") and dnat.endswith(" -j DNAT --to-destination " + to), dnat
            runs = traffic.connect(client, net.addr("wan", fam), 8080, count=2)
            # the LAN server sees the WAN client itself: DNAT changes the destination only
            assert [seen(r)[0] for r in runs] == [at(client, fam)] * 2, (fam, runs)
            # only the forwarded port: 8081 is the router's own (closed) port
            assert traffic.results(traffic.connect(client, net.addr("wan", fam), 8081)) == ["refused"], fam
            assert seen(one(traffic.connect(client, net.addr("wan", fam), 8082)))[0] == at(client, fam), fam
            # forwarded, but no FORWARD rule accepts it: the policy drops it
            assert traffic.results(traffic.connect(client, net.addr("wan", fam), 8083, timeout=1)) == ["dropped"], fam


@pytest.mark.parametrize("backend", BACKENDS)
def test_masquerade_lan_client_reaches_wan_server_as_the_router(net, backend):
    client = net.add_host("lan")
    server = net.add_host("wan", gateway=False)
    tasks = [("rules: masquerade", "iptables_rule", {"rules": [
        # tcp to port 7001 leaves from source ports 40000-40009, everything else from any port
        dict(masquerade(net, "masq-7001", 800), protocol="tcp", dports=[7001], to_ports="40000-40009"),
        masquerade(net),
    ]})]
    with traffic.Server(server, [7001, 7002]):
        for fam in FAMILIES:  # before: the WAN server has no route back to the LAN
            assert traffic.results(traffic.connect(client, at(server, fam), 7002, timeout=1)) == ["dropped"], fam
        converge(net, backend, tasks)
        for fam in FAMILIES:
            router = net.addr("wan", fam)
            for run in traffic.connect(client, at(server, fam), 7001, count=3):
                addr, port = seen(run)
                assert addr == router and 40000 <= port <= 40009, (fam, run)
            assert seen(traffic.connect(client, at(server, fam), 7002)[0])[0] == router, fam
            assert seen(traffic.udp(client, at(server, fam), 7002)[0])[0] == router, fam
            (line,) = rule_lines(net, backend, fam, "masq-7001", table="nat")
            assert line.endswith(" -j MASQUERADE --to-ports 40000-40009"), line


# --------------------------------------------------------------------------- connlimit

@pytest.mark.parametrize("backend", BACKENDS)
def test_connlimit_refuses_the_connection_over_the_limit(net, backend):
    a, b = net.add_host("lan"), net.add_host("lan")
    server = net.add_host("wan", gateway=False)
    cap = {"chain": "FORWARD", "protocol": "tcp", "syn": "match", "connlimit_above": 2, "jump": "REJECT",
           "reject_with": "tcp-reset"}
    tasks = [("rules: connlimit", "iptables_rule", {"rules": [
        dict(cap, name="cap-per-source", dports=[7001]),
        # one count for the whole LAN /24 (IPv4) or /64 (IPv6): given per family, one rule each
        dict(cap, name="cap-per-net4", dports=[7002], connlimit_mask=24, ip_version="ipv4"),
        dict(cap, name="cap-per-net6", dports=[7002], connlimit_mask=64, ip_version="ipv6"),
        masquerade(net),
    ]})]
    converge(net, backend, tasks)
    with traffic.Server(server, [7001, 7002]):
        for fam in FAMILIES:
            dst = at(server, fam)
            with traffic.Held(a, dst, 7001, count=3) as held:
                assert traffic.results(held.results) == ["open", "open", "refused"], (fam, held.results)
                # the limit counts per source: b has its own two
                assert traffic.results(traffic.connect(b, dst, 7001, count=3)) == ["open", "open", "refused"], fam
                assert traffic.results(traffic.connect(a, dst, 7001)) == ["refused"], fam
            # closed connections are not counted: a gets a slot back once its two are gone
            assert wait_for(lambda: traffic.results(traffic.connect(a, dst, 7001)) == ["open"], BOUND), fam

            with traffic.Held(a, dst, 7002, count=2) as held:
                assert traffic.results(held.results) == ["open", "open"], (fam, held.results)
                # the mask puts a and b in one group: b's first connection is the third
                assert traffic.results(traffic.connect(b, dst, 7002)) == ["refused"], fam
            for name in ("cap-per-source", "cap-per-net%d" % fam):
                (line,) = rule_lines(net, backend, fam, name)
                assert "--tcp-flags FIN,SYN,RST,ACK SYN -m connlimit --connlimit-above 2 " in line, line


# --------------------------------------------------------------------------- limit, hashlimit

@pytest.mark.parametrize("backend", BACKENDS)
def test_limit_and_hashlimit_cap_a_burst(net, backend, counts_dir):
    a, b = net.add_host("lan"), net.add_host("lan")
    server = net.add_host("wan", gateway=False)
    udp = {"chain": "FORWARD", "protocol": "udp"}
    hourly = {"rate": "1/hour", "burst": 5, "mode": ["srcip"]}
    tasks = [("rules: bursts", "iptables_rule", {"rules": [
        dict(udp, name="burst-limit", priority=200, dports=[7101], limit="1/hour", limit_burst=5, jump="ACCEPT"),
        dict(udp, name="burst-limit-drop", priority=201, dports=[7101], jump="DROP"),
        dict(udp, name="burst-hash", priority=210, dports=[7102], hashlimit=dict(hourly, name="burst-upto"),
             jump="ACCEPT"),
        dict(udp, name="burst-hash-drop", priority=211, dports=[7102], jump="DROP"),
        dict(udp, name="burst-above", priority=220, dports=[7103],
             hashlimit=dict(hourly, name="burst-above", above=True), jump="DROP"),
    ]})]
    converge(net, backend, tasks)
    sent = 40
    with traffic.Server(server, [7100, 7101, 7102, 7103], counts_dir=counts_dir) as srv:
        for fam in FAMILIES:
            dst, src = at(server, fam), {c: at(c, fam) for c in (a, b)}
            # warm up (neighbours resolved) on a port no limit counts, so the bursts meet no queue
            for c in (a, b):
                traffic.udp(c, dst, 7100, reply=False)
                assert wait_for(lambda: srv.counts()["7100"].get(src[c]), BOUND), (fam, srv.counts())
            traffic.udp(a, dst, 7101, count=sent, reply=False)
            for c in (a, b):
                traffic.udp(c, dst, 7102, count=sent, reply=False)
                traffic.udp(c, dst, 7103, count=sent, reply=False)

            def counted():
                n = packets(net, backend, fam)
                return (n["burst-limit"] + n["burst-limit-drop"] == sent
                        and n["burst-hash"] + n["burst-hash-drop"] == 2 * sent
                        and n["burst-above"] == 2 * (sent - 5) and n)
            n = wait_for(counted, BOUND)
            assert n, (fam, packets(net, backend, fam))
            # limit: one bucket for everyone; hashlimit: one bucket per source address
            assert (n["burst-limit"], n["burst-hash"]) == (5, 10), (fam, n)
            want = {"7101": {src[a]: 5}, "7102": {src[a]: 5, src[b]: 5}, "7103": {src[a]: 5, src[b]: 5}}

            def arrived():
                got = srv.counts()
                return all(got[port].get(s) == want[port][s] for port in want for s in want[port]) and got
            got = wait_for(arrived, BOUND)
            assert got, (fam, srv.counts(), want)
            # and nobody else of this family (the IPv4 round's counts stay in the server's)
            mine = dict((port, dict((s, n) for s, n in got[port].items() if (":" in s) == (fam == 6))) for port in want)
            assert mine == want, (fam, got)
        (line,) = rule_lines(net, backend, 4, "burst-hash")
        assert "-m hashlimit --hashlimit-upto 1/hour --hashlimit-burst 5 --hashlimit-mode srcip" in line, line


# --------------------------------------------------------------------------- syn, negation

@pytest.mark.parametrize("backend", BACKENDS)
def test_syn_match_and_negate_split_a_connections_packets(net, backend):
    client = net.add_host("lan")
    server = net.add_host("wan", gateway=False)
    tcp = {"chain": "FORWARD", "protocol": "tcp", "dports": [7001]}
    tasks = [("rules: syn", "iptables_rule", {"rules": [
        dict(tcp, name="syn-match", priority=300, syn="match", jump="ACCEPT"),
        dict(tcp, name="syn-negate", priority=301, syn="negate", jump="ACCEPT"),
        dict(tcp, name="syn-rest", priority=302, jump="ACCEPT"),
        dict(tcp, name="syn-refused", priority=310, dports=[7002], syn="match", jump="REJECT",
             reject_with="tcp-reset"),
        masquerade(net),
    ]})]
    converge(net, backend, tasks)
    with traffic.Server(server, [7001, 7002]):
        for fam in FAMILIES:
            runs = traffic.connect(client, at(server, fam), 7001, count=3)
            assert traffic.results(runs) == ["open"] * 3, (fam, runs)
            # each connection's client side: one SYN, then at least its handshake ACK and its FIN
            n = wait_for(lambda: _at_least(packets(net, backend, fam), "syn-negate", 6), BOUND)
            assert n and n["syn-match"] >= 3 and n["syn-rest"] == 0, (fam, packets(net, backend, fam))
            # a SYN never passes syn: negate: new connections all counted by syn: match
            before = packets(net, backend, fam)
            assert traffic.results(traffic.connect(client, at(server, fam), 7002)) == ["refused"], fam
            after = packets(net, backend, fam)
            assert after["syn-refused"] > before["syn-refused"] and after["syn-rest"] == 0, (fam, before, after)
            (line,) = rule_lines(net, backend, fam, "syn-negate")
            assert " ! --tcp-flags FIN,SYN,RST,ACK SYN " in line, line


@pytest.mark.parametrize("backend", BACKENDS)
def test_negated_source_ports_and_protocol_match_what_they_say(net, backend):
    a, b = net.add_host("lan"), net.add_host("lan")
    server = net.add_host("wan", gateway=False)
    reject = {"chain": "FORWARD", "jump": "REJECT"}
    tasks = [("rules: negation", "iptables_rule", {"rules": [
        # everyone but a is refused on 7001
        dict(reject, name="not-a", protocol="tcp", dports=[7001], source=["!" + a.addr4, "!" + a.addr6],
             reject_with="tcp-reset"),
        # b may use port 7002 only
        dict(reject, name="b-only-7002", protocol="tcp", dports=["!7002"], source=addrs(b),
             reject_with="tcp-reset"),
        # a may use tcp only
        dict(reject, name="a-tcp-only", protocol="!tcp", source=addrs(a)),
        masquerade(net),
    ]})]
    converge(net, backend, tasks)
    with traffic.Server(server, [7001, 7002, 7003, 7004]):
        for fam in FAMILIES:
            dst = at(server, fam)
            got = {
                "a tcp 7001": traffic.connect(a, dst, 7001), "b tcp 7001": traffic.connect(b, dst, 7001),
                "b tcp 7002": traffic.connect(b, dst, 7002), "b tcp 7003": traffic.connect(b, dst, 7003),
                "a tcp 7003": traffic.connect(a, dst, 7003), "a tcp 7004": traffic.connect(a, dst, 7004),
                "a udp 7004": traffic.udp(a, dst, 7004), "b udp 7004": traffic.udp(b, dst, 7004),
            }
            want = {"a tcp 7001": "open", "b tcp 7001": "refused", "b tcp 7002": "open", "b tcp 7003": "refused",
                    "a tcp 7003": "open", "a tcp 7004": "open", "a udp 7004": "refused", "b udp 7004": "open"}
            assert dict((k, traffic.results(v)[0]) for k, v in got.items()) == want, (fam, got)
            (line,) = rule_lines(net, backend, fam, "not-a")
            assert line.startswith("-A FORWARD ! -s %s/%d " % (at(a, fam), 32 if fam == 4 else 128)), line
            (line,) = rule_lines(net, backend, fam, "a-tcp-only")
            assert " ! -p tcp " in line, line


# --------------------------------------------------------------------------- other targets

@pytest.mark.parametrize("backend", BACKENDS)
def test_snat_redirect_mark_and_mss_change_real_packets(net, backend):
    a, b = net.add_host("lan"), net.add_host("lan")
    server, client = net.add_host("wan", gateway=False), net.add_host("wan", gateway=False)
    wan_if = net.iface("wan")
    # A second address of the router on the WAN, a's source. Never the router's own choice of
    # source (MASQUERADE's): a secondary IPv4 address, a deprecated IPv6 one.
    snat = both(net, "wan", 254)
    net.router.run(["ip", "addr", "add", snat[0] + "/24", "dev", wan_if])
    net.router.run(["ip", "addr", "add", snat[1] + "/64", "dev", wan_if, "nodad", "preferred_lft", "0"])
    tasks = [("rules: targets", "iptables_rule", {"rules": [
        {"name": "snat-a", "priority": 800, "table": "nat", "chain": "POSTROUTING", "out_interface": wan_if,
         "source": addrs(a), "jump": "SNAT", "to_source": snat},
        masquerade(net),
        {"name": "redirect", "table": "nat", "chain": "PREROUTING", "in_interface": wan_if, "protocol": "tcp",
         "dports": [8080], "jump": "REDIRECT", "to_ports": "7001"},
        {"name": "mark-a", "table": "mangle", "chain": "PREROUTING", "source": addrs(a), "jump": "MARK",
         "set_mark": "0x7"},
        {"name": "marked-refused", "chain": "FORWARD", "mark": "0x7", "protocol": "tcp", "dports": [7002],
         "jump": "REJECT", "reject_with": "tcp-reset"},
        {"name": "mss", "table": "mangle", "chain": "FORWARD", "protocol": "tcp", "dports": [7003], "syn": "match",
         "jump": "TCPMSS", "set_mss": 1000},
    ]})]
    converge(net, backend, tasks)
    with traffic.Server(server, [7001, 7002, 7003]), traffic.Server(net.router, [7001]):
        for fam in FAMILIES:
            dst = at(server, fam)
            assert seen(one(traffic.connect(a, dst, 7001)))[0] == snat[fam == 6], fam
            assert seen(one(traffic.connect(b, dst, 7001)))[0] == net.addr("wan", fam), fam
            # the router's own server answers port 8080 of its WAN address, and sees the client
            assert seen(one(traffic.connect(client, net.addr("wan", fam), 8080)))[0] == at(client, fam), fam
            # a's packets carry mark 7 from mangle PREROUTING on: refused on 7002, b is not
            assert traffic.results(traffic.connect(a, dst, 7002)) == ["refused"], fam
            assert traffic.results(traffic.connect(b, dst, 7002)) == ["open"], fam
            # the SYN's MSS option rewritten on the way: the server may send at most 1000 bytes
            # (less TCP options) on 7003, a full Ethernet segment (1500 - headers) elsewhere
            clamped, full = one(traffic.connect(b, dst, 7003)), one(traffic.connect(b, dst, 7001))
            assert clamped["mss"] <= 1000 < full["mss"], (fam, clamped, full)
