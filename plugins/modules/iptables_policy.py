#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: iptables_policy
short_description: Set the default policy of built-in iptables/ip6tables chains, optionally purging foreign rules
version_added: 0.1.0
description:
  - Sets the policy (V(ACCEPT) or V(DROP)) of one built-in chain (O(chain) and O(policy)) or of
    several at once (O(policies)), for IPv4 and IPv6 from one task.
  - With O(purge=true), removes the rules without an ironwall ownership tag from the named chains,
    except the lines matching one of the O(keep) regular expressions (for example the jumps
    Docker or fail2ban add).
  - Reads the ruleset once per family and writes only what differs, in one atomic
    C(iptables-restore --noflush) transaction per family.
author:
  - ironwall.iptables contributors (@ironwall)
extends_documentation_fragment:
  - ironwall.iptables.common
  - ironwall.iptables.common.table
  - ironwall.iptables.common.attributes
options:
  chain:
    description:
      - A built-in chain of O(table), for example V(INPUT).
      - Give O(policy) with it, or O(purge=true) to purge the chain without changing its policy.
      - Mutually exclusive with O(policies).
    type: str
  policy:
    description:
      - The policy for O(chain).
    type: str
    choices: [ACCEPT, DROP]
  policies:
    description:
      - "Policies of several built-in chains at once, for example
        C({INPUT: DROP, FORWARD: DROP, OUTPUT: ACCEPT})."
      - Mutually exclusive with O(chain).
    type: dict
  purge:
    description:
      - Remove the rules that carry no ironwall ownership tag from the named chains
        (O(chain) or the keys of O(policies)), except the lines matching O(keep).
      - Rules placed by the collection's modules are never purged.
    type: bool
    default: false
  keep:
    description:
      - Python regular expressions searched in each rule line (C(-A CHAIN ...) as
        C(iptables-save) prints it); a matching untagged rule survives O(purge).
      - For example V(-j DOCKER) or V(f2b-).
    type: list
    elements: str
    default: []
seealso:
  - module: ironwall.iptables.iptables_info
  - module: ironwall.iptables.iptables_rule
"""

EXAMPLES = r"""
- name: Lock down, drop by default in and allow out, on IPv4 and IPv6
  ironwall.iptables.iptables_policy:
    policies:
      INPUT: DROP
      FORWARD: DROP
      OUTPUT: ACCEPT

- name: Only IPv4, one chain
  ironwall.iptables.iptables_policy:
    chain: FORWARD
    policy: DROP
    ip_version: ipv4

- name: Take over INPUT, keeping what Docker and fail2ban put there
  ironwall.iptables.iptables_policy:
    chain: INPUT
    policy: DROP
    purge: true
    keep:
      - "-j DOCKER"
      - "f2b-"
"""

RETURN = r"""
commands:
  description: The iptables-restore script lines run (or that would run in check mode), per family.
  returned: always
  type: dict
  sample: {"ipv4": ["*filter", "-P INPUT DROP", "COMMIT"], "ipv6": []}
policies:
  description: The policies of the named chains after the run, per family.
  returned: always
  type: dict
  sample: {"ipv4": {"INPUT": "DROP"}, "ipv6": {"INPUT": "DROP"}}
purged:
  description: The rule lines removed by O(purge), per family.
  returned: always
  type: dict
  sample: {"ipv4": ["-A INPUT -s 198.51.100.9/32 -j ACCEPT"], "ipv6": []}
calls:
  description:
    - How many times each binary ran - C(save) (iptables-save, one read per family and one
      read-back of a table the change inserted rules into), C(restore) (iptables-restore), and
      C(watchdog) (the rollback watchdog) or C(version) (C(iptables -V)) when they ran.
  returned: always
  type: dict
  sample: {"save": 2, "restore": 0}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ironwall.iptables.plugins.module_utils import _policy
from ansible_collections.ironwall.iptables.plugins.module_utils._argspec import common_argument_spec
from ansible_collections.ironwall.iptables.plugins.module_utils._transaction import run


def main():
    argument_spec = common_argument_spec()
    argument_spec.update(
        chain=dict(type="str"),
        policy=dict(type="str", choices=list(_policy.POLICIES)),
        policies=dict(type="dict"),
        purge=dict(type="bool", default=False),
        keep=dict(type="list", elements="str", default=[]),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("chain", "policies"), ("policy", "policies")],
        required_one_of=[("chain", "policies")],
    )
    params = module.params

    def build():
        wanted, keep = _policy.validate(params)
        return [_policy.PolicyResource(params["table"], wanted, keep, params["purge"])]

    run(module, build)


if __name__ == "__main__":
    main()
