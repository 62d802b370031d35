# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The firewall_plan filter: the role's variables -> iptables_ruleset's arguments.

It replaced the Jinja template roles/firewall/templates/plan.yml.j2 (last in commit 9a06f9a) and
the per-item argument juggling of the old role tasks; the equivalence tests at the end render
that template with Ansible's own templar and compare.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import subprocess

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.ironwall.iptables.plugins.filter.firewall_plan import ND_PRIORITY, FilterModule, firewall_plan

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", ".."))
OLD_TEMPLATE_COMMIT = "9a06f9a"
OLD_TEMPLATE = "roles/firewall/templates/plan.yml.j2"


def _read(path):
    with open(os.path.join(ROOT, path)) as fh:
        return fh.read()


DEFAULTS = yaml.safe_load(_read("roles/firewall/defaults/main.yml"))
# The filter's input as roles/firewall/vars/main.yml builds it: {'policies': firewall_policies, ...}
KEYS = re.findall(r"'(\w+)': (firewall_\w+)", _read("roles/firewall/vars/main.yml"))


def role_vars(**overrides):
    """The role's variables (defaults, then ``overrides`` given without their firewall_ prefix)."""
    out = copy.deepcopy(DEFAULTS)
    out.update(("firewall_" + k, v) for k, v in overrides.items())
    return out


def filter_input(variables):
    return dict((key, copy.deepcopy(variables[var])) for key, var in KEYS)


def plan(**overrides):
    return firewall_plan(filter_input(role_vars(**overrides)))


def rule(result, name):
    found = [r for r in result["rules"] if r["name"] == name]
    assert len(found) == 1, [r["name"] for r in result["rules"]]
    return found[0]


def test_the_role_passes_every_key_the_filter_reads():
    assert sorted(k for k, _v in KEYS) == sorted([
        "policies", "allow_loopback", "allow_established", "allow_icmp", "ssh_port", "ssh_accept", "open_ports",
        "forwarded_ports", "masquerade", "extra_rules", "ip_forward",
        "whitelists", "ratelimits", "ipv6", "persist", "persist_scope", "rules_file", "rules6_file", "restore",
        "blocklists", "sets_file"])
    assert all(var in DEFAULTS for _k, var in KEYS)


def test_the_filter_is_registered_under_its_name():
    assert FilterModule().filters() == {"firewall_plan": firewall_plan}


# --- the SSH port: unreachable, rate limited ------------------------------------------------------

RL = {"name": "ssh", "hitcount": 4, "seconds": 60}
V4_NET = "198.51.100.0/24"
V6_NET = "2001:db8::/64"


@pytest.mark.parametrize("overrides,unreachable,limited,ssh_rule", [
    ({}, [], [], ("present", "both")),
    (dict(ratelimits=[dict(RL, ports=[22])]), [], ["ipv4", "ipv6"], ("absent", "both")),
    (dict(ratelimits=[RL]), [], ["ipv4", "ipv6"], ("absent", "both")),  # the module's default ports are [22]
    (dict(ratelimits=[dict(RL, ports=["1:1024"])]), [], ["ipv4", "ipv6"], ("absent", "both")),
    (dict(ratelimits=[dict(RL, accept=True)]), [], ["ipv4", "ipv6"], ("absent", "both")),
    (dict(ratelimits=[dict(RL, accept=False)]), [], [], ("present", "both")),
    (dict(ratelimits=[dict(RL, accept=False)], ssh_accept=False), ["ipv4", "ipv6"], [], ("absent", "both")),
    # a rate limit only accepts NEW connections: without the established rule SSH needs the plain accept
    (dict(ratelimits=[RL], allow_established=False), [], [], ("present", "both")),
    (dict(ratelimits=[dict(RL, ip_version="ipv6")]), [], ["ipv6"], ("present", "ipv4")),
    (dict(ratelimits=[dict(RL, ip_version="ipv4")]), [], ["ipv4"], ("present", "ipv6")),
    (dict(ratelimits=[dict(RL, ip_version="ipv4"), dict(RL, name="ssh6", ip_version="ipv6")]), [],
     ["ipv4", "ipv6"], ("absent", "both")),
    (dict(ratelimits=[dict(RL, protocol="udp")]), [], [], ("present", "both")),
    (dict(ratelimits=[dict(RL, state="absent")]), [], [], ("present", "both")),
    (dict(ratelimits=[dict(RL, ports=[2222])]), [], [], ("present", "both")),
    (dict(ssh_port=2222, ratelimits=[RL]), [], [], ("present", "both")),
    (dict(ssh_port=2222, ratelimits=[dict(RL, ports=["2000:3000"])]), [], ["ipv4", "ipv6"], ("absent", "both")),
    (dict(ssh_accept=False), ["ipv4", "ipv6"], [], ("absent", "both")),
    (dict(ssh_accept=False, open_ports=[22]), [], [], ("absent", "both")),
    (dict(ssh_accept=False, open_ports=["22"]), [], [], ("absent", "both")),
    (dict(ssh_accept=False, open_ports=["20:30"]), [], [], ("absent", "both")),
    (dict(ssh_accept=False, open_ports=[":100"]), [], [], ("absent", "both")),
    (dict(ssh_accept=False, open_ports=["10:"]), [], [], ("absent", "both")),
    (dict(ssh_accept=False, open_ports=["23:30", 21]), ["ipv4", "ipv6"], [], ("absent", "both")),
    (dict(ssh_accept=False, open_ports=[{"port": 22, "protocol": "udp"}]), ["ipv4", "ipv6"], [], ("absent", "both")),
    (dict(ssh_accept=False, open_ports=[{"port": 22, "state": "absent"}]), ["ipv4", "ipv6"], [], ("absent", "both")),
    (dict(ssh_accept=False, open_ports=[{"port": 22, "sources": [V4_NET]}]), ["ipv6"], [], ("absent", "both")),
    (dict(ssh_accept=False, open_ports=[{"port": "1:100", "sources": [V6_NET]}]), ["ipv4"], [], ("absent", "both")),
    (dict(ssh_accept=False, open_ports=[{"port": 22, "sources": [V4_NET, V6_NET]}]), [], [], ("absent", "both")),
    # ipv6 false: IPv6 sources are dropped, and an entry left without sources is removed, not opened to all
    (dict(ipv6=False, ssh_accept=False, open_ports=[{"port": 22, "sources": [V6_NET]}]), ["ipv4"], [],
     ("absent", "ipv4")),
    (dict(ipv6=False, ssh_accept=False, open_ports=[{"port": 22, "sources": [V4_NET, V6_NET]}]), [], [],
     ("absent", "ipv4")),
    (dict(ipv6=False), [], [], ("present", "ipv4")),
    (dict(ipv6=False, ratelimits=[RL]), [], ["ipv4"], ("absent", "ipv4")),
    # ipv6 false forces every rate limit to IPv4, whatever its ip_version said
    (dict(ipv6=False, ratelimits=[dict(RL, ip_version="ipv6")]), [], ["ipv4"], ("absent", "ipv4")),
])
def test_ssh_unreachable_and_rate_limited(overrides, unreachable, limited, ssh_rule):
    out = plan(**overrides)
    assert out["ssh_unreachable"] == unreachable
    assert out["ssh_rate_limited"] == limited
    ssh = rule(out, "firewall-ssh")
    assert (ssh["state"], ssh["ip_version"]) == ssh_rule
    assert ssh["dports"] == [overrides.get("ssh_port", 22)] and ssh["priority"] == 210
    assert out["ip_version"] == ("both" if overrides.get("ipv6", True) else "ipv4")


# --- the rules -------------------------------------------------------------------------------------

@pytest.mark.parametrize("entry,name,dports,proto", [
    (80, "firewall-port-tcp-80", [80], "tcp"),
    ("443", "firewall-port-tcp-443", ["443"], "tcp"),
    ("1000:2000", "firewall-port-tcp-1000-2000", ["1000:2000"], "tcp"),
    ({"port": 53, "protocol": "udp"}, "firewall-port-udp-53", [53], "udp"),
    ({"port": "5000:5100", "protocol": "sctp"}, "firewall-port-sctp-5000-5100", ["5000:5100"], "sctp"),
])
def test_open_port_rules(entry, name, dports, proto):
    r = rule(plan(open_ports=[entry]), name)
    assert r == {"name": name, "priority": 500, "protocol": proto, "dports": dports, "ctstate": ["NEW"],
                 "jump": "ACCEPT", "state": "present"}


def test_open_port_sources_become_the_rule_source():
    out = plan(open_ports=[{"port": 3306, "sources": ["198.51.100.7", V6_NET]}])
    assert rule(out, "firewall-port-tcp-3306")["source"] == ["198.51.100.7", V6_NET]
    out = plan(ipv6=False, open_ports=[{"port": 3306, "sources": ["198.51.100.7", V6_NET]}])
    assert rule(out, "firewall-port-tcp-3306")["source"] == ["198.51.100.7"]
    out = plan(ipv6=False, open_ports=[{"port": 3306, "sources": [V6_NET]}])
    assert rule(out, "firewall-port-tcp-3306")["state"] == "absent"


def test_base_rules_in_order_with_icmpv6_neighbour_discovery_only_with_ipv6():
    out = plan()
    assert [r["name"] for r in out["rules"]] == [
        "firewall-loopback", "firewall-established", "firewall-icmpv6-router-solicitation",
        "firewall-icmpv6-router-advertisement", "firewall-icmpv6-neighbour-solicitation",
        "firewall-icmpv6-neighbour-advertisement", "firewall-icmp", "firewall-ssh"]
    nd = [r for r in out["rules"] if r["name"].startswith("firewall-icmpv6-")]
    assert [r["icmp_type"] for r in nd] == [133, 134, 135, 136]
    # after loopback, before the blocklists and the established rule
    assert rule(out, "firewall-loopback")["priority"] < ND_PRIORITY < 105 < rule(out, "firewall-established")["priority"]
    assert all(r["ip_version"] == "ipv6" and r["priority"] == ND_PRIORITY and r["protocol"] == "icmp"
               and r["jump"] == "ACCEPT" and r.get("state", "present") == "present" for r in nd)
    assert not [r for r in plan(ipv6=False)["rules"] if "icmpv6" in r["name"]]
    # neighbour discovery stays when ICMP in general is not accepted
    out = plan(allow_icmp=False)
    assert rule(out, "firewall-icmp")["state"] == "absent"
    assert len([r for r in out["rules"] if "icmpv6" in r["name"]]) == 4


@pytest.mark.parametrize("key,name", [("allow_loopback", "firewall-loopback"),
                                      ("allow_established", "firewall-established"),
                                      ("allow_icmp", "firewall-icmp")])
def test_base_rules_switch_to_absent(key, name):
    assert rule(plan(), name)["state"] == "present"
    assert rule(plan(**{key: False}), name)["state"] == "absent"


# --- whitelists and rate limits ----------------------------------------------------------------------

def test_default_priorities_whitelists_400_ratelimits_200_and_given_ones_kept():
    out = plan(whitelists=[{"name": "A", "ports": [1]}, {"name": "B", "ports": [2], "priority": 0},
                           {"name": "C", "ports": [3], "priority": None}],
               ratelimits=[{"name": "a"}, {"name": "b", "priority": 250}, {"name": "c", "priority": 0}])
    assert [w["priority"] for w in out["whitelists"]] == [400, 0, 400]
    assert [r["priority"] for r in out["ratelimits"]] == [200, 250, 0]


def test_with_ipv6_whitelists_and_ratelimits_pass_through():
    wl = {"name": "A", "ports": [1], "sources": ["198.51.100.7", V6_NET], "priority": 410, "ip_version": "ipv6"}
    rl = {"name": "a", "exempt_sources": ["198.51.100.7", V6_NET], "priority": 210}
    out = plan(whitelists=[wl], ratelimits=[rl])
    assert out["whitelists"] == [wl] and out["ratelimits"] == [rl]


def test_ipv6_false_forces_ipv4_and_drops_ipv6_sources_without_touching_the_variables():
    whitelists = [{"name": "A", "ports": [1], "sources": ["198.51.100.7", V6_NET, "2001:db8::9"]},
                  {"name": "B", "ports": [2], "ip_version": "ipv6"}]
    ratelimits = [{"name": "a", "exempt_sources": [V6_NET, "203.0.113.5"], "ip_version": "both"},
                  {"name": "b"}]
    variables = role_vars(ipv6=False, whitelists=whitelists, ratelimits=ratelimits)
    given = filter_input(variables)
    before = copy.deepcopy(given)
    out = firewall_plan(given)
    assert given == before  # the role's variables are never changed in place
    assert out["whitelists"] == [
        {"name": "A", "ports": [1], "sources": ["198.51.100.7"], "priority": 400, "ip_version": "ipv4"},
        {"name": "B", "ports": [2], "priority": 400, "ip_version": "ipv4"}]
    assert out["ratelimits"] == [
        {"name": "a", "exempt_sources": ["203.0.113.5"], "priority": 200, "ip_version": "ipv4"},
        {"name": "b", "priority": 200, "ip_version": "ipv4"}]
    assert out["ip_version"] == "ipv4"


# --- policies and save ---------------------------------------------------------------------------------

def test_policies_without_none_values():
    assert plan()["policies"] == {"INPUT": "DROP", "FORWARD": "DROP", "OUTPUT": "ACCEPT"}
    assert plan(policies={"INPUT": "DROP", "FORWARD": None})["policies"] == {"INPUT": "DROP"}
    assert plan(policies={"INPUT": None})["policies"] is None
    assert plan(policies={})["policies"] is None


def test_save_defaults():
    assert plan()["save"] == {"ipv4": "/etc/iptables.rules", "ipv6": "/etc/ip6tables.rules", "scope": "owned",
                              "boot": "auto"}


def test_save_follows_the_persist_variables():
    out = plan(persist_scope="all", rules_file="/srv/v4", rules6_file="/srv/v6", restore="systemd")
    assert out["save"] == {"ipv4": "/srv/v4", "ipv6": "/srv/v6", "scope": "all", "boot": "systemd"}
    assert plan(restore="none")["save"]["boot"] == "none"
    assert plan(ipv6=False)["save"] == {"ipv4": "/etc/iptables.rules", "scope": "owned", "boot": "auto"}


def test_persist_false_saves_nothing():
    assert plan(persist=False)["save"] is None


# --- malformed input ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("entry,words", [
    ({"protocol": "tcp"}, "is neither a port"),
    ({"port": 80, "proto": "tcp"}, "(unknown: proto)"),
    ({"port": 80, "source": ["198.51.100.1"]}, "(unknown: source)"),
    ([80, 443], "is neither a port"),
    ((80,), "is neither a port"),
])
def test_a_malformed_open_ports_entry_is_a_filter_error_naming_the_variable(entry, words):
    with pytest.raises(AnsibleFilterError) as err:
        plan(open_ports=[80, entry])
    assert str(err.value).startswith("firewall_open_ports: ") and words in str(err.value)


def test_anything_but_a_dict_is_a_filter_error():
    for value in ("x", None, [1]):
        with pytest.raises(AnsibleFilterError):
            firewall_plan(value)


@pytest.mark.parametrize("overrides", [
    dict(open_ports=["\u00b2"]),          # "\u00b2".isdigit() is True, int("\u00b2") raises
    dict(open_ports=[{"port": "\u00b2"}]),
    dict(ratelimits=[{"name": "ssh", "ports": ["\u00b2"]}]),
])
def test_a_port_of_unicode_digits_never_crashes_the_filter(overrides):
    # The old template took it as no match (int filter default), and the module then refused
    # it naming the option. The filter must either do the same or raise an AnsibleFilterError
    # naming the variable; a bare ValueError surfaces as an unexplained templating error.
    try:
        out = plan(**overrides)
    except AnsibleFilterError as exc:
        assert "firewall_" in str(exc)
        return
    assert out["ssh_unreachable"] == []


# --- open ports on an interface, port forwards, masquerading, extra rules, IP forwarding ------------

def names(result):
    return [r["name"] for r in result["rules"]]


def test_an_open_port_on_an_interface_is_named_after_it_so_one_port_may_be_open_on_several():
    out = plan(open_ports=[{"port": 53, "protocol": "udp", "in_interface": "lan0"},
                           {"port": 53, "protocol": "udp", "in_interface": "!wan+"}, 53])
    assert rule(out, "firewall-port-udp-53-lan0") == {
        "name": "firewall-port-udp-53-lan0", "priority": 500, "protocol": "udp", "dports": [53], "in_interface": "lan0",
        "ctstate": ["NEW"], "jump": "ACCEPT", "state": "present"}
    assert rule(out, "firewall-port-udp-53-_wan_")["in_interface"] == "!wan+"
    assert "in_interface" not in rule(out, "firewall-port-tcp-53")


def test_an_open_ssh_port_on_an_interface_counts_as_accepting_ssh():
    assert plan(ssh_accept=False, open_ports=[{"port": 22, "in_interface": "mgmt0"}])["ssh_unreachable"] == []


def test_without_nat_variables_no_forward_rules_and_no_sysctl():
    out = plan()
    assert not [n for n in names(out) if "dnat" in n or "masquerade" in n or "forward" in n]
    assert out["sysctl"] == [] and out["ssh_forwarded"] == []


def test_a_port_forward_is_a_dnat_rule_and_a_forward_accept_plus_the_established_rule():
    out = plan(forwarded_ports=[{"port": 8080, "to": "198.51.100.10:80", "in_interface": "wan0"}])
    assert rule(out, "firewall-dnat-tcp-8080-wan0") == {
        "name": "firewall-dnat-tcp-8080-wan0", "table": "nat", "chain": "PREROUTING", "priority": 500,
        "protocol": "tcp", "dports": [8080], "jump": "DNAT", "to_destination": ["198.51.100.10:80"],
        "in_interface": "wan0", "ip_version": "ipv4"}
    assert rule(out, "firewall-dnat-tcp-8080-wan0-accept") == {
        "name": "firewall-dnat-tcp-8080-wan0-accept", "chain": "FORWARD", "priority": 500, "protocol": "tcp",
        "dports": ["80"], "destination": ["198.51.100.10"], "ctstate": ["NEW"], "jump": "ACCEPT",
        "in_interface": "wan0", "ip_version": "ipv4"}
    assert rule(out, "firewall-forward-established") == {
        "name": "firewall-forward-established", "chain": "FORWARD", "priority": 110,
        "ctstate": ["RELATED", "ESTABLISHED"], "jump": "ACCEPT"}
    assert out["ssh_forwarded"] == []


@pytest.mark.parametrize("to,fams,to_destination,accepts", [
    # (family list, the FORWARD rules as (name suffix, dports, destination))
    ("198.51.100.10", ["ipv4"], ["198.51.100.10"], [("", [8080], ["198.51.100.10"])]),
    ("198.51.100.10:8000-8010", ["ipv4"], ["198.51.100.10:8000-8010"], [("", ["8000:8010"], ["198.51.100.10"])]),
    ("[2001:db8:7a::2]:80", ["ipv6"], ["[2001:db8:7a::2]:80"], [("", ["80"], ["2001:db8:7a::2"])]),
    ("2001:db8:7a::2", ["ipv6"], ["2001:db8:7a::2"], [("", [8080], ["2001:db8:7a::2"])]),
    ("[2001:db8:7a::2]", ["ipv6"], ["[2001:db8:7a::2]"], [("", [8080], ["2001:db8:7a::2"])]),
    (["198.51.100.10:80", "[2001:db8:7a::2]:80"], ["ipv4", "ipv6"], ["198.51.100.10:80", "[2001:db8:7a::2]:80"],
     [("", ["80"], ["198.51.100.10", "2001:db8:7a::2"])]),
    # different ports per family: one FORWARD rule per family
    (["198.51.100.10:80", "[2001:db8:7a::2]:8000"], ["ipv4", "ipv6"], ["198.51.100.10:80", "[2001:db8:7a::2]:8000"],
     [("-ipv4", ["80"], ["198.51.100.10"]), ("-ipv6", ["8000"], ["2001:db8:7a::2"])]),
])
def test_the_family_of_a_forward_comes_from_to(to, fams, to_destination, accepts):
    out = plan(forwarded_ports=[{"port": 8080, "to": to}])
    dnat = rule(out, "firewall-dnat-tcp-8080")
    assert dnat["to_destination"] == to_destination
    assert dnat.get("ip_version", "both") == (fams[0] if len(fams) == 1 else "both")
    made = [r for r in out["rules"] if r["name"].startswith("firewall-dnat-tcp-8080-accept")]
    assert [(r["name"][len("firewall-dnat-tcp-8080-accept"):], r["dports"], r["destination"]) for r in made] == accepts
    for r in made:
        assert r.get("ip_version", "both") == (r["name"][-4:] if len(made) > 1 else dnat.get("ip_version", "both"))


def test_forward_sources_and_destination_go_to_the_families_forwarded():
    out = plan(forwarded_ports=[{"port": 2222, "to": ["198.51.100.10:22", "[2001:db8:7a::2]:22"], "name": "bastion",
                                 "sources": ["203.0.113.0/24", "2001:db8:cafe::/48"],
                                 "destination": ["203.0.113.1"], "protocol": "tcp"}])
    dnat = rule(out, "firewall-dnat-bastion")
    assert dnat["source"] == ["203.0.113.0/24", "2001:db8:cafe::/48"] and dnat["destination"] == ["203.0.113.1"]
    accept = rule(out, "firewall-dnat-bastion-accept")
    assert accept["source"] == ["203.0.113.0/24", "2001:db8:cafe::/48"]
    assert accept["destination"] == ["198.51.100.10", "2001:db8:7a::2"] and accept["dports"] == ["22"]
    # sources of one family narrow the forward to it
    out = plan(forwarded_ports=[{"port": 53, "protocol": "udp", "to": ["198.51.100.10", "2001:db8:7a::2"],
                                 "sources": ["203.0.113.0/24"]}])
    assert rule(out, "firewall-dnat-udp-53")["to_destination"] == ["198.51.100.10"]
    assert rule(out, "firewall-dnat-udp-53")["ip_version"] == "ipv4"
    assert rule(out, "firewall-dnat-udp-53-accept")["ip_version"] == "ipv4"


def test_without_ipv6_an_ipv6_forward_is_left_out():
    out = plan(ipv6=False, forwarded_ports=[{"port": 80, "to": "[2001:db8:7a::2]:80"}])
    assert not [n for n in names(out) if "dnat" in n or "forward" in n]
    out = plan(ipv6=False, forwarded_ports=[{"port": 80, "to": ["198.51.100.10", "2001:db8:7a::2"]}])
    dnat = rule(out, "firewall-dnat-tcp-80")
    assert dnat["to_destination"] == ["198.51.100.10"] and "ip_version" not in dnat
    assert rule(out, "firewall-dnat-tcp-80-accept")["destination"] == ["198.51.100.10"]


@pytest.mark.parametrize("entry,ssh_port,refused", [
    ({"port": 22, "to": "198.51.100.10"}, 22, True),
    ({"port": "1:1024", "to": "198.51.100.10"}, 22, True),
    ({"port": 22, "to": "198.51.100.10", "in_interface": "wan0"}, 22, False),
    ({"port": 22, "to": "198.51.100.10", "destination": ["203.0.113.1"]}, 22, False),
    ({"port": 22, "to": "198.51.100.10", "protocol": "udp"}, 22, False),
    ({"port": 22, "to": "198.51.100.10"}, 2222, False),
    ({"port": 2222, "to": "198.51.100.10:22"}, 22, False),
])
def test_a_forward_of_the_ssh_port_on_every_interface_is_reported(entry, ssh_port, refused):
    out = plan(ssh_port=ssh_port, forwarded_ports=[entry])
    assert out["ssh_forwarded"] == (["firewall_forwarded_ports[0] (%s-%s)" % (
        entry.get("protocol", "tcp"), str(entry["port"]).replace(":", "-"))] if refused else [])


def test_masquerade_is_a_postrouting_rule_and_a_forward_accept():
    out = plan(masquerade=[{"sources": ["198.51.100.0/24"], "out_interface": "wan0"}])
    assert rule(out, "firewall-masquerade-wan0") == {
        "name": "firewall-masquerade-wan0", "table": "nat", "chain": "POSTROUTING", "priority": 500,
        "out_interface": "wan0", "jump": "MASQUERADE", "source": ["198.51.100.0/24"], "ip_version": "ipv4"}
    assert rule(out, "firewall-masquerade-wan0-accept") == {
        "name": "firewall-masquerade-wan0-accept", "chain": "FORWARD", "priority": 500, "out_interface": "wan0",
        "ctstate": ["NEW"], "jump": "ACCEPT", "source": ["198.51.100.0/24"], "ip_version": "ipv4"}
    assert "firewall-forward-established" in names(out)


def test_masquerade_families_follow_the_sources():
    both = plan(masquerade=[{"sources": ["198.51.100.0/24", "2001:db8:7a::/64"], "out_interface": "wan0"}])
    assert "ip_version" not in rule(both, "firewall-masquerade-wan0")
    anything = plan(masquerade=[{"out_interface": "wan+", "name": "uplinks"}])
    masq = rule(anything, "firewall-masquerade-uplinks")
    assert "ip_version" not in masq and "source" not in masq and masq["out_interface"] == "wan+"
    v4 = plan(ipv6=False, masquerade=[{"sources": ["198.51.100.0/24", "2001:db8:7a::/64"], "out_interface": "wan0"}])
    assert rule(v4, "firewall-masquerade-wan0")["source"] == ["198.51.100.0/24"]
    assert "ip_version" not in rule(v4, "firewall-masquerade-wan0")
    gone = plan(ipv6=False, masquerade=[{"sources": ["2001:db8:7a::/64"], "out_interface": "wan0"}])
    assert not [n for n in names(gone) if "masquerade" in n or "forward" in n]


def test_extra_rules_come_first_unchanged_so_module_errors_index_them():
    extra = [{"name": "snat-mail", "table": "nat", "chain": "POSTROUTING", "source": ["198.51.100.25"],
              "out_interface": "wan0", "jump": "SNAT", "to_source": "203.0.113.25"},
             {"name": "backup-owner", "chain": "OUTPUT", "uid_owner": "backup", "jump": "ACCEPT"}]
    given = copy.deepcopy(extra)
    out = plan(extra_rules=given, open_ports=[80])
    assert out["rules"][:2] == extra and given == extra
    assert out["rules"][0] is not given[0]
    assert names(out)[2] == "firewall-loopback"


@pytest.mark.parametrize("overrides,words", [
    (dict(extra_rules=[{"name": "firewall-ssh", "jump": "ACCEPT"}]),
     "the role's base rules and firewall_extra_rules[0] both make a rule named 'firewall-ssh'"),
    (dict(open_ports=[80], extra_rules=[{"name": "ok"}, {"name": "firewall-port-tcp-80"}]),
     "firewall_open_ports and firewall_extra_rules[1] both make a rule named 'firewall-port-tcp-80'"),
    (dict(extra_rules=[{"name": "a"}, {"name": "a"}]),
     "firewall_extra_rules[0] and firewall_extra_rules[1] both make a rule named 'a'"),
    (dict(forwarded_ports=[{"port": 80, "to": "198.51.100.10"}, {"port": 80, "to": "2001:db8::10"}]),
     "firewall_forwarded_ports[0] and firewall_forwarded_ports[1] both make a rule named 'firewall-dnat-tcp-80'"),
    (dict(masquerade=[{"out_interface": "wan0", "sources": ["198.51.100.0/25"]},
                      {"out_interface": "wan0", "sources": ["198.51.100.128/25"]}]),
     "firewall_masquerade[0] and firewall_masquerade[1] both make a rule named 'firewall-masquerade-wan0'"),
    (dict(forwarded_ports=[{"port": 80, "to": "198.51.100.10", "name": "x" * 60}]),
     "firewall_forwarded_ports[0]: the rule name 'firewall-dnat-xxx"),
    (dict(extra_rules=[{"jump": "ACCEPT"}]), "firewall_extra_rules[0].name is required"),
    (dict(extra_rules=["-A INPUT -j ACCEPT"]), "firewall_extra_rules[0]: '-A INPUT -j ACCEPT' is not a dict"),
    (dict(forwarded_ports=[{"port": 80}]), "firewall_forwarded_ports[0].to is required"),
    (dict(forwarded_ports=[{"to": "198.51.100.10"}]), "firewall_forwarded_ports[0].port is required"),
    (dict(forwarded_ports=[{"port": 80, "to": "198.51.100.10", "proto": "tcp"}]),
     "firewall_forwarded_ports[0]: unknown key proto"),
    (dict(forwarded_ports=[{"port": 80, "to": "198.51.100.10", "protocol": "icmp"}]),
     "firewall_forwarded_ports[0].protocol: 'icmp' is not one of tcp, udp"),
    (dict(forwarded_ports=[{"port": [80, 81], "to": "198.51.100.10"}]), "firewall_forwarded_ports[0].port: [80, 81]"),
    (dict(forwarded_ports=[{"port": 80, "to": ["198.51.100.10", "198.51.100.11"]}]),
     "firewall_forwarded_ports[0].to: at most one address per family"),
    (dict(forwarded_ports=[{"port": 80, "to": "[2001:db8::1:80"}]), "firewall_forwarded_ports[0].to: '[2001:db8::1:80'"),
    (dict(forwarded_ports=[{"port": 80, "to": "198.51.100.0/24"}]), "firewall_forwarded_ports[0].to: '198.51.100.0/24'"),
    (dict(forwarded_ports=[{"port": 80, "to": "198.51.100.10:"}]), "is not an address, address:port"),
    (dict(forwarded_ports=[{"port": 80, "to": {"address": "198.51.100.10"}}]), "is not an address, address:port"),
    (dict(forwarded_ports=[{"port": 80, "to": "198.51.100.10", "sources": ["2001:db8::/32"]}]),
     "firewall_forwarded_ports[0]: `to` (198.51.100.10) and `sources` (2001:db8::/32) have no address family in common"),
    (dict(forwarded_ports=[{"port": 80, "to": "198.51.100.10", "name": "a b"}]),
     "firewall_forwarded_ports[0].name: 'a b' is not a name"),
    (dict(forwarded_ports=["8080:198.51.100.10:80"]), "firewall_forwarded_ports[0]: '8080:198.51.100.10:80' is not a dict"),
    (dict(masquerade=[{"sources": ["198.51.100.0/24"]}]), "firewall_masquerade[0].out_interface is required"),
    (dict(masquerade=[{"out_interface": "wan0", "source": ["198.51.100.0/24"]}]),
     "firewall_masquerade[0]: unknown key source"),
    (dict(open_ports=[{"port": 80, "interface": "lan0"}]), "(unknown: interface)"),
])
def test_malformed_nat_and_extra_entries_and_name_clashes_name_the_variable(overrides, words):
    with pytest.raises(AnsibleFilterError) as err:
        plan(**overrides)
    assert words in str(err.value)


def test_option_values_are_left_to_the_module():
    # the controller reads only the shape: a user name, an unknown jump, a bad address reach the module as given
    out = plan(extra_rules=[{"name": "x", "uid_owner": "nobody-here", "jump": "NOSUCH"}],
               forwarded_ports=[{"port": "99999", "to": "not-an-address:http"}],
               masquerade=[{"out_interface": "an interface name far too long", "sources": ["bogus"]}])
    assert rule(out, "x") == {"name": "x", "uid_owner": "nobody-here", "jump": "NOSUCH"}
    assert rule(out, "firewall-dnat-tcp-99999")["to_destination"] == ["not-an-address:http"]
    assert rule(out, "firewall-masquerade-an_interface_name_far_too_long")["source"] == ["bogus"]


@pytest.mark.parametrize("overrides,sysctl", [
    ({}, []),
    (dict(ip_forward=False, masquerade=[{"out_interface": "wan0"}]), []),
    (dict(ip_forward=True), ["net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"]),
    (dict(ip_forward=True, ipv6=False), ["net/ipv4/ip_forward"]),
])
def test_ip_forward_lists_the_proc_sys_values_only_when_asked(overrides, sysctl):
    assert plan(**overrides)["sysctl"] == sysctl


def test_a_router_plan_in_full():
    out = plan(open_ports=[{"port": 53, "protocol": "udp", "in_interface": "lan0"}],
               forwarded_ports=[{"port": 8080, "to": ["198.51.100.130:80", "[2001:db8:14a::2]:80"],
                                 "in_interface": "wan0", "name": "web"}],
               masquerade=[{"sources": ["198.51.100.128/28", "2001:db8:14a::/64"], "out_interface": "wan0",
                            "name": "lan"}],
               extra_rules=[{"name": "log-forward-drops", "chain": "FORWARD", "priority": 990, "jump": "LOG"}],
               ip_forward=True)
    assert names(out) == [
        "log-forward-drops", "firewall-loopback", "firewall-established", "firewall-icmpv6-router-solicitation",
        "firewall-icmpv6-router-advertisement", "firewall-icmpv6-neighbour-solicitation",
        "firewall-icmpv6-neighbour-advertisement", "firewall-icmp", "firewall-ssh", "firewall-port-udp-53-lan0",
        "firewall-forward-established", "firewall-dnat-web", "firewall-dnat-web-accept", "firewall-masquerade-lan",
        "firewall-masquerade-lan-accept"]
    assert out["ssh_unreachable"] == [] and out["ssh_forwarded"] == []
    assert out["sysctl"] == ["net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"]


# --- equivalence with the old template (roles/firewall/templates/plan.yml.j2 at 9a06f9a) ---------------

@functools.lru_cache(maxsize=None)
def _git_show():
    return subprocess.run(["git", "show", "%s:%s" % (OLD_TEMPLATE_COMMIT, OLD_TEMPLATE)], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout


def old_template():
    try:
        return _git_show()
    except (OSError, subprocess.CalledProcessError) as exc:  # no git, or a checkout without that history
        pytest.skip("cannot read the old template from git (%s): the equivalence is not checked" % exc)


def render_old(variables):
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    try:
        from ansible.template import trust_as_template
    except ImportError:  # ansible-core before 2.19 trusts every template
        def trust_as_template(text):
            return text
    text = Templar(loader=DataLoader(), variables=variables).template(trust_as_template(old_template()))
    return yaml.safe_load(str(text))


EQUIVALENT = [
    {},
    dict(ssh_accept=False, open_ports=[22]),
    dict(ssh_accept=False, open_ports=[{"port": 22, "sources": [V4_NET]}]),
    dict(ssh_accept=False, open_ports=[{"port": 22, "sources": [V6_NET]}]),
    dict(ratelimits=[{"name": "ssh", "ports": [22]}]),
    dict(ratelimits=[{"name": "ssh", "accept": False}]),
    dict(ratelimits=[{"name": "ssh"}], allow_established=False),
    dict(ratelimits=[{"name": "ssh", "ip_version": "ipv6"}]),
    dict(ratelimits=[{"name": "a", "ip_version": "ipv4"}, {"name": "b", "ip_version": "ipv6"}]),
    dict(ssh_accept=False, open_ports=["20:30", 80, {"port": 53, "protocol": "udp"}]),
    dict(ipv6=False, ssh_accept=False, open_ports=[{"port": 22, "sources": ["2001:db8::1"]},
                                                   {"port": 23, "sources": ["198.51.100.1", "2001:db8::1"]}]),
    dict(ssh_port=2222, ratelimits=[{"name": "ssh"}]),
    dict(ssh_port=2222, ratelimits=[{"name": "alt", "ports": ["2000:3000"]}]),
    dict(ratelimits=[{"name": "ssh", "protocol": "udp"}]),
    dict(ratelimits=[{"name": "ssh", "state": "absent"}], ssh_accept=False),
    dict(ssh_accept=False, open_ports=[{"port": 22, "protocol": "udp"}]),
    dict(ipv6=False, ratelimits=[{"name": "ssh"}]),
    dict(allow_icmp=False, allow_loopback=False, ssh_accept=False),
    dict(open_ports=[{"port": 443, "state": "absent"}, ":100", "60000:"]),
    dict(ipv6=False, ssh_accept=False, open_ports=[{"port": "1:1024", "sources": [V4_NET]}]),
    dict(allow_established=False, ssh_accept=False, open_ports=[{"port": 22, "sources": [V4_NET, V6_NET]}]),
]


def with_intended_changes(rules):
    """The old template's rules with what was changed on purpose since: ICMPv6 neighbour discovery
    moved from priority 120 to ND_PRIORITY, ahead of the blocklists, so that the lockout guard can
    prove an IPv6 SSH connection through a rule that drops by address."""
    return [dict(r, priority=ND_PRIORITY) if r["name"].startswith("firewall-icmpv6-") and r.get("priority") == 120
            else r for r in rules]


def normalized(rules):
    """A rule without ``state`` is present (iptables_rule's default): the old template wrote it out."""
    return [dict({"state": "present"}, **r) for r in rules]


@pytest.mark.parametrize("overrides", EQUIVALENT, ids=["vars%d" % i for i in range(len(EQUIVALENT))])
def test_the_filter_computes_what_the_old_template_computed(overrides):
    variables = role_vars(**overrides)
    old = render_old(variables)
    new = firewall_plan(filter_input(variables))
    assert new["ip_version"] == old["ip_version"]
    assert new["ssh_unreachable"] == old["ssh_unreachable"]
    # same families; the filter sorts them where the template kept the order of the rate limits
    assert new["ssh_rate_limited"] == sorted(old["ssh_rate_limited"])
    assert normalized(new["rules"]) == normalized(with_intended_changes(old["rules"]))
