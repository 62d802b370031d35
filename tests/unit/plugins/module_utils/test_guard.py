# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lockout guard: does filter INPUT accept a NEW SSH connection from the operator?"""

from __future__ import annotations

import pytest

from ansible_collections.ironwall.iptables.plugins.module_utils._guard import (
    ACCEPT, DROP, UNPROVEN, ssh_packet, verdict)
from ansible_collections.ironwall.iptables.plugins.module_utils._model import parse_save
from ansible_collections.ironwall.iptables.plugins.module_utils._plan import Desired, plan_changes

OPERATOR = ssh_packet("198.51.100.7 51234 198.51.100.1 22")
OPERATOR6 = ssh_packet("2001:db8:100::7 51234 2001:db8:100::1 2222")


def table(*rules, policy="DROP", chains=()):
    lines = ["*filter", ":INPUT %s [0:0]" % policy, ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [":%s - [0:0]" % c for c in chains] + list(rules) + ["COMMIT"]
    return parse_save("\n".join(lines) + "\n").table("filter")


RATELIMIT = ("-A RATELIMIT_SSH -m recent --set --name ssh --mask 255.255.255.255 --rsource",
             "-A RATELIMIT_SSH -m recent --rcheck --seconds 60 --hitcount 4 --rttl --name ssh --mask "
             "255.255.255.255 --rsource -j LOG --log-prefix \"SSH_brute_force \"",
             "-A RATELIMIT_SSH -m recent --rcheck --seconds 60 --hitcount 4 --rttl --name ssh --mask "
             "255.255.255.255 --rsource -j DROP",
             "-A RATELIMIT_SSH -j ACCEPT")

CASES = [
    ("policy ACCEPT, no rules", table(policy="ACCEPT"), ACCEPT),
    ("policy DROP, no rules", table(), DROP),
    ("plain ssh accept", table("-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -j ACCEPT"), ACCEPT),
    ("accept of another port", table("-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT"), DROP),
    ("established only", table("-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT"), DROP),
    ("loopback only", table("-A INPUT -i lo -j ACCEPT"), DROP),
    ("multiport", table("-A INPUT -p tcp -m multiport --dports 80,20:23 -j ACCEPT"), ACCEPT),
    ("source subnet", table("-A INPUT -s 198.51.100.0/24 -p tcp -m tcp --dport 22 -j ACCEPT"), ACCEPT),
    ("other subnet", table("-A INPUT -s 203.0.113.0/24 -p tcp -m tcp --dport 22 -j ACCEPT"), DROP),
    ("negated other subnet", table("-A INPUT ! -s 203.0.113.0/24 -p tcp -m tcp --dport 22 -j ACCEPT"), ACCEPT),
    ("udp only", table("-A INPUT -p udp -m udp --dport 22 -j ACCEPT"), DROP),
    ("drop before accept", table("-A INPUT -s 198.51.100.7/32 -j DROP", "-A INPUT -p tcp -j ACCEPT"), DROP),
    ("rate limit chain", table("-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -j RATELIMIT_SSH",
                               *RATELIMIT, chains=("RATELIMIT_SSH",)), ACCEPT),
    ("whitelist chain with us", table("-A INPUT -p tcp -m tcp --dport 22 -j WL", "-A INPUT -p tcp -m tcp --dport 22 -j DROP",
                                      "-A WL -s 198.51.100.7/32 -j ACCEPT", chains=("WL",)), ACCEPT),
    ("whitelist chain without us", table("-A INPUT -p tcp -m tcp --dport 22 -j WL",
                                         "-A INPUT -p tcp -m tcp --dport 22 -j DROP",
                                         "-A WL -s 198.51.100.8/32 -j ACCEPT", chains=("WL",)), DROP),
    ("unknown interface accept is not relied on", table("-A INPUT -i eth0 -j ACCEPT"), DROP),
    ("unknown match before drop", table("-A INPUT -m geoip --src-cc XX -j DROP", "-A INPUT -j ACCEPT"), UNPROVEN),
    ("unknown match on accept", table("-A INPUT -m time --timestart 09:00 -j ACCEPT"), DROP),
    ("LOG continues", table("-A INPUT -j LOG --log-prefix x", "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"), ACCEPT),
    ("RETURN from user chain then policy", table("-A INPUT -j U", "-A U -j RETURN", "-A U -j ACCEPT",
                                                 chains=("U",), policy="ACCEPT"), ACCEPT),
    ("REJECT", table("-A INPUT -p tcp -j REJECT --reject-with tcp-reset", policy="ACCEPT"), DROP),
    ("NFQUEUE is not modelled", table("-A INPUT -j NFQUEUE --queue-num 1", policy="ACCEPT"), UNPROVEN),
]


@pytest.mark.parametrize("name,tbl,expected", CASES, ids=[c[0] for c in CASES])
def test_verdict(name, tbl, expected):
    assert verdict(tbl, OPERATOR) == expected


def test_ipv6_packet_and_port():
    assert OPERATOR6.family == "ipv6" and OPERATOR6.dport == 2222
    t = parse_save("*filter\n:INPUT DROP [0:0]\n-A INPUT -s 2001:db8:100::/64 -p tcp -m tcp --dport 2222 -j ACCEPT\n"
                   "COMMIT\n").table("filter")
    assert verdict(t, OPERATOR6) == ACCEPT
    assert verdict(t, ssh_packet("2001:db8:203::7 51234 2001:db8:100::1 2222")) == DROP


@pytest.mark.parametrize("value", [None, "", "garbage", "198.51.100.7 x 198.51.100.1 22"])
def test_no_or_bad_ssh_connection(value):
    assert ssh_packet(value) is None


def test_plan_table_after_feeds_the_guard():
    current = parse_save("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")
    plan = plan_changes(current, Desired(policies=(("filter", "INPUT", "DROP"),)))
    cur = current.table("filter")
    after = plan.table_after(cur)
    assert verdict(cur, OPERATOR) == ACCEPT and verdict(after, OPERATOR) == DROP
    assert [c.name for c in after.chains] == ["INPUT", "FORWARD", "OUTPUT"]


# --- the whole exchange, every table (hostile tester's holes) ------------------------------

from ansible_collections.ironwall.iptables.plugins.module_utils._guard import check  # noqa: E402
from ansible_collections.ironwall.iptables.plugins.module_utils._plan import TaggedGroup  # noqa: E402
from ansible_collections.ironwall.iptables.plugins.module_utils._model import Tag  # noqa: E402

OPEN = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n%sCOMMIT\n"
RAW = "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
MANGLE = "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" \
         ":POSTROUTING ACCEPT [0:0]\nCOMMIT\n"
SSH_NEW_ONLY = "-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -j ACCEPT\n"
ESTABLISHED = "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"


def before_after(save, desired):
    current = parse_save(save)
    return check(current, plan_changes(current, desired), OPERATOR)[:2]


@pytest.mark.parametrize("name,save,desired,after", [
    ("OUTPUT policy DROP drops the replies", OPEN % "", Desired(policies=(("filter", "OUTPUT", "DROP"),)), DROP),
    ("INPUT DROP with only NEW accepted to 22 drops the established packets", OPEN % SSH_NEW_ONLY,
     Desired(policies=(("filter", "INPUT", "DROP"),)), DROP),
    ("INPUT DROP with NEW and ESTABLISHED accepted carries the exchange", OPEN % (SSH_NEW_ONLY + ESTABLISHED),
     Desired(policies=(("filter", "INPUT", "DROP"),)), ACCEPT),
    ("raw PREROUTING DROP", OPEN % "" + RAW, Desired(policies=(("raw", "PREROUTING", "DROP"),)), DROP),
    ("mangle INPUT DROP", OPEN % "" + MANGLE, Desired(policies=(("mangle", "INPUT", "DROP"),)), DROP),
    ("mangle POSTROUTING DROP", OPEN % "" + MANGLE, Desired(policies=(("mangle", "POSTROUTING", "DROP"),)), DROP),
    ("a DROP rule for port 22 in mangle PREROUTING", OPEN % "" + MANGLE, Desired(groups=(TaggedGroup(
        "mangle", "PREROUTING", Tag(1, "rule", "x"),
        ('-p tcp -m tcp --dport 22 -m comment --comment "ironwall:001:rule:x" -j DROP',)),)), DROP),
    ("a DROP of other traffic in raw keeps the exchange", OPEN % "" + RAW, Desired(groups=(TaggedGroup(
        "raw", "PREROUTING", Tag(1, "rule", "x"),
        ('-p udp -m comment --comment "ironwall:001:rule:x" -j DROP',)),)), ACCEPT),
])
def test_every_packet_of_the_exchange_through_every_table(name, save, desired, after):
    assert before_after(save, desired) == (ACCEPT, after)


RECENT = ('-m recent --set --name ssh --mask 255.255.255.255 --rsource',
          '-m recent --rcheck --seconds 60 --hitcount %d --rttl --name ssh --mask 255.255.255.255 --rsource -j DROP',
          '-j ACCEPT')


@pytest.mark.parametrize("hitcount,after", [(1, DROP), (2, ACCEPT), (4, ACCEPT)])
def test_a_recent_limit_counts_the_operators_own_connection(hitcount, after):
    from ansible_collections.ironwall.iptables.plugins.module_utils._plan import OwnedChain
    specs = (RECENT[0], RECENT[1] % hitcount, RECENT[2])
    jump = TaggedGroup("filter", "INPUT", Tag(300, "ratelimit", "ssh"), (
        '-p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m comment --comment "ironwall:300:ratelimit:ssh" '
        '-j RATELIMIT_SSH',))
    desired = Desired(chains=(OwnedChain("filter", "RATELIMIT_SSH", specs),), groups=(jump,))
    assert before_after(OPEN % "", desired) == (ACCEPT, after)


V6 = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
      "-A INPUT -p tcp -m tcp --dport 2222 -m conntrack --ctstate NEW -j ACCEPT\n"
      "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n%sCOMMIT\n")


@pytest.mark.parametrize("extra,after", [
    ("", DROP),  # solicitations and advertisements are UNTRACKED: neither rule accepts them
    ("-A INPUT -p ipv6-icmp -j ACCEPT\n", ACCEPT),
    ("-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT\n"
     "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 136 -j ACCEPT\n", ACCEPT),
    ("-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT\n", DROP),
    ("-A INPUT -s 2001:db8:100::7/128 -p ipv6-icmp -j ACCEPT\n", DROP),  # ND may come from a link-local address
    ("-A INPUT -m conntrack --ctstate UNTRACKED -j ACCEPT\n", ACCEPT),
])
def test_ipv6_neighbour_discovery_is_part_of_the_exchange(extra, after):
    current = parse_save(V6 % extra)
    desired = Desired(policies=(("filter", "INPUT", "DROP"),))
    assert check(current, plan_changes(current, desired, "ipv6"), OPERATOR6)[:2] == (ACCEPT, after)


def test_ipv4_has_no_neighbour_discovery_packets():
    current = parse_save(V6 % "")
    desired = Desired(policies=(("filter", "INPUT", "DROP"),))
    ipv4 = ssh_packet("198.51.100.7 51234 198.51.100.1 2222")
    assert check(current, plan_changes(current, desired), ipv4)[:2] == (ACCEPT, ACCEPT)
