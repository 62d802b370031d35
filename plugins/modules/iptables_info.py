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
  - Also lists the ipsets the collection owns (M(ironwall.iptables.iptables_ipset), the ipset
    backend of M(ironwall.iptables.iptables_whitelist)) with C(ipset list -t), and C(ipset list)
    of the registry set C(ironwall-sets) when there is one. Without the C(ipset) tool, or with
    O(sets=false), no ipset command runs.
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
  sets:
    description:
      - Report the owned ipsets in RV(sets).
    type: bool
    default: true
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
sets:
  description:
    - The ipsets the collection owns (listed in its registry set C(ironwall-sets)), by name - their
      C(type), C(family) (V(ipv4) or V(ipv6)), number of C(entries), C(maxelem) and C(references)
      (rules and other users of the set, the registry not counted). Empty without ipset.
  returned: unless O(sets=false)
  type: list
  elements: dict
  sample: [{"name": "blocklist", "type": "hash:net", "family": "ipv4", "entries": 100000, "maxelem": 262144,
            "references": 1}]
calls:
  description: How many times each binary ran - C(save) (iptables-save) and C(ipset_list) (C(ipset list)).
  returned: always
  type: dict
  sample: {"save": 2, "restore": 0, "ipset_list": 2}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ironwall.iptables.plugins.module_utils import _ipset
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


def owned_sets(nf):
    """[{name, type, family, entries, maxelem, references}] of the owned ipsets; [] without ipset."""
    if not nf.module.get_bin_path("ipset"):
        return []
    rc, out, _err = nf.ipset("ipset_list", ["list", "-t"])
    if rc != 0:
        return []
    terse = _ipset.parse_terse(out)
    if terse.get(_ipset.REGISTRY, {}).get("type") != "list:set":
        return []
    rc, out, _err = nf.ipset("ipset_list", ["list", _ipset.REGISTRY])
    return _ipset.owned_info(terse, _ipset.parse_members(out)) if rc == 0 else []


def main():
    argument_spec = common_argument_spec(table=False, changes=False)
    argument_spec["table"] = dict(type="str", choices=["filter", "nat", "mangle", "raw", "security"])
    argument_spec["sets"] = dict(type="bool", default=True)
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
        if module.params["sets"]:
            result["sets"] = owned_sets(nf)
    except IronwallError as exc:
        module.fail_json(**printable(exc.as_dict()))
    result["calls"] = dict(nf.calls)
    module.exit_json(**printable(result))


if __name__ == "__main__":
    main()
