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
    ports, the whitelists and rate limits, the policies and what to save), and says on which
    families nothing would accept the SSH port (C(ssh_unreachable)).
  - Raises a clear error for a malformed C(firewall_open_ports) entry.
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
      SSH port under a DROP policy of INPUT; C(ssh_rate_limited), the families whose SSH port a rate limit accepts.
  type: dict
"""

import re

from ansible.errors import AnsibleFilterError

_DIGITS = re.compile(r"[0-9]+\Z")

ICMPV6_ND = ((133, "router-solicitation"), (134, "router-advertisement"), (135, "neighbour-solicitation"),
             (136, "neighbour-advertisement"))
OPEN_PORT_KEYS = ("port", "protocol", "sources", "state")


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
                "optionally `protocol`, `sources`, `state`%s" % (entry, extra))
        return entry
    if isinstance(entry, (list, tuple, set)):
        raise AnsibleFilterError("firewall_open_ports: %r is neither a port (80 or \"1000:2000\") nor a dict with "
                                 "`port` and optionally `protocol`, `sources`, `state`" % (entry,))
    return {"port": entry}


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
        rule = {"name": "firewall-port-%s-%s" % (proto, str(e["port"]).replace(":", "-")), "priority": 500,
                "protocol": proto, "dports": [e["port"]], "ctstate": ["NEW"], "jump": "ACCEPT",
                "state": "present" if present else "absent"}
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
        rules += [{"name": "firewall-icmpv6-" + label, "priority": 120, "ip_version": "ipv6", "protocol": "icmp",
                   "icmp_type": number, "jump": "ACCEPT"} for number, label in ICMPV6_ND]
    rules.append({"name": "firewall-icmp", "priority": 130, "protocol": "icmp", "jump": "ACCEPT",
                  "state": onoff(v.get("allow_icmp", True))})
    rules.append({"name": "firewall-ssh", "priority": 210, "protocol": "tcp", "dports": [ssh],
                  "ip_version": unlimited[0] if len(unlimited) == 1 else ("both" if ipv6 else "ipv4"),
                  "jump": "ACCEPT", "state": onoff(ssh_rule)})
    rules += port_rules

    whitelists = _items(v.get("whitelists"), 400, "sources", ipv6)

    policies = dict((k, p) for k, p in (v.get("policies") or {}).items() if p is not None)
    accepted = set(limited + opened + (unlimited if ssh_rule else []))
    save = None
    if v.get("persist", True):
        save = {"ipv4": v.get("rules_file") or "/etc/iptables.rules", "scope": v.get("persist_scope") or "owned",
                "boot": v.get("restore") or "auto"}
        if ipv6:
            save["ipv6"] = v.get("rules6_file") or "/etc/ip6tables.rules"
    return {
        "ip_version": "both" if ipv6 else "ipv4",
        "policies": policies or None,
        "rules": rules,
        "whitelists": whitelists,
        "ratelimits": ratelimits,
        "save": save,
        "ssh_rate_limited": sorted(set(limited)),
        "ssh_unreachable": [f for f in families if f not in accepted],
    }


class FilterModule(object):
    def filters(self):
        return {"firewall_plan": firewall_plan}
