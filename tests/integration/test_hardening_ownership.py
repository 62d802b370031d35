# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ownership and text hardening against real iptables (nft and legacy), issue 12 items 1, 2, 3, 7, 8.

* Chains the collection did not create (fail2ban's ``f2b-sshd``, Docker's ``DOCKER-USER``, an
  admin's chain, a hand-made ``RATELIMIT_<NAME>``) are never filled, flushed or deleted: the
  module fails naming the option and both families stay byte-identical.
* A whitelist chain that lost its marker but is reached by our tagged jump is adopted once.
* Foreign comments holding line breaks other than ``\\n`` (``\\r``, ``\\v``, NEL, U+2028) or bytes
  that are not UTF-8 are read, reported and left exactly as they were.
* Text limits are UTF-8 bytes; rules in a chain ending with a catch-all go before it (shown by
  real TCP); protocol numbers iptables-save prints by name converge.

Rulesets are read as bytes and split on ``\\n`` only: ansible_runs.save() decodes and uses
str.splitlines(), which would cut the very rules these tests are about.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

import ansible_runs
import sandbox_net

FAMILIES = (4, 6)

# ---------------------------------------------------------------- foreign rulesets

# fail2ban (iptables-multiport action) with two bans, Docker (filter and nat, its bridge on a
# test network), an admin's unreferenced chain and a hand-made RATELIMIT_SSH reached from INPUT.
FOREIGN = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s {net} ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination {dnat}
COMMIT
*filter
:INPUT ACCEPT [12:3456]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [7:890]
:ADMIN - [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
:RATELIMIT_SSH - [0:0]
:f2b-sshd - [0:0]
[3:180] -A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd
-A INPUT -p tcp -m tcp --dport 2222 -j RATELIMIT_SSH
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A ADMIN -s {admin} -m comment --comment "office, ticket 4711" -j ACCEPT
-A ADMIN -j LOG --log-prefix "admin: "
-A DOCKER -d {host} ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
-A RATELIMIT_SSH -m limit --limit 3/min -j ACCEPT
-A RATELIMIT_SSH -j DROP
[1:60] -A f2b-sshd -s {ban1} -j REJECT --reject-with {unreach}
-A f2b-sshd -s {ban2} -j REJECT --reject-with {unreach}
[2:120] -A f2b-sshd -j RETURN
COMMIT
"""
FOREIGN_V4 = FOREIGN.format(net="203.0.113.0/24", dnat="203.0.113.2:80", host="203.0.113.2/32",
                            admin="198.51.100.0/24", ban1="203.0.113.200/32", ban2="198.51.100.66/32",
                            unreach="icmp-port-unreachable")
FOREIGN_V6 = FOREIGN.format(net="2001:db8:17::/64", dnat="[2001:db8:17::2]:80", host="2001:db8:17::2/128",
                            admin="2001:db8:100::/64", ban1="2001:db8:203::200/128", ban2="2001:db8:100::66/128",
                            unreach="icmp6-port-unreachable")

# An admin's chain that exists in ip6tables only: refusing it must leave IPv4 alone too.
ADMIN6_ONLY = """*filter
:ADMIN6 - [0:0]
-A ADMIN6 -s 2001:db8:100::/64 -j ACCEPT
COMMIT
"""

# ---------------------------------------------------------------- helpers


def restore_bytes(ns, data, family, backend, noflush=True):
    """Feed raw bytes to iptables-restore / ip6tables-restore in ns (no decoding on the way)."""
    argv = [sandbox_net.family_bin(family, backend, "restore"), "-w"] + (["--noflush"] if noflush else [])
    proc = subprocess.run(ns.argv(argv), input=data, capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, "restore of %r failed: %r" % (data, proc.stderr)


def raw_save(ns, family, backend):
    """iptables-save bytes without the '#' timestamp lines and with counters zeroed, split on
    b'\\n' only (never splitlines: the foreign comments below hold \\r, \\v, NEL, U+2028)."""
    proc = subprocess.run(ns.argv([sandbox_net.family_bin(family, backend, "save")]),
                          capture_output=True, timeout=60, check=True)
    lines = [re.sub(rb"^(:\S+ \S+ )\[\d+:\d+\]$", rb"\1[0:0]", line)
             for line in proc.stdout.split(b"\n") if not line.startswith(b"#")]
    return b"\n".join(lines)


def both(ns, backend):
    return {f: raw_save(ns, f, backend) for f in FAMILIES}


def lines_of(data, chain):
    return [line for line in data.split(b"\n") if line.startswith(b"-A %s " % chain.encode())]


def run(ns, module, args, backend, **kw):
    """One module run (ansible ad hoc); its result."""
    return ansible_runs.run_module(ns, module, args, backend, **kw)


def play(ns, backend, steps, diff=False):
    """Run steps [(module, args)] in order as the tasks of one playbook, each allowed to fail,
    and return their results: one Ansible start-up for several runs keeps the file fast."""
    tasks = "".join("    - name: step %d %s\n      ironwall.iptables.%s: %s\n      ignore_errors: true\n"
                    % (i, module, module, json.dumps(args)) for i, (module, args) in enumerate(steps))
    data = ansible_runs.run_playbook(ns, "- hosts: localhost\n  gather_facts: false\n  tasks:\n" + tasks,
                                     backend, diff=diff)
    results = [res for _name, res in ansible_runs.task_results(data)]
    assert len(results) == len(steps), data
    return results


def failed(res):
    # a playbook result says "failed"; an ad hoc one only prints "localhost | FAILED! => {...}"
    return res.get("failed") is True or res.get("_status") == "FAILED!"


def assert_refused(res, option):
    """Failed in the module (not a crash), the message starting with the option's name."""
    assert failed(res) and res.get("changed") is False, res
    assert res.get("msg", "").startswith(option + ":"), res


def assert_changed(res):
    assert not failed(res) and res.get("changed") is True, res


def assert_unchanged(res):
    assert not failed(res) and res.get("changed") is False, res
    assert res["calls"]["restore"] == 0, res


# ---------------------------------------------------------------- 1. foreign chains

FOREIGN_CASES = [
    ("iptables_whitelist", {"name": "f2b-sshd", "ports": [22], "sources": ["198.51.100.9"]}, "name", "f2b-sshd"),
    ("iptables_whitelist", {"name": "DOCKER-USER", "ports": [8080], "sources": ["198.51.100.9", "2001:db8::9"]}, "name", "DOCKER-USER"),
    ("iptables_whitelist", {"name": "ADMIN", "ports": [3306], "sources": []}, "name", "ADMIN"),
    ("iptables_whitelist", {"name": "ADMIN6", "ports": [3306], "sources": ["198.51.100.9"]}, "name", "ADMIN6"),
    ("iptables_whitelist", {"name": "f2b-sshd", "state": "absent"}, "name", "f2b-sshd"),
    ("iptables_whitelist", {"name": "DOCKER-USER", "state": "absent"}, "name", "DOCKER-USER"),
    ("iptables_whitelist", {"name": "ADMIN", "state": "absent"}, "name", "ADMIN"),
    ("iptables_ratelimit", {"name": "ssh-f2b", "chain_name": "f2b-sshd"}, "chain_name", "f2b-sshd"),
    # default chain_name RATELIMIT_SSH exists, made by hand
    ("iptables_ratelimit", {"name": "ssh"}, "chain_name", "RATELIMIT_SSH"),
    ("iptables_ratelimit", {"name": "ssh", "state": "absent"}, "chain_name", "RATELIMIT_SSH"),
]


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_foreign_chains_are_refused_naming_the_option_and_left_byte_identical(netns, backend):
    netns.load(FOREIGN_V4, 4, backend, counters=True)
    netns.load(FOREIGN_V6, 6, backend, counters=True)
    netns.load(ADMIN6_ONLY, 6, backend, noflush=True)
    before = both(netns, backend)
    assert b"-A f2b-sshd -s 203.0.113.200/32" in before[4] and b":ADMIN6 - [0:0]" in before[6]
    results = play(netns, backend, [(module, args) for module, args, _option, _chain in FOREIGN_CASES])
    for (module, args, option, chain), res in zip(FOREIGN_CASES, results):
        assert_refused(res, option)
        assert "'%s'" % chain in res["msg"], (module, args, res)
    assert both(netns, backend) == before


# ---------------------------------------------------------------- 2. adoption

@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_whitelist_that_lost_its_marker_but_keeps_our_jump_is_adopted_once(netns, backend):
    args = {"name": "DB_WL", "ports": [5432], "sources": ["198.51.100.20", "2001:db8:100::20"]}
    marker = b'-A DB_WL -m comment --comment "ironwall:chain:whitelist:DB_WL"'
    assert_changed(run(netns, "iptables_whitelist", args, backend))
    for family in FAMILIES:
        assert lines_of(raw_save(netns, family, backend), "DB_WL")[0] == marker
        # the marker goes, by hand; the tagged jump from INPUT stays
        netns.iptables("-D", "DB_WL", "-m", "comment", "--comment", "ironwall:chain:whitelist:DB_WL",
                       family=family, backend=backend)
    lost = both(netns, backend)
    assert all(marker not in text and b"-j DB_WL" in text for text in lost.values()), lost

    adopted, again = play(netns, backend, [("iptables_whitelist", args)] * 2)
    assert_changed(adopted)
    assert adopted["added"] == {"ipv4": [], "ipv6": []} and adopted["removed"] == {"ipv4": [], "ipv6": []}, adopted
    assert_unchanged(again)
    after = both(netns, backend)
    assert lines_of(after[4], "DB_WL") == [marker, b"-A DB_WL -s 198.51.100.20/32 -j ACCEPT"]
    assert lines_of(after[6], "DB_WL") == [marker, b"-A DB_WL -s 2001:db8:100::20/128 -j ACCEPT"]
    for family in FAMILIES:
        assert lines_of(after[family], "INPUT") == lines_of(lost[family], "INPUT")


# ---------------------------------------------------------------- 3. line breaks in foreign comments

# \r, \v, NEL (U+0085, UTF-8 C2 85) and LINE SEPARATOR (U+2028, UTF-8 E2 80 A8): iptables keeps
# them inside the quoted comment; str.splitlines() would cut the rule at each.
BREAKS_COMMENT = b"fw\rnote\x0bx\xc2\x85y\xe2\x80\xa8z"
BREAKS_TEXT = BREAKS_COMMENT.decode("utf-8")
BREAKS_SRC = {4: "203.0.113.7/32", 6: "2001:db8:203::7/128"}
LO = b"-A INPUT -i lo -j ACCEPT"


def breaks_rule(family):
    return b'-A INPUT -s %s -m comment --comment "%s" -j ACCEPT' % (BREAKS_SRC[family].encode(), BREAKS_COMMENT)


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_foreign_comment_with_line_breaks_is_read_kept_and_purged_only_on_request(netns, backend):
    for family in FAMILIES:
        restore_bytes(netns, b"*filter\n%s\n%s\nCOMMIT\n" % (LO, breaks_rule(family)), family, backend)

    web = {"name": "web", "protocol": "tcp", "dports": [80], "jump": "ACCEPT"}
    info, *changes, rerun = play(netns, backend, [
        ("iptables_info", {"table": "filter"}),
        ("iptables_rule", web),
        ("iptables_whitelist", {"name": "PG_WL", "ports": [5432], "sources": ["198.51.100.5", "2001:db8::5"]}),
        ("iptables_policy", {"chain": "FORWARD", "policy": "DROP"}),
        # the ruleset holding that rule is read and compared: a rerun changes nothing
        ("iptables_rule", web),
    ], diff=True)
    assert not failed(info), info
    for family, key in ((4, "ipv4"), (6, "ipv6")):
        rules = info[key]["tables"]["filter"]["chains"]["INPUT"]["rules"]
        want = '-A INPUT -s %s -m comment --comment "%s" -j ACCEPT' % (BREAKS_SRC[family], BREAKS_TEXT)
        assert [(r["position"], r["rule"], r["owner"]) for r in rules] == [
            (1, LO.decode(), None), (2, want, None)], rules
        assert want in info[key]["save"]

    for res in changes:
        assert_changed(res)
    assert_unchanged(rerun)
    for family in FAMILIES:
        text = raw_save(netns, family, backend)
        # still the second rule of INPUT, every byte as loaded, and the changes made
        assert lines_of(text, "INPUT")[:2] == [LO, breaks_rule(family)], text
        assert b":FORWARD DROP" in text and b"-A PG_WL " in text and b'"ironwall:500:rule:web"' in text, text

    # The keep pattern is a regex written with escapes (control characters are refused in it).
    keep = [r'--comment "fw\rnote\x0bx\x85y\u2028z"']
    kept = run(netns, "iptables_policy", {"chain": "INPUT", "purge": True, "keep": keep}, backend)
    assert_changed(kept)
    assert kept["purged"] == {"ipv4": [LO.decode()], "ipv6": [LO.decode()]}, kept
    for family in FAMILIES:
        assert lines_of(raw_save(netns, family, backend), "INPUT")[0] == breaks_rule(family)

    purged = run(netns, "iptables_policy", {"chain": "INPUT", "purge": True}, backend)
    assert_changed(purged)
    for family, key in ((4, "ipv4"), (6, "ipv6")):
        assert purged["purged"][key] == [
            '-A INPUT -s %s -m comment --comment "%s" -j ACCEPT' % (BREAKS_SRC[family], BREAKS_TEXT)], purged
        text = raw_save(netns, family, backend)
        assert BREAKS_COMMENT not in text, text
        # the collection's own rules stay
        assert all(b'"ironwall:' in line for line in lines_of(text, "INPUT")) and len(lines_of(text, "INPUT")) == 3


# ---------------------------------------------------------------- 4. bytes, not characters

@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_comment_and_log_prefix_limits_are_utf8_bytes(netns, backend):
    before = both(netns, backend)
    too_long = [
        ({"name": "note", "protocol": "tcp", "dports": [8443], "jump": "ACCEPT", "comment": "é" * 200}, "comment"),
        ({"name": "log", "jump": "LOG", "log_prefix": "é" * 21}, "log_prefix"),  # 21 chars, 42 bytes
        ({"name": "log", "jump": "LOG", "log_prefix": "é" * 15}, "log_prefix"),  # 30 bytes
    ]
    refused = play(netns, backend, [("iptables_rule", args) for args, _option in too_long])
    for (_args, option), res in zip(too_long, refused):
        assert_refused(res, option)
    assert both(netns, backend) == before

    fits = {"name": "log", "jump": "LOG", "log_prefix": "é" * 14}  # 28 bytes
    first, again = play(netns, backend, [("iptables_rule", fits)] * 2)
    assert_changed(first)
    assert_unchanged(again)
    for family in FAMILIES:
        assert lines_of(raw_save(netns, family, backend), "INPUT") == [
            ('-A INPUT -m comment --comment "ironwall:500:rule:log" -j LOG --log-prefix "%s"' % ("é" * 14)).encode()]


# A foreign comment that is not UTF-8: b"caf\xc3 " (a lead byte without its continuation), the
# kind of string the kernel leaves when it cuts a longer UTF-8 comment at 255 bytes.
BAD_UTF8 = {4: b'-A INPUT -s 203.0.113.8/32 -m comment --comment "caf\xc3 " -j ACCEPT',
            6: b'-A INPUT -s 2001:db8:203::8/128 -m comment --comment "caf\xc3 " -j ACCEPT'}
WEB = b'-A INPUT -p tcp -m tcp --dport 80 -m comment --comment "ironwall:500:rule:web" -j ACCEPT'
OTHER = {4: b"-A INPUT -s 198.51.100.44/32 -j DROP", 6: b"-A INPUT -s 2001:db8:100::44/128 -j DROP"}


def load_bad_utf8(ns, backend):
    for family in FAMILIES:
        restore_bytes(ns, b"*filter\n%s\n%s\nCOMMIT\n" % (BAD_UTF8[family], OTHER[family]), family, backend)
        assert lines_of(raw_save(ns, family, backend), "INPUT") == [BAD_UTF8[family], OTHER[family]]


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_foreign_comment_not_utf8_survives_changes_and_a_purge_that_keeps_it(netns, backend):
    load_bad_utf8(netns, backend)
    web = {"name": "web", "protocol": "tcp", "dports": [80], "jump": "ACCEPT"}
    purge = {"chain": "INPUT", "purge": True, "keep": [r"^-A INPUT -s (203\.0\.113\.8/32|2001:db8:203::8/128) "]}
    first, again, res = play(netns, backend, [("iptables_rule", web), ("iptables_rule", web), ("iptables_policy", purge)])
    assert_changed(first)
    assert_unchanged(again)
    assert_changed(res)
    assert res["purged"] == {"ipv4": [OTHER[4].decode()], "ipv6": [OTHER[6].decode()]}, res
    for family in FAMILIES:
        assert lines_of(raw_save(netns, family, backend), "INPUT") == [BAD_UTF8[family], WEB]


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_foreign_comment_not_utf8_is_readable_by_info_diff_and_purge(netns, backend):
    load_bad_utf8(netns, backend)
    web = {"name": "web", "protocol": "tcp", "dports": [80], "jump": "ACCEPT"}
    info, changed, kept = play(netns, backend, [
        ("iptables_info", {}),
        ("iptables_rule", web),
        ("iptables_policy", {"chain": "INPUT", "purge": True, "keep": ["caf"]}),
    ], diff=True)
    assert not failed(info), info
    for key, src in (("ipv4", "203.0.113.8/32"), ("ipv6", "2001:db8:203::8/128")):
        first = info[key]["tables"]["filter"]["chains"]["INPUT"]["rules"][0]
        assert first["rule"].startswith('-A INPUT -s %s -m comment --comment "caf' % src), first
        assert first["rule"].endswith('" -j ACCEPT') and first["owner"] is None, first
    assert_changed(changed)
    assert_changed(kept)
    assert kept["purged"] == {"ipv4": [OTHER[4].decode()], "ipv6": [OTHER[6].decode()]}, kept
    for family in FAMILIES:
        assert lines_of(raw_save(netns, family, backend), "INPUT") == [BAD_UTF8[family], WEB]

    res = run(netns, "iptables_policy", {"chain": "INPUT", "purge": True}, backend)
    assert_changed(res)
    for family, key, src in ((4, "ipv4", "203.0.113.8/32"), (6, "ipv6", "2001:db8:203::8/128")):
        assert len(res["purged"][key]) == 1, res
        assert res["purged"][key][0].startswith('-A INPUT -s %s -m comment --comment "caf' % src), res
        assert lines_of(raw_save(netns, family, backend), "INPUT") == [WEB]


# ---------------------------------------------------------------- 5. catch-all at the end of a foreign chain

@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_rules_in_docker_user_go_before_its_return(netns, backend):
    netns.load(FOREIGN_V4, 4, backend, counters=True)
    netns.load(FOREIGN_V6, 6, backend, counters=True)
    args = {"rules": [
        {"name": "late", "chain": "DOCKER-USER", "priority": 900, "source": ["203.0.113.66", "2001:db8:203::66"],
         "jump": "DROP"},
        {"name": "early", "chain": "DOCKER-USER", "priority": 100, "in_interface": "eth9", "jump": "DROP"},
    ]}
    first, again = play(netns, backend, [("iptables_rule", args)] * 2)
    assert_changed(first)
    assert_unchanged(again)
    after = both(netns, backend)
    for family, src in ((4, "203.0.113.66/32"), (6, "2001:db8:203::66/128")):
        assert lines_of(after[family], "DOCKER-USER") == [
            b'-A DOCKER-USER -i eth9 -m comment --comment "ironwall:100:rule:early" -j DROP',
            ('-A DOCKER-USER -s %s -m comment --comment "ironwall:900:rule:late" -j DROP' % src).encode(),
            b"-A DOCKER-USER -j RETURN",
        ], after[family]
        assert lines_of(after[family], "FORWARD")[0] == b"-A FORWARD -j DOCKER-USER"


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_accept_rule_goes_before_an_admins_final_drop_and_is_reached_by_tcp(lan, backend):
    server = lan.add_client(subnet="198.51.100")
    client = lan.add_client(subnet="203.0.113")
    admin = "*filter\n-A INPUT -i lo -j ACCEPT\n%s-A INPUT -j DROP\nCOMMIT\n"
    server.load(admin % "", 4, backend, noflush=True)
    server.load(admin % "-A INPUT -p ipv6-icmp -j ACCEPT\n", 6, backend, noflush=True)  # neighbour discovery
    server.listen(8080, family=6)  # dual-stack
    assert not sandbox_net.probe(client, server.addr4, 8080, timeout=1)
    assert not sandbox_net.probe(client, server.addr6, 8080, timeout=1)

    web = {"name": "web", "protocol": "tcp", "dports": [8080], "jump": "ACCEPT"}
    first, again = play(server, backend, [("iptables_rule", web)] * 2)
    assert_changed(first)
    assert_unchanged(again)
    reached = (sandbox_net.probe(client, server.addr4, 8080, timeout=2),
               sandbox_net.probe(client, server.addr6, 8080, timeout=2))
    for family in FAMILIES:
        rules = lines_of(raw_save(server, family, backend), "INPUT")
        assert rules[-2:] == [b'-A INPUT -p tcp -m tcp --dport 8080 -m comment --comment "ironwall:500:rule:web" -j ACCEPT',
                              b"-A INPUT -j DROP"], (reached, rules)
    assert reached == (True, True)


# ---------------------------------------------------------------- 6. protocol numbers printed by name

@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_protocol_numbers_printed_by_name_converge(netns, backend):
    # iptables-save prints 41 as "ipv6", 112 as "vrrp", 47 as "gre", 4 as "ipencap", 50 as "esp"
    protocols = [41, 112, "vrrp", 47, "gre", 4, 50]
    args = {"rules": [{"name": "proto-%s" % p, "protocol": p, "jump": "ACCEPT"} for p in protocols]}
    first, second = play(netns, backend, [("iptables_rule", args)] * 2)
    assert_changed(first)
    assert_unchanged(second)
    assert second["commands"] == {"ipv4": [], "ipv6": []}, second
    for family in FAMILIES:
        assert len(lines_of(raw_save(netns, family, backend), "INPUT")) == len(protocols)


# ------------------------------------------- 8. ownership is read from the comment match only

LOOKALIKES = (b'-A INPUT -j LOG --log-prefix "ironwall:500:rule:a"\n'
              b'-A INPUT -m string --string "--comment ironwall:500:rule:a" --algo bm -j DROP\n'
              b'-A INPUT -m comment --comment "see ironwall:500:rule:a" -j ACCEPT\n')


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_foreign_rules_that_merely_contain_our_tag_text_are_not_ours(netns, backend):
    # a LOG prefix, a string match and a longer comment holding the tag's text are other
    # software's: removing the rule "a", or every rule of an exclusive prefix, leaves them
    for family in FAMILIES:
        restore_bytes(netns, b"*filter\n" + LOOKALIKES + b"COMMIT\n", family, backend)
    before = both(netns, backend)
    removed, pruned = play(netns, backend, [
        ("iptables_rule", {"name": "a", "state": "absent"}),
        ("iptables_rule", {"exclusive_prefix": "a", "rules": [{"name": "ab", "jump": "ACCEPT"}]}),
    ])
    assert_unchanged(removed)
    assert_changed(pruned)
    assert pruned["pruned"] == {"ipv4": [], "ipv6": []}, pruned
    after = both(netns, backend)
    for family in FAMILIES:
        assert [line for line in lines_of(after[family], "INPUT") if b"ironwall:500:rule:ab" not in line] == \
            lines_of(before[family], "INPUT")
