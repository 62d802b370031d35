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
  - ironwall.iptables.rule_options
options:
  chains:
    description:
      - User chains the collection creates for rules (of this task and of other tasks) - each a chain name,
        or a dictionary with C(name), C(table) (default O(table)) and C(state) (V(present) or V(absent),
        default O(state)). A chain name is at most 28 characters of C(A-Z a-z 0-9 _ . @ -) and not a
        built-in chain or target name.
      - A missing chain is created, in every family of O(ip_version), with the collection's ownership
        marker as its first rule - C(-m comment --comment ironwall:chain:rule-chain:<name>), a rule that
        matches and does nothing. Rules go into it by their O(chain) (C(rules[N].chain)), after the marker,
        in priority order like in C(INPUT); rules of other software in it keep their places. Rules jump to
        it with O(jump) (or O(goto)), and may do so in the same run that creates it. It is never
        replaced whole (unlike a whitelist chain), and any task may declare the same chain.
      - A chain of that name that exists without the marker (Docker's, fail2ban's, an admin's) is refused,
        naming C(chains[N]), and is never adopted nor flushed; so is a chain the collection owns for
        another resource (a whitelist or rate limit chain).
      - V(absent) removes the chain with the tagged rules in it and every tagged rule, of any task, that
        jumps to it, in the same transaction. It fails, changing nothing, while a rule without the
        collection's tag is in the chain or jumps to it, or a rule of this task is placed in it or jumps
        to it. A task with O(state=absent) removes the chains it declares, unless an item says otherwise.
      - The task may give O(chains) alone, without O(name) or O(rules), to create or remove chains.
    type: list
    elements: raw
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

- name: A chain for the web rules, entered from INPUT (the chain is created in the same transaction)
  ironwall.iptables.iptables_rule:
    chains: [WEB]
    rules:
      - {name: to-web, priority: 400, protocol: tcp, dports: [80, 443], jump: WEB}
      - {name: web-admins, chain: WEB, priority: 100, source: [198.51.100.0/24], jump: ACCEPT}
      - {name: web-rest, chain: WEB, priority: 900, jump: DROP}

- name: Remove that chain, the rules in it and the jump to it
  ironwall.iptables.iptables_rule:
    chains: [{name: WEB, state: absent}]

- name: Open exactly these ports (an entry removed from the list is closed on the next run)
  ironwall.iptables.iptables_rule:
    exclusive_prefix: open-
    rules:
      - {name: open-http, protocol: tcp, dports: [80], ctstate: [NEW], jump: ACCEPT}
      - {name: open-https, protocol: tcp, dports: [443], ctstate: [NEW], jump: ACCEPT}

- name: A router - port 8080 on the WAN side forwarded to a LAN web server, the LAN masqueraded
  ironwall.iptables.iptables_rule:
    rules:
      - name: fwd-web
        table: nat
        chain: PREROUTING
        in_interface: wan0
        protocol: tcp
        dports: [8080]
        jump: DNAT
        to_destination: ["198.51.100.10:80", "[2001:db8:2::10]:80"]
      - name: fwd-web-accept
        chain: FORWARD
        in_interface: wan0
        destination: [198.51.100.10, "2001:db8:2::10"]
        protocol: tcp
        dports: [80]
        ctstate: [NEW]
        jump: ACCEPT
      - name: lan-out
        table: nat
        chain: POSTROUTING
        source: [198.51.100.0/24]
        out_interface: wan0
        jump: MASQUERADE

- name: At most 3 parallel connections per client to port 80, new SSH connections limited per source
  ironwall.iptables.iptables_rule:
    rules:
      - {name: web-connlimit, priority: 300, protocol: tcp, dports: [80], syn: match, connlimit_above: 3,
         jump: REJECT, reject_with: tcp-reset}
      - name: ssh-hashlimit
        priority: 310
        protocol: tcp
        dports: [22]
        ctstate: [NEW]
        hashlimit: {name: ssh, rate: 10/minute, burst: 5, above: true, mode: [srcip]}
        jump: DROP

- name: Clamp the MSS of forwarded SYNs to the path MTU (PPPoE, VPN links)
  ironwall.iptables.iptables_rule:
    name: mss-clamp
    table: mangle
    chain: FORWARD
    protocol: tcp
    syn: match
    jump: TCPMSS
    clamp_mss_to_pmtu: true

- name: A match the options do not cover, written as iptables words (learned from the kernel, exact on reruns)
  ironwall.iptables.iptables_rule:
    name: drop-tos-0x10
    ip_version: ipv4
    raw: "-m u32 --u32 '0>>22&0x3C@12>>26&0x3F=0x10' -j DROP"
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
chains:
  description:
    - Per family, C(table:name) of the chains of O(chains) the task created and removed (or would, in
      check mode).
  returned: when O(chains) is given
  type: dict
  sample: {"ipv4": {"created": ["filter:WEB"], "removed": []}, "ipv6": {"created": ["filter:WEB"], "removed": []}}
calls:
  description:
    - How many times each binary ran - C(save) (iptables-save, one read per family and one
      read-back of a table the change inserted rules into), C(restore) (iptables-restore), and
      C(watchdog) (the rollback watchdog) or C(version) (C(iptables -V)) when they ran, and
      C(learn) (one private network namespace, C(unshare --net), where the kernel prints the lines of
      rules with O(raw) in its own form; only when a rule has O(raw)).
  returned: always
  type: dict
  sample: {"save": 2, "restore": 0}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ironwall.iptables.plugins.module_utils import _options
from ansible_collections.ironwall.iptables.plugins.module_utils._argspec import common_argument_spec
from ansible_collections.ironwall.iptables.plugins.module_utils._netfilter import host_protocols
from ansible_collections.ironwall.iptables.plugins.module_utils._rules import (
    ChainsResource, RulesResource, validate_chains, validate_exclusive_prefix, validate_rules)
from ansible_collections.ironwall.iptables.plugins.module_utils._rulespec import families
from ansible_collections.ironwall.iptables.plugins.module_utils._transaction import run


def main():
    argument_spec = common_argument_spec()
    argument_spec.update(_options.argspec(top=True))
    argument_spec.update(
        rules=dict(type="list", elements="dict", options=_options.argspec(top=False)),
        exclusive_prefix=dict(type="str"),
        chains=dict(type="list", elements="raw"),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("name", "rules")],
        required_one_of=[("name", "rules", "chains")],
    )
    params = module.params

    def build():
        chains = validate_chains(params["chains"], params["table"], params["state"])
        given = params
        if params["name"] is None and params["rules"] is None:
            given = dict(params, rules=[])  # chains alone: no rule, and no rule option without a rule
        rules = validate_rules(given, families(params["ip_version"]), host_protocols())
        resources = [RulesResource(rules, validate_exclusive_prefix(given, rules))]
        if chains:
            resources.append(ChainsResource(chains))
        return resources

    run(module, build)


if __name__ == "__main__":
    main()
