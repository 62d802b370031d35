#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: iptables_whitelist
short_description: Restrict a service port to a list of sources with a whitelist chain (iptables and ip6tables)
version_added: 0.1.0
description:
  - Manages the classic per-service whitelist in the C(filter) table, for IPv4 and IPv6 from one task.
  - The chain O(name) (for example C(MYSQL_WHITELIST)) is owned by this module. It holds exactly one
    C(-s SOURCE -j ACCEPT) rule per entry of O(sources), in the given order; entries no longer listed
    are removed. When its content differs it is replaced as a whole in the same
    C(iptables-restore --noflush) transaction that changes anything else, so thousands of sources
    converge in one run and packets never see a half-written list.
  - In O(chain) (C(INPUT) by default) the module places two rules that match new connections
    (O(ctstate)) to O(ports) over O(protocol) - the jump to O(name), then the O(fallback)
    (C(DROP) by default) - both tagged C(ironwall:<priority>:whitelist:<name>) and kept in
    priority order among the collection's other tagged rules. A listed source is accepted by the
    whitelist chain; any other source returns from it and meets the fallback.
  - The jump and the fallback match with C(-m conntrack --ctstate), the current name of the
    connection-state match; O(state_match=state) writes the older C(-m state --state) form instead.
    iptables treats the two as different rules, so pick one and keep it.
  - With O(ip_version=both), IPv4 sources go to C(iptables) and IPv6 sources to C(ip6tables).
    B(A family with no source still gets the empty chain, the jump and the fallback, so the port
    is closed in that family.) Use O(ip_version) to leave a family alone.
  - O(state=absent) removes the jump and the fallback and deletes the chain, in one transaction
    per family.
  - Sources are normalized as C(iptables-save) prints them (V(198.51.100.7) becomes
    V(198.51.100.7/32), host bits of a CIDR are masked) and de-duplicated, keeping the first
    occurrence's place.
  - With O(backend=ipset) the sources are held in an ipset instead of a chain (see O(backend)), so
    a new connection costs one hash lookup whatever the number of sources.
author:
  - ironwall.iptables contributors (@ironwall)
extends_documentation_fragment:
  - ironwall.iptables.common
  - ironwall.iptables.common.attributes
options:
  name:
    description:
      - The whitelist chain, created in the C(filter) table, for example V(MYSQL_WHITELIST).
      - At most 28 characters of C(A-Z a-z 0-9 _ . @ -); not a built-in chain (V(INPUT)...) nor a
        target name (V(ACCEPT), V(DROP), V(RETURN)...).
      - It is also the identity of the jump and fallback rules (their comment tag).
    type: str
    required: true
  sources:
    description:
      - IPv4 and IPv6 addresses and CIDRs allowed to reach O(ports), both families mixed, for
        example V(198.51.100.25) or V(2001:db8:100::/64).
      - The chain accepts exactly these, in this order. An empty list closes the port for everyone.
      - An address of a family outside O(ip_version) is an error.
    type: list
    elements: str
    default: []
  ports:
    description:
      - The destination port(s) or ranges (V(1000:2000)) to protect, at most 15.
      - Required with a port protocol (V(tcp), V(udp), V(udplite), V(sctp), V(dccp)); not allowed with
        V(icmp), V(icmpv6) or V(all).
      - One port is matched with C(-m tcp --dport), several with C(-m multiport --dports).
    type: list
    elements: str
  protocol:
    description:
      - The protocol of the service.
      - V(icmp) is written as C(icmp) for IPv4 and C(ipv6-icmp) for IPv6; V(all) matches any protocol.
    type: str
    default: tcp
  chain:
    description:
      - The chain that gets the jump to O(name) and the fallback, V(INPUT) by default; V(FORWARD) or
        a user chain also work. The chain must exist.
    type: str
    default: INPUT
  priority:
    description:
      - Position of the jump and the fallback among the rules the collection tags in O(chain)
        (0-999, lower first, ties by name). Untagged rules keep their places.
    type: int
    default: 500
  ctstate:
    description:
      - Connection states the jump and the fallback match, V([NEW]) by default, so established
        connections are left to an earlier C(ESTABLISHED,RELATED) rule.
      - An empty list matches every packet of the service.
    type: list
    elements: str
    default: [NEW]
  state_match:
    description:
      - V(conntrack) writes C(-m conntrack --ctstate); V(state) writes the legacy C(-m state --state).
    type: str
    choices: [conntrack, state]
    default: conntrack
  fallback:
    description:
      - The rule right after the jump, met by every source the whitelist does not accept.
      - V(REJECT) answers with C(icmp-port-unreachable) (IPv4) or C(icmp6-port-unreachable) (IPv6).
      - V(none) places only the jump; whatever follows in O(chain) decides (for example a C(DROP) policy).
    type: str
    choices: [DROP, REJECT, none]
    default: DROP
  backend:
    description:
      - V(chain) holds the sources in the whitelist chain O(name), one rule per source, and every new
        connection to O(ports) walks the list.
      - V(ipset) holds them in the ipsets O(name) (IPv4) and C(<name>_v6) (IPv6), type C(hash:net),
        owned as M(ironwall.iptables.iptables_ipset) owns its sets, and places
        C(-m set --match-set <set> src -j ACCEPT) instead of the jump, one hash lookup per new
        connection. O(name) is then at most 28 characters of C(A-Z a-z 0-9 _ . -), and a source
        C(0.0.0.0/0) or C(::/0) is refused (ipset cannot hold it).
      - Switching converges in one run without a gap. To ipset, the set is filled and swapped in
        first, then one C(iptables-restore) transaction per family replaces the jump by the set's
        accept and deletes the chain. Back to chain, one transaction creates the chain and
        replaces the accept, then the sets are destroyed. Every new connection meets either the
        old accept or the new one.
      - While a rollback is pending (O(rollback_timeout)), sets no longer used are kept, since the
        undo may need them; the next run destroys them. Set contents are not undone by a rollback.
    type: str
    choices: [chain, ipset]
    default: chain
  state:
    description:
      - V(present) creates or updates the chain, the jump and the fallback.
      - V(absent) removes the jump and the fallback and deletes the chain. Only O(name) (and
        O(ip_version)) matter then.
    type: str
    choices: [present, absent]
    default: present
notes:
  - The module manages the C(filter) table only.
  - Each run reads each family once and writes nothing when the chain, the jump and the fallback
    are already as requested, so a rerun of 10,000 sources takes well under a second.
seealso:
  - module: ironwall.iptables.iptables_rule
  - module: ironwall.iptables.iptables_policy
  - module: ironwall.iptables.iptables_info
"""

EXAMPLES = r"""
- name: Only the application servers may open MySQL connections (IPv4 and IPv6)
  ironwall.iptables.iptables_whitelist:
    name: MYSQL_WHITELIST
    ports: [3306]
    sources:
      - 198.51.100.25
      - 203.0.113.0/24
      - 2001:db8:100::/64

- name: Whitelist kept in inventory, rejected instead of silently dropped
  ironwall.iptables.iptables_whitelist:
    name: PG_WHITELIST
    ports: [5432]
    sources: "{{ postgres_clients }}"
    fallback: REJECT
    priority: 300

- name: Several ports, IPv4 only, the classic -m state form
  ironwall.iptables.iptables_whitelist:
    name: ELASTIC_WHITELIST
    ports: [9200, "9300:9400"]
    sources: [198.51.100.0/24]
    state_match: state
    ip_version: ipv4

- name: Ten thousand sources at the cost of one lookup per connection
  ironwall.iptables.iptables_whitelist:
    name: API_CLIENTS
    ports: [443]
    sources: "{{ api_clients }}"
    backend: ipset

- name: Remove the whitelist, its jump and its fallback
  ironwall.iptables.iptables_whitelist:
    name: MYSQL_WHITELIST
    state: absent
"""

RETURN = r"""
count:
  description:
    - How many sources the chain holds after the run (or would hold in check mode), per family;
      0 when absent.
    - The normalized list itself is not returned (it is O(sources) with host bits masked and
      duplicates dropped), so a rerun of thousands of sources stays fast.
  returned: always
  type: dict
  sample: {"ipv4": 2, "ipv6": 1}
added:
  description: Sources that were not in the chain before the run (or would be added in check mode), per family.
  returned: always
  type: dict
  sample: {"ipv4": ["203.0.113.0/24"], "ipv6": []}
removed:
  description:
    - Sources (or, for lines this module did not write, whole rule specs) that were in the chain and
      are no longer, per family. With O(state=absent), everything the chain held.
  returned: always
  type: dict
  sample: {"ipv4": ["198.51.100.9/32"], "ipv6": []}
set:
  description:
    - With O(backend=ipset), or when switching away from it, per family the set's C(name) and the
      C(action) taken on it (V(none), V(create), V(swap), V(destroy); see
      M(ironwall.iptables.iptables_ipset)).
  returned: when a set was involved
  type: dict
  sample: {"ipv4": {"name": "MYSQL_WHITELIST", "action": "swap"}}
rules:
  description: The jump and fallback lines the module keeps in O(chain), per family (empty when absent).
  returned: always
  type: dict
  sample:
    ipv4:
      - '-A INPUT -p tcp -m tcp --dport 3306 -m conntrack --ctstate NEW -m comment --comment "ironwall:500:whitelist:MYSQL_WHITELIST" -j MYSQL_WHITELIST'
      - '-A INPUT -p tcp -m tcp --dport 3306 -m conntrack --ctstate NEW -m comment --comment "ironwall:500:whitelist:MYSQL_WHITELIST" -j DROP'
commands:
  description: The iptables-restore script lines run (or that would run in check mode), per family.
  returned: always
  type: dict
  sample: {"ipv4": ["*filter", ":MYSQL_WHITELIST - [0:0]", "-A MYSQL_WHITELIST -s 198.51.100.25/32 -j ACCEPT", "COMMIT"]}
calls:
  description:
    - How many times each binary ran - C(save) (iptables-save, one read per family and one
      read-back of a table the change inserted rules into), C(restore) (iptables-restore), and
      C(watchdog) (the rollback watchdog) or C(version) (C(iptables -V)) when they ran.
    - C(ipset_save), C(ipset_restore) and C(ipset_list) count the ipset calls of O(backend=ipset).
  returned: always
  type: dict
  sample: {"save": 2, "restore": 0}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ironwall.iptables.plugins.module_utils import _options, _whitelist
from ansible_collections.ironwall.iptables.plugins.module_utils._argspec import common_argument_spec
from ansible_collections.ironwall.iptables.plugins.module_utils._netfilter import host_protocols
from ansible_collections.ironwall.iptables.plugins.module_utils._transaction import run


def argument_spec():
    spec = common_argument_spec(table=False)
    spec.update(
        name=dict(type="str", required=True),
        sources=dict(type="list", elements="str", default=[]),
        ports=dict(type="list", elements="str"),
        protocol=dict(type="str", default="tcp"),
        chain=dict(type="str", default=_whitelist.DEFAULT_CHAIN),
        priority=dict(type="int", default=_whitelist.DEFAULT_PRIORITY),
        ctstate=dict(type="list", elements="str", default=list(_whitelist.DEFAULT_CTSTATE)),
        state_match=dict(type="str", default="conntrack", choices=list(_options.STATE_MATCHES)),
        fallback=dict(type="str", default="DROP", choices=list(_whitelist.FALLBACKS)),
        state=dict(type="str", default="present", choices=list(_whitelist.STATES)),
        backend=dict(type="str", default="chain", choices=list(_whitelist.BACKENDS)),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run(module, lambda: [_whitelist.WhitelistResource(_whitelist.validate(module.params, host_protocols()))])


if __name__ == "__main__":
    main()
