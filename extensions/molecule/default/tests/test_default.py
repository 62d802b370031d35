# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Verify the firewall role in the Molecule container (testinfra, podman connection).

The live ruleset (the router part too: DNAT, MASQUERADE, FORWARD, an open port on one
interface, an extra rule), the rules files and their modes, the IP forwarding sysctl file, the
ifupdown hook, and a reboot simulation: flush everything, let ifupdown run the hook (``ifup lo``),
get the same ruleset back; a rule another program adds afterwards survives the next ``ifup``.
"""

from __future__ import annotations

import re

import pytest

RULES = {4: "/etc/iptables.rules", 6: "/etc/ip6tables.rules"}
SAVE = {4: "iptables-save", 6: "ip6tables-save"}
TOOL = {4: "iptables", 6: "ip6tables"}
HOOK = "/etc/network/if-pre-up.d/ironwall-iptables"
FLAG = "/run/ironwall-iptables.restored"
UNIT = "/etc/systemd/system/ironwall-iptables.service"
FOREIGN = "-A INPUT -s %s -p tcp -m tcp --dport 8080 -m comment --comment another-program -j ACCEPT"
FOREIGN_SOURCE = {4: "203.0.113.77/32", 6: "2001:db8:203::77/128"}
SYSCTL_FILE = "/etc/sysctl.d/60-ironwall-ip-forward.conf"
LAN = {4: "198.51.100.128/28", 6: "2001:db8:14a::/64"}
WEB = {4: "198.51.100.130", 6: "2001:db8:14a::2"}


def normalized(text):
    """iptables-save text without timestamp comments and with counters zeroed."""
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    return "\n".join(re.sub(r"\[\d+:\d+\]$", "[0:0]", line) for line in lines) + "\n"


def live(host, family):
    return normalized(host.check_output(SAVE[family]))


def input_rules(text):
    return [line for line in text.splitlines() if line.startswith("-A INPUT ")]


def ifup_lo(host):
    """What a boot does: ifupdown brings an interface up and runs if-pre-up.d first."""
    host.run_expect([0], "mkdir -p /run/network && ifdown --force lo >/dev/null 2>&1; ifup lo")


def flush(host):
    for family in (4, 6):
        tool = TOOL[family]
        host.run_expect([0], "%s -w -P INPUT ACCEPT && %s -w -P FORWARD ACCEPT && %s -w -F && %s -w -X"
                        " && %s -w -t nat -F && %s -w -t nat -X" % (tool, tool, tool, tool, tool, tool))


@pytest.fixture
def saved(host):
    """The converged rulesets; put back (files, flag, live rules) after the test."""
    before = {f: live(host, f) for f in (4, 6)}
    yield before
    for family in (4, 6):
        host.run("test -e {0}.verify-aside && mv -f {0}.verify-aside {0}".format(RULES[family]))
        host.run_expect([0], "%s-restore -w 5 %s" % (TOOL[family], RULES[family]))
    host.run_expect([0], "touch %s" % FLAG)
    assert {f: live(host, f) for f in (4, 6)} == before


@pytest.mark.parametrize("family", [4, 6])
def test_policies(host, family):
    text = live(host, family)
    assert ":INPUT DROP [0:0]" in text
    assert ":FORWARD DROP [0:0]" in text
    assert ":OUTPUT ACCEPT [0:0]" in text


@pytest.mark.parametrize("family", [4, 6])
def test_input_chain_in_classic_order(host, family):
    rules = input_rules(live(host, family))
    wanted = [
        "-i lo ",
        "-m state --state RELATED,ESTABLISHED ",
        "-p %s -m comment " % ("icmp" if family == 4 else "ipv6-icmp"),   # all ICMP (not the ND types)
        "--dport 22 ",
        "--dport 3306 -m state --state NEW -m comment --comment \"ironwall:400:whitelist:MYSQL_WHITELIST\" -j MYSQL_WHITELIST",
        "--dport 3306 -m state --state NEW -m comment --comment \"ironwall:400:whitelist:MYSQL_WHITELIST\" -j DROP",
        "--dport 80 -m state --state NEW ",
    ]
    positions = []
    for fragment in wanted:
        hits = [i for i, rule in enumerate(rules) if fragment in rule]
        assert hits, "no INPUT rule with %r in:\n%s" % (fragment, "\n".join(rules))
        positions.append(hits[0])
    assert positions == sorted(positions), "\n".join(rules)
    assert all("ironwall:" in rule for rule in rules)


def test_neighbour_discovery_accepted(host):
    rules = input_rules(live(host, 6))
    established = min(i for i, r in enumerate(rules) if "RELATED,ESTABLISHED" in r)
    for icmp_type in (133, 134, 135, 136):
        at = [i for i, r in enumerate(rules) if "--icmpv6-type %d " % icmp_type in r and r.endswith("-j ACCEPT")]
        # right after loopback, before the blocklists and the established rule
        assert at and 0 < at[0] < established, "\n".join(rules)


@pytest.mark.parametrize("family,sources", [
    (4, ["198.51.100.3/32", "203.0.113.128/25"]),
    (6, ["2001:db8:100::3/128", "2001:db8:cafe::/48"]),
])
def test_mysql_whitelist(host, family, sources):
    chain = [r for r in live(host, family).splitlines() if r.startswith("-A MYSQL_WHITELIST ")]
    # the ownership marker first: the collection made this chain (anything else is refused)
    assert chain == ['-A MYSQL_WHITELIST -m comment --comment "ironwall:chain:whitelist:MYSQL_WHITELIST"'] + [
        "-A MYSQL_WHITELIST -s %s -j ACCEPT" % s for s in sources]


@pytest.mark.parametrize("family", [4, 6])
def test_ssh_rate_limit(host, family):
    chain = [r for r in live(host, family).splitlines() if r.startswith("-A RATELIMIT_SSH ")]
    assert chain[0] == '-A RATELIMIT_SSH -m comment --comment "ironwall:chain:ratelimit:ssh"'
    assert "--set" in chain[1]
    assert "--rcheck --seconds 60 --hitcount 4 --rttl" in chain[2] and '--log-prefix "SSH_brute_force "' in chain[2]
    assert "--rcheck --seconds 60 --hitcount 4 --rttl" in chain[3] and chain[3].endswith("-j DROP")
    assert chain[-1] == "-A RATELIMIT_SSH -j ACCEPT"


def chain_rules(text, chain):
    return [line for line in text.splitlines() if line.startswith("-A %s " % chain)]


def nat(host, family):
    return normalized(host.check_output("%s -t nat" % SAVE[family]))


@pytest.mark.parametrize("family", [4, 6])
def test_port_forward_dnat_and_forward_accept(host, family):
    to = "198.51.100.130:80" if family == 4 else "[2001:db8:14a::2]:80"
    dnat = chain_rules(nat(host, family), "PREROUTING")
    assert ('-A PREROUTING -i wan0 -p tcp -m tcp --dport 8080 -m comment --comment "ironwall:500:rule:firewall-dnat-web" '
            "-j DNAT --to-destination %s" % to) in dnat
    # the UDP forward has an IPv4 destination only: no IPv6 line
    assert any("--dport 5353" in r and "-j DNAT --to-destination 198.51.100.131" in r for r in dnat) == (family == 4)
    forward = chain_rules(live(host, family), "FORWARD")
    accept = [r for r in forward if "firewall-dnat-web-accept" in r]
    assert len(accept) == 1
    for fragment in ("-d %s/%d " % (WEB[family], 32 if family == 4 else 128), "-i wan0 ", "--dport 80 ",
                     "--state NEW ", "-j ACCEPT"):
        assert fragment in accept[0], accept[0]


@pytest.mark.parametrize("family", [4, 6])
def test_masquerade_and_forward_order(host, family):
    post = chain_rules(nat(host, family), "POSTROUTING")
    assert ['-A POSTROUTING -s %s -o wan0 -m comment --comment "ironwall:500:rule:firewall-masquerade-lan" '
            "-j MASQUERADE" % LAN[family]] == [r for r in post if "masquerade" in r]
    forward = chain_rules(live(host, family), "FORWARD")
    # established first (110), the extra rule (400), then the accepts (500), all the role's
    names = [re.search(r"ironwall:\d+:rule:(\S+)\"", r).group(1) for r in forward]
    assert names[:2] == ["firewall-forward-established", "no-lan-9091"], forward
    assert "firewall-masquerade-lan-accept" in names and "firewall-dnat-web-accept" in names
    reject = "icmp-port-unreachable" if family == 4 else "icmp6-port-unreachable"
    assert "--state RELATED,ESTABLISHED" in forward[0] and forward[1].endswith("-j REJECT --reject-with " + reject)


@pytest.mark.parametrize("family", [4, 6])
def test_open_port_on_one_interface(host, family):
    rules = [r for r in input_rules(live(host, family)) if "firewall-port-udp-53-lan0" in r]
    assert len(rules) == 1 and "-i lan0 -p udp -m udp --dport 53 " in rules[0]


def test_ip_forward_sysctl_file_and_running_values(host):
    f = host.file(SYSCTL_FILE)
    assert f.is_file and f.user == "root" and f.mode == 0o644
    assert [line for line in f.content_string.splitlines() if not line.startswith("#")] == [
        "net.ipv4.ip_forward = 1", "net.ipv6.conf.all.forwarding = 1"]
    assert host.check_output("cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding").split() == [
        "1", "1"]


def by_chain(lines):
    """{chain: [its -A lines, in order]}."""
    out = {}
    for line in lines:
        if line.startswith("-A "):
            out.setdefault(line.split()[1], []).append(line)
    return out


@pytest.mark.parametrize("family", [4, 6])
def test_rules_file(host, family):
    f = host.file(RULES[family])
    assert f.is_file
    assert f.user == "root" and f.group == "root"
    assert f.mode == 0o600
    text = f.content_string
    # Only what the collection owns (scope owned): the policies the role sets, its chains (each opening
    # with its ownership marker) and its tagged rules, in their live order; loaded with --noflush at boot.
    assert text.startswith("# ironwall.iptables: what the collection owns")
    assert ":INPUT DROP [0:0]" in text and ":FORWARD DROP [0:0]" in text
    owned = ("MYSQL_WHITELIST", "RATELIMIT_SSH")
    wanted = dict((chain, [line for line in lines if chain in owned or "ironwall:" in line])
                  for chain, lines in by_chain(live(host, family).splitlines()).items())
    assert by_chain(text.splitlines()) == dict((c, lines) for c, lines in wanted.items() if lines)
    host.run_expect([0], "%s-restore --test %s" % (TOOL[family], RULES[family]))


def test_hook_file(host):
    f = host.file(HOOK)
    assert f.is_file
    assert f.user == "root" and f.mode == 0o755
    assert f.content_string.startswith("#!/bin/sh\n")
    assert "." not in HOOK.rsplit("/", 1)[1], "run-parts skips names with dots"
    host.run_expect([0], "sh -n %s" % HOOK)
    # run-parts (what ifupdown uses) must select it.
    assert HOOK in host.check_output("run-parts --test /etc/network/if-pre-up.d").split()
    assert not host.file(UNIT).exists, "auto chose ifupdown: no systemd unit"


def test_reboot_restores_the_same_ruleset(host, saved):
    flush(host)
    host.run_expect([0], "rm -f %s" % FLAG)
    for family in (4, 6):
        assert "ironwall" not in live(host, family)
    ifup_lo(host)
    assert host.file(FLAG).exists
    for family in (4, 6):
        assert live(host, family) == saved[family]


def test_second_hook_run_keeps_rules_added_since_boot(host, saved):
    flush(host)
    host.run_expect([0], "rm -f %s" % FLAG)
    ifup_lo(host)
    for family in (4, 6):
        host.run_expect([0], "%s -w %s" % (TOOL[family], FOREIGN % FOREIGN_SOURCE[family]))
    ifup_lo(host)                      # e.g. a second interface comes up later
    host.run_expect([0], HOOK)         # and the hook run by hand
    for family in (4, 6):
        text = live(host, family)
        assert FOREIGN % FOREIGN_SOURCE[family] in text.splitlines()
        host.run_expect([0], "%s -w %s" % (TOOL[family], (FOREIGN % FOREIGN_SOURCE[family]).replace("-A ", "-D ", 1)))
        assert live(host, family) == saved[family]


def test_hook_without_files_exits_0(host, saved):
    for family in (4, 6):
        host.run_expect([0], "mv %s %s.verify-aside" % (RULES[family], RULES[family]))
    flush(host)
    host.run_expect([0], "rm -f %s" % FLAG)
    cmd = host.run(HOOK)
    assert cmd.rc == 0, cmd.stderr
    for family in (4, 6):
        assert "ironwall" not in live(host, family)


def test_hook_refuses_a_broken_file_and_logs_it(host, saved):
    # The hook's PATH starts with /usr/local/sbin: a stand-in logger records the calls
    # (the container runs no syslog daemon).
    shim = "/usr/local/sbin/logger"
    host.run_expect([0], "printf '%%s\\n' '#!/bin/sh' 'echo \"$*\" >> /tmp/logger.calls' > %s && chmod 0755 %s"
                    " && rm -f /tmp/logger.calls" % (shim, shim))
    try:
        host.run_expect([0], "cp -p {0} {0}.verify-aside && echo '-A NOCHAIN -j ACCEPT' > {0}".format(RULES[4]))
        host.run_expect([0], "rm -f %s" % FLAG)
        cmd = host.run(HOOK)
        assert cmd.rc == 0, cmd.stderr
        calls = host.file("/tmp/logger.calls").content_string
    finally:
        host.run("rm -f %s /tmp/logger.calls" % shim)
    assert "-t ironwall-iptables -p daemon.err" in calls
    assert "%s failed iptables-restore --test, not restored" % RULES[4] in calls
    assert "restored %s" % RULES[6] in calls
    assert live(host, 4) == saved[4], "a file failing --test must not be loaded"
