# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The firewall role makes a sandbox host a router, over real SSH, judged by real packets.

The host `router` (own netns, own /etc, sshd, reached by Ansible through the switch of its
management Lan) gets two more interfaces (tools/sandbox_link.py):

    lan  198.51.100.130/28, 2001:db8:14a::2/64  --  router 198.51.100.129, 2001:db8:14a::1  (LAN side)
    wan  203.0.113.66/28,   2001:db8:14b::2/64  --  router 203.0.113.65,   2001:db8:14b::1  (WAN side)

`lan` routes everything through the router; `wan` knows only its own network, as a host on the
internet knows no route to a LAN behind NAT. The role gets a port forward (router:8080 on the
WAN side -> lan:80, both families in one entry), masquerading of the LAN out of the WAN
interface, IP forwarding (firewall_ip_forward), an open port on the LAN interface only and an
extra rule refusing LAN -> WAN port 9091. It converges, a rerun changes nothing, and then, on
IPv4 and IPv6: the WAN client reaches the LAN server through the forward and the server sees the
client's own address; the LAN client reaches the WAN server, which sees the router's address
(masquerade; without it no reply could come back); port 9091 is refused by the extra rule; the
router's port 8081 answers on the LAN side only.
"""

from __future__ import annotations

import os
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import sandbox_hosts  # noqa: E402
import sandbox_inventory  # noqa: E402
import sandbox_link  # noqa: E402
import sandbox_net  # noqa: E402
import site_sandbox  # noqa: E402

pytestmark = pytest.mark.host

ROUTER = {"lan": {4: "198.51.100.129", 6: "2001:db8:14a::1"}, "wan": {4: "203.0.113.65", 6: "2001:db8:14b::1"}}
PEER = {"lan": {4: "198.51.100.130", 6: "2001:db8:14a::2"}, "wan": {4: "203.0.113.66", 6: "2001:db8:14b::2"}}
PREFIX = {4: 28, 6: 64}
LAN_NETS = ["198.51.100.128/28", "2001:db8:14a::/64"]
SYSCTL_FILE = "/etc/sysctl.d/60-ironwall-ip-forward.conf"


def _addrs(side, who):
    table = ROUTER if who == "router" else PEER
    return ["%s/%d" % (table[side][f], PREFIX[f]) for f in (4, 6)]


@pytest.fixture
def router(tmp_path):
    """(host, lan, wan, lan_if, wan_if, inventory): the router host between two namespaces."""
    sandbox_hosts.ensure_rootfs()
    with sandbox_net.Lan() as mgmt, sandbox_net.Netns() as lan, sandbox_net.Netns() as wan:
        host = sandbox_hosts.Host("router", mgmt)
        host.start()
        try:
            lan_if = sandbox_link.link(host.netns, lan, _addrs("lan", "router"), _addrs("lan", "peer"),
                                       b_gateways=[ROUTER["lan"][4], ROUTER["lan"][6]])[0]
            wan_if = sandbox_link.link(host.netns, wan, _addrs("wan", "router"), _addrs("wan", "peer"))[0]
            # Forwarding off, as on a fresh host: the role has to turn it on.
            host.exec(["sysctl", "-qw", "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"])
            inventory = sandbox_inventory.write_inventory([host], str(tmp_path / "inventory.yml"))
            yield host, lan, wan, lan_if, wan_if, inventory
        finally:
            host.end_ssh_masters()
            host.stop()


def _playbook(tmp_path, lan_if, wan_if):
    variables = {
        "firewall_policies": {"INPUT": "DROP", "FORWARD": "DROP", "OUTPUT": "ACCEPT"},
        "firewall_open_ports": [{"port": 8081, "in_interface": lan_if}],
        "firewall_forwarded_ports": [{"port": 8080, "to": ["%s:80" % PEER["lan"][4], "[%s]:80" % PEER["lan"][6]],
                                      "in_interface": wan_if, "name": "web"}],
        "firewall_masquerade": [{"sources": LAN_NETS, "out_interface": wan_if, "name": "lan"}],
        "firewall_ip_forward": True,
        "firewall_extra_rules": [{"name": "no-lan-9091", "chain": "FORWARD", "priority": 400, "protocol": "tcp",
                                  "dports": [9091], "source": LAN_NETS, "jump": "REJECT"}],
    }
    path = tmp_path / "router.yml"
    path.write_text(yaml.safe_dump([{"name": "A router", "hosts": "sandbox", "gather_facts": False,
                                     "vars": variables, "roles": [{"role": "ironwall.iptables.firewall"}]}]))
    return str(path)


def _run(inventory, playbook):
    rc, out, recap = site_sandbox.run_site(inventory, playbook=playbook)[:3]
    assert rc == 0 and recap["router"]["failed"] == 0, out
    return recap["router"], out


def test_router_forwards_masquerades_and_reruns_without_change(router, tmp_path):
    host, lan, wan, lan_if, wan_if, inventory = router
    playbook = _playbook(tmp_path, lan_if, wan_if)
    with sandbox_link.PeerServer(lan, [80]), sandbox_link.PeerServer(wan, [9090, 9091]), \
            sandbox_link.PeerServer(host.netns, [8081]):
        # Before: no forward, forwarding off (a WAN-side connection to 8080 is refused by the router
        # itself; the LAN's packets to the WAN are not routed).
        for fam in (4, 6):
            assert sandbox_link.ask(wan, ROUTER["wan"][fam], 8080, timeout=5) == "refused"
            assert sandbox_link.ask(lan, PEER["wan"][fam], 9090, timeout=3) == "timeout"

        recap, out = _run(inventory, playbook)
        assert recap["changed"] > 0, out
        recap, out = _run(inventory, playbook)
        assert recap["changed"] == 0, "the rerun changed something:\n" + out

        answers = {}
        for fam in (4, 6):
            # port forward: WAN client -> router:8080 -> LAN server :80, which sees the client itself
            answers[("forward", fam)] = sandbox_link.ask(wan, ROUTER["wan"][fam], 8080)
            # masquerade: LAN client -> WAN server, which sees the router's WAN address
            answers[("masquerade", fam)] = sandbox_link.ask(lan, PEER["wan"][fam], 9090)
            # the extra rule refuses 9091 (REJECT answers at once)
            answers[("extra", fam)] = sandbox_link.ask(lan, PEER["wan"][fam], 9091)
            # the open port on the LAN interface: open there, dropped on the WAN side
            answers[("open-lan", fam)] = sandbox_link.ask(lan, ROUTER["lan"][fam], 8081)
            answers[("open-wan", fam)] = sandbox_link.ask(wan, ROUTER["wan"][fam], 8081, timeout=3)
        expected = {}
        for fam in (4, 6):
            expected[("forward", fam)] = "peer %s" % PEER["wan"][fam]
            expected[("masquerade", fam)] = "peer %s" % ROUTER["wan"][fam]
            expected[("extra", fam)] = "refused"
            expected[("open-lan", fam)] = "peer %s" % PEER["lan"][fam]
            expected[("open-wan", fam)] = "timeout"
        assert answers == expected

    # What the role left on the router: forwarding on now and at boot, the nat rules, all saved.
    assert host.exec(["cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"]
                     ).stdout.split() == ["1", "1"]
    assert host.exec(["stat", "-c", "%a", SYSCTL_FILE]).stdout.strip() == "644"
    conf = [line for line in host.exec(["cat", SYSCTL_FILE]).stdout.splitlines() if not line.startswith("#")]
    assert conf == ["net.ipv4.ip_forward = 1", "net.ipv6.conf.all.forwarding = 1"]
    for fam, tool in ((4, "iptables"), (6, "ip6tables")):
        nat = host.exec(["%s-save" % tool, "-t", "nat"]).stdout
        assert "-j DNAT --to-destination %s" % ("%s:80" % PEER["lan"][4] if fam == 4 else "[%s]:80" % PEER["lan"][6]) in nat
        assert "-o %s" % wan_if in nat and "-j MASQUERADE" in nat
        saved = host.exec(["cat", "/etc/iptables.rules" if fam == 4 else "/etc/ip6tables.rules"]).stdout
        assert "*nat" in saved and "firewall-dnat-web" in saved and "firewall-masquerade-lan" in saved
        assert "no-lan-9091" in saved and "firewall-forward-established" in saved

    # Dropping the NAT variables removes the role's nat and FORWARD rules on the next run
    # (forwarding stays on: the role never turns it off).
    rc, out, recap = site_sandbox.run_site(inventory, playbook=playbook, extra_args=[
        "-e", '{"firewall_forwarded_ports": [], "firewall_masquerade": [], "firewall_extra_rules": []}'])[:3]
    assert rc == 0 and recap["router"]["failed"] == 0, out
    for tool in ("iptables", "ip6tables"):
        text = host.exec(["%s-save" % tool]).stdout
        assert "firewall-dnat" not in text and "firewall-masquerade" not in text and "no-lan-9091" not in text
        assert "firewall-forward-established" not in text and "firewall-port-tcp-8081" in text
    with sandbox_link.PeerServer(lan, [80]):
        for fam in (4, 6):
            assert sandbox_link.ask(wan, ROUTER["wan"][fam], 8080, timeout=3) == "timeout"


def test_router_refuses_to_forward_the_ssh_port_on_every_interface(router, tmp_path):
    host, _lan, _wan, lan_if, wan_if, inventory = router
    playbook = _playbook(tmp_path, lan_if, wan_if)
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"firewall_forwarded_ports": [{"port": 22, "to": PEER["lan"][4]}]}))
    rc, out, _recap = site_sandbox.run_site(inventory, playbook=playbook, extra_args=["-e", "@%s" % bad])[:3]
    assert rc != 0 and "Refusing to apply" in out and "firewall_forwarded_ports[0]" in out, out
    assert "ironwall" not in host.exec(["iptables-save"]).stdout, "nothing changed on the host"
    clash = tmp_path / "clash.yml"
    clash.write_text(yaml.safe_dump({"firewall_extra_rules": [{"name": "firewall-dnat-web", "jump": "ACCEPT"}]}))
    rc, out, _recap = site_sandbox.run_site(inventory, playbook=playbook, extra_args=["-e", "@%s" % clash])[:3]
    assert rc != 0 and "firewall_extra_rules[0]" in out and "firewall-dnat-web" in out, out
    assert "ironwall" not in host.exec(["iptables-save"]).stdout
