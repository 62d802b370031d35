#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: iptables_info
short_description: Read the iptables/ip6tables ruleset as structured data
version_added: 0.1.0
description:
  - Reads each address family once with C(iptables-save -c) and returns, per family, the
    active backend (nft or legacy), every table with its chains, policies and counters,
    every rule with its position and its ironwall owner tag (if any), and the normalized
    save text (no timestamps, counters zeroed) ready for persistence and comparison.
  - Changes nothing.
author:
  - ironwall.iptables contributors (@ironwall)
extends_documentation_fragment:
  - ironwall.iptables.common.read
options:
  table:
    description:
      - Only return this table. By default every table C(iptables-save) prints.
    type: str
    choices: [filter, nat, mangle, raw, security]
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: The module never changes anything.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
seealso:
  - module: ironwall.iptables.iptables_policy
"""

EXAMPLES = r"""
- name: Read both families
  ironwall.iptables.iptables_info:
  register: fw

- name: Show the INPUT policy and the rules the collection owns
  ansible.builtin.debug:
    msg:
      - "{{ fw.ipv4.tables.filter.chains.INPUT.policy }}"
      - "{{ fw.ipv4.tables.filter.chains.INPUT.rules | selectattr('owner') | map(attribute='rule') }}"

- name: Only IPv6 nat
  ironwall.iptables.iptables_info:
    ip_version: ipv6
    table: nat
"""

RETURN = r"""
ipv4:
  description: The IPv4 ruleset. Absent when O(ip_version=ipv6).
  returned: when ip_version is ipv4 or both
  type: dict
  contains:
    backend:
      description: V(nft) or V(legacy).
      type: str
      sample: nft
    tables:
      description: Table name -> chains.
      type: dict
      sample:
        filter:
          chains:
            INPUT:
              policy: DROP
              packets: 12
              bytes: 1024
              rules:
                - position: 1
                  rule: "-A INPUT -i lo -m comment --comment \"ironwall:010:rule:loopback\" -j ACCEPT"
                  packets: 0
                  bytes: 0
                  owner: {priority: 10, kind: rule, name: loopback}
    save:
      description: Normalized C(iptables-save) text, no timestamps, counters zeroed.
      type: str
ipv6:
  description: The IPv6 ruleset, same form as RV(ipv4).
  returned: when ip_version is ipv6 or both
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ironwall.iptables.plugins.module_utils._argspec import common_argument_spec
from ansible_collections.ironwall.iptables.plugins.module_utils._errors import IronwallError, SpecError, printable
from ansible_collections.ironwall.iptables.plugins.module_utils._model import Ruleset, render_save
from ansible_collections.ironwall.iptables.plugins.module_utils._netfilter import Netfilter
from ansible_collections.ironwall.iptables.plugins.module_utils._rulespec import families


def describe(ruleset, table=None):
    """Ruleset -> the structure RETURN documents (pure)."""
    tables = {}
    for t in ruleset.tables:
        if table and t.name != table:
            continue
        chains = {}
        for c in t.chains:
            packets, nbytes = c.packets_bytes()
            rules = []
            for pos, r in enumerate(c.rules, 1):
                rp, rb = r.packets_bytes()
                rules.append(dict(position=pos, rule=r.line, packets=rp, bytes=rb,
                                  owner=r.tag.as_dict() if r.tag else None))
            chains[c.name] = dict(policy=c.policy, packets=packets, bytes=nbytes, rules=rules)
        tables[t.name] = dict(chains=chains)
    shown = Ruleset(tuple(t for t in ruleset.tables if not table or t.name == table))
    return dict(tables=tables, save=render_save(shown, counters=False))


def main():
    argument_spec = common_argument_spec(table=False, changes=False)
    argument_spec["table"] = dict(type="str", choices=["filter", "nat", "mangle", "raw", "security"])
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    nf = Netfilter(module, module.params["wait"])
    result = dict(changed=False)
    try:
        if module.params["wait"] < 0:
            raise SpecError("wait", "must be 0 or more seconds, got %r" % module.params["wait"])
        for family in families(module.params["ip_version"]):
            ruleset = nf.read(family, counters=True)
            info = describe(ruleset, module.params["table"])
            info["backend"] = nf.backend(family, ruleset)
            result[family] = info
    except IronwallError as exc:
        module.fail_json(**printable(exc.as_dict()))
    result["calls"] = dict(nf.calls)
    module.exit_json(**printable(result))


if __name__ == "__main__":
    main()
