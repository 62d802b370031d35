# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bad-input corpus: arguments every module must refuse, naming the option, before anything runs.

Data only (no Ansible import), shared by
- tests/unit/plugins/modules/test_bad_inputs.py: each case through the module's main() against a
  fake host that answers ``*-save`` with BASELINE; it must fail naming the option and run no
  ``*-restore`` at all (not even ``--test``);
- tests/integration/test_bad_inputs.py: the whole corpus in one network namespace holding
  BASELINE, on real iptables (nft and legacy); each case must fail naming the option, run no
  ``*-restore`` and leave both families byte-identical.

``CASES`` is a list of Case(id, module, args, option, cls):
  module  the module's short name (``iptables_rule``)
  args    the module arguments
  option  the option the failure message must name, exactly as a word of the message
          (``rules[1].comment``: an item of the ``rules`` list); a tuple accepts any of them
  cls     the class of bad input (for reports: fix the class, not the example)
``GOOD`` holds the boundary cases that must still pass (the other side of each limit).

Issue 12 lists the classes. Free text limits are bytes, not characters (comment 255 bytes
with the ownership tag ``ironwall:<prio>:rule:<name> `` in front, LOG prefix 29 bytes);
control characters, every line-break character ``str.splitlines()`` knows among them, are
refused in every text option.
"""

from __future__ import annotations

import collections
import re

Case = collections.namedtuple("Case", "id module args option cls")

# Every character str.splitlines() breaks on, plus NUL, TAB, ESC, DEL and a C1 control (CSI).
# Named for test ids.
CONTROL_CHARS = (
    ("lf", "\n"), ("cr", "\r"), ("vt", "\v"), ("ff", "\f"), ("fs", "\x1c"), ("gs", "\x1d"), ("rs", "\x1e"),
    ("nel", "\x85"), ("ls", "\u2028"), ("ps", "\u2029"), ("nul", "\x00"), ("tab", "\t"), ("esc", "\x1b"),
    ("del", "\x7f"), ("csi", "\x9b"),
)
E_ACUTE = "\u00e9"      # 2 bytes in UTF-8
E_ACUTE_CAP = "\u00c9"  # 2 bytes in UTF-8
SUPERSCRIPT_TWO = "\u00b2"  # "\u00b2".isdigit() is True, int("\u00b2") raises

# The ruleset both families hold before every case (iptables-save form, all five tables, so a
# reload restores everything): tagged and untagged rules, and foreign chains the collection
# does not own - fail2ban's f2b-sshd, Docker's DOCKER-USER, an admin's unreferenced ADMIN_CHAIN
# and a RATELIMIT_FOREIGN that only looks like iptables_ratelimit's.
_BASELINE = """*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -s {net} -p udp -m udp --dport 123 -j CT --notrack
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s {docker} ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
COMMIT
*security
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:ADMIN_CHAIN - [0:0]
:APP_IN - [0:0]
:DOCKER-USER - [0:0]
:RATELIMIT_FOREIGN - [0:0]
:f2b-sshd - [0:0]
-A INPUT -i lo -m comment --comment "ironwall:100:rule:loopback" -j ACCEPT
-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT {icmp} -j ACCEPT
-A INPUT -s {admins} -p tcp -m tcp --dport 8080 -m comment --comment "admin app \\"beta\\"" -j APP_IN
-A INPUT -p tcp -m tcp --dport 2222 -m conntrack --ctstate NEW -j RATELIMIT_FOREIGN
-A INPUT -m limit --limit 3/min -j LOG --log-prefix "INPUT drop: " --log-level 6
-A FORWARD -j DOCKER-USER
-A ADMIN_CHAIN -s {admin} -j ACCEPT
-A APP_IN -j ACCEPT
-A DOCKER-USER -j RETURN
-A RATELIMIT_FOREIGN -m recent --set --name {recent} --mask {mask} --rsource
-A RATELIMIT_FOREIGN -m recent --rcheck --seconds 60 --hitcount 4 --name {recent} --mask {mask} --rsource -j DROP
-A f2b-sshd -s {banned} -j REJECT --reject-with {reject}
-A f2b-sshd -j RETURN
COMMIT
"""
BASELINE = {
    "ipv4": _BASELINE.format(
        net="203.0.113.0/24", docker="203.0.113.0/24", icmp="-p icmp -m icmp --icmp-type 8",
        admins="198.51.100.0/24", admin="203.0.113.9/32", recent="foreign", mask="255.255.255.255",
        banned="203.0.113.66/32", reject="icmp-port-unreachable"),
    "ipv6": _BASELINE.format(
        net="2001:db8:7::/48", docker="2001:db8:d0c::/64", icmp="-p ipv6-icmp -m icmp6 --icmpv6-type 128",
        admins="2001:db8:100::/64", admin="2001:db8::9/128", recent="foreign_v6",
        mask="ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", banned="2001:db8::66/128", reject="icmp6-port-unreachable"),
}
FOREIGN_CHAINS = ("ADMIN_CHAIN", "APP_IN", "DOCKER-USER", "RATELIMIT_FOREIGN", "f2b-sshd")

CASES = []
_IDS = set()


def _add(cls, module, label, args, option):
    case_id = "%s:%s" % (module[len("iptables_"):], label)
    if case_id in _IDS:
        raise AssertionError("duplicate case id %s" % case_id)
    _IDS.add(case_id)
    CASES.append(Case(case_id, module, args, option, cls))


# Ansible-core's own conversion of a list item to a dictionary fails with "dictionary requested,
# could not parse JSON or key=value" before any module code runs and without naming the option;
# such a case asserts the failure and that nothing changed, and the message Ansible gives.
ANSIBLE_DICT_ERROR = "dictionary requested"


def names_option(msg, option):
    """True when ``msg`` names ``option`` (or one of a tuple of them) as a word of its own:
    ``name`` is not named by ``chain_name`` nor by ``rules[0].name``, and ``rules[1].comment``
    only by exactly that."""
    options = option if isinstance(option, tuple) else (option,)
    if options == (ANSIBLE_DICT_ERROR,):
        return ANSIBLE_DICT_ERROR in (msg or "")
    for opt in options:
        if re.search(r"(?<![\w.\]\[])" + re.escape(opt) + r"(?![\w\[])", msg or ""):
            return True
    return False


def _ports(n, start=1000):
    return [str(p) for p in range(start, start + n)]


# --------------------------------------------------------------------------- control characters
# One slot per text option: (module, label, args with a placeholder from _t(), option).
# Identifiers, addresses and keywords get the character at the END (what strip() or a regex's
# "$" lets through); free text (comment, log prefix, keep pattern) in the middle.
def _fill(value, ch):
    if isinstance(value, str) and "\0CH\0" in value:
        return value.replace("\0CH\0", ch)
    if isinstance(value, list):
        return [_fill(v, ch) for v in value]
    if isinstance(value, dict):
        return dict((_fill(k, ch), _fill(v, ch)) for k, v in value.items())
    return value


def _t(text):
    """``text`` with the control character appended; ``a|b`` puts it between a and b."""
    if "|" in text:
        return text.replace("|", "\0CH\0")
    return text + "\0CH\0"


# iptables_rule: the options of one rule, checked in the single form and as rules[1] of the list.
_RULE_TEXT = (
    ("name", {"name": _t("bad"), "jump": "ACCEPT"}),
    ("chain", {"name": "bad", "chain": _t("INPUT"), "jump": "ACCEPT"}),
    ("jump", {"name": "bad", "jump": _t("ACCEPT")}),
    ("comment", {"name": "bad", "jump": "ACCEPT", "comment": _t("a|b")}),
    ("log_prefix", {"name": "bad", "jump": "LOG", "log_prefix": _t("a|b")}),
    ("log_level", {"name": "bad", "jump": "LOG", "log_level": _t("info")}),
    ("in_interface", {"name": "bad", "in_interface": _t("eth0"), "jump": "ACCEPT"}),
    ("out_interface", {"name": "bad", "chain": "FORWARD", "out_interface": _t("eth0"), "jump": "ACCEPT"}),
    ("protocol", {"name": "bad", "protocol": _t("tcp"), "jump": "ACCEPT"}),
    ("source", {"name": "bad", "source": [_t("198.51.100.7")], "jump": "ACCEPT"}),
    ("destination", {"name": "bad", "destination": [_t("2001:db8::7")], "jump": "ACCEPT"}),
    ("dports", {"name": "bad", "protocol": "tcp", "dports": [_t("80")], "jump": "ACCEPT"}),
    ("sports", {"name": "bad", "protocol": "udp", "sports": [_t("1000:2000")], "jump": "ACCEPT"}),
    ("ctstate", {"name": "bad", "ctstate": [_t("NEW")], "jump": "ACCEPT"}),
    ("icmp_type", {"name": "bad", "protocol": "icmp", "icmp_type": _t("echo-request"), "jump": "ACCEPT"}),
    ("reject_with", {"name": "bad", "jump": "REJECT", "reject_with": _t("icmp-port-unreachable")}),
    # issue 14: a raw line, a NAT address, an address range, an NFLOG prefix
    ("raw", {"name": "bad", "raw": _t("-m mark --mark 1"), "jump": "ACCEPT"}),
    ("to_destination", {"name": "bad", "table": "nat", "chain": "PREROUTING", "protocol": "tcp", "dports": [8080],
                        "jump": "DNAT", "to_destination": _t("198.51.100.9:80")}),
    ("src_range", {"name": "bad", "src_range": _t("198.51.100.1-198.51.100.9"), "jump": "ACCEPT"}),
    ("nflog_prefix", {"name": "bad", "jump": "NFLOG", "nflog_prefix": _t("a|b")}),
)
_OK_ITEM = {"name": "ok", "jump": "ACCEPT"}

_TEXT_SLOTS = []
for _opt, _args in _RULE_TEXT:
    _TEXT_SLOTS.append(("iptables_rule", _opt, _args, _opt))
    _TEXT_SLOTS.append(("iptables_rule", "rules[1]." + _opt, {"rules": [_OK_ITEM, _args]}, "rules[1]." + _opt))
_TEXT_SLOTS += [
    ("iptables_rule", "rules.chain", {"chain": _t("INPUT"), "rules": [_OK_ITEM]}, "chain"),
    ("iptables_rule", "exclusive_prefix", {"exclusive_prefix": _t("open-"), "rules": [
        {"name": "open-http", "protocol": "tcp", "dports": [80], "jump": "ACCEPT"}]}, "exclusive_prefix"),
    ("iptables_whitelist", "name", {"name": _t("WL_BAD"), "ports": ["3306"]}, "name"),
    ("iptables_whitelist", "sources", {"name": "WL_BAD", "ports": ["3306"], "sources": [_t("198.51.100.7")]},
     "sources"),
    ("iptables_whitelist", "sources6", {"name": "WL_BAD", "ports": ["3306"], "sources": [_t("2001:db8::7")]},
     "sources"),
    ("iptables_whitelist", "ports", {"name": "WL_BAD", "ports": [_t("3306")]}, "ports"),
    ("iptables_whitelist", "protocol", {"name": "WL_BAD", "ports": ["3306"], "protocol": _t("tcp")}, "protocol"),
    ("iptables_whitelist", "chain", {"name": "WL_BAD", "ports": ["3306"], "chain": _t("INPUT")}, "chain"),
    ("iptables_whitelist", "ctstate", {"name": "WL_BAD", "ports": ["3306"], "ctstate": [_t("NEW")]}, "ctstate"),
    ("iptables_ratelimit", "name", {"name": _t("bad")}, "name"),
    ("iptables_ratelimit", "chain", {"name": "bad", "chain": _t("INPUT")}, "chain"),
    ("iptables_ratelimit", "chain_name", {"name": "bad", "chain_name": _t("RL_BAD")}, "chain_name"),
    ("iptables_ratelimit", "ports", {"name": "bad", "ports": [_t("22")]}, "ports"),
    ("iptables_ratelimit", "reject_with", {"name": "bad", "action": "REJECT", "reject_with": _t("tcp-reset")},
     "reject_with"),
    ("iptables_ratelimit", "log_prefix", {"name": "bad", "log_prefix": _t("a|b")}, "log_prefix"),
    ("iptables_ratelimit", "log_level", {"name": "bad", "log_prefix": "x", "log_level": _t("info")}, "log_level"),
    ("iptables_ratelimit", "log_limit", {"name": "bad", "log_prefix": "x", "log_limit": _t("3/minute")},
     "log_limit"),
    ("iptables_ratelimit", "exempt_sources", {"name": "bad", "exempt_sources": [_t("198.51.100.7")]},
     "exempt_sources"),
    ("iptables_policy", "chain", {"chain": _t("INPUT"), "policy": "DROP"}, "chain"),
    ("iptables_policy", "policies.key", {"policies": {_t("INPUT"): "DROP"}}, "policies"),
    ("iptables_policy", "policies.value", {"policies": {"INPUT": _t("DROP")}}, "policies"),
    ("iptables_policy", "keep", {"chain": "INPUT", "purge": True, "keep": [_t("f2b-|sshd")]}, "keep"),
]
for _module, _label, _args, _option in _TEXT_SLOTS:
    for _cname, _ch in CONTROL_CHARS:
        _add("control character in a text option", _module, "%s:%s" % (_label, _cname), _fill(_args, _ch), _option)

# Options with fixed choices: a trailing newline is not the choice.
for _module, _label, _args, _option in (
    ("iptables_rule", "table", {"name": "bad", "table": "filter\n", "jump": "ACCEPT"}, "table"),
    ("iptables_rule", "state", {"name": "bad", "state": "present\n", "jump": "ACCEPT"}, "state"),
    ("iptables_rule", "state_match", {"name": "bad", "state_match": "state\n", "jump": "ACCEPT"}, "state_match"),
    ("iptables_rule", "ip_version", {"name": "bad", "ip_version": "ipv4\n", "jump": "ACCEPT"}, "ip_version"),
    ("iptables_rule", "rules[1].table",
     {"rules": [_OK_ITEM, {"name": "bad", "table": "filter\n", "jump": "ACCEPT"}]}, ("rules[1].table", "table")),
    ("iptables_whitelist", "fallback", {"name": "WL_BAD", "ports": ["3306"], "fallback": "DROP\n"}, "fallback"),
    ("iptables_whitelist", "state_match", {"name": "WL_BAD", "ports": ["3306"], "state_match": "state\n"},
     "state_match"),
    ("iptables_ratelimit", "protocol", {"name": "bad", "protocol": "tcp\n"}, "protocol"),
    ("iptables_ratelimit", "action", {"name": "bad", "action": "DROP\n"}, "action"),
    ("iptables_policy", "policy", {"chain": "INPUT", "policy": "DROP\n"}, "policy"),
    ("iptables_policy", "table", {"chain": "INPUT", "policy": "DROP", "table": "filter\n"}, "table"),
    ("iptables_info", "table", {"table": "filter\n"}, "table"),
    ("iptables_info", "ip_version", {"ip_version": "both\n"}, "ip_version"),
):
    _add("trailing newline in a choice", _module, "%s:lf" % _label, _args, _option)


# --------------------------------------------------------------------------- bytes, not characters
_TAG_RULE_A = len("ironwall:500:rule:a ")  # 20 bytes before the free text of rule "a"
for _module, _label, _args, _option in (
    ("iptables_rule", "comment-200-e-acute", {"name": "a", "jump": "ACCEPT", "comment": E_ACUTE * 200}, "comment"),
    ("iptables_rule", "comment-256-bytes", {"name": "a", "jump": "ACCEPT",
                                            "comment": E_ACUTE * ((255 - _TAG_RULE_A + 1) // 2)}, "comment"),
    ("iptables_rule", "comment-256-bytes-odd", {"name": "ab", "jump": "ACCEPT",
                                                "comment": E_ACUTE * 117 + "x"}, "comment"),
    ("iptables_rule", "comment-ascii-too-long", {"name": "a", "jump": "ACCEPT",
                                                 "comment": "c" * (255 - _TAG_RULE_A + 1)}, "comment"),
    ("iptables_rule", "comment-long-name-leaves-less", {"name": "n" * 64, "jump": "ACCEPT",
                                                        "comment": "c" * (255 - len("ironwall:500:rule: ") - 64 + 1)},
     "comment"),
    ("iptables_rule", "log_prefix-21-e-acute", {"name": "a", "jump": "LOG", "log_prefix": E_ACUTE * 21}, "log_prefix"),
    ("iptables_rule", "log_prefix-30-bytes", {"name": "a", "jump": "LOG", "log_prefix": E_ACUTE * 15}, "log_prefix"),
    ("iptables_rule", "log_prefix-30-bytes-odd", {"name": "a", "jump": "LOG", "log_prefix": "x" + E_ACUTE * 14 + "y"},
     "log_prefix"),
    ("iptables_rule", "log_prefix-ascii-30", {"name": "a", "jump": "LOG", "log_prefix": "p" * 30}, "log_prefix"),
    ("iptables_rule", "rules[1].comment-200-e-acute", {"rules": [_OK_ITEM, {"name": "a", "jump": "ACCEPT",
                                                                            "comment": E_ACUTE * 200}]},
     "rules[1].comment"),
    ("iptables_rule", "rules[1].log_prefix-21-e-acute", {"rules": [_OK_ITEM, {"name": "a", "jump": "LOG",
                                                                              "log_prefix": E_ACUTE * 21}]},
     "rules[1].log_prefix"),
    ("iptables_rule", "in_interface-16-bytes", {"name": "a", "in_interface": E_ACUTE * 8, "jump": "ACCEPT"},
     "in_interface"),
    ("iptables_rule", "jump-chain-30-bytes", {"name": "a", "jump": E_ACUTE_CAP * 15}, "jump"),
    ("iptables_ratelimit", "log_prefix-21-e-acute", {"name": "bad", "log_prefix": E_ACUTE * 21}, "log_prefix"),
    ("iptables_ratelimit", "log_prefix-30-bytes", {"name": "bad", "log_prefix": E_ACUTE * 15}, "log_prefix"),
    ("iptables_ratelimit", "chain_name-30-bytes", {"name": "bad", "chain_name": E_ACUTE_CAP * 15}, "chain_name"),
    ("iptables_whitelist", "name-30-bytes", {"name": E_ACUTE_CAP * 15, "ports": ["3306"]}, "name"),
):
    _add("byte limit (bytes, not characters)", _module, _label, _args, _option)


# --------------------------------------------------------------------------- iptables_rule
_R = "iptables_rule"


def _rule(**kw):
    args = {"name": "bad", "jump": "ACCEPT"}
    args.update(kw)
    return args


for _label, _args, _option in (
    ("bogus", _rule(protocol="bogus"), "protocol"),
    ("superscript-two", _rule(protocol=SUPERSCRIPT_TWO), "protocol"),
    ("256", _rule(protocol="256"), "protocol"),
    ("negative", _rule(protocol="-1"), "protocol"),
    ("two-words", _rule(protocol="tcp udp"), "protocol"),
    ("negated-all", _rule(protocol="!all"), "protocol"),
    ("empty", _rule(protocol=""), "protocol"),
    ("rules[1]-bogus", {"rules": [_OK_ITEM, _rule(protocol="bogus")]}, "rules[1].protocol"),
    ("rules[1]-superscript-two", {"rules": [_OK_ITEM, _rule(protocol=SUPERSCRIPT_TWO)]}, "rules[1].protocol"),
):
    _add("protocol", _R, "protocol-" + _label, _args, _option)

_ICMP = dict(protocol="icmp")
for _label, _args, _option in (
    ("leading-zero-08", _rule(icmp_type="08", **_ICMP), "icmp_type"),
    ("leading-zero-03/04", _rule(icmp_type="03/04", **_ICMP), "icmp_type"),
    ("256", _rule(icmp_type="256", **_ICMP), "icmp_type"),
    ("code-256", _rule(icmp_type="3/256", **_ICMP), "icmp_type"),
    ("bogus", _rule(icmp_type="bogus", **_ICMP), "icmp_type"),
    ("superscript-two", _rule(icmp_type=SUPERSCRIPT_TWO, **_ICMP), "icmp_type"),
    ("trailing-slash", _rule(icmp_type="8/", **_ICMP), "icmp_type"),
    ("negative", _rule(icmp_type="-1", **_ICMP), "icmp_type"),
    ("bool", _rule(icmp_type=True, **_ICMP), "icmp_type"),
    ("list", _rule(icmp_type=[8], **_ICMP), "icmp_type"),
    ("without-protocol", _rule(icmp_type="echo-request"), "icmp_type"),
    ("with-tcp", _rule(icmp_type="echo-request", protocol="tcp"), "icmp_type"),
    ("ipv4-only-name-on-both", _rule(icmp_type="timestamp-request", **_ICMP), "icmp_type"),
    ("ipv6-only-name-on-ipv4", _rule(icmp_type="neighbour-solicitation", ip_version="ipv4", **_ICMP), "icmp_type"),
    ("rules[1]-leading-zero", {"rules": [_OK_ITEM, _rule(icmp_type="08", **_ICMP)]}, "rules[1].icmp_type"),
):
    _add("icmp_type", _R, "icmp_type-" + _label, _args, _option)

_LOG = dict(jump="LOG")
for _label, _args, _option in (
    ("superscript-two", _rule(log_level=SUPERSCRIPT_TWO, **_LOG), "log_level"),
    ("8", _rule(log_level="8", **_LOG), "log_level"),
    ("int-8", _rule(log_level=8, **_LOG), "log_level"),
    ("negative", _rule(log_level=-1, **_LOG), "log_level"),
    ("bogus", _rule(log_level="loud", **_LOG), "log_level"),
    ("float", _rule(log_level="4.5", **_LOG), "log_level"),
    ("bool", _rule(log_level=True, **_LOG), "log_level"),
    ("without-LOG", _rule(log_level="info"), "log_level"),
    ("rules[1]-superscript-two", {"rules": [_OK_ITEM, _rule(log_level=SUPERSCRIPT_TWO, **_LOG)]},
     "rules[1].log_level"),
):
    _add("log_level", _R, "log_level-" + _label, _args, _option)

_TCP = dict(protocol="tcp")
for _label, _args, _option in (
    ("dports-0", _rule(dports=[0], **_TCP), "dports"),
    ("dports-65536", _rule(dports=[65536], **_TCP), "dports"),
    ("dports-reversed", _rule(dports=["2000:1000"], **_TCP), "dports"),
    ("dports-range-from-0", _rule(dports=["0:100"], **_TCP), "dports"),
    ("dports-range-to-65536", _rule(dports=["1:65536"], **_TCP), "dports"),
    ("dports-16", _rule(dports=_ports(16), **_TCP), "dports"),
    ("dports-14-and-a-range", _rule(dports=_ports(14) + ["2000:3000"], **_TCP), "dports"),
    ("dports-abc", _rule(dports=["abc"], **_TCP), "dports"),
    ("dports-negative", _rule(dports=[-1], **_TCP), "dports"),
    ("dports-comma-string", _rule(dports=["80,443"], **_TCP), "dports"),
    ("dports-empty-string", _rule(dports=[""], **_TCP), "dports"),
    ("dports-bool", _rule(dports=[True], **_TCP), "dports"),
    ("dports-float", _rule(dports=[22.5], **_TCP), "dports"),
    ("dports-superscript-two", _rule(dports=[SUPERSCRIPT_TWO], **_TCP), "dports"),
    ("dports-without-protocol", _rule(dports=[80]), "dports"),
    ("dports-with-icmp", _rule(dports=[80], protocol="icmp"), "dports"),
    ("sports-0", _rule(sports=[0], **_TCP), "sports"),
    ("sports-65536", _rule(sports=[65536], **_TCP), "sports"),
    ("sports-reversed", _rule(sports=["3000:2000"], **_TCP), "sports"),
    ("sports-16", _rule(sports=_ports(16), **_TCP), "sports"),
    ("rules[1]-dports-65536", {"rules": [_OK_ITEM, _rule(dports=[65536], **_TCP)]}, "rules[1].dports"),
    ("rules[1]-dports-16", {"rules": [_OK_ITEM, _rule(dports=_ports(16), **_TCP)]}, "rules[1].dports"),
    ("rules[1]-sports-reversed", {"rules": [_OK_ITEM, _rule(sports=["3000:2000"], **_TCP)]}, "rules[1].sports"),
):
    _add("port", _R, _label, _args, _option)

for _label, _args, _option in (
    ("source-prefix-33", _rule(source=["198.51.100.0/33"]), "source"),
    ("source-octet-256", _rule(source=["198.51.100.256"]), "source"),
    ("source-prefix-129", _rule(source=["2001:db8::/129"]), "source"),
    ("source-three-octets", _rule(source=["198.51.100"]), "source"),
    ("source-scope-id", _rule(source=["2001:db8::1%eth0"]), "source"),
    ("source-double-prefix", _rule(source=["198.51.100.0/24/1"]), "source"),
    ("source-empty", _rule(source=[""]), "source"),
    ("source-hostname", _rule(source=["host.example"]), "source"),
    ("source-negated-two", _rule(source=["!198.51.100.1", "198.51.100.2"]), "source"),
    ("source-range", _rule(source=["198.51.100.1-198.51.100.5"]), "source"),
    ("source-negative-prefix", _rule(source=["198.51.100.0/-1"]), "source"),
    ("source-five-octets", _rule(source=["198.51.100.1.5"]), "source"),
    ("source-triple-colon", _rule(source=["2001:db8:::1"]), "source"),
    ("destination-prefix-33", _rule(destination=["203.0.113.0/33"]), "destination"),
    ("destination-bad-hex", _rule(destination=["2001:db8::g"]), "destination"),
    ("rules[1]-source-prefix-33", {"rules": [_OK_ITEM, _rule(source=["198.51.100.0/33"])]}, "rules[1].source"),
):
    _add("address", _R, _label, _args, _option)

for _label, _args, _option in (
    ("source-ipv6-on-ipv4", _rule(source=["2001:db8::1"], ip_version="ipv4"), "source"),
    ("destination-ipv4-on-ipv6", _rule(destination=["198.51.100.1"], ip_version="ipv6"), "destination"),
    ("source-v4-destination-v6", _rule(source=["198.51.100.1"], destination=["2001:db8::1"]),
     ("destination", "source")),
    ("rules[1]-ip_version-wider-than-task", {"ip_version": "ipv4", "rules": [_OK_ITEM, _rule(ip_version="both")]},
     "rules[1].ip_version"),
    ("rules[1]-source-ipv6-on-ipv4-task", {"ip_version": "ipv4", "rules": [_OK_ITEM, _rule(source=["2001:db8::1"])]},
     "rules[1].source"),
    ("reject_with-ipv4-only-on-both", _rule(jump="REJECT", reject_with="icmp-proto-unreachable"), "reject_with"),
    ("reject_with-ipv6-only-on-ipv4", _rule(jump="REJECT", reject_with="icmp6-policy-fail", ip_version="ipv4"),
     "reject_with"),
):
    _add("family mismatch", _R, _label, _args, _option)

for _label, _args, _option in (
    ("in_interface-16-chars", _rule(in_interface="abcdefghijklmnop"), "in_interface"),
    ("in_interface-space", _rule(in_interface="eth 0"), "in_interface"),
    ("in_interface-slash", _rule(in_interface="eth0/1"), "in_interface"),
    ("in_interface-bang-only", _rule(in_interface="!"), "in_interface"),
    ("in_interface-double-bang", _rule(in_interface="!!eth0"), "in_interface"),
    ("in_interface-empty", _rule(in_interface=""), "in_interface"),
    ("in_interface-non-ascii", _rule(in_interface=E_ACUTE + "th0"), "in_interface"),
    ("in_interface-in-OUTPUT", _rule(in_interface="eth0", chain="OUTPUT"), "in_interface"),
    ("out_interface-in-INPUT", _rule(out_interface="eth0"), "out_interface"),
    ("out_interface-16-chars", _rule(out_interface="abcdefghijklmnop", chain="FORWARD"), "out_interface"),
    ("rules[1]-in_interface-16-chars", {"rules": [_OK_ITEM, _rule(in_interface="abcdefghijklmnop")]},
     "rules[1].in_interface"),
):
    _add("interface", _R, _label, _args, _option)

for _label, _args, _option in (
    ("chain-empty", _rule(chain=""), "chain"),
    ("chain-leading-dash", _rule(chain="-INPUT"), "chain"),
    ("chain-leading-bang", _rule(chain="!INPUT"), "chain"),
    ("chain-29-chars", _rule(chain="C" * 29), "chain"),
    ("chain-space", _rule(chain="MY CHAIN"), "chain"),
    ("chain-missing", _rule(chain="MISSING_CHAIN"), "chain"),
    ("chain-PREROUTING-in-filter", _rule(chain="PREROUTING"), "chain"),
    ("chain-INPUT-in-raw", _rule(chain="INPUT", table="raw"), "chain"),
    ("jump-empty", _rule(jump=""), "jump"),
    ("jump-missing", {"name": "bad"}, "jump"),
    ("jump-missing-chain", _rule(jump="MISSING_CHAIN"), "jump"),
    ("jump-builtin-chain", _rule(jump="FORWARD"), "jump"),
    ("jump-own-chain", _rule(chain="APP_IN", jump="APP_IN"), "jump"),
    ("jump-leading-dash", _rule(jump="-DROP"), "jump"),
    ("jump-29-chars", _rule(jump="J" * 29), "jump"),
    ("jump-two-words", _rule(jump="ACCEPT DROP"), "jump"),
    ("jump-DROP-in-nat", _rule(table="nat", chain="PREROUTING", jump="DROP"), ("jump", "table")),
    ("jump-REJECT-in-nat", _rule(table="nat", chain="PREROUTING", jump="REJECT"), ("jump", "table")),
    ("jump-REJECT-in-mangle", _rule(table="mangle", chain="INPUT", jump="REJECT"), ("jump", "table")),
    ("rules[1]-chain-29-chars", {"rules": [_OK_ITEM, _rule(chain="C" * 29)]}, "rules[1].chain"),
    ("rules[1]-jump-missing-chain", {"rules": [_OK_ITEM, _rule(jump="MISSING_CHAIN")]}, "rules[1].jump"),
):
    _add("chain name / jump target", _R, _label, _args, _option)

for _label, _args, _option in (
    ("name-empty", _rule(name=""), "name"),
    ("name-65-chars", _rule(name="n" * 65), "name"),
    ("name-space", _rule(name="my rule"), "name"),
    ("name-colon", _rule(name="a:b"), "name"),
    ("name-quote", _rule(name='a"b'), "name"),
    ("name-non-ascii", _rule(name="caf" + E_ACUTE), "name"),
):
    _add("rule name", _R, _label, _args, _option)

for _label, _args, _option in (
    ("priority-negative", _rule(priority=-1), "priority"),
    ("priority-1000", _rule(priority=1000), "priority"),
    ("priority-text", _rule(priority="abc"), "priority"),
    ("priority-bool", _rule(priority=True), "priority"),
    ("priority-float", _rule(priority=1.5), "priority"),
    ("rules[1]-priority-1000", {"rules": [_OK_ITEM, _rule(priority=1000)]}, "rules[1].priority"),
    ("rules[1]-priority-text", {"rules": [_OK_ITEM, _rule(priority="abc")]}, ("rules[1].priority", "priority")),
    ("rules-top-priority-1000", {"priority": 1000, "rules": [_OK_ITEM]}, ("priority", "rules[0].priority")),
):
    _add("priority", _R, _label, _args, _option)

for _label, _args, _option in (
    ("bogus", _rule(jump="REJECT", reject_with="bogus"), "reject_with"),
    ("tcp-reset-without-tcp", _rule(jump="REJECT", reject_with="tcp-reset", protocol="udp"), "reject_with"),
    ("without-REJECT", _rule(reject_with="icmp-port-unreachable"), "reject_with"),
    ("rules[1]-bogus", {"rules": [_OK_ITEM, _rule(jump="REJECT", reject_with="bogus")]}, "rules[1].reject_with"),
):
    _add("reject_with", _R, "reject_with-" + _label, _args, _option)

for _label, _args, _option in (
    ("ctstate-bogus", _rule(ctstate=["BOGUS"]), "ctstate"),
    ("ctstate-empty-string", _rule(ctstate=[""]), "ctstate"),
    ("ctstate-SNAT-with-state", _rule(ctstate=["SNAT"], state_match="state"), "ctstate"),
    ("state_match-bogus", _rule(state_match="bogus"), "state_match"),
    ("log_prefix-without-LOG", _rule(log_prefix="x"), "log_prefix"),
    ("log_prefix-double-quote", _rule(jump="LOG", log_prefix='a"b'), "log_prefix"),
    ("state-bogus", _rule(state="gone"), "state"),
    ("table-bogus", _rule(table="bogus"), "table"),
    ("ip_version-bogus", _rule(ip_version="ipv5"), "ip_version"),
    ("wait-negative", _rule(wait=-1), "wait"),
    ("wait-text", _rule(wait="abc"), "wait"),
    ("rollback_timeout-negative", _rule(rollback_timeout=-1), "rollback_timeout"),
    ("force-not-bool", _rule(force="maybe"), "force"),
    ("unknown-option", _rule(dport=22), "dport"),
):
    _add("option value / combination", _R, _label, _args, _option)

for _label, _args, _option in (
    ("duplicate-name", {"rules": [{"name": "a", "jump": "ACCEPT"}, {"name": "a", "jump": "DROP"}]}, "rules[1].name"),
    ("duplicate-name-third", {"rules": [{"name": "a", "jump": "ACCEPT"}, {"name": "b", "jump": "ACCEPT"},
                                        {"name": "a", "jump": "DROP"}]}, "rules[2].name"),
    ("duplicate-name-other-table", {"rules": [{"name": "a", "jump": "ACCEPT"},
                                              {"name": "a", "table": "mangle", "jump": "ACCEPT"}]}, "rules[1].name"),
    # Ansible's own argument check (unknown keys, types, choices, required) runs before the module
    # code and names the option within rules ("rules.bogus", "found in rules"), not the index.
    ("unknown-key", {"rules": [_OK_ITEM, {"name": "b", "jump": "ACCEPT", "bogus": 1}]}, ("rules[1].bogus", "rules.bogus")),
    ("unknown-key-dport", {"rules": [_OK_ITEM, {"name": "b", "protocol": "tcp", "dport": 22, "jump": "ACCEPT"}]},
     ("rules[1].dport", "rules.dport")),
    ("item-not-a-dict", {"rules": [_OK_ITEM, "b"]}, ANSIBLE_DICT_ERROR),
    ("item-missing-name", {"rules": [_OK_ITEM, {"jump": "ACCEPT"}]}, ("rules[1].name", "name")),
    ("item-missing-jump", {"rules": [_OK_ITEM, {"name": "b"}]}, "rules[1].jump"),
    ("item-table-bogus", {"rules": [_OK_ITEM, {"name": "b", "table": "bogus", "jump": "ACCEPT"}]},
     ("rules[1].table", "table")),
    ("item-state-bogus", {"rules": [_OK_ITEM, {"name": "b", "state": "gone", "jump": "ACCEPT"}]},
     ("rules[1].state", "state")),
    ("item-ip_version-bogus", {"rules": [_OK_ITEM, {"name": "b", "ip_version": "ipv5", "jump": "ACCEPT"}]},
     ("rules[1].ip_version", "ip_version")),
    ("item-dports-not-a-list", {"rules": [_OK_ITEM, {"name": "b", "protocol": "tcp", "dports": {"a": 1},
                                                     "jump": "ACCEPT"}]}, ("rules[1].dports", "dports")),
    ("rule-option-at-top-level", {"jump": "DROP", "rules": [_OK_ITEM]}, "jump"),
    ("comment-at-top-level", {"comment": "x", "rules": [_OK_ITEM]}, "comment"),
    ("name-and-rules", {"name": "a", "jump": "ACCEPT", "rules": [_OK_ITEM]}, ("rules", "name")),
    ("neither-name-nor-rules", {"jump": "ACCEPT"}, ("name", "rules")),
    ("rules-not-a-list-of-dicts", {"rules": "a"}, ANSIBLE_DICT_ERROR),
    ("exclusive_prefix-without-rules", {"name": "open-a", "jump": "ACCEPT", "exclusive_prefix": "open-"},
     "exclusive_prefix"),
    ("exclusive_prefix-space", {"exclusive_prefix": "open ", "rules": [{"name": "open", "jump": "ACCEPT"}]},
     "exclusive_prefix"),
    ("exclusive_prefix-mismatch", {"exclusive_prefix": "open-", "rules": [{"name": "open-a", "jump": "ACCEPT"},
                                                                          {"name": "b", "jump": "ACCEPT"}]},
     "rules[1].name"),
):
    _add("rules list structure", _R, "rules-" + _label, _args, _option)


# --------------------------------------------------------------------------- iptables_rule: issue 14
# NAT and other targets outside their table or chain, target options without their target, ranges
# that are reversed or mix families, owner matches where no local process is known, raw lines
# iptables refuses or that try to smuggle in a second command. Every one fails naming the option,
# before any restore, on both families.
_DNAT = dict(table="nat", chain="PREROUTING", protocol="tcp", dports=[8080], jump="DNAT")
_MASQ = dict(table="nat", chain="POSTROUTING", jump="MASQUERADE")
_OUT = dict(chain="OUTPUT")
for _label, _args, _option in (
    ("jump-DNAT-in-filter", _rule(jump="DNAT", to_destination="198.51.100.9"), "jump"),
    ("jump-DNAT-in-filter-FORWARD", _rule(chain="FORWARD", protocol="tcp", dports=[80], jump="DNAT",
                                          to_destination="198.51.100.9:8080"), "jump"),
    ("jump-MASQUERADE-in-filter", _rule(chain="FORWARD", jump="MASQUERADE"), "jump"),
    ("jump-SNAT-in-mangle", _rule(table="mangle", chain="POSTROUTING", jump="SNAT", to_source="203.0.113.1"), "jump"),
    ("jump-REDIRECT-in-filter", _rule(protocol="tcp", dports=[80], jump="REDIRECT", to_ports="8080"), "jump"),
    ("jump-NETMAP-in-raw", _rule(table="raw", chain="PREROUTING", jump="NETMAP", to_network="198.51.100.0/24"),
     "jump"),
    ("jump-DNAT-in-POSTROUTING", _rule(table="nat", chain="POSTROUTING", protocol="tcp", dports=[80], jump="DNAT",
                                       to_destination="198.51.100.9"), "jump"),
    ("jump-MASQUERADE-in-PREROUTING", _rule(table="nat", chain="PREROUTING", jump="MASQUERADE"), "jump"),
    ("jump-DSCP-in-filter", _rule(jump="DSCP", set_dscp_mark=10), "jump"),
    ("jump-NOTRACK-in-filter", _rule(jump="NOTRACK"), "jump"),
    ("jump-CT-in-mangle", _rule(table="mangle", chain="PREROUTING", jump="CT", ct_zone=1), "jump"),
    ("rules[1]-jump-DNAT-in-filter", {"rules": [_OK_ITEM, _rule(jump="DNAT", to_destination="198.51.100.9")]},
     "rules[1].jump"),
):
    _add("target outside its table or chain", _R, _label, _args, _option)

for _label, _args, _option in (
    ("to_destination-without-DNAT", _rule(to_destination="198.51.100.9"), "to_destination"),
    ("to_destination-with-SNAT", _rule(table="nat", chain="POSTROUTING", jump="SNAT", to_source="203.0.113.1",
                                       to_destination="198.51.100.9"), "to_destination"),
    ("to_destination-with-MASQUERADE", _rule(to_destination="198.51.100.9", **_MASQ), "to_destination"),
    ("to_source-without-SNAT", _rule(chain="FORWARD", to_source="203.0.113.1"), "to_source"),
    ("to_ports-without-MASQUERADE", _rule(protocol="tcp", dports=[80], to_ports="8080"), "to_ports"),
    ("to_network-without-NETMAP", _rule(to_network="198.51.100.0/24"), "to_network"),
    ("set_mark-without-MARK", _rule(set_mark="0x1"), "set_mark"),
    ("nflog_group-without-NFLOG", _rule(nflog_group=5), "nflog_group"),
    ("DNAT-without-to_destination", _rule(**_DNAT), ("to_destination", "jump")),
    ("rules[1]-to_destination-without-DNAT", {"rules": [_OK_ITEM, _rule(to_destination="198.51.100.9")]},
     "rules[1].to_destination"),
):
    _add("target option without its target", _R, _label, _args, _option)

for _label, _args, _option in (
    ("src_range-reversed", _rule(src_range="198.51.100.9-198.51.100.1"), "src_range"),
    ("dst_range-reversed-v6", _rule(dst_range="2001:db8::9-2001:db8::1"), "dst_range"),
    ("src_range-mixed-family", _rule(src_range="198.51.100.1-2001:db8::9"), "src_range"),
    ("dst_range-mixed-family", _rule(dst_range="2001:db8::1-198.51.100.9"), "dst_range"),
    ("src_range-bad-address", _rule(src_range="198.51.100.1-198.51.100.256"), "src_range"),
    ("src_range-ipv6-on-ipv4", _rule(src_range="2001:db8::1-2001:db8::9", ip_version="ipv4"), "src_range"),
    ("to_ports-reversed", _rule(protocol="tcp", to_ports="90-80", **_MASQ), "to_ports"),
    ("to_ports-0", _rule(protocol="tcp", to_ports="0", **_MASQ), "to_ports"),
    ("to_ports-65536", _rule(protocol="tcp", to_ports="65536", **_MASQ), "to_ports"),
    ("to_ports-without-protocol", _rule(to_ports="8080", **_MASQ), "to_ports"),
    ("to_destination-port-range-reversed", dict(_rule(**_DNAT), to_destination="198.51.100.9:90-80"),
     "to_destination"),
    ("to_destination-port-65536", dict(_rule(**_DNAT), to_destination="198.51.100.9:65536"), "to_destination"),
    ("to_destination-two-ipv4", dict(_rule(**_DNAT), to_destination=["198.51.100.9", "198.51.100.10"]),
     "to_destination"),
    ("to_destination-hostname", dict(_rule(**_DNAT), to_destination="host.example:80"), "to_destination"),
    ("to_destination-port-without-protocol", _rule(table="nat", chain="PREROUTING", jump="DNAT",
                                                   to_destination="198.51.100.9:80"), "to_destination"),
    ("to_destination-ipv6-port-without-brackets", dict(_rule(**_DNAT), to_destination="2001:db8::9]:80"),
     "to_destination"),
    ("to_destination-ipv6-on-ipv4", dict(_rule(**_DNAT), to_destination="[2001:db8::9]:80", ip_version="ipv4"),
     "to_destination"),
    ("connlimit_mask-33-on-ipv4", _rule(connlimit_above=2, connlimit_mask=33, ip_version="ipv4"), "connlimit_mask"),
    ("connlimit_mask-129", _rule(connlimit_above=2, connlimit_mask=129), "connlimit_mask"),
    ("connlimit_above-negative", _rule(connlimit_above=-1), "connlimit_above"),
    ("hashlimit-rate-bogus", _rule(hashlimit={"name": "h", "rate": "fast"}), "hashlimit"),
    ("hashlimit-without-name", _rule(hashlimit={"rate": "10/second"}), "hashlimit"),
    ("hashlimit-mode-bogus", _rule(hashlimit={"name": "h", "rate": "10/second", "mode": ["srcmac"]}), "hashlimit"),
    ("syn-without-protocol", _rule(syn="match"), "syn"),
    ("syn-with-udp", _rule(syn="match", protocol="udp"), "syn"),
    ("syn-bogus", _rule(syn="maybe", protocol="tcp"), "syn"),
    ("mark-bogus", _rule(mark="0xZZ"), "mark"),
    ("fragment-on-ipv6", _rule(fragment=True, ip_version="ipv6"), "fragment"),
    ("nflog_prefix-64-bytes", _rule(jump="NFLOG", nflog_prefix="p" * 64), "nflog_prefix"),
    ("nflog_group-65536", _rule(jump="NFLOG", nflog_group=65536), "nflog_group"),
    ("rules[1]-src_range-reversed", {"rules": [_OK_ITEM, _rule(src_range="198.51.100.9-198.51.100.1")]},
     "rules[1].src_range"),
):
    _add("range / value of a new option", _R, _label, _args, _option)

for _label, _args, _option in (
    ("uid_owner-in-INPUT", _rule(uid_owner=1000), "uid_owner"),
    ("uid_owner-in-FORWARD", _rule(chain="FORWARD", uid_owner=0), "uid_owner"),
    ("gid_owner-in-PREROUTING", _rule(table="mangle", chain="PREROUTING", gid_owner=0), "gid_owner"),
    ("uid_owner-range-reversed", _rule(uid_owner="2000-1000", **_OUT), "uid_owner"),
    ("uid_owner-negative", _rule(uid_owner=-1, **_OUT), "uid_owner"),
    ("uid_owner-unknown-name", _rule(uid_owner="no-such-user-ironwall", **_OUT), "uid_owner"),
    ("rules[1]-uid_owner-in-INPUT", {"rules": [_OK_ITEM, _rule(uid_owner=1000)]}, "rules[1].uid_owner"),
):
    _add("owner match outside OUTPUT / POSTROUTING", _R, _label, _args, _option)

# Raw lines: iptables refuses them (learned in a private network namespace), or they try to be
# more than matches of this one rule.
for _label, _args, _option in (
    ("raw-unknown-match", _rule(raw="-m no_such_match_ironwall"), "raw"),
    ("raw-unknown-option", _rule(raw="-m mark --no-such-option 1"), "raw"),
    ("raw-bad-value", _rule(raw="-m limit --limit fast"), "raw"),
    ("raw-missing-value", _rule(raw="-m mark --mark"), "raw"),
    ("raw-unbalanced-quote", _rule(raw='-m comment --comment "open'), "raw"),
    ("raw-second-append", _rule(raw="-m mark --mark 1 -A INPUT -j DROP"), "raw"),
    ("raw-second-delete", _rule(raw="-D INPUT 1"), "raw"),
    ("raw-flush", _rule(raw="-F INPUT"), "raw"),
    ("raw-table", _rule(raw="-t nat"), "raw"),
    ("raw-newline-command", _rule(raw="-m mark --mark 1\n-A INPUT -j DROP"), "raw"),
    ("raw-newline-commit", _rule(raw="-m mark --mark 1\nCOMMIT\n*filter\n-F INPUT"), "raw"),
    ("raw-cr-command", _rule(raw="-m mark --mark 1\r-A INPUT -j DROP"), "raw"),
    ("raw-shell-command", _rule(raw="-m mark --mark 1; iptables -F"), "raw"),
    ("raw-commit-word", _rule(raw="-m mark --mark 1 COMMIT"), "raw"),
    ("raw-jump-and-jump", _rule(raw="-m mark --mark 1 -j DROP"), ("raw", "jump")),
    ("raw-goto", _rule(raw="-g APP_IN"), ("raw", "jump")),
    ("rules[1]-raw-newline-command", {"rules": [_OK_ITEM, _rule(raw="-m mark --mark 1\n-A INPUT -j DROP")]},
     "rules[1].raw"),
):
    _add("raw line", _R, _label, _args, _option)

# Cases only iptables itself can judge (the raw line is learned from the kernel in a private
# network namespace): the unit test's fake host would answer them like any other command.
KERNEL_JUDGED = frozenset("rule:" + label for label in (
    "raw-unknown-match", "raw-unknown-option", "raw-bad-value", "raw-missing-value"))


# --------------------------------------------------------------------------- iptables_whitelist
_W = "iptables_whitelist"


def _wl(**kw):
    args = {"name": "WL_BAD", "ports": ["3306"], "sources": ["198.51.100.7"]}
    args.update(kw)
    return args


for _label, _args, _option in (
    ("name-empty", _wl(name=""), "name"),
    ("name-29-chars", _wl(name="W" * 29), "name"),
    ("name-INPUT", _wl(name="INPUT"), "name"),
    ("name-ACCEPT", _wl(name="ACCEPT"), "name"),
    ("name-DROP", _wl(name="DROP"), "name"),
    ("name-RETURN", _wl(name="RETURN"), "name"),
    ("name-LOG", _wl(name="LOG"), "name"),
    ("name-leading-dash", _wl(name="-WL"), "name"),
    ("name-leading-bang", _wl(name="!WL"), "name"),
    ("name-space", _wl(name="MY WL"), "name"),
    ("name-non-ascii", _wl(name="caf" + E_ACUTE), "name"),
    ("chain-OUTPUT", _wl(chain="OUTPUT"), "chain"),
    ("chain-is-name", _wl(chain="WL_BAD"), "chain"),
    ("chain-missing", _wl(chain="MISSING_CHAIN"), "chain"),
    ("chain-29-chars", _wl(chain="C" * 29), "chain"),
    ("chain-leading-dash", _wl(chain="-X"), "chain"),
):
    _add("chain name / jump target", _W, _label, _args, _option)

for _label, _args, _option in (
    ("name-f2b-sshd", _wl(name="f2b-sshd"), "name"),
    ("name-DOCKER-USER", _wl(name="DOCKER-USER"), "name"),
    ("name-ADMIN_CHAIN", _wl(name="ADMIN_CHAIN"), "name"),
    ("name-RATELIMIT_FOREIGN", _wl(name="RATELIMIT_FOREIGN"), "name"),
    ("absent-ADMIN_CHAIN", {"name": "ADMIN_CHAIN", "state": "absent"}, "name"),
    ("absent-f2b-sshd", {"name": "f2b-sshd", "state": "absent"}, "name"),
):
    _add("foreign chain", _W, _label, _args, _option)

for _label, _args, _option in (
    ("sources-prefix-33", _wl(sources=["198.51.100.0/33"]), "sources"),
    ("sources-octet-300", _wl(sources=["203.0.113.300"]), "sources"),
    ("sources-hostname", _wl(sources=["bogus"]), "sources"),
    ("sources-empty-string", _wl(sources=[""]), "sources"),
    ("sources-double-prefix", _wl(sources=["198.51.100.1/24/8"]), "sources"),
    ("sources-scope-id", _wl(sources=["2001:db8::1%eth0"]), "sources"),
    ("sources-range", _wl(sources=["198.51.100.1-198.51.100.5"]), "sources"),
):
    _add("address", _W, _label, _args, _option)
_add("family mismatch", _W, "sources-ipv6-on-ipv4", _wl(sources=["2001:db8::1"], ip_version="ipv4"), "sources")
_add("family mismatch", _W, "sources-ipv4-on-ipv6", _wl(sources=["198.51.100.1"], ip_version="ipv6"), "sources")

for _label, _args, _option in (
    ("ports-missing", {"name": "WL_BAD"}, "ports"),
    ("ports-empty", _wl(ports=[]), "ports"),
    ("ports-0", _wl(ports=["0"]), "ports"),
    ("ports-65536", _wl(ports=["65536"]), "ports"),
    ("ports-reversed", _wl(ports=["3000:2000"]), "ports"),
    ("ports-16", _wl(ports=_ports(16)), "ports"),
    ("ports-14-and-a-range", _wl(ports=_ports(14) + ["2000:3000"]), "ports"),
    ("ports-abc", _wl(ports=["abc"]), "ports"),
    ("ports-superscript-two", _wl(ports=[SUPERSCRIPT_TWO]), "ports"),
    ("ports-with-icmp", _wl(protocol="icmp"), "ports"),
):
    _add("port", _W, _label, _args, _option)

for _label, _args, _option in (
    ("protocol-bogus", _wl(protocol="bogus"), "protocol"),
    ("protocol-superscript-two", _wl(protocol=SUPERSCRIPT_TWO), "protocol"),
    ("protocol-256", _wl(protocol="256"), "protocol"),
    ("protocol-gre", _wl(protocol="gre"), "protocol"),
):
    _add("protocol", _W, _label, _args, _option)

for _label, _args, _option in (
    ("priority-negative", _wl(priority=-1), "priority"),
    ("priority-1000", _wl(priority=1000), "priority"),
    ("priority-bool", _wl(priority=True), "priority"),
):
    _add("priority", _W, _label, _args, _option)

for _label, _args, _option in (
    ("ctstate-bogus", _wl(ctstate=["BOGUS"]), "ctstate"),
    ("ctstate-SNAT-with-state", _wl(ctstate=["SNAT"], state_match="state"), "ctstate"),
    ("fallback-ACCEPT", _wl(fallback="ACCEPT"), "fallback"),
    ("state_match-bogus", _wl(state_match="bogus"), "state_match"),
    ("state-bogus", _wl(state="gone"), "state"),
    ("ip_version-bogus", _wl(ip_version="ipv5"), "ip_version"),
    ("wait-negative", _wl(wait=-1), "wait"),
    ("rollback_timeout-negative", _wl(rollback_timeout=-1), "rollback_timeout"),
    ("unknown-option-table", _wl(table="filter"), "table"),
    ("unknown-option-comment", _wl(comment="x"), "comment"),
):
    _add("option value / combination", _W, _label, _args, _option)


# --------------------------------------------------------------------------- iptables_ratelimit
_L = "iptables_ratelimit"


def _rl(**kw):
    args = {"name": "bad"}
    args.update(kw)
    return args


for _label, _args, _option in (
    ("name-empty", _rl(name=""), "name"),
    ("name-dot", _rl(name="ssh.x"), "name"),
    ("name-space", _rl(name="a b"), "name"),
    ("name-197-chars", _rl(name="n" * 197, chain_name="RL_LONG"), "name"),
    ("name-non-ascii", _rl(name="caf" + E_ACUTE), "name"),
    ("name-colon", _rl(name="a:b"), "name"),
):
    _add("rule name", _L, _label, _args, _option)

for _label, _args, _option in (
    ("chain_name-29-chars", _rl(chain_name="R" * 29), "chain_name"),
    ("chain_name-DROP", _rl(chain_name="DROP"), "chain_name"),
    ("chain_name-FORWARD", _rl(chain_name="FORWARD"), "chain_name"),
    ("chain_name-is-chain", _rl(chain_name="APP_IN", chain="APP_IN"), "chain_name"),
    ("chain_name-leading-dash", _rl(chain_name="-RL"), "chain_name"),
    ("chain_name-space", _rl(chain_name="MY RL"), "chain_name"),
    ("chain_name-empty", _rl(chain_name=""), "chain_name"),
    ("chain_name-derived-too-long", _rl(name="n" * 19), ("chain_name", "name")),
    ("chain-missing", _rl(chain="MISSING_CHAIN"), "chain"),
    ("chain-leading-dash", _rl(chain="-X"), "chain"),
    ("chain-29-chars", _rl(chain="C" * 29), "chain"),
):
    _add("chain name / jump target", _L, _label, _args, _option)

for _label, _args, _option in (
    ("chain_name-f2b-sshd", _rl(chain_name="f2b-sshd"), "chain_name"),
    ("chain_name-DOCKER-USER", _rl(chain_name="DOCKER-USER"), "chain_name"),
    ("derived-chain_name-RATELIMIT_FOREIGN", _rl(name="foreign"), ("chain_name", "name")),
    ("absent-chain_name-ADMIN_CHAIN", _rl(chain_name="ADMIN_CHAIN", state="absent"), "chain_name"),
    ("absent-derived-RATELIMIT_FOREIGN", _rl(name="foreign", state="absent"), ("chain_name", "name")),
):
    _add("foreign chain", _L, _label, _args, _option)

for _label, _args, _option in (
    ("ports-0", _rl(ports=["0"]), "ports"),
    ("ports-65536", _rl(ports=["65536"]), "ports"),
    ("ports-reversed", _rl(ports=["3000:2000"]), "ports"),
    ("ports-16", _rl(ports=_ports(16)), "ports"),
    ("ports-14-and-a-range", _rl(ports=_ports(14) + ["2000:3000"]), "ports"),
    ("ports-abc", _rl(ports=["abc"]), "ports"),
    ("ports-empty", _rl(ports=[]), "ports"),
    ("ports-superscript-two", _rl(ports=[SUPERSCRIPT_TWO]), "ports"),
):
    _add("port", _L, _label, _args, _option)

for _label, _args, _option in (
    ("hitcount-0", _rl(hitcount=0), "hitcount"),
    ("hitcount-negative", _rl(hitcount=-1), "hitcount"),
    ("hitcount-65536", _rl(hitcount=65536), "hitcount"),
    ("hitcount-bool", _rl(hitcount=True), "hitcount"),
    ("hitcount-text", _rl(hitcount="abc"), "hitcount"),
    ("seconds-0", _rl(seconds=0), "seconds"),
    ("seconds-negative", _rl(seconds=-1), "seconds"),
    ("seconds-2**31", _rl(seconds=2 ** 31), "seconds"),
    ("seconds-2**32-1", _rl(seconds=2 ** 32 - 1), "seconds"),
    ("seconds-2**32", _rl(seconds=2 ** 32), "seconds"),
    ("priority-negative", _rl(priority=-1), "priority"),
    ("priority-1000", _rl(priority=1000), "priority"),
):
    _add("number out of range", _L, _label, _args, _option)

for _label, _args, _option in (
    ("protocol-icmp", _rl(protocol="icmp"), "protocol"),
    ("protocol-bogus", _rl(protocol="bogus"), "protocol"),
    ("protocol-superscript-two", _rl(protocol=SUPERSCRIPT_TWO), "protocol"),
):
    _add("protocol", _L, _label, _args, _option)

for _label, _args, _option in (
    ("log_prefix-ascii-30", _rl(log_prefix="p" * 30), "log_prefix"),
    ("log_prefix-double-quote", _rl(log_prefix='a"b'), "log_prefix"),
    ("log_limit-bogus", _rl(log_prefix="x", log_limit="bogus"), "log_limit"),
    ("log_limit-zero", _rl(log_prefix="x", log_limit="0/minute"), "log_limit"),
    ("log_limit-too-fast", _rl(log_prefix="x", log_limit="20000/second"), "log_limit"),
    ("log_limit-bad-unit", _rl(log_prefix="x", log_limit="3/fortnight"), "log_limit"),
    ("log_limit-superscript-two", _rl(log_prefix="x", log_limit=SUPERSCRIPT_TWO + "/minute"), "log_limit"),
    ("log_limit-without-log_prefix", _rl(log_limit="3/minute"), ("log_limit", "log_prefix")),
    ("reject_with-bogus", _rl(action="REJECT", reject_with="bogus"), "reject_with"),
    ("reject_with-tcp-reset-udp", _rl(action="REJECT", reject_with="tcp-reset", protocol="udp"), "reject_with"),
    ("reject_with-without-REJECT", _rl(reject_with="tcp-reset"), "reject_with"),
    ("action-ACCEPT", _rl(action="ACCEPT"), "action"),
    ("state-bogus", _rl(state="gone"), "state"),
    ("ip_version-bogus", _rl(ip_version="ipv5"), "ip_version"),
    ("wait-negative", _rl(wait=-1), "wait"),
    ("rollback_timeout-negative", _rl(rollback_timeout=-1), "rollback_timeout"),
    ("unknown-option-table", _rl(table="filter"), "table"),
):
    _add("option value / combination", _L, _label, _args, _option)

for _label, _args, _option in (
    ("superscript-two", _rl(log_prefix="x", log_level=SUPERSCRIPT_TWO), "log_level"),
    ("8", _rl(log_prefix="x", log_level="8"), "log_level"),
    ("bogus", _rl(log_prefix="x", log_level="loud"), "log_level"),
    ("without-log_prefix", _rl(log_level="info"), "log_level"),
):
    _add("log_level", _L, "log_level-" + _label, _args, _option)

for _label, _args, _option in (
    ("exempt_sources-prefix-33", _rl(exempt_sources=["198.51.100.0/33"]), "exempt_sources"),
    ("exempt_sources-hostname", _rl(exempt_sources=["bogus"]), "exempt_sources"),
    ("exempt_sources-scope-id", _rl(exempt_sources=["2001:db8::1%eth0"]), "exempt_sources"),
):
    _add("address", _L, _label, _args, _option)
for _label, _args, _option in (
    ("exempt_sources-ipv6-on-ipv4", _rl(exempt_sources=["2001:db8::1"], ip_version="ipv4"), "exempt_sources"),
    ("reject_with-ipv4-only-on-both", _rl(action="REJECT", reject_with="icmp-proto-unreachable"), "reject_with"),
    ("reject_with-ipv6-only-on-ipv4", _rl(action="REJECT", reject_with="icmp6-policy-fail", ip_version="ipv4"),
     "reject_with"),
):
    _add("family mismatch", _L, _label, _args, _option)


# --------------------------------------------------------------------------- iptables_policy
_P = "iptables_policy"
for _label, _args, _option in (
    ("chain-bogus", {"chain": "BOGUS", "policy": "DROP"}, "chain"),
    ("chain-lower-case", {"chain": "input", "policy": "DROP"}, "chain"),
    ("chain-PREROUTING-in-filter", {"chain": "PREROUTING", "policy": "DROP"}, "chain"),
    ("chain-user-chain", {"chain": "APP_IN", "policy": "DROP"}, "chain"),
    ("chain-without-policy-or-purge", {"chain": "INPUT"}, "policy"),
    ("policy-REJECT", {"chain": "INPUT", "policy": "REJECT"}, "policy"),
    ("policies-empty", {"policies": {}}, "policies"),
    ("policies-REJECT", {"policies": {"INPUT": "REJECT"}}, "policies"),
    ("policies-PREROUTING-in-filter", {"policies": {"INPUT": "DROP", "PREROUTING": "DROP"}}, "policies"),
    ("policies-user-chain", {"policies": {"APP_IN": "DROP"}}, "policies"),
    ("policies-value-int", {"policies": {"INPUT": 1}}, "policies"),
    ("policies-value-bool", {"policies": {"INPUT": True}}, "policies"),
    ("policies-value-list", {"policies": {"INPUT": ["DROP"]}}, "policies"),
    ("policies-not-a-dict", {"policies": ["INPUT"]}, "policies"),
    ("chain-and-policies", {"chain": "INPUT", "policy": "DROP", "policies": {"FORWARD": "DROP"}},
     ("chain", "policies")),
    ("neither-chain-nor-policies", {"policy": "DROP"}, ("chain", "policies")),
    ("nat-policy-DROP", {"table": "nat", "chain": "PREROUTING", "policy": "DROP"}, ("policy", "table")),
    ("nat-policies-DROP", {"table": "nat", "policies": {"POSTROUTING": "DROP"}}, ("policies", "table")),
    ("keep-unbalanced-paren", {"chain": "INPUT", "purge": True, "keep": ["("]}, "keep"),
    ("keep-unbalanced-bracket", {"chain": "INPUT", "purge": True, "keep": ["[f2b-"]}, "keep"),
    ("keep-nothing-to-repeat", {"chain": "INPUT", "purge": True, "keep": ["*DOCKER"]}, "keep"),
    ("purge-not-bool", {"chain": "INPUT", "purge": "maybe"}, "purge"),
    ("table-bogus", {"chain": "INPUT", "policy": "DROP", "table": "bogus"}, "table"),
    ("ip_version-bogus", {"chain": "INPUT", "policy": "DROP", "ip_version": "ipv5"}, "ip_version"),
    ("wait-negative", {"chain": "INPUT", "policy": "ACCEPT", "wait": -1}, "wait"),
    ("rollback_timeout-negative", {"chain": "INPUT", "policy": "ACCEPT", "rollback_timeout": -1}, "rollback_timeout"),
    ("unknown-option", {"chain": "INPUT", "policy": "DROP", "name": "x"}, "name"),
):
    _add("policy", _P, _label, _args, _option)


# --------------------------------------------------------------------------- iptables_info, iptables_confirm
for _label, _args, _option in (
    ("table-bogus", {"table": "bogus"}, "table"),
    ("table-upper-case", {"table": "FILTER"}, "table"),
    ("ip_version-bogus", {"ip_version": "ipv5"}, "ip_version"),
    ("wait-negative", {"wait": -1}, "wait"),
    ("wait-text", {"wait": "abc"}, "wait"),
    ("unknown-option-chain", {"chain": "INPUT"}, "chain"),
    ("unknown-option-force", {"force": True}, "force"),
):
    _add("read-only module", "iptables_info", _label, _args, _option)

for _label, _args, _option in (
    ("unknown-option-timeout", {"timeout": 5}, "timeout"),
    ("unknown-option-rollback_timeout", {"rollback_timeout": 0}, "rollback_timeout"),
    ("unknown-option-force", {"force": True}, "force"),
    ("unknown-option-name", {"name": "x"}, "name"),
    ("unknown-option-state", {"state": "confirmed"}, "state"),
):
    _add("read-only module", "iptables_confirm", _label, _args, _option)


# --------------------------------------------------------------------------- iptables_ruleset
# The whole declaration in one task. Each item of its lists is checked by its module's code and
# named inside its list (``whitelists[1].sources``); Ansible itself checks only ``rules`` items and
# ``save``. Save paths point into /tmp or into a directory that does not exist, and no case sets
# ``save.boot``: a case accepted by mistake must not write where it matters, and these modules
# run on the machine's real file system (the unit test fakes only the iptables binaries). Boot
# hook validation is tested in tests/unit/plugins/module_utils/test_persist.py instead.
_S = "iptables_ruleset"
_RS_WL = {"name": "WL_OK", "ports": ["3306"], "sources": ["198.51.100.7"]}
_RS_RL = {"name": "rl_ok", "ports": ["2222"]}
_RS_V4 = "/tmp/ironwall-corpus-v4.rules"
_RS_V6 = "/tmp/ironwall-corpus-v6.rules"


def _rs_wl(**kw):
    item = {"name": "WL_BAD", "ports": ["3306"], "sources": ["198.51.100.9"]}
    item.update(kw)
    return {"whitelists": [item]}


def _rs_wl1(**kw):
    """The bad whitelist second, after a good one: the error names index 1."""
    item = {"name": "WL_BAD", "ports": ["3306"], "sources": ["198.51.100.9"]}
    item.update(kw)
    return {"whitelists": [_RS_WL, item]}


def _rs_rl(**kw):
    item = {"name": "bad"}
    item.update(kw)
    return {"ratelimits": [item]}


def _rs_rl1(**kw):
    item = {"name": "bad"}
    item.update(kw)
    return {"ratelimits": [_RS_RL, item]}


# Control characters in every text, at any depth (the option named with its list index).
_RS_TEXT = [
    ("whitelists[0].name", _rs_wl(name=_t("WL_BAD"))),
    ("whitelists[1].name", _rs_wl1(name=_t("WL_BAD"))),
    ("whitelists[1].sources", _rs_wl1(sources=["198.51.100.9", _t("198.51.100.7")])),
    ("whitelists[0].sources", _rs_wl(sources=[_t("2001:db8::7")])),
    ("whitelists[0].ports", _rs_wl(ports=[_t("3306")])),
    ("whitelists[0].chain", _rs_wl(chain=_t("INPUT"))),
    ("whitelists[0].protocol", _rs_wl(protocol=_t("tcp"))),
    ("whitelists[0].ctstate", _rs_wl(ctstate=[_t("NEW")])),
    ("whitelists[0].fallback", _rs_wl(fallback=_t("DROP"))),
    ("whitelists[0].state", _rs_wl(state=_t("present"))),
    ("whitelists[0].ip_version", _rs_wl(ip_version=_t("ipv4"))),
    ("ratelimits[0].name", _rs_rl(name=_t("bad"))),
    ("ratelimits[1].chain_name", _rs_rl1(chain_name=_t("RL_BAD"))),
    ("ratelimits[0].chain", _rs_rl(chain=_t("INPUT"))),
    ("ratelimits[0].ports", _rs_rl(ports=[_t("22")])),
    ("ratelimits[0].log_prefix", _rs_rl(log_prefix=_t("a|b"))),
    ("ratelimits[0].log_limit", _rs_rl(log_prefix="x", log_limit=_t("3/minute"))),
    ("ratelimits[1].exempt_sources", _rs_rl1(exempt_sources=[_t("198.51.100.7")])),
    ("ratelimits[0].action", _rs_rl(action=_t("DROP"))),
    ("rules[1].name", {"rules": [_OK_ITEM, {"name": _t("bad"), "jump": "ACCEPT"}]}),
    ("rules[1].comment", {"rules": [_OK_ITEM, {"name": "bad", "jump": "ACCEPT", "comment": _t("a|b")}]}),
    ("rules[1].source", {"rules": [_OK_ITEM, {"name": "bad", "source": [_t("198.51.100.7")], "jump": "ACCEPT"}]}),
    ("rules[1].jump", {"rules": [_OK_ITEM, {"name": "bad", "jump": _t("ACCEPT")}]}),
    ("rules[1].log_prefix", {"rules": [_OK_ITEM, {"name": "bad", "jump": "LOG", "log_prefix": _t("a|b")}]}),
    ("rules[1].dports", {"rules": [_OK_ITEM, {"name": "bad", "protocol": "tcp", "dports": [_t("80")],
                                              "jump": "ACCEPT"}]}),
    ("policies", {"policies": {"INPUT": _t("DROP")}}),
    ("keep", {"policies": {"INPUT": "ACCEPT"}, "purge": True, "keep": [_t("f2b-|sshd")]}),
    ("exclusive_prefix", {"exclusive_prefix": _t("open-"), "rules": [
        {"name": "open-http", "protocol": "tcp", "dports": [80], "jump": "ACCEPT"}]}),
    ("save.ipv4", {"save": {"ipv4": _t("/tmp/ironwall-corpus|v4.rules")}}),
    ("save.ipv6", {"save": {"ipv4": _RS_V4, "ipv6": _t("/tmp/ironwall-corpus|v6.rules")}}),
]
for _option, _args in _RS_TEXT:
    for _cname, _ch in CONTROL_CHARS:
        _add("control character in a text option", _S, "%s:%s" % (_option, _cname), _fill(_args, _ch), _option)
# ... in a key: of an item (an unknown option, named as given) and of policies
for _cname, _ch in CONTROL_CHARS:
    _add("control character in a text option", _S, "whitelists[0].key:%s" % _cname,
         {"whitelists": [{"name": "WL_BAD", "ports": ["3306"], "tab" + _ch + "le": "filter"}]},
         "whitelists[0].tab%sle" % _ch)
    _add("control character in a text option", _S, "ratelimits[1].key:%s" % _cname,
         {"ratelimits": [_RS_RL, {"name": "bad", "sources" + _ch: ["198.51.100.7"]}]}, "ratelimits[1].sources%s" % _ch)
    _add("control character in a text option", _S, "policies.key:%s" % _cname,
         {"policies": {"INPUT" + _ch: "DROP"}}, "policies")

# Characters that are not what they look like: digits int() refuses, a zero-width space, characters
# of two bytes against byte limits. (Text that is not UTF-8, a lone surrogate, is left out: whether
# ansible-core hands one to a module at all depends on its own argument decoding, not on this collection.)
for _label, _args, _option in (
    ("superscript-two-whitelists[0].ports", _rs_wl(ports=[SUPERSCRIPT_TWO]), "whitelists[0].ports"),
    ("superscript-two-whitelists[0].priority", _rs_wl(priority=SUPERSCRIPT_TWO), "whitelists[0].priority"),
    ("superscript-two-ratelimits[0].ports", _rs_rl(ports=[SUPERSCRIPT_TWO]), "ratelimits[0].ports"),
    ("superscript-two-ratelimits[0].hitcount", _rs_rl(hitcount=SUPERSCRIPT_TWO), "ratelimits[0].hitcount"),
    ("superscript-two-ratelimits[0].seconds", _rs_rl(seconds=SUPERSCRIPT_TWO), "ratelimits[0].seconds"),
    ("zero-width-space-whitelists[0].name", _rs_wl(name="WL\u200bBAD"), "whitelists[0].name"),
    ("zero-width-space-ratelimits[0].name", _rs_rl(name="bad\u200b"), "ratelimits[0].name"),
    ("whitelists[0].name-30-bytes", _rs_wl(name=E_ACUTE_CAP * 15), "whitelists[0].name"),
    ("ratelimits[0].chain_name-30-bytes", _rs_rl(chain_name=E_ACUTE_CAP * 15), "ratelimits[0].chain_name"),
    ("ratelimits[0].log_prefix-30-bytes", _rs_rl(log_prefix=E_ACUTE * 15), "ratelimits[0].log_prefix"),
    ("rules[1].comment-200-e-acute", {"rules": [_OK_ITEM, {"name": "a", "jump": "ACCEPT", "comment": E_ACUTE * 200}]},
     "rules[1].comment"),
):
    _add("odd bytes", _S, _label, _args, _option)

# Names of other software's chains (fail2ban, Docker, an admin): refused while planning, before
# any restore, in both families.
for _label, _args, _option in (
    ("whitelists[0].name-f2b-sshd", _rs_wl(name="f2b-sshd"), "whitelists[0].name"),
    ("whitelists[0].name-DOCKER-USER", _rs_wl(name="DOCKER-USER"), "whitelists[0].name"),
    ("whitelists[0].name-ADMIN_CHAIN", _rs_wl(name="ADMIN_CHAIN"), "whitelists[0].name"),
    ("whitelists[0].name-APP_IN", _rs_wl(name="APP_IN"), "whitelists[0].name"),
    ("whitelists[1].name-RATELIMIT_FOREIGN", _rs_wl1(name="RATELIMIT_FOREIGN"), "whitelists[1].name"),
    ("whitelists[1].name-f2b-sshd-absent", {"whitelists": [_RS_WL, {"name": "f2b-sshd", "state": "absent"}]},
     "whitelists[1].name"),
    # declared for IPv6 only: IPv4 would drop the chain of that name, which is fail2ban's
    ("whitelists[0].name-f2b-sshd-other-family", _rs_wl(name="f2b-sshd", sources=["2001:db8::9"], ip_version="ipv6"),
     "whitelists[0].name"),
    ("ratelimits[0].chain_name-f2b-sshd", _rs_rl(chain_name="f2b-sshd"), "ratelimits[0].chain_name"),
    ("ratelimits[1].chain_name-DOCKER-USER", _rs_rl1(chain_name="DOCKER-USER"), "ratelimits[1].chain_name"),
    ("ratelimits[0].chain_name-APP_IN-absent", _rs_rl(chain_name="APP_IN", state="absent"), "ratelimits[0].chain_name"),
    ("ratelimits[0].derived-RATELIMIT_FOREIGN", _rs_rl(name="foreign"),
     ("ratelimits[0].chain_name", "ratelimits[0].name")),
    ("ratelimits[0].derived-RATELIMIT_FOREIGN-absent", _rs_rl(name="foreign", state="absent"),
     ("ratelimits[0].chain_name", "ratelimits[0].name")),
    ("rules[1].jump-missing-chain", {"rules": [_OK_ITEM, {"name": "b", "jump": "MISSING_CHAIN"}]}, "rules[1].jump"),
    ("rules[1].chain-missing", {"rules": [_OK_ITEM, {"name": "b", "chain": "MISSING_CHAIN", "jump": "ACCEPT"}]},
     "rules[1].chain"),
    ("whitelists[0].chain-missing", _rs_wl(chain="MISSING_CHAIN"), "whitelists[0].chain"),
    ("ratelimits[0].chain-missing", _rs_rl(chain="MISSING_CHAIN"), "ratelimits[0].chain"),
):
    _add("foreign chain", _S, _label, _args, _option)

# Bad types and values: the items are plain dictionaries, so their module's code is all that checks them.
for _label, _args, _option in (
    ("whitelists-text", {"whitelists": "WL"}, "whitelists"),
    ("whitelists-dict", {"whitelists": {"name": "WL"}}, "whitelists"),
    ("whitelists[0]-int", {"whitelists": [5]}, "whitelists"),
    ("whitelists[1]-list", {"whitelists": [_RS_WL, ["WL_BAD"]]}, "whitelists"),
    ("ratelimits[0]-text", {"ratelimits": ["ssh"]}, "ratelimits"),
    ("whitelists[0].name-int", _rs_wl(name=5), "whitelists[0].name"),
    ("whitelists[0].name-list", _rs_wl(name=["WL"]), "whitelists[0].name"),
    ("whitelists[0].name-missing", {"whitelists": [{"ports": ["3306"]}]}, "whitelists[0].name"),
    ("whitelists[0].ports-missing", {"whitelists": [{"name": "WL_BAD"}]}, "whitelists[0].ports"),
    ("whitelists[0].ports-dict", _rs_wl(ports={"a": 1}), "whitelists[0].ports"),
    ("whitelists[0].ports-nested", _rs_wl(ports=[["3306"]]), "whitelists[0].ports"),
    ("whitelists[0].ports-bool", _rs_wl(ports=[True]), "whitelists[0].ports"),
    ("whitelists[0].ports-65536", _rs_wl(ports=["65536"]), "whitelists[0].ports"),
    ("whitelists[1].sources-nested", _rs_wl1(sources=[["198.51.100.7"]]), "whitelists[1].sources"),
    ("whitelists[1].sources-dict", _rs_wl1(sources={"a": 1}), "whitelists[1].sources"),
    ("whitelists[1].sources-int", _rs_wl1(sources=[5]), "whitelists[1].sources"),
    ("whitelists[1].sources-prefix-33", _rs_wl1(sources=["198.51.100.0/33"]), "whitelists[1].sources"),
    ("whitelists[0].protocol-int", _rs_wl(protocol=5), "whitelists[0].protocol"),
    ("whitelists[0].protocol-list", _rs_wl(protocol=["tcp"]), "whitelists[0].protocol"),
    ("whitelists[0].priority-text", _rs_wl(priority="abc"), "whitelists[0].priority"),
    ("whitelists[0].priority-bool", _rs_wl(priority=True), "whitelists[0].priority"),
    ("whitelists[0].priority-float", _rs_wl(priority=1.5), "whitelists[0].priority"),
    ("whitelists[0].priority-1000", _rs_wl(priority=1000), "whitelists[0].priority"),
    ("whitelists[0].ctstate-int", _rs_wl(ctstate=[5]), "whitelists[0].ctstate"),
    ("whitelists[0].state-bool", _rs_wl(state=True), "whitelists[0].state"),
    ("whitelists[0].fallback-ACCEPT", _rs_wl(fallback="ACCEPT"), "whitelists[0].fallback"),
    ("whitelists[0].chain-list", _rs_wl(chain=["INPUT"]), "whitelists[0].chain"),
    ("whitelists[0].chain-OUTPUT", _rs_wl(chain="OUTPUT"), "whitelists[0].chain"),
    ("whitelists[0].state_match-int", _rs_wl(state_match=5), "whitelists[0].state_match"),
    ("whitelists[0].ip_version-list", _rs_wl(ip_version=["ipv4"]), "whitelists[0].ip_version"),
    ("ratelimits[0].name-int", _rs_rl(name=5), "ratelimits[0].name"),
    ("ratelimits[0].name-missing", {"ratelimits": [{"ports": ["22"]}]}, "ratelimits[0].name"),
    ("ratelimits[0].name-colon", _rs_rl(name="a:b"), "ratelimits[0].name"),
    ("ratelimits[0].hitcount-text", _rs_rl(hitcount="abc"), "ratelimits[0].hitcount"),
    ("ratelimits[0].hitcount-bool", _rs_rl(hitcount=True), "ratelimits[0].hitcount"),
    ("ratelimits[0].hitcount-float", _rs_rl(hitcount=4.5), "ratelimits[0].hitcount"),
    ("ratelimits[0].hitcount-0", _rs_rl(hitcount=0), "ratelimits[0].hitcount"),
    ("ratelimits[0].hitcount-65536", _rs_rl(hitcount=65536), "ratelimits[0].hitcount"),
    ("ratelimits[0].seconds-0", _rs_rl(seconds=0), "ratelimits[0].seconds"),
    ("ratelimits[0].seconds-2**31", _rs_rl(seconds=2 ** 31), "ratelimits[0].seconds"),
    ("ratelimits[0].ports-float", _rs_rl(ports=[22.5]), "ratelimits[0].ports"),
    ("ratelimits[0].ports-dict", _rs_rl(ports=[{}]), "ratelimits[0].ports"),
    ("ratelimits[0].exempt_sources-int", _rs_rl(exempt_sources=[5]), "ratelimits[0].exempt_sources"),
    ("ratelimits[0].exempt_sources-nested", _rs_rl(exempt_sources=[["198.51.100.7"]]), "ratelimits[0].exempt_sources"),
    ("ratelimits[0].log_level-bool", _rs_rl(log_prefix="x", log_level=True), "ratelimits[0].log_level"),
    ("ratelimits[0].action-int", _rs_rl(action=5), "ratelimits[0].action"),
    ("ratelimits[0].chain_name-int", _rs_rl(chain_name=5), "ratelimits[0].chain_name"),
    ("ratelimits[0].protocol-icmp", _rs_rl(protocol="icmp"), "ratelimits[0].protocol"),
    ("ratelimits[0].priority-list", _rs_rl(priority=[1]), "ratelimits[0].priority"),
    ("ratelimits[0].state-int", _rs_rl(state=5), "ratelimits[0].state"),
    # iptables_ratelimit declares these booleans (Ansible refuses "maybe"); an item must not take it as true
    ("ratelimits[0].accept-maybe", _rs_rl(accept="maybe"), "ratelimits[0].accept"),
    ("ratelimits[0].rttl-maybe", _rs_rl(rttl="maybe"), "ratelimits[0].rttl"),
    ("ratelimits[0].update-maybe", _rs_rl(update="maybe"), "ratelimits[0].update"),
    ("rules[1].dports-dict", {"rules": [_OK_ITEM, {"name": "b", "protocol": "tcp", "dports": {"a": 1},
                                                   "jump": "ACCEPT"}]}, ("rules[1].dports", "dports")),
    ("rules-not-a-list-of-dicts", {"rules": "a"}, ANSIBLE_DICT_ERROR),
    ("policies-text", {"policies": "INPUT"}, "policies"),
    ("policies-empty", {"policies": {}}, "policies"),
    ("policies-REJECT", {"policies": {"INPUT": "REJECT"}}, "policies"),
    ("policies-value-list", {"policies": {"INPUT": ["DROP"]}}, "policies"),
    ("policies-PREROUTING", {"policies": {"PREROUTING": "DROP"}}, "policies"),
    ("policies-user-chain", {"policies": {"APP_IN": "DROP"}}, "policies"),
    ("keep-unbalanced-paren", {"policies": {"INPUT": "ACCEPT"}, "purge": True, "keep": ["("]}, "keep"),
    ("purge-not-bool", {"policies": {"INPUT": "ACCEPT"}, "purge": "maybe"}, "purge"),
    ("exclusive-not-bool", {"exclusive": "maybe"}, "exclusive"),
    ("state_match-bogus", {"state_match": "bogus"}, "state_match"),
    ("state_match-lf", {"state_match": "state\n"}, "state_match"),
    ("ip_version-bogus", {"ip_version": "ipv5"}, "ip_version"),
    ("ip_version-lf", {"ip_version": "ipv4\n"}, "ip_version"),
    ("wait-negative", {"wait": -1}, "wait"),
    ("rollback_timeout-negative", {"rollback_timeout": -1}, "rollback_timeout"),
    ("force-not-bool", {"force": "maybe"}, "force"),
    ("unknown-option-name", {"name": "x"}, "name"),
    ("unknown-option-table", {"table": "filter"}, "table"),
    ("unknown-option-jump", {"jump": "ACCEPT"}, "jump"),
    ("save-text", {"save": "ipv4"}, ANSIBLE_DICT_ERROR),
    ("save.ipv4-relative", {"save": {"ipv4": "iptables.rules"}}, "save.ipv4"),
    ("save.ipv4-int", {"save": {"ipv4": 5}}, "save.ipv4"),
    ("save.ipv4-trailing-slash", {"save": {"ipv4": "/tmp/"}}, "save.ipv4"),
    ("save.ipv4-directory", {"save": {"ipv4": "/tmp"}}, "save.ipv4"),
    ("save.ipv4-missing-directory", {"save": {"ipv4": "/nonexistent-ironwall-corpus/iptables.rules"}}, "save.ipv4"),
    ("save.ipv6-same-file", {"save": {"ipv4": _RS_V4, "ipv6": _RS_V4}}, "save.ipv6"),
    ("save.ipv6-outside-ip_version", {"ip_version": "ipv4", "save": {"ipv4": _RS_V4, "ipv6": _RS_V6}}, "save.ipv6"),
    ("save.scope-bogus", {"save": {"ipv4": _RS_V4, "scope": "everything"}}, ("save.scope", "scope")),
    ("save.scope-lf", {"save": {"ipv4": _RS_V4, "scope": "owned\n"}}, ("save.scope", "scope")),
    ("save.unknown-option", {"save": {"ipv4": _RS_V4, "file": _RS_V6}}, "save.file"),
):
    _add("option value / type", _S, _label, _args, _option)

# The structure of the declaration.
for _label, _args, _option in (
    ("whitelists-duplicate-name", {"whitelists": [_RS_WL, dict(_RS_WL, ports=["5432"])]}, "whitelists[1].name"),
    ("ratelimits-duplicate-name", {"ratelimits": [_RS_RL, dict(_RS_RL, chain_name="RL_OTHER")]}, "ratelimits[1].name"),
    ("rules-duplicate-name", {"rules": [_OK_ITEM, dict(_OK_ITEM, jump="DROP")]}, "rules[1].name"),
    ("whitelist-name-is-a-rate-limit-chain", {"whitelists": [dict(_RS_WL, name="RATELIMIT_RL_OK")],
                                              "ratelimits": [_RS_RL]}, "ratelimits[0].chain_name"),
    ("two-rate-limits-one-chain",
     {"ratelimits": [dict(_RS_RL, chain_name="RL_X"), {"name": "b", "chain_name": "RL_X"}]},
     "ratelimits[1].chain_name"),
    ("whitelists[1]-unknown-key", _rs_wl1(table="filter"), "whitelists[1].table"),
    ("whitelists[0]-unknown-key-comment", _rs_wl(comment="x"), "whitelists[0].comment"),
    ("ratelimits[0]-unknown-key", _rs_rl(sources=["198.51.100.7"]), "ratelimits[0].sources"),
    ("rules[1]-unknown-key", {"rules": [_OK_ITEM, {"name": "b", "jump": "ACCEPT", "bogus": 1}]},
     ("rules[1].bogus", "rules.bogus")),
    ("whitelists[0].ip_version-wider-than-task", dict(_rs_wl(ip_version="both"), ip_version="ipv4"),
     "whitelists[0].ip_version"),
    ("ratelimits[0].ip_version-other-family", dict(_rs_rl(ip_version="ipv6"), ip_version="ipv4"),
     "ratelimits[0].ip_version"),
    ("rules[1].ip_version-wider-than-task",
     {"ip_version": "ipv6", "rules": [_OK_ITEM, dict(_OK_ITEM, name="b", ip_version="both")]}, "rules[1].ip_version"),
    ("whitelists[0].sources-ipv6-on-ipv4-task", dict(_rs_wl(sources=["2001:db8::1"]), ip_version="ipv4"),
     "whitelists[0].sources"),
    ("ratelimits[0].exempt_sources-ipv4-on-ipv6-item", _rs_rl(exempt_sources=["198.51.100.1"], ip_version="ipv6"),
     "ratelimits[0].exempt_sources"),
    ("purge-without-policies", {"purge": True, "rules": [_OK_ITEM]}, "purge"),
    ("exclusive_prefix-mismatch", {"exclusive_prefix": "open-", "rules": [{"name": "b", "jump": "ACCEPT"}]},
     "rules[0].name"),
    ("exclusive_prefix-space", {"exclusive_prefix": "open ", "rules": [{"name": "open", "jump": "ACCEPT"}]},
     "exclusive_prefix"),
):
    _add("ruleset structure", _S, _label, _args, _option)


# --------------------------------------------------------------------------- the other side of each limit
# (id, module, args): must succeed (and, on a real host, converge: a rerun changes nothing).
GOOD = [
    ("rule:comment-255-bytes-e-acute", "iptables_rule",
     {"name": "a", "jump": "ACCEPT", "comment": E_ACUTE * ((255 - _TAG_RULE_A) // 2) + "x"}),
    ("rule:comment-255-bytes-ascii", "iptables_rule", {"name": "b", "jump": "ACCEPT", "comment": "c" * (255 - _TAG_RULE_A)}),
    ("rule:log_prefix-28-bytes-14-e-acute", "iptables_rule", {"name": "c", "jump": "LOG", "log_prefix": E_ACUTE * 14}),
    ("rule:log_prefix-29-bytes-ascii", "iptables_rule", {"name": "d", "jump": "LOG", "log_prefix": "p" * 29}),
    ("rule:dports-15", "iptables_rule", {"name": "e", "protocol": "tcp", "dports": _ports(15), "jump": "ACCEPT"}),
    ("rule:in_interface-15-chars", "iptables_rule", {"name": "f", "in_interface": "abcdefghijklmno", "jump": "ACCEPT"}),
    ("rule:priority-0-and-999", "iptables_rule", {"rules": [{"name": "g0", "priority": 0, "jump": "ACCEPT"},
                                                            {"name": "g999", "priority": 999, "jump": "ACCEPT"}]}),
    ("rule:name-64-chars", "iptables_rule", {"name": "n" * 64, "jump": "ACCEPT"}),
    # issue 14: the other side of the new options' limits
    ("rule:nflog_prefix-63-bytes", "iptables_rule", {"name": "h", "jump": "NFLOG", "nflog_prefix": "p" * 63}),
    ("rule:src_range-one-address", "iptables_rule", {"name": "i", "src_range": "198.51.100.1-198.51.100.1",
                                                     "jump": "ACCEPT"}),
    ("rule:connlimit_mask-32-and-128", "iptables_rule", {"rules": [
        {"name": "j4", "connlimit_above": 2, "connlimit_mask": 32, "ip_version": "ipv4", "jump": "DROP"},
        {"name": "j6", "connlimit_above": 2, "connlimit_mask": 128, "ip_version": "ipv6", "jump": "DROP"}]}),
    ("rule:uid_owner-range-in-OUTPUT", "iptables_rule", {"name": "k", "chain": "OUTPUT", "uid_owner": "1000-2000",
                                                         "jump": "ACCEPT"}),
    ("rule:to_ports-65535", "iptables_rule", {"name": "l", "table": "nat", "chain": "POSTROUTING", "protocol": "tcp",
                                              "jump": "MASQUERADE", "to_ports": "65535"}),
    ("rule:to_destination-port-range-both-families", "iptables_rule", {
        "name": "m", "table": "nat", "chain": "PREROUTING", "protocol": "tcp", "dports": [8080], "jump": "DNAT",
        "to_destination": ["198.51.100.9:80-81", "[2001:db8::9]:80-81"]}),
    ("ratelimit:log_prefix-28-bytes-14-e-acute", "iptables_ratelimit", {"name": "lp", "log_prefix": E_ACUTE * 14}),
    ("ratelimit:seconds-2**31-1", "iptables_ratelimit", {"name": "sec", "seconds": 2 ** 31 - 1}),
    ("whitelist:name-28-chars", "iptables_whitelist", {"name": "W" * 28, "ports": ["3306"],
                                                       "sources": ["198.51.100.7", "2001:db8::7"]}),
    # every list at its limits in one declaration (no save: see the iptables_ruleset section above)
    ("ruleset:lists-at-their-limits", "iptables_ruleset", {
        "policies": {"FORWARD": "DROP"},
        "rules": [{"name": "rs-0", "priority": 0, "jump": "ACCEPT",
                   "comment": "c" * (255 - len("ironwall:000:rule:rs-0 "))},
                  {"name": "rs-999", "priority": 999, "protocol": "tcp", "dports": _ports(15, 4000), "jump": "ACCEPT"}],
        "whitelists": [{"name": "R" * 28, "ports": _ports(15, 5000), "sources": ["198.51.100.8", "2001:db8::8"]}],
        "ratelimits": [{"name": "rs_limit", "ports": ["2201"], "log_prefix": E_ACUTE * 14, "seconds": 2 ** 31 - 1,
                        "chain_name": "L" * 28}]}),
]
