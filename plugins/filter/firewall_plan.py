# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: firewall_plan
short_description: The arguments of iptables_ruleset for the firewall role's variables
version_added: 0.2.0
description:
  - Used by the role M(ironwall.iptables.firewall) on the controller - turns its C(firewall_*) variables
    into the arguments of M(ironwall.iptables.iptables_ruleset) (the base rules, the SSH port, the open
    ports, the port forwards and masquerading, the extra rules, the blocklists, the whitelists and rate
    limits, the policies and what to save), and says on which families nothing would accept the SSH port
    (C(ssh_unreachable)).
  - Raises a clear error, naming the variable, for a malformed C(firewall_open_ports),
    C(firewall_forwarded_ports), C(firewall_masquerade), C(firewall_extra_rules) or C(firewall_blocklists)
    entry and for rule names that collide; option values are left to the module, which checks them on the target.
author:
  - ironwall.iptables contributors (@ironwall)
options:
  _input:
    description: The role's variables, without their C(firewall_) prefix (see the role's C(vars/main.yml)).
    type: dict
    required: true
"""

EXAMPLES = r"""
plan: "{{ {'policies': {'INPUT': 'DROP'}, 'ipv6': true, 'ssh_port': 22, 'open_ports': [80]} | ironwall.iptables.firewall_plan }}"
"""

RETURN = r"""
_value:
  description:
    - C(ip_version), C(policies) (or none), C(rules), C(whitelists), C(ratelimits) and C(save) (or none) for
      M(ironwall.iptables.iptables_ruleset); C(ssh_unreachable), the families where nothing would accept the
      SSH port under a DROP policy of INPUT; C(ssh_rate_limited), the families whose SSH port a rate limit accepts;
      C(ssh_forwarded), the C(firewall_forwarded_ports) entries that would send new connections to the SSH port
      on any interface to another host; C(sets), the blocklists as M(ironwall.iptables.iptables_ruleset)'s
      C(sets) items (C(name), C(entries), C(ip_version)), converged in the same task before the rules that match
      them; C(sysctl), the C(/proc/sys) paths IP forwarding needs set to 1 (empty unless C(ip_forward) is true).
    - C(blocklist_texts) in the input are the contents of the C(file) entries of C(blocklists), in their order
      (the role reads them on the controller with C(query('ansible.builtin.file', ...))).
  type: dict
"""

import re

from ansible.errors import AnsibleFilterError

_DIGITS = re.compile(r"[0-9]+\Z")

ICMPV6_ND = ((133, "router-solicitation"), (134, "router-advertisement"), (135, "neighbour-solicitation"),
             (136, "neighbour-advertisement"))
OPEN_PORT_KEYS = ("port", "protocol", "sources", "state", "in_interface")
FORWARD_KEYS = ("port", "protocol", "to", "in_interface", "sources", "destination", "name")
MASQUERADE_KEYS = ("out_interface", "sources", "name")
BLOCKLIST_KEYS = ("name", "entries", "file", "action")
BLOCKLIST_ACTIONS = ("DROP", "REJECT")
ND_PRIORITY = 102  # ICMPv6 neighbour discovery: after loopback (100), before the blocklists
BLOCKLIST_PRIORITY = 105  # after loopback (100), before established (110): a listed source gets nothing
_SET_NAME = re.compile(r"[A-Za-z0-9_.-]{1,28}\Z")
FORWARD_PROTOCOLS = ("tcp", "udp")
SYSCTL = {"ipv4": "net/ipv4/ip_forward", "ipv6": "net/ipv6/conf/all/forwarding"}
MAX_RULE_NAME = 64
_NAME_WORD = re.compile(r"[A-Za-z0-9_.@-]+\Z")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_.@-]")


def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _covers(ports, port):
    """Does a port list (22, "1000:2000", [..]) include ``port``?"""
    for p in _as_list(ports):
        text = str(p)
        if ":" in text:
            lo, hi = (part.strip() for part in text.split(":", 1))
            if _DIGITS.match(lo or "0") and _DIGITS.match(hi or "65535") and int(lo or 0) <= port <= int(hi or 65535):
                return True
        elif _DIGITS.match(text.strip()) and int(text) == port:
            return True
    return False


def _item_families(value, families):
    wanted = ["ipv4", "ipv6"] if value in (None, "both") else [value]
    return [f for f in wanted if f in families]


def _v4_only(addresses):
    return [a for a in _as_list(addresses) if ":" not in str(a)]


def _open_port(entry):
    if isinstance(entry, dict):
        unknown = sorted(set(entry) - set(OPEN_PORT_KEYS))
        if "port" not in entry or unknown:
            extra = " (unknown: %s)" % ", ".join(unknown) if unknown else ""
            raise AnsibleFilterError(
                "firewall_open_ports: %r is neither a port (80 or \"1000:2000\") nor a dict with `port` and "
                "optionally `protocol`, `sources`, `state`, `in_interface`%s" % (entry, extra))
        return entry
    if isinstance(entry, (list, tuple, set)):
        raise AnsibleFilterError("firewall_open_ports: %r is neither a port (80 or \"1000:2000\") nor a dict with "
                                 "`port` and optionally `protocol`, `sources`, `state`, `in_interface`" % (entry,))
    return {"port": entry}


def _word(text):
    """A piece of a rule name: the characters a name may not hold become ``_`` (``eth+`` -> ``eth_``)."""
    return _NOT_NAME.sub("_", str(text))


def _family(address):
    return "ipv6" if ":" in str(address) else "ipv4"


def _of(addresses, families):
    """The entries of ``addresses`` in ``families``."""
    return [a for a in _as_list(addresses) if _family(a) in families]


def _narrowed(rule, fams, families):
    if len(fams) < len(families):
        rule["ip_version"] = fams[0]
    return rule


def _entry(var, index, entry, keys, required):
    """Entry ``index`` of ``var``: a dict of ``keys`` with the ``required`` ones given. Returns (where, copy)."""
    where = "%s[%d]" % (var, index)
    if not isinstance(entry, dict):
        raise AnsibleFilterError("%s: %r is not a dict (with %s)" % (where, entry, ", ".join("`%s`" % k for k in keys)))
    unknown = sorted(str(k) for k in set(entry) - set(keys))
    if unknown:
        raise AnsibleFilterError("%s: unknown key %s (known: %s)" % (where, ", ".join(unknown), ", ".join(keys)))
    for key in required:
        if entry.get(key) in (None, "", []):
            raise AnsibleFilterError("%s.%s is required" % (where, key))
    name = entry.get("name")
    if name is not None and not (isinstance(name, str) and _NAME_WORD.match(name)):
        raise AnsibleFilterError("%s.name: %r is not a name of A-Z a-z 0-9 _ . @ -" % (where, name))
    return where, dict(entry)


def _split_target(where, text):
    """A ``to`` of a forwarded port: (family, address, port or None). Only the shape is read here (the
    module checks the values on the target): ``addr``, ``addr:port``, ``addr:lo-hi``, ``v6addr``,
    ``[v6addr]``, ``[v6addr]:port``."""
    bad = AnsibleFilterError("%s: %r is not an address, address:port or [IPv6 address]:port" % (where, text))
    if not isinstance(text, str):
        raise bad
    text = text.strip()
    if text.startswith("["):
        addr, sep, rest = text[1:].partition("]")
        if not sep or not addr or ":" not in addr or rest == ":" or (rest and not rest.startswith(":")):
            raise bad
        return "ipv6", addr, rest[1:] or None
    if not text or "/" in text or " " in text:
        raise bad
    if text.count(":") == 1:
        addr, _sep, port = text.partition(":")
        if not addr or not port:
            raise bad
        return "ipv4", addr, port
    return _family(text), text, None


def _forwarded_port(where, e, families):
    """The DNAT rule in nat PREROUTING and the accept of new connections in FORWARD for one forwarded
    port; ([], name) when none of its families is managed (IPv6 only, firewall_ipv6 false)."""
    proto = str(e.get("protocol") or "tcp").lower()
    if proto not in FORWARD_PROTOCOLS:
        raise AnsibleFilterError("%s.protocol: %r is not one of %s"
                                 % (where, e.get("protocol"), ", ".join(FORWARD_PROTOCOLS)))
    if not isinstance(e["port"], (int, str)) or isinstance(e["port"], bool):
        raise AnsibleFilterError("%s.port: %r is not a port (8080) or a range (\"8000:8010\")" % (where, e["port"]))
    targets = {}
    for text in _as_list(e["to"]):
        family, addr, port = _split_target(where + ".to", text)
        if family in targets:
            raise AnsibleFilterError("%s.to: at most one address per family, got %r" % (where, e["to"]))
        targets[family] = (text.strip(), addr, port)
    sources = _as_list(e.get("sources"))
    common = [f for f in ("ipv4", "ipv6") if f in targets and (not sources or _of(sources, [f]))]
    if not common:
        raise AnsibleFilterError("%s: `to` (%s) and `sources` (%s) have no address family in common"
                                 % (where, ", ".join(map(str, _as_list(e["to"]))), ", ".join(map(str, sources))))
    name = e.get("name")
    if not name:
        name = "%s-%s" % (proto, _word(str(e["port"]).replace(":", "-")))
        if e.get("in_interface"):
            name += "-" + _word(e["in_interface"])
    fams = [f for f in common if f in families]
    if not fams:
        return [], name
    dnat = {"name": "firewall-dnat-" + name, "table": "nat", "chain": "PREROUTING", "priority": 500,
            "protocol": proto, "dports": [e["port"]], "jump": "DNAT",
            "to_destination": [targets[f][0] for f in fams]}
    if e.get("in_interface"):
        dnat["in_interface"] = e["in_interface"]
    if sources:
        dnat["source"] = _of(sources, fams)
    if e.get("destination"):
        dnat["destination"] = _of(e["destination"], fams)
    rules = [_narrowed(dnat, fams, families)]
    # FORWARD: new connections to the new destination, at its port (the forwarded one when `to` has none);
    # one rule per family only when the families' ports differ.
    by_port = {}
    for f in fams:
        port = targets[f][2]
        by_port.setdefault(port.replace("-", ":") if port else e["port"], []).append(f)
    for port, fs in by_port.items():
        accept = {"name": "firewall-dnat-%s-accept%s" % (name, "-" + fs[0] if len(by_port) > 1 else ""),
                  "chain": "FORWARD", "priority": 500, "protocol": proto, "dports": [port],
                  "destination": [targets[f][1] for f in fs], "ctstate": ["NEW"], "jump": "ACCEPT"}
        if e.get("in_interface"):
            accept["in_interface"] = e["in_interface"]
        if sources:
            accept["source"] = _of(sources, fs)
        rules.append(_narrowed(accept, fs, families))
    return rules, name


def _masquerade(where, e, families):
    """MASQUERADE in nat POSTROUTING and the accept of new connections in FORWARD for one entry;
    [] when it has sources but none of a managed family."""
    all_sources = _as_list(e.get("sources"))
    sources = _of(all_sources, families)
    if all_sources and not sources:
        return []
    fams = [f for f in families if not sources or _of(sources, [f])]
    name = e.get("name") or _word(e["out_interface"])
    masq = {"name": "firewall-masquerade-" + name, "table": "nat", "chain": "POSTROUTING", "priority": 500,
            "out_interface": e["out_interface"], "jump": "MASQUERADE"}
    accept = {"name": "firewall-masquerade-%s-accept" % name, "chain": "FORWARD", "priority": 500,
              "out_interface": e["out_interface"], "ctstate": ["NEW"], "jump": "ACCEPT"}
    for rule in (masq, accept):
        if sources:
            rule["source"] = list(sources)
        _narrowed(rule, fams, families)
    return [masq, accept]


def _extra_rules(items):
    """firewall_extra_rules as given (copies): dicts with a name; the module checks the rest on the target."""
    out = []
    for index, item in enumerate(_as_list(items)):
        where = "firewall_extra_rules[%d]" % index
        if not isinstance(item, dict):
            raise AnsibleFilterError("%s: %r is not a dict of iptables_ruleset rules[] options" % (where, item))
        if not isinstance(item.get("name"), str) or not item["name"]:
            raise AnsibleFilterError("%s.name is required (a rule name, unique among the role's rules)" % where)
        out.append(dict(item))
    return out


def _blocklists(items, ipv6, texts=()):
    """firewall_blocklists -> (iptables_ruleset sets items, rules matching them, origin of each rule).
    ``texts``: the contents of the ``file`` entries, in their order (read by the role on the controller)."""
    sets, rules, origin = [], [], {}
    texts = list(texts or ())
    for index, entry in enumerate(_as_list(items)):
        where, e = _entry("firewall_blocklists", index, entry, BLOCKLIST_KEYS, ("name",))
        name = e["name"]
        if not isinstance(name, str) or not _SET_NAME.match(name):
            raise AnsibleFilterError("%s.name: %r is not a set name of at most 28 characters of A-Z a-z 0-9 _ . - "
                                     "(the IPv6 set is the name followed by _v6)" % (where, name))
        if (e.get("entries") is None) == (e.get("file") is None):
            raise AnsibleFilterError("%s: give `entries` (a list) or `file` (a file on the controller, one entry "
                                     "per line), not both" % where)
        action = str(e.get("action") or "DROP").upper()
        if action not in BLOCKLIST_ACTIONS:
            raise AnsibleFilterError("%s.action: must be DROP or REJECT, got %r" % (where, e.get("action")))
        item = {"name": name, "ip_version": "both" if ipv6 else "ipv4"}
        if e.get("file") is not None:
            if not isinstance(e["file"], str):
                raise AnsibleFilterError("%s.file: must be a file name, got %r" % (where, e["file"]))
            if not texts:
                raise AnsibleFilterError("%s.file: its content was not read (blocklist_texts)" % where)
            # a text: with ip_version ipv4 the module refuses an IPv6 line, naming it
            item["entries"] = texts.pop(0)
        else:
            item["entries"] = [str(x) for x in _as_list(e["entries"])]
            if not ipv6:
                item["entries"] = [x for x in item["entries"] if ":" not in x]
        sets.append(item)
        for family, setname in (("ipv4", name), ("ipv6", name + "_v6")):
            if family == "ipv6" and not ipv6:
                continue
            rule = {"name": "firewall-blocklist-%s%s" % (name, "-v6" if family == "ipv6" else ""),
                    "priority": BLOCKLIST_PRIORITY, "ip_version": family, "match_set": setname, "jump": action}
            rules.append(rule)
            origin[id(rule)] = where
    return sets, rules, origin


def _unique(rules, origin):
    """Every rule name at most once and at most 64 characters; an error names the variables that made
    the rules (``origin``: id of a rule -> variable; the role's base rules have none)."""
    seen = {}
    for r in rules:
        name, made_by = r["name"], origin.get(id(r), "the role's base rules")
        if len(name) > MAX_RULE_NAME and made_by != "the role's base rules":
            raise AnsibleFilterError("%s: the rule name %r is longer than %d characters; give a shorter `name`"
                                     % (made_by, name, MAX_RULE_NAME))
        if name in seen:
            raise AnsibleFilterError("%s and %s both make a rule named %r; rule names must be unique, give one "
                                     "of them another `name`" % (seen[name], made_by, name))
        seen[name] = made_by


def _items(items, priority, addresses, ipv6):
    """The role's whitelists or rate limits: the role's default priority; without IPv6, IPv4 only
    (the IPv6 entries of ``addresses`` left out)."""
    out = []
    for item in _as_list(items):
        item = dict(item)
        if item.get("priority") is None:
            item["priority"] = priority
        if not ipv6:
            item["ip_version"] = "ipv4"
            if item.get(addresses) is not None:
                item[addresses] = _v4_only(item[addresses])
        out.append(item)
    return out


def firewall_plan(v):
    if not isinstance(v, dict):
        raise AnsibleFilterError("firewall_plan expects a dict of the role's variables, got %r" % type(v).__name__)
    ipv6 = bool(v.get("ipv6", True))
    families = ["ipv4", "ipv6"] if ipv6 else ["ipv4"]
    ssh = int(v.get("ssh_port", 22))
    established = bool(v.get("allow_established", True))

    limited = []
    ratelimits = _items(v.get("ratelimits"), 200, "exempt_sources", ipv6)
    for item in ratelimits:
        if (established and (item.get("state") or "present") == "present" and item.get("accept") is not False
                and str(item.get("protocol") or "tcp").lower() == "tcp" and _covers(item.get("ports") or [22], ssh)):
            limited.extend(_item_families(item.get("ip_version"), families))
    unlimited = [f for f in families if f not in limited]
    ssh_rule = bool(v.get("ssh_accept", True)) and bool(unlimited)

    opened = []
    port_rules = []
    for entry in _as_list(v.get("open_ports")):
        e = _open_port(entry)
        proto = str(e.get("protocol") or "tcp").lower()
        all_sources = _as_list(e.get("sources"))
        sources = all_sources if ipv6 else _v4_only(all_sources)
        present = (e.get("state") or "present") == "present" and not (all_sources and not sources)
        if present and proto == "tcp" and _covers(e["port"], ssh):
            if sources:
                opened += (["ipv4"] if _v4_only(sources) else []) + (
                    ["ipv6"] if any(":" in str(s) for s in sources) else [])
            else:
                opened += families
        name = "firewall-port-%s-%s" % (proto, str(e["port"]).replace(":", "-"))
        rule = {"name": name + ("-" + _word(e["in_interface"]) if e.get("in_interface") else ""), "priority": 500,
                "protocol": proto, "dports": [e["port"]], "ctstate": ["NEW"], "jump": "ACCEPT",
                "state": "present" if present else "absent"}
        if e.get("in_interface"):
            rule["in_interface"] = e["in_interface"]
        if sources:
            rule["source"] = sources
        port_rules.append(rule)

    def onoff(flag):
        return "present" if flag else "absent"

    rules = [
        {"name": "firewall-loopback", "priority": 100, "in_interface": "lo", "jump": "ACCEPT",
         "state": onoff(v.get("allow_loopback", True))},
        {"name": "firewall-established", "priority": 110, "ctstate": ["RELATED", "ESTABLISHED"], "jump": "ACCEPT",
         "state": onoff(established)},
    ]
    if ipv6:
        # Before the blocklists (105): the guard cannot know the next hop's address, so a rule that drops
        # by address ahead of neighbour discovery would leave an IPv6 SSH connection unproven.
        rules += [{"name": "firewall-icmpv6-" + label, "priority": ND_PRIORITY, "ip_version": "ipv6",
                   "protocol": "icmp", "icmp_type": number, "jump": "ACCEPT"} for number, label in ICMPV6_ND]
    rules.append({"name": "firewall-icmp", "priority": 130, "protocol": "icmp", "jump": "ACCEPT",
                  "state": onoff(v.get("allow_icmp", True))})
    rules.append({"name": "firewall-ssh", "priority": 210, "protocol": "tcp", "dports": [ssh],
                  "ip_version": unlimited[0] if len(unlimited) == 1 else ("both" if ipv6 else "ipv4"),
                  "jump": "ACCEPT", "state": onoff(ssh_rule)})
    rules += port_rules

    origin = dict((id(r), "firewall_open_ports") for r in port_rules)
    ssh_forwarded = []
    nat_rules = []
    for index, entry in enumerate(_as_list(v.get("forwarded_ports"))):
        where, e = _entry("firewall_forwarded_ports", index, entry, FORWARD_KEYS, ("port", "to"))
        made, name = _forwarded_port(where, e, families)
        origin.update((id(r), where) for r in made)
        nat_rules += made
        # DNAT of the SSH port on every interface sends the next SSH connection to another host.
        if (made and made[0]["protocol"] == "tcp" and not e.get("in_interface") and not e.get("destination")
                and _covers(e["port"], ssh)):
            ssh_forwarded.append("%s (%s)" % (where, name))
    for index, entry in enumerate(_as_list(v.get("masquerade"))):
        where, e = _entry("firewall_masquerade", index, entry, MASQUERADE_KEYS, ("out_interface",))
        made = _masquerade(where, e, families)
        origin.update((id(r), where) for r in made)
        nat_rules += made
    if nat_rules:
        # Under a FORWARD policy of DROP the replies (and ICMP errors) of forwarded connections need this.
        rules.append({"name": "firewall-forward-established", "chain": "FORWARD", "priority": 110,
                      "ctstate": ["RELATED", "ESTABLISHED"], "jump": "ACCEPT"})
    rules += nat_rules
    blocklist_sets, blocklist_rules, blocklist_origin = _blocklists(v.get("blocklists"), ipv6, v.get("blocklist_texts"))
    origin.update(blocklist_origin)
    rules += blocklist_rules
    # The extra rules come first, so that an error of the module naming rules[i] is firewall_extra_rules[i].
    extra = _extra_rules(v.get("extra_rules"))
    origin.update((id(r), "firewall_extra_rules[%d]" % i) for i, r in enumerate(extra))
    _unique(rules + extra, origin)
    rules = extra + rules

    whitelists = _items(v.get("whitelists"), 400, "sources", ipv6)

    policies = dict((k, p) for k, p in (v.get("policies") or {}).items() if p is not None)
    accepted = set(limited + opened + (unlimited if ssh_rule else []))
    save = None
    if v.get("persist", True):
        save = {"ipv4": v.get("rules_file") or "/etc/iptables.rules", "scope": v.get("persist_scope") or "owned",
                "boot": v.get("restore") or "auto"}
        if ipv6:
            save["ipv6"] = v.get("rules6_file") or "/etc/ip6tables.rules"
        if blocklist_sets or any(isinstance(w, dict) and w.get("backend") == "ipset" for w in whitelists):
            save["sets"] = v.get("sets_file") or "/etc/iptables.ipsets"
    return {
        "ip_version": "both" if ipv6 else "ipv4",
        "policies": policies or None,
        "rules": rules,
        "whitelists": whitelists,
        "ratelimits": ratelimits,
        "save": save,
        "ssh_rate_limited": sorted(set(limited)),
        "ssh_unreachable": [f for f in families if f not in accepted],
        "ssh_forwarded": ssh_forwarded,
        "sets": blocklist_sets,
        "sysctl": [SYSCTL[f] for f in families] if v.get("ip_forward") else [],
    }


class FilterModule(object):
    def filters(self):
        return {"firewall_plan": firewall_plan}
