# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 14's option table entries: what they render per family (the forms iptables-save prints,
measured with both backends: tests/integration/test_roundtrip_rule.py loads them for real), what
they refuse (naming the option), and what the lockout guard concludes from them."""

from __future__ import annotations

import pytest

from ansible_collections.ironwall.iptables.plugins.module_utils._guard import ssh_packet, verdict
from ansible_collections.ironwall.iptables.plugins.module_utils._model import Tag, parse_save
from ansible_collections.ironwall.iptables.plugins.module_utils._rules import render_specs, validate_rule
from ansible_collections.ironwall.iptables.plugins.module_utils._rulespec import SpecError


def tag(name):
    return '-m comment --comment "%s"' % Tag(500, "rule", name).comment()


def specs(params, family):
    return list(render_specs(validate_rule(dict(params, name="r")), family))


RENDER = [
    ({"source": ["!198.51.100.7"], "jump": "ACCEPT"}, ["! -s 198.51.100.7/32 %s -j ACCEPT"], []),
    ({"protocol": "!tcp", "jump": "ACCEPT"}, ["! -p tcp %s -j ACCEPT"], ["! -p tcp %s -j ACCEPT"]),
    ({"protocol": "!icmp", "jump": "ACCEPT"}, ["! -p icmp %s -j ACCEPT"], ["! -p ipv6-icmp %s -j ACCEPT"]),
    ({"protocol": "tcp", "dports": ["!22"], "jump": "ACCEPT"}, ["-p tcp -m tcp ! --dport 22 %s -j ACCEPT"],
     ["-p tcp -m tcp ! --dport 22 %s -j ACCEPT"]),
    ({"protocol": "tcp", "dports": ["!22", 80], "jump": "ACCEPT"},
     ["-p tcp -m multiport ! --dports 22,80 %s -j ACCEPT"], ["-p tcp -m multiport ! --dports 22,80 %s -j ACCEPT"]),
    ({"fragment": True, "ip_version": "ipv4", "jump": "DROP"}, ["-f %s -j DROP"], []),
    ({"protocol": "tcp", "dports": [22], "syn": "match", "jump": "ACCEPT"},
     ["-p tcp -m tcp --dport 22 --tcp-flags FIN,SYN,RST,ACK SYN %s -j ACCEPT"],
     ["-p tcp -m tcp --dport 22 --tcp-flags FIN,SYN,RST,ACK SYN %s -j ACCEPT"]),
    ({"protocol": "tcp", "dports": [80, 443], "syn": "negate", "jump": "DROP"},
     ["-p tcp -m multiport --dports 80,443 -m tcp ! --tcp-flags FIN,SYN,RST,ACK SYN %s -j DROP"],
     ["-p tcp -m multiport --dports 80,443 -m tcp ! --tcp-flags FIN,SYN,RST,ACK SYN %s -j DROP"]),
    ({"protocol": "tcp", "tcp_flags": {"flags": ["ALL"], "flags_set": []}, "jump": "DROP"},
     ["-p tcp -m tcp --tcp-flags FIN,SYN,RST,PSH,ACK,URG NONE %s -j DROP"],
     ["-p tcp -m tcp --tcp-flags FIN,SYN,RST,PSH,ACK,URG NONE %s -j DROP"]),
    ({"src_range": ["198.51.100.1-198.51.100.9"], "dst_range": ["!203.0.113.1-203.0.113.2"], "jump": "ACCEPT"},
     ["-m iprange --src-range 198.51.100.1-198.51.100.9 ! --dst-range 203.0.113.1-203.0.113.2 %s -j ACCEPT"], []),
    ({"chain": "OUTPUT", "uid_owner": "!1000-1999", "gid_owner": 0, "jump": "ACCEPT"},
     ["-m owner ! --uid-owner 1000-1999 --gid-owner 0 %s -j ACCEPT"],
     ["-m owner ! --uid-owner 1000-1999 --gid-owner 0 %s -j ACCEPT"]),
    ({"protocol": "tcp", "connlimit_above": 3, "jump": "DROP"},
     ["-p tcp -m connlimit --connlimit-above 3 --connlimit-mask 32 --connlimit-saddr %s -j DROP"],
     ["-p tcp -m connlimit --connlimit-above 3 --connlimit-mask 128 --connlimit-saddr %s -j DROP"]),
    ({"hashlimit": {"name": "h", "rate": "3/minute", "above": True, "mode": ["dstport", "srcip"], "srcmask": 24},
      "ip_version": "ipv4", "jump": "DROP"},
     ["-m hashlimit --hashlimit-above 3/min --hashlimit-burst 5 --hashlimit-mode srcip,dstport --hashlimit-name h "
      "--hashlimit-srcmask 24 %s -j DROP"], []),
    ({"ctorigdst": ["198.51.100.7", "2001:db8::/64"], "ctorigdstport": "!80", "jump": "ACCEPT"},
     ["-m conntrack --ctorigdst 198.51.100.7 ! --ctorigdstport 80 %s -j ACCEPT"],
     ["-m conntrack --ctorigdst 2001:db8::/64 ! --ctorigdstport 80 %s -j ACCEPT"]),
    ({"mark": "!5/0xff", "jump": "ACCEPT"}, ["-m mark ! --mark 0x5/0xff %s -j ACCEPT"],
     ["-m mark ! --mark 0x5/0xff %s -j ACCEPT"]),
    ({"table": "nat", "chain": "PREROUTING", "protocol": "tcp", "dports": [8080], "jump": "DNAT",
      "to_destination": ["198.51.100.7:80", "[2001:db8::7]:80"]},
     ["-p tcp -m tcp --dport 8080 %s -j DNAT --to-destination 198.51.100.7:80"],
     ["-p tcp -m tcp --dport 8080 %s -j DNAT --to-destination [2001:db8::7]:80"]),
    ({"table": "nat", "chain": "PREROUTING", "jump": "DNAT", "to_destination": "198.51.100.7"},
     ["%s -j DNAT --to-destination 198.51.100.7"], []),
    ({"table": "nat", "chain": "POSTROUTING", "out_interface": "eth0", "jump": "masquerade"},
     ["-o eth0 %s -j MASQUERADE"], ["-o eth0 %s -j MASQUERADE"]),
    ({"table": "mangle", "chain": "PREROUTING", "jump": "MARK", "set_mark": "0x10/0xff"},
     ["%s -j MARK --set-xmark 0x10/0xff"], ["%s -j MARK --set-xmark 0x10/0xff"]),
    ({"table": "mangle", "chain": "PREROUTING", "jump": "CONNMARK", "connmark_action": "restore"},
     ["%s -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff"],
     ["%s -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff"]),
    ({"table": "mangle", "chain": "OUTPUT", "jump": "DSCP", "set_dscp_mark_class": "EF"},
     ["%s -j DSCP --set-dscp 0x2e"], ["%s -j DSCP --set-dscp 0x2e"]),
    ({"jump": "NFLOG", "nflog_prefix": "new conn", "nflog_group": 2},
     ['%s -j NFLOG --nflog-prefix "new conn" --nflog-group 2'],
     ['%s -j NFLOG --nflog-prefix "new conn" --nflog-group 2']),
    ({"table": "raw", "chain": "PREROUTING", "jump": "CT", "ct_zone": 5, "ct_helper": "ftp", "protocol": "tcp"},
     ["-p tcp %s -j CT --helper ftp --zone 5"], ["-p tcp %s -j CT --helper ftp --zone 5"]),
    ({"protocol": "tcp", "dports": [3307], "goto": "MYCHAIN"}, ["-p tcp -m tcp --dport 3307 %s -g MYCHAIN"],
     ["-p tcp -m tcp --dport 3307 %s -g MYCHAIN"]),
    ({"raw": "-m u32 --u32 '0>>22&0x3C@12>>26&0x3F=0x10' -j DROP", "ip_version": "ipv4"},
     ['-m u32 --u32 "0>>22&0x3C@12>>26&0x3F=0x10" %s -j DROP'], []),
]


@pytest.mark.parametrize("params,v4,v6", RENDER, ids=[str(i) for i in range(len(RENDER))])
def test_new_options_render_as_iptables_save_prints_them(params, v4, v6):
    assert specs(params, "ipv4") == [s % tag("r") for s in v4]
    assert specs(params, "ipv6") == [s % tag("r") for s in v6]


BAD = [
    ({"table": "filter", "jump": "DNAT", "to_destination": "198.51.100.7"}, "jump", "nat"),
    ({"table": "nat", "chain": "POSTROUTING", "jump": "DNAT", "to_destination": "198.51.100.7"}, "jump",
     "PREROUTING"),
    ({"table": "nat", "chain": "PREROUTING", "jump": "ACCEPT", "to_destination": "198.51.100.7"},
     "to_destination", "DNAT"),
    ({"table": "nat", "chain": "PREROUTING", "jump": "DNAT"}, "to_destination", "needs"),
    ({"table": "nat", "chain": "PREROUTING", "jump": "DNAT", "to_destination": "198.51.100.7:80"},
     "to_destination", "protocol"),
    ({"table": "nat", "chain": "PREROUTING", "jump": "DNAT", "protocol": "tcp",
      "to_destination": "198.51.100.7:90-80"}, "to_destination", "reversed"),
    ({"table": "nat", "chain": "PREROUTING", "jump": "DNAT", "ip_version": "ipv4",
      "to_destination": "2001:db8::1"}, "to_destination", "ip_version"),
    ({"table": "nat", "chain": "PREROUTING", "jump": "DNAT",
      "to_destination": ["198.51.100.1", "198.51.100.2"]}, "to_destination", "one"),
    ({"src_range": "198.51.100.9-198.51.100.1", "jump": "ACCEPT"}, "src_range", "reversed"),
    ({"src_range": "198.51.100.1-2001:db8::1", "jump": "ACCEPT"}, "src_range", "mixes"),
    ({"table": "nat", "chain": "POSTROUTING", "protocol": "tcp", "jump": "MASQUERADE", "to_ports": "90-80"},
     "to_ports", "reversed"),
    ({"table": "nat", "chain": "POSTROUTING", "jump": "MASQUERADE", "to_ports": "80"}, "to_ports", "protocol"),
    ({"chain": "INPUT", "uid_owner": 0, "jump": "ACCEPT"}, "uid_owner", "OUTPUT"),
    ({"chain": "OUTPUT", "uid_owner": "no-such-user-here", "jump": "ACCEPT"}, "uid_owner", "target"),
    ({"fragment": True, "jump": "DROP"}, "fragment", "IPv4"),
    ({"match_set": "s4", "jump": "DROP"}, "match_set", "ip_version"),
    ({"match_set": "x" * 32, "ip_version": "ipv4", "jump": "DROP"}, "match_set", "ipset name"),
    ({"match_set_flags": "src", "jump": "DROP"}, "match_set_flags", "match_set"),
    ({"syn": "match", "jump": "DROP"}, "syn", "tcp"),
    ({"protocol": "tcp", "syn": "match", "tcp_flags": {"flags": ["SYN"]}, "jump": "DROP"}, "tcp_flags", "either"),
    ({"protocol": "tcp", "tcp_flags": {"flags": ["SYN"], "flags_set": ["ACK"]}, "jump": "DROP"},
     "tcp_flags.flags_set", "within"),
    ({"protocol": "tcp", "tcp_flags": {"flags": ["BOGUS"]}, "jump": "DROP"}, "tcp_flags.flags", "TCP flag"),
    ({"source": ["!198.51.100.1", "198.51.100.2"], "jump": "DROP"}, "source", "only"),
    ({"protocol": "!all", "jump": "DROP"}, "protocol", "no packet"),
    ({"protocol": "tcp", "dports": [22, "!80"], "jump": "DROP"}, "dports", "first"),
    ({"protocol": "!tcp", "dports": [22], "jump": "DROP"}, "dports", "protocol"),
    ({"connlimit_mask": 24, "jump": "DROP"}, "connlimit_mask", "connlimit_above"),
    ({"connlimit_above": 2, "connlimit_mask": 64, "jump": "DROP"}, "connlimit_mask", "IPv4"),
    ({"hashlimit": {"rate": "1/second"}, "jump": "DROP"}, "hashlimit.name", "required"),
    ({"hashlimit": {"name": "h", "rate": "fast"}, "jump": "DROP"}, "hashlimit.rate", "rate"),
    ({"hashlimit": {"name": "h", "rate": "1/s", "mode": ["bogus"]}, "jump": "DROP"}, "hashlimit.mode", "mode"),
    ({"hashlimit": {"name": "h", "rate": "1/s", "speed": 3}, "jump": "DROP"}, "hashlimit.speed", "unknown"),
    ({"recent": {"name": "x"}, "jump": "DROP"}, "recent.mode", "required"),
    ({"recent": {"mode": "set", "seconds": 5}, "jump": "DROP"}, "recent.mode", "rcheck"),
    ({"recent": {"mode": "update", "reap": True}, "jump": "DROP"}, "recent.reap", "seconds"),
    ({"mark": "0x1ffffffff", "jump": "DROP"}, "mark", "32-bit"),
    ({"table": "mangle", "chain": "PREROUTING", "jump": "MARK"}, "set_mark", "needs"),
    ({"table": "mangle", "chain": "PREROUTING", "jump": "CONNMARK", "set_mark": 1, "connmark_action": "save"},
     "set_mark", "either"),
    ({"table": "mangle", "chain": "FORWARD", "jump": "TCPMSS", "clamp_mss_to_pmtu": True}, "clamp_mss_to_pmtu",
     "syn"),
    ({"table": "mangle", "chain": "INPUT", "protocol": "tcp", "syn": "match", "jump": "TCPMSS",
      "clamp_mss_to_pmtu": True}, "jump", "FORWARD"),
    ({"table": "filter", "jump": "DSCP", "set_dscp_mark": 10}, "jump", "mangle"),
    ({"table": "mangle", "chain": "OUTPUT", "jump": "DSCP", "set_dscp_mark": 64}, "set_dscp_mark", "0 to 63"),
    ({"table": "mangle", "chain": "OUTPUT", "jump": "DSCP", "set_dscp_mark_class": "AF99"},
     "set_dscp_mark_class", "DiffServ"),
    ({"jump": "CT", "ct_zone": 1}, "jump", "raw"),
    ({"jump": "NFLOG", "nflog_prefix": "x" * 64}, "nflog_prefix", "63"),
    ({"jump": "NFLOG", "nflog_prefix": "a\nb"}, "nflog_prefix", "control"),
    ({"goto": "OTHER", "jump": "ACCEPT"}, "goto", "either"),
    ({"goto": "INPUT"}, "goto", "built-in"),
    ({"raw": "-m u32 --u32 '0=1' -j DROP", "jump": "ACCEPT"}, "raw", "jump"),
    ({"raw": "-j DROP; iptables -F", "jump": None}, "raw", "-F"),
    ({"raw": "-m u32 --u32 '0=1'\n-A INPUT -j ACCEPT"}, "raw", "control"),
    ({"raw": "-m u32 -A INPUT", "jump": "DROP"}, "raw", "-A"),
    ({"raw": "-m comment --comment ironwall:500:rule:x", "jump": "DROP"}, "raw", "comment"),
    ({"raw": "-m u32 --u32 '0=1", "jump": "DROP"}, "raw", "quotes"),
    ({"raw": "-j DROP -j ACCEPT"}, "raw", "more than one"),
    ({"raw": "-t nat -j DROP"}, "raw", "-t"),
]


@pytest.mark.parametrize("params,option,words", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_new_options_fail_naming_the_option(params, option, words):
    with pytest.raises(SpecError) as err:
        validate_rule(dict(params, name="r"))
    assert err.value.option == option, str(err.value)
    assert words in str(err.value)


def _table(lines):
    return parse_save("*filter\n:INPUT DROP [0:0]\n%s\nCOMMIT\n" % "\n".join(lines)).table("filter")


def test_the_guard_reads_tcp_flags_for_the_operators_packets():
    operator = ssh_packet("198.51.100.7 51234 198.51.100.1 22")
    syn_only = "-A INPUT -p tcp -m tcp --dport 22 --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT"
    established = "-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT"
    assert verdict(_table([syn_only]), operator) == "ACCEPT"
    from dataclasses import replace
    later = replace(operator, state="ESTABLISHED", syn=False)
    assert verdict(_table([syn_only]), later) == "DROP"
    assert verdict(_table([syn_only, established]), later) == "ACCEPT"
    # a negated syn does not carry the SYN
    assert verdict(_table([syn_only.replace("--tcp-flags", "! --tcp-flags")]), operator) == "DROP"


def test_the_guard_knows_ranges_and_that_sshd_replies_as_root():
    operator = ssh_packet("198.51.100.7 51234 198.51.100.1 22")
    inside = "-A INPUT -m iprange --src-range 198.51.100.1-198.51.100.9 -j ACCEPT"
    outside = "-A INPUT -m iprange --src-range 198.51.100.8-198.51.100.9 -j ACCEPT"
    assert verdict(_table([inside]), operator) == "ACCEPT"
    assert verdict(_table([outside]), operator) == "DROP"
    assert verdict(_table([inside.replace("--src-range", "! --src-range")]), operator) == "DROP"
    from dataclasses import replace
    reply = replace(operator, source=operator.destination, destination=operator.source, sport=22, dport=51234,
                    state="ESTABLISHED", syn=False, direction="out")
    out = parse_save("*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m owner --uid-owner 1000-1999 -j DROP\n"
                     "-A OUTPUT -m owner ! --gid-owner 0 -j REJECT\nCOMMIT\n").table("filter")
    assert verdict(out, reply, "OUTPUT") == "ACCEPT"  # root's replies match neither
    root = parse_save("*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m owner --uid-owner 0 -j DROP\nCOMMIT\n")
    assert verdict(root.table("filter"), reply, "OUTPUT") == "DROP"


def test_a_port_forward_of_the_ssh_port_is_not_proven_safe_but_other_forwards_are():
    from ansible_collections.ironwall.iptables.plugins.module_utils._guard import exchange_verdict
    operator = ssh_packet("198.51.100.7 51234 198.51.100.1 22")
    filter_ok = parse_save("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n"
                           "-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")

    def tables(nat_spec):
        nat = parse_save("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING %s\nCOMMIT\n" % nat_spec)
        return {"filter": filter_ok.table("filter"), "nat": nat.table("nat")}

    ssh_forward = specs({"table": "nat", "chain": "PREROUTING", "protocol": "tcp", "dports": [22],
                         "jump": "DNAT", "to_destination": "203.0.113.5"}, "ipv4")[0]
    web_forward = specs({"table": "nat", "chain": "PREROUTING", "protocol": "tcp", "dports": [8080],
                         "jump": "DNAT", "to_destination": "203.0.113.5:80"}, "ipv4")[0]
    assert exchange_verdict(tables(ssh_forward), operator)[0] == "UNPROVEN"
    assert exchange_verdict(tables(web_forward), operator)[0] == "ACCEPT"
