# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_ratelimit: options -> canonical rules and Desired; validation; kernel ceiling; rates."""

from __future__ import annotations

import pytest

from ansible_collections.ironwall.iptables.plugins.module_utils import _ratelimit as rl
from ansible_collections.ironwall.iptables.plugins.module_utils._model import Ruleset, parse_save
from ansible_collections.ironwall.iptables.plugins.module_utils._plan import PlanError, plan_changes
from ansible_collections.ironwall.iptables.plugins.module_utils._rulespec import SpecError

MASK6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
JUMP = ('-p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m comment --comment "ironwall:300:ratelimit:ssh" '
        '-j RATELIMIT_SSH')
# The ownership marker that opens the chain of the rate limit named ssh (whatever its chain_name).
MARK = '-m comment --comment "ironwall:chain:ratelimit:ssh"'


def limit(**kw):
    params = dict(name="ssh")
    params.update(kw)
    return rl.validate(params)


# --- the owned chain, in iptables-save's canonical form (as measured on nft and legacy) ---

SLIDING = dict(rttl=False, update=True, accept=False, hitcount=10, seconds=300)
LOGGED = dict(log_prefix="rl: ", log_level="info", log_limit="3/minute", update=True)
EXEMPT = dict(exempt_sources=["198.51.100.7", "2001:db8::1/64", "203.0.113.9/24"])
EXEMPT_RETURN = dict(exempt_sources=["198.51.100.7", "2001:db8::1/64"], accept=False)

CHAIN_CASES = [
    ("classic v4", dict(log_prefix="SSH_brute_force "), "ipv4", (
        MARK,
        "-m recent --set --name ssh --mask 255.255.255.255 --rsource",
        '-m recent --rcheck --seconds 60 --hitcount 4 --rttl --name ssh --mask 255.255.255.255 --rsource '
        '-j LOG --log-prefix "SSH_brute_force "',
        "-m recent --rcheck --seconds 60 --hitcount 4 --rttl --name ssh --mask 255.255.255.255 --rsource -j DROP",
        "-j ACCEPT",
    )),
    ("classic v6: own list, full mask", dict(log_prefix="SSH_brute_force "), "ipv6", (
        MARK,
        "-m recent --set --name ssh_v6 --mask %s --rsource" % MASK6,
        '-m recent --rcheck --seconds 60 --hitcount 4 --rttl --name ssh_v6 --mask %s --rsource '
        '-j LOG --log-prefix "SSH_brute_force "' % MASK6,
        "-m recent --rcheck --seconds 60 --hitcount 4 --rttl --name ssh_v6 --mask %s --rsource -j DROP" % MASK6,
        "-j ACCEPT",
    )),
    ("no log, no rttl, update, accept false", SLIDING, "ipv4", (
        MARK,
        "-m recent --set --name ssh --mask 255.255.255.255 --rsource",
        "-m recent --update --seconds 300 --hitcount 10 --name ssh --mask 255.255.255.255 --rsource -j DROP",
        "-j RETURN",
    )),
    ("log level and limit; update only in the action rule", LOGGED, "ipv4", (
        MARK,
        "-m recent --set --name ssh --mask 255.255.255.255 --rsource",
        '-m recent --rcheck --seconds 60 --hitcount 4 --rttl --name ssh --mask 255.255.255.255 --rsource '
        '-m limit --limit 3/min -j LOG --log-prefix "rl: " --log-level 6',
        "-m recent --update --seconds 60 --hitcount 4 --rttl --name ssh --mask 255.255.255.255 --rsource -j DROP",
        "-j ACCEPT",
    )),
    ("log level 4 is the default and not printed", dict(log_prefix="x", log_level="warning"), "ipv4", (
        MARK,
        "-m recent --set --name ssh --mask 255.255.255.255 --rsource",
        "-m recent --rcheck --seconds 60 --hitcount 4 --rttl --name ssh --mask 255.255.255.255 --rsource "
        "-j LOG --log-prefix x",
        "-m recent --rcheck --seconds 60 --hitcount 4 --rttl --name ssh --mask 255.255.255.255 --rsource -j DROP",
        "-j ACCEPT",
    )),
    ("exempt sources of the family first, ACCEPT", EXEMPT, "ipv4", (
        MARK,
        "-s 198.51.100.7/32 -j ACCEPT",
        "-s 203.0.113.0/24 -j ACCEPT",
        "-m recent --set --name ssh --mask 255.255.255.255 --rsource",
        "-m recent --rcheck --seconds 60 --hitcount 4 --rttl --name ssh --mask 255.255.255.255 --rsource -j DROP",
        "-j ACCEPT",
    )),
    ("exempt v6 with accept false -> RETURN", EXEMPT_RETURN, "ipv6", (
        MARK,
        "-s 2001:db8::/64 -j RETURN",
        "-m recent --set --name ssh_v6 --mask %s --rsource" % MASK6,
        "-m recent --rcheck --seconds 60 --hitcount 4 --rttl --name ssh_v6 --mask %s --rsource -j DROP" % MASK6,
        "-j RETURN",
    )),
    ("REJECT default per family", dict(action="REJECT"), "ipv6", (
        MARK,
        "-m recent --set --name ssh_v6 --mask %s --rsource" % MASK6,
        "-m recent --rcheck --seconds 60 --hitcount 4 --rttl --name ssh_v6 --mask %s --rsource "
        "-j REJECT --reject-with icmp6-port-unreachable" % MASK6,
        "-j ACCEPT",
    )),
    ("REJECT tcp-reset needs -p tcp in its own rule", dict(action="REJECT", reject_with="tcp-reset"), "ipv4", (
        MARK,
        "-m recent --set --name ssh --mask 255.255.255.255 --rsource",
        "-p tcp -m recent --rcheck --seconds 60 --hitcount 4 --rttl --name ssh --mask 255.255.255.255 --rsource "
        "-j REJECT --reject-with tcp-reset",
        "-j ACCEPT",
    )),
    ("the marker names the rate limit, not its chain", dict(chain_name="SSH_LIMIT", hitcount=6), "ipv4", (
        MARK,
        "-m recent --set --name ssh --mask 255.255.255.255 --rsource",
        "-m recent --rcheck --seconds 60 --hitcount 6 --rttl --name ssh --mask 255.255.255.255 --rsource -j DROP",
        "-j ACCEPT",
    )),
]


@pytest.mark.parametrize("label,kw,family,expected", CHAIN_CASES, ids=[c[0] for c in CHAIN_CASES])
def test_chain_specs(label, kw, family, expected):
    assert rl.chain_specs(limit(**kw), family) == expected


JUMP_CASES = [
    ("default", {}, "ipv4", JUMP),
    ("v6 is the same text", {}, "ipv6", JUMP),
    ("several ports -> multiport", dict(ports=["22", "2222", "3000-3010"]), "ipv4",
     '-p tcp -m multiport --dports 22,2222,3000:3010 -m conntrack --ctstate NEW -m comment '
     '--comment "ironwall:300:ratelimit:ssh" -j RATELIMIT_SSH'),
    ("udp, priority, chain_name", dict(protocol="udp", ports=[53], priority=5, chain_name="DNS_LIMIT"), "ipv6",
     '-p udp -m udp --dport 53 -m conntrack --ctstate NEW -m comment --comment "ironwall:005:ratelimit:ssh" '
     '-j DNS_LIMIT'),
]


@pytest.mark.parametrize("label,kw,family,expected", JUMP_CASES, ids=[c[0] for c in JUMP_CASES])
def test_jump_spec(label, kw, family, expected):
    assert rl.jump_spec(limit(**kw), family) == expected


@pytest.mark.parametrize("name,chain", [("ssh", "RATELIMIT_SSH"), ("smtp-auth", "RATELIMIT_SMTP_AUTH"),
                                        ("a" * 18, "RATELIMIT_" + "A" * 18)])
def test_default_chain_name(name, chain):
    assert limit(name=name).chain_name == chain


# --- bad input: each names its option ---

BAD = [
    ("hitcount 0", dict(hitcount=0), "hitcount"),
    ("hitcount above the ceiling", dict(hitcount=256), "hitcount"),
    ("hitcount bool", dict(hitcount=True), "hitcount"),
    ("seconds 0", dict(seconds=0), "seconds"),
    ("seconds above u32", dict(seconds=2 ** 32), "seconds"),
    ("name with a dot", dict(name="ssh.v4"), "name"),
    ("name with a space", dict(name="s sh"), "name"),
    ("empty name", dict(name=""), "name"),
    ("name too long for the kernel with _v6", dict(name="a" * 197, chain_name="X"), "name"),
    ("derived chain name too long", dict(name="a" * 19), "chain_name"),
    ("chain_name too long", dict(chain_name="C" * 29), "chain_name"),
    ("chain_name is a target", dict(chain_name="DROP"), "chain_name"),
    ("chain_name is the jump chain", dict(chain_name="INPUT"), "chain_name"),
    ("chain_name is the custom jump chain", dict(chain="MYCHAIN", chain_name="MYCHAIN"), "chain_name"),
    ("log_prefix 30 characters", dict(log_prefix="x" * 30), "log_prefix"),
    ("log_prefix with a quote", dict(log_prefix='a"b'), "log_prefix"),
    ("log_level bad", dict(log_prefix="x", log_level="loud"), "log_level"),
    ("log_level without log_prefix", dict(log_level="info"), "log_level"),
    ("log_limit without log_prefix", dict(log_limit="3/min"), "log_prefix"),
    ("log_limit bad unit", dict(log_prefix="x", log_limit="3/week"), "log_limit"),
    ("log_limit too fast", dict(log_prefix="x", log_limit="10001/second"), "log_limit"),
    ("log_limit zero", dict(log_prefix="x", log_limit="0/second"), "log_limit"),
    ("port 0", dict(ports=[0]), "ports"),
    ("port 65536", dict(ports=["65536"]), "ports"),
    ("port not a number", dict(ports=["ssh!"]), "ports"),
    ("reversed range", dict(ports=["2000:1000"]), "ports"),
    ("no ports", dict(ports=[]), "ports"),
    ("16 ports", dict(ports=[str(p) for p in range(1, 17)]), "ports"),
    ("bad exempt", dict(exempt_sources=["198.51.100.300"]), "exempt_sources"),
    ("partial exempt", dict(exempt_sources=["198.51"]), "exempt_sources"),
    ("v6 exempt on ipv4 only", dict(exempt_sources=["2001:db8::1"], ip_version="ipv4"), "exempt_sources"),
    ("reject_with without REJECT", dict(reject_with="tcp-reset"), "reject_with"),
    ("reject_with with no IPv6 meaning", dict(action="REJECT", reject_with="icmp-proto-unreachable"), "reject_with"),
    ("tcp-reset on udp", dict(action="REJECT", reject_with="tcp-reset", protocol="udp"), "reject_with"),
    ("bad protocol", dict(protocol="icmp"), "protocol"),
    ("bad action", dict(action="LOG"), "action"),
    ("priority 1000", dict(priority=1000), "priority"),
    ("bad ip_version", dict(ip_version="ipv5"), "ip_version"),
]


@pytest.mark.parametrize("label,kw,option", BAD, ids=[c[0] for c in BAD])
def test_bad_input_names_the_option(label, kw, option):
    with pytest.raises(SpecError) as info:
        limit(**kw)
    assert info.value.option == option
    assert str(info.value).startswith(option + ": ")


def test_icmp_reject_with_valid_for_one_family_is_fine_there():
    assert limit(action="REJECT", reject_with="icmp-host-prohibited", ip_version="ipv4").reject_with == \
        "icmp-host-prohibited"


def test_name_limits():
    assert limit(name="a" * 196, chain_name="LONG").list_name("ipv6") == "a" * 196 + "_v6"
    assert len(limit(name="a" * 196, chain_name="LONG").list_name("ipv6")) == rl.MAX_LIST_NAME


def test_absent_skips_the_rule_options():
    # Bad values of options that only matter when present do not block removal.
    lim = rl.validate(dict(name="ssh", state="absent", hitcount=0, ports=[0]))
    assert lim.state == "absent" and lim.chain_name == "RATELIMIT_SSH"


# --- the kernel's hitcount ceiling ---

@pytest.mark.parametrize("text,value", [("0\n", 0), ("20\n", 20), ("255", 255), ("", None), (None, None),
                                        ("x", None)])
def test_parse_ip_pkt_list_tot(text, value):
    assert rl.parse_ip_pkt_list_tot(text) == value


@pytest.mark.parametrize("tot,ceiling", [(0, 255), (None, 255), (20, 20), (100, 100), (70000, 65535)])
def test_hitcount_ceiling(tot, ceiling):
    assert rl.hitcount_ceiling(tot) == ceiling


@pytest.mark.parametrize("tot,hitcount,ok", [(0, 255, True), (0, 256, False), (20, 20, True), (20, 21, False),
                                             (None, 4, True)])
def test_validate_uses_the_ceiling(tot, hitcount, ok):
    params = dict(name="ssh", hitcount=hitcount)
    if ok:
        assert rl.validate(params, rl.hitcount_ceiling(tot)).hitcount == hitcount
    else:
        with pytest.raises(SpecError) as info:
            rl.validate(params, rl.hitcount_ceiling(tot))
        assert info.value.option == "hitcount" and str(rl.hitcount_ceiling(tot)) in str(info.value)


# --- limit rates as iptables-save prints them (measured with iptables 1.8.9) ---

@pytest.mark.parametrize("given,printed", [
    ("3/min", "3/min"), ("3/minute", "3/min"), ("3/m", "3/min"), ("10/second", "10/sec"), ("60/min", "1/sec"),
    ("1/s", "1/sec"), ("7/hour", "7/hour"), ("100/day", "100/day"), ("2/h", "2/hour"), ("5", "5/sec"),
    ("1000/sec", "1000/sec"), ("86400/day", "1/sec"), ("90/min", "90/min"), ("10000/sec", "10000/sec"),
    ("3/MINUTE", "3/min"),
])
def test_canonical_rate(given, printed):
    assert rl.canonical_rate(given) == printed


# --- Desired and the planner ---

EMPTY = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"


def live(lim, family="ipv4", extra="", legacy=False):
    """A save holding exactly what ``lim`` renders (plus extra -A lines); ``legacy``: its chain
    as made before ownership markers existed (the same rules without the marker)."""
    lines = ["*filter", ":INPUT DROP [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":%s - [0:0]" % lim.chain_name,
             "-A INPUT -s 198.51.100.9/32 -j ACCEPT",
             "-A INPUT %s" % rl.jump_spec(lim, family)]
    specs = rl.chain_specs(lim, family)
    assert specs[0] == MARK
    lines += ["-A %s %s" % (lim.chain_name, s) for s in (specs[1:] if legacy else specs)]
    return "\n".join(lines) + "\n" + extra + "COMMIT\n"


def after(current, plan):
    """The Ruleset once ``plan`` is applied to ``current`` (filter only)."""
    return Ruleset((plan.table_after(current.table("filter")),))


def test_fresh_install_creates_chain_and_jump():
    lim = limit(log_prefix="SSH ")
    plan = plan_changes(parse_save(EMPTY), rl.desired(lim, "ipv4", parse_save(EMPTY)), "ipv4")
    assert plan.script.splitlines() == [
        "*filter",
        ":RATELIMIT_SSH - [0:0]",
        "-A RATELIMIT_SSH " + MARK,
        "-A RATELIMIT_SSH -m recent --set --name ssh --mask 255.255.255.255 --rsource",
        "-A RATELIMIT_SSH -m recent --rcheck --seconds 60 --hitcount 4 --rttl --name ssh --mask 255.255.255.255 "
        '--rsource -j LOG --log-prefix "SSH "',
        "-A RATELIMIT_SSH -m recent --rcheck --seconds 60 --hitcount 4 --rttl --name ssh --mask 255.255.255.255 "
        "--rsource -j DROP",
        "-A RATELIMIT_SSH -j ACCEPT",
        "-I INPUT 1 " + JUMP,
        "COMMIT",
    ]


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_converged_is_unchanged(family):
    lim = limit(log_prefix="SSH_brute_force ", exempt_sources=["198.51.100.7", "2001:db8::7"])
    current = parse_save(live(lim, family))
    assert not plan_changes(current, rl.desired(lim, family, current), family).changed


def test_changing_hitcount_replaces_the_chain_only():
    old = limit(hitcount=4)
    current = parse_save(live(old))
    new = limit(hitcount=6)
    plan = plan_changes(current, rl.desired(new, "ipv4", current), "ipv4")
    script = plan.script.splitlines()
    # the whole chain, marker first; the jump is unchanged
    assert script == ["*filter", ":RATELIMIT_SSH - [0:0]", "-A RATELIMIT_SSH " + MARK,
                      "-A RATELIMIT_SSH -m recent --set --name ssh --mask 255.255.255.255 --rsource",
                      "-A RATELIMIT_SSH -m recent --rcheck --seconds 60 --hitcount 6 --rttl --name ssh --mask "
                      "255.255.255.255 --rsource -j DROP",
                      "-A RATELIMIT_SSH -j ACCEPT", "COMMIT"]
    before, after = plan.diff()
    assert "--hitcount 4" in before and "--hitcount 6" in after and "--hitcount 4" not in after


def test_changing_port_replaces_the_jump_in_place():
    old = limit()
    current = parse_save(live(old))
    plan = plan_changes(current, rl.desired(limit(ports=["2222"]), "ipv4", current), "ipv4")
    script = plan.script.splitlines()
    assert "-D INPUT " + JUMP in script
    assert "-I INPUT 2 " + JUMP.replace("--dport 22", "--dport 2222") in script
    assert not any(line.startswith(":RATELIMIT") for line in script)


def test_renamed_chain_drops_the_old_one_after_the_jump_moves():
    old = limit()
    current = parse_save(live(old))
    plan = plan_changes(current, rl.desired(limit(chain_name="SSH_LIMIT"), "ipv4", current), "ipv4")
    script = plan.script.splitlines()
    assert ":SSH_LIMIT - [0:0]" in script and "-A SSH_LIMIT " + MARK in script
    assert script.index("-D INPUT " + JUMP) < script.index("-F RATELIMIT_SSH") < script.index("-X RATELIMIT_SSH")


def test_absent_removes_jump_and_chain_and_keeps_foreign_rules():
    lim = limit()
    current = parse_save(live(lim))
    absent = rl.validate(dict(name="ssh", state="absent"))
    plan = plan_changes(current, rl.desired(absent, "ipv4", current), "ipv4")
    assert plan.script.splitlines() == ["*filter", "-D INPUT " + JUMP, "-F RATELIMIT_SSH", "-X RATELIMIT_SSH",
                                        "COMMIT"]


def test_absent_finds_a_custom_chain_through_the_tagged_jump():
    lim = limit(chain_name="SSH_LIMIT")
    current = parse_save(live(lim))
    absent = rl.validate(dict(name="ssh", state="absent"))  # chain_name not repeated
    plan = plan_changes(current, rl.desired(absent, "ipv4", current), "ipv4")
    assert "-X SSH_LIMIT" in plan.script.splitlines()


def test_absent_on_a_clean_ruleset_is_unchanged():
    absent = rl.validate(dict(name="ssh", state="absent"))
    current = parse_save(EMPTY)
    assert not plan_changes(current, rl.desired(absent, "ipv4", current), "ipv4").changed


def test_priority_orders_the_jump_among_tagged_rules():
    text = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            '-A INPUT -i lo -m comment --comment "ironwall:010:rule:lo" -j ACCEPT\n'
            '-A INPUT -p tcp -m tcp --dport 80 -m comment --comment "ironwall:500:rule:web" -j ACCEPT\n'
            "COMMIT\n")
    current = parse_save(text)
    plan = plan_changes(current, rl.desired(limit(), "ipv4", current), "ipv4")
    assert "-I INPUT 2 " + JUMP in plan.script.splitlines()


def test_reject_with_in_one_familys_words_is_translated_like_iptables_rule():
    # one meaning of reject_with in every module (_rulespec.reject_for)
    got = limit(action="REJECT", reject_with="icmp-host-prohibited")
    assert got.reject_with == "icmp-host-prohibited"
    assert "--reject-with icmp6-adm-prohibited" in rl.chain_specs(got, "ipv6")[-2]
    assert "--reject-with icmp-host-prohibited" in rl.chain_specs(got, "ipv4")[-2]


# --- ownership: a chain that exists and is not ours is never filled, flushed or deleted ---

FAIL2BAN = ("f2b-sshd", ("-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd",),
            ("-A f2b-sshd -s 203.0.113.50/32 -j REJECT --reject-with icmp-port-unreachable", "-A f2b-sshd -j RETURN"))
DOCKER = ("DOCKER-USER", ("-A FORWARD -j DOCKER-USER",), ("-A DOCKER-USER -j RETURN",))
ADMIN = ("ADMIN_SSH", (), ())
# An admin's hand-made rate limit from a howto, under the name the module would derive: its
# untagged jump does not make it ours.
HOWTO = ("RATELIMIT_SSH", ("-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -j RATELIMIT_SSH",),
         ("-A RATELIMIT_SSH -m recent --set --name ssh --mask 255.255.255.255 --rsource",
          "-A RATELIMIT_SSH -m recent --update --seconds 60 --hitcount 4 --name ssh --mask 255.255.255.255 "
          "--rsource -j DROP"))


def foreign_save(chain, jumps, rules):
    return "\n".join(["*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]",
                      ":%s - [0:0]" % chain, "-A INPUT -i lo -j ACCEPT"] + list(jumps) + list(rules)
                     + ["COMMIT"]) + "\n"


def assert_refused(current, desired, chain):
    with pytest.raises(PlanError) as err:
        plan_changes(current, desired, "ipv4")
    assert err.value.option == "chain_name"
    assert str(err.value).startswith("chain_name: ") and repr(chain) in str(err.value)


@pytest.mark.parametrize("state", ["present", "absent"])
@pytest.mark.parametrize("foreign", [FAIL2BAN, DOCKER, ADMIN, HOWTO], ids=lambda f: f[0])
def test_chain_name_of_a_foreign_chain_is_refused(foreign, state):
    current = parse_save(foreign_save(*foreign))
    assert_refused(current, rl.desired(limit(chain_name=foreign[0], state=state), "ipv4", current), foreign[0])


@pytest.mark.parametrize("state", ["present", "absent"])
def test_derived_chain_name_of_a_foreign_chain_is_refused(state):
    current = parse_save(foreign_save(*HOWTO))
    lim = limit(state=state)
    assert lim.chain_name == "RATELIMIT_SSH"
    assert_refused(current, rl.desired(lim, "ipv4", current), "RATELIMIT_SSH")


@pytest.mark.parametrize("first_rule", [
    '-m comment --comment "ironwall:chain:ratelimit:smtp"',       # another rate limit's chain
    '-m comment --comment "ironwall:chain:whitelist:ssh"',        # a whitelist's, same name
    '-j LOG --log-prefix "ironwall:chain:ratelimit:ssh"',         # the text, in a LOG prefix
    '-m comment --comment "ironwall:chain:ratelimit:ssh copy"',   # the text, inside a longer comment
    '-m comment --comment "ironwall:chain:ratelimit:ssh" -j RETURN',  # a comment on a rule that acts
])
def test_chain_whose_first_rule_is_not_our_marker_is_refused(first_rule):
    current = parse_save(foreign_save("RATELIMIT_SSH", (), ("-A RATELIMIT_SSH " + first_rule,
                                                            "-A RATELIMIT_SSH -j ACCEPT")))
    for state in ("present", "absent"):
        assert_refused(current, rl.desired(limit(state=state), "ipv4", current), "RATELIMIT_SSH")


def test_tagged_jump_of_another_resource_does_not_adopt_a_chain():
    # An iptables_rule of ours jumps to the admin's chain: it is still the admin's.
    jump = ('-A INPUT -p tcp -m tcp --dport 22 -m comment --comment "ironwall:100:rule:to-limit" '
            '-j RATELIMIT_SSH')
    current = parse_save(foreign_save("RATELIMIT_SSH", (jump,), HOWTO[2]))
    assert_refused(current, rl.desired(limit(), "ipv4", current), "RATELIMIT_SSH")


def test_a_chain_with_our_marker_is_ours_whatever_its_rules():
    # Someone appended to our chain: we replace it whole, marker first.
    lim = limit()
    current = parse_save(live(lim, extra="-A RATELIMIT_SSH -s 203.0.113.9/32 -j DROP\n"))
    plan = plan_changes(current, rl.desired(lim, "ipv4", current), "ipv4")
    assert plan.script.splitlines() == (["*filter", ":RATELIMIT_SSH - [0:0]"]
                                        + ["-A RATELIMIT_SSH " + s for s in rl.chain_specs(lim, "ipv4")]
                                        + ["COMMIT"])


@pytest.mark.parametrize("kw", [{}, dict(chain_name="SSH_LIMIT"), dict(exempt_sources=["198.51.100.7"])])
def test_legacy_chain_with_our_tagged_jump_is_adopted_and_marked(kw):
    lim = limit(**kw)
    current = parse_save(live(lim, legacy=True))
    assert current.table("filter").chain(lim.chain_name).owner is None
    plan = plan_changes(current, rl.desired(lim, "ipv4", current), "ipv4")
    assert plan.script.splitlines() == (["*filter", ":%s - [0:0]" % lim.chain_name, "-A %s %s" % (lim.chain_name, MARK)]
                                        + ["-A %s %s" % (lim.chain_name, s) for s in rl.chain_specs(lim, "ipv4")[1:]]
                                        + ["COMMIT"])
    now = after(current, plan)
    assert now.table("filter").chain(lim.chain_name).owner == ("ratelimit", "ssh")
    assert now.table("filter").chain("INPUT").specs == ("-s 198.51.100.9/32 -j ACCEPT", rl.jump_spec(lim, "ipv4"))
    assert not plan_changes(now, rl.desired(lim, "ipv4", now), "ipv4").changed


def test_legacy_chain_with_our_tagged_jump_is_removed_by_absent():
    current = parse_save(live(limit(chain_name="SSH_LIMIT"), legacy=True))
    absent = rl.validate(dict(name="ssh", state="absent"))
    plan = plan_changes(current, rl.desired(absent, "ipv4", current), "ipv4")
    assert plan.script.splitlines() == ["*filter", "-D INPUT " + JUMP.replace("RATELIMIT_SSH", "SSH_LIMIT"),
                                        "-F SSH_LIMIT", "-X SSH_LIMIT", "COMMIT"]
    now = after(current, plan)
    assert now.table("filter").chain_names == ("INPUT", "FORWARD", "OUTPUT")
    assert not plan_changes(now, rl.desired(absent, "ipv4", now), "ipv4").changed


def test_legacy_chain_renamed_is_dropped_after_the_jump_moves():
    current = parse_save(live(limit(), legacy=True))
    new = limit(chain_name="SSH_LIMIT")
    plan = plan_changes(current, rl.desired(new, "ipv4", current), "ipv4")
    script = plan.script.splitlines()
    assert script.index("-D INPUT " + JUMP) < script.index("-F RATELIMIT_SSH") < script.index("-X RATELIMIT_SSH")
    now = after(current, plan)
    assert now.table("filter").chain("RATELIMIT_SSH") is None
    assert now.table("filter").chain("SSH_LIMIT").specs == rl.chain_specs(new, "ipv4")
    assert not plan_changes(now, rl.desired(new, "ipv4", now), "ipv4").changed
