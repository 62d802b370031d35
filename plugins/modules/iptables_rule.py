#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: iptables_rule
short_description: Owned, ordered, dual-stack iptables/ip6tables rules
version_added: 0.1.0
description:
  - Places named rules (loopback, established connections, ICMP, open ports, LOG, REJECT,
    jumps to user chains...) in a chain, for IPv4 and IPv6 from one task.
  - The O(name) is the rule's identity; it travels in a comment tag
    C(ironwall:<priority>:rule:<name>) on every line the rule renders. Changing any option
    of a named rule replaces its lines in place; O(state=absent) removes them. Changing
    O(table) or O(chain) moves the rule; no copy stays behind in the old table or chain.
  - Rules carrying a tag are kept in ascending O(priority) order (ties by name) among the
    tagged rules of the chain; rules without a tag (other software's) keep their places.
  - One named rule with several O(source) or O(destination) addresses renders one line
    per source and destination pair; IPv4 addresses go to C(iptables), IPv6 ones to
    C(ip6tables). Without addresses the rule goes to every family of O(ip_version).
  - The O(rules) form converges a whole list with one read and at most one
    C(iptables-restore) transaction per family.
  - All options are checked before any binary runs; a bad value fails naming the option
    (in the O(rules) form, as C(rules[N].option)).
author:
  - ironwall.iptables contributors (@ironwall)
extends_documentation_fragment:
  - ironwall.iptables.common
  - ironwall.iptables.common.table
  - ironwall.iptables.common.attributes
options:
  name:
    description:
      - The rule's identity, 1-64 characters of C(A-Z a-z 0-9 _ . @ -).
      - Required unless O(rules) is given; mutually exclusive with O(rules).
    type: str
  exclusive_prefix:
    description:
      - Makes O(rules) the complete list of the rules whose names start with this prefix. Every
        rule placed by this module whose name starts with it and is not in O(rules) is removed,
        from whatever table and chain it is in, in the same transaction; rules with other names
        and untagged rules are left alone. Use it so that dropping an entry from a list in your
        variables removes its rule on the next run.
      - Every name in O(rules) must start with it. Needs the O(rules) form.
      - The lockout guard applies to the removals like to any other change.
    type: str
  rules:
    description:
      - Several rules at once, each a dictionary with the options of a single rule
        (O(rules[].name) required).
      - O(chain), O(priority), O(state), O(state_match), O(table) and O(ip_version) given at the top level
        are the defaults of every item; an item may override each of them
        (O(rules[].ip_version) may only narrow the top-level one).
      - The other rule options may not be given at the top level with O(rules).
      - Names must be unique in the list.
    type: list
    elements: dict
    suboptions:
      name:
        description: See O(name).
        type: str
        required: true
      chain:
        description: See O(chain). Defaults to the top-level O(chain).
        type: str
      table:
        description: See O(table). Defaults to the top-level O(table).
        type: str
        choices: [filter, nat, mangle, raw, security]
      priority:
        description: See O(priority). Defaults to the top-level O(priority).
        type: int
      state:
        description: See O(state). Defaults to the top-level O(state).
        type: str
        choices: [present, absent]
      ip_version:
        description: See O(ip_version). Defaults to the top-level O(ip_version).
        type: str
        choices: [ipv4, ipv6, both]
      protocol:
        description: See O(protocol).
        type: str
      source:
        description: See O(source).
        type: list
        elements: str
      destination:
        description: See O(destination).
        type: list
        elements: str
      in_interface:
        description: See O(in_interface).
        type: str
      out_interface:
        description: See O(out_interface).
        type: str
      dports:
        description: See O(dports).
        type: list
        elements: raw
      sports:
        description: See O(sports).
        type: list
        elements: raw
      ctstate:
        description: See O(ctstate).
        type: list
        elements: str
      state_match:
        description: See O(state_match). Defaults to the top-level O(state_match).
        type: str
        choices: [conntrack, state]
      icmp_type:
        description: See O(icmp_type).
        type: raw
      jump:
        description: See O(jump).
        type: str
      log_prefix:
        description: See O(log_prefix).
        type: str
      log_level:
        description: See O(log_level).
        type: raw
      reject_with:
        description: See O(reject_with).
        type: str
      comment:
        description: See O(comment).
        type: str
  chain:
    description:
      - The chain of O(table) the rule goes into. A user chain must already exist.
    type: str
    default: INPUT
  priority:
    description:
      - Position among the tagged rules of the chain, 0-999, lower first; rules of equal
        priority are ordered by name.
      - The default 500 leaves room before it (loopback, established, ICMP) and after it
        (logging, final DROP).
    type: int
    default: 500
  state:
    description:
      - V(present) places or replaces the rule; V(absent) removes every line tagged with its name
        from every table of the family, whatever chain it is in.
    type: str
    choices: [present, absent]
    default: present
  protocol:
    description:
      - V(tcp), V(udp), V(icmp), V(sctp), V(all), another name from C(/etc/protocols), or a number 0-255.
      - V(icmp) means ICMP for IPv4 and ICMPv6 (C(ipv6-icmp)) for IPv6.
    type: str
  source:
    description:
      - Source addresses or networks (CIDR). IPv4 entries go to C(iptables), IPv6 entries to
        C(ip6tables); a family without entries gets no line of this rule.
      - Host bits are masked (V(198.51.100.7/24) is V(198.51.100.0/24)).
    type: list
    elements: str
  destination:
    description:
      - Destination addresses or networks, as O(source).
    type: list
    elements: str
  in_interface:
    description:
      - Input interface (C(-i)); V(+) at the end is a wildcard, a leading V(!) negates.
      - Not in chains OUTPUT or POSTROUTING.
    type: str
  out_interface:
    description:
      - Output interface (C(-o)), as O(in_interface). Not in chains INPUT or PREROUTING.
    type: str
  dports:
    description:
      - Destination ports 1-65535 or ranges like V("1000:2000"). One entry renders
        C(--dport), several render C(-m multiport --dports) (at most 15).
      - Needs O(protocol) V(tcp), V(udp), V(udplite), V(sctp) or V(dccp).
    type: list
    elements: raw
  sports:
    description:
      - Source ports, as O(dports).
    type: list
    elements: raw
  ctstate:
    description:
      - Connection states to match, any of V(INVALID), V(NEW), V(RELATED), V(ESTABLISHED),
        V(UNTRACKED), V(SNAT), V(DNAT).
    type: list
    elements: str
  state_match:
    description:
      - How O(ctstate) is matched. V(conntrack) renders C(-m conntrack --ctstate);
        V(state) reproduces the classic C(-m state --state).
    type: str
    choices: [conntrack, state]
    default: conntrack
  icmp_type:
    description:
      - ICMP type name or number (V(echo-request), V(8), V(3/4)); names are translated per
        family, so V(echo-request) is 8 for ICMP and 128 for ICMPv6. Needs O(protocol=icmp).
    type: raw
  jump:
    description:
      - The target, V(ACCEPT), V(DROP), V(REJECT), V(LOG), V(RETURN), or a user chain of
        O(table) that already exists. Required unless O(state=absent).
    type: str
  log_prefix:
    description:
      - With O(jump=LOG), the prefix of the kernel log line, at most 29 characters.
    type: str
  log_level:
    description:
      - With O(jump=LOG), the syslog level, 0-7 or a name (V(warning) is the default).
    type: raw
  reject_with:
    description:
      - With O(jump=REJECT), the reply, for example V(icmp-port-unreachable),
        V(icmp-admin-prohibited) or V(tcp-reset) (needs O(protocol=tcp)).
      - Given in either family's words, it is translated for the other
        (V(icmp-port-unreachable) becomes C(icmp6-port-unreachable) for IPv6).
    type: str
  comment:
    description:
      - Free text kept beside the ownership tag in the rule's comment.
    type: str
notes:
  - Rules are never matched by content, only by their name tag, so a rule added by hand
    or by other software that looks the same is left alone.
seealso:
  - module: ironwall.iptables.iptables_policy
  - module: ironwall.iptables.iptables_info
  - module: ansible.builtin.iptables
"""

EXAMPLES = r"""
- name: The four classic base rules, IPv4 and IPv6, in this order
  ironwall.iptables.iptables_rule:
    rules:
      - name: loopback
        priority: 100
        in_interface: lo
        jump: ACCEPT
      - name: established
        priority: 110
        ctstate: [ESTABLISHED, RELATED]
        state_match: state
        jump: ACCEPT
      - name: icmp
        priority: 120
        protocol: icmp
        jump: ACCEPT
      - name: http
        protocol: tcp
        dports: [80]
        ctstate: [NEW]
        state_match: state
        jump: ACCEPT

- name: SSH from the admin networks only (one IPv4 and one IPv6 line)
  ironwall.iptables.iptables_rule:
    name: ssh-admins
    protocol: tcp
    dports: [22]
    source:
      - 198.51.100.0/24
      - 2001:db8:1::/48
    jump: ACCEPT
    comment: admins

- name: Web ports with one multiport rule
  ironwall.iptables.iptables_rule:
    name: web
    protocol: tcp
    dports: [80, 443, "8000:8100"]
    jump: ACCEPT

- name: Answer pings, on both families (echo-request is 8 for ICMP, 128 for ICMPv6)
  ironwall.iptables.iptables_rule:
    name: ping
    priority: 130
    protocol: icmp
    icmp_type: echo-request
    jump: ACCEPT

- name: Log what reaches the end of INPUT, then reject it
  ironwall.iptables.iptables_rule:
    rules:
      - name: log-rest
        priority: 900
        jump: LOG
        log_prefix: "INPUT drop: "
        log_level: info
      - name: reject-rest
        priority: 910
        jump: REJECT
        reject_with: icmp-admin-prohibited

- name: Remove a rule
  ironwall.iptables.iptables_rule:
    name: web
    state: absent

- name: Open exactly these ports (an entry removed from the list is closed on the next run)
  ironwall.iptables.iptables_rule:
    exclusive_prefix: open-
    rules:
      - {name: open-http, protocol: tcp, dports: [80], ctstate: [NEW], jump: ACCEPT}
      - {name: open-https, protocol: tcp, dports: [443], ctstate: [NEW], jump: ACCEPT}
"""

RETURN = r"""
rules:
  description: The lines the rules want, per family, in C(iptables-save) form.
  returned: always
  type: dict
  sample:
    ipv4: ['-A INPUT -i lo -m comment --comment "ironwall:100:rule:loopback" -j ACCEPT']
    ipv6: ['-A INPUT -i lo -m comment --comment "ironwall:100:rule:loopback" -j ACCEPT']
commands:
  description: The iptables-restore script lines run (or that would run in check mode), per family.
  returned: always
  type: dict
  sample:
    ipv4: ["*filter", '-I INPUT 1 -i lo -m comment --comment "ironwall:100:rule:loopback" -j ACCEPT', "COMMIT"]
    ipv6: []
pruned:
  description: Per family, the names O(exclusive_prefix) removed (or would remove in check mode).
  returned: when O(exclusive_prefix) is given
  type: dict
  sample: {"ipv4": ["open-ftp"], "ipv6": ["open-ftp"]}
calls:
  description: How many times iptables-save and iptables-restore ran.
  returned: always
  type: dict
  sample: {"save": 2, "restore": 0}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ironwall.iptables.plugins.module_utils._argspec import common_argument_spec
from ansible_collections.ironwall.iptables.plugins.module_utils._model import TABLES
from ansible_collections.ironwall.iptables.plugins.module_utils._rules import (
    DEFAULT_CHAIN, DEFAULT_PRIORITY, desired_for, pruned_names, rule_lines, validate_exclusive_prefix, validate_rules)
from ansible_collections.ironwall.iptables.plugins.module_utils._rulespec import SpecError, families
from ansible_collections.ironwall.iptables.plugins.module_utils._transaction import converge, fail


def rule_options():
    """The options of one rule, shared by the single form and the items of ``rules``."""
    return dict(
        protocol=dict(type="str"),
        source=dict(type="list", elements="str"),
        destination=dict(type="list", elements="str"),
        in_interface=dict(type="str"),
        out_interface=dict(type="str"),
        dports=dict(type="list", elements="raw"),
        sports=dict(type="list", elements="raw"),
        ctstate=dict(type="list", elements="str"),
        icmp_type=dict(type="raw"),
        jump=dict(type="str"),
        log_prefix=dict(type="str"),
        log_level=dict(type="raw"),
        reject_with=dict(type="str"),
        comment=dict(type="str"),
    )


def main():
    item = rule_options()
    item.update(
        name=dict(type="str", required=True),
        chain=dict(type="str"),
        table=dict(type="str", choices=list(TABLES)),
        priority=dict(type="int"),
        state=dict(type="str", choices=["present", "absent"]),
        ip_version=dict(type="str", choices=["ipv4", "ipv6", "both"]),
        state_match=dict(type="str", choices=["conntrack", "state"]),
    )
    argument_spec = common_argument_spec()
    argument_spec.update(rule_options())
    argument_spec.update(
        name=dict(type="str"),
        rules=dict(type="list", elements="dict", options=item),
        exclusive_prefix=dict(type="str"),
        chain=dict(type="str", default=DEFAULT_CHAIN),
        priority=dict(type="int", default=DEFAULT_PRIORITY),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        state_match=dict(type="str", default="conntrack", choices=["conntrack", "state"]),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("name", "rules")],
        required_one_of=[("name", "rules")],
    )
    params = module.params
    try:
        rules = validate_rules(params, families(params["ip_version"]))
        prefix = validate_exclusive_prefix(params, rules)
    except SpecError as exc:
        fail(module, exc)

    desired = {}

    def build(family, ruleset):
        desired[family] = desired_for(rules, family, ruleset, prefix)
        return desired[family]

    result, _snapshots, _plans = converge(module, build)
    if prefix is not None:
        result["pruned"] = dict((f, pruned_names(rules, d)) for f, d in desired.items())
    result["rules"] = dict((f, rule_lines(rules, f)) for f in families(params["ip_version"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
