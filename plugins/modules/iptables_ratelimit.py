#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: iptables_ratelimit
short_description: Limit new connections per source address with the iptables recent match (SSH brute-force defence)
version_added: 0.1.0
description:
  - Records the source address of every new connection to O(ports) in a kernel C(recent) list;
    a source that opened O(hitcount) new connections within O(seconds) is logged (with
    O(log_prefix)) and refused with O(action); other new connections are accepted
    (O(accept=true)) or left to the rules after the jump (O(accept=false)).
  - This is the classic C(-m recent --set) / C(--rcheck --seconds 60 --hitcount 4 --rttl) defence
    against password scanners, for IPv4 and IPv6 from one task.
  - The rules live in a chain the module owns, O(chain_name) (default C(RATELIMIT_<NAME>)), holding
    in order C(-s <exempt> -j ACCEPT) (C(RETURN) with O(accept=false)) for each of O(exempt_sources),
    C(-m recent --set), the C(LOG) rule if O(log_prefix) is set, the O(action) rule, and finally
    C(-j ACCEPT) (C(-j RETURN) with O(accept=false)). The chain is replaced as a whole, in one
    transaction, whenever its content differs.
  - New connections reach the chain through one rule in O(chain), matched with
    C(-m conntrack --ctstate NEW) (not the older C(-m state), which is a different rule to
    iptables-save), tagged C(ironwall:<priority>:ratelimit:<name>) and kept in O(priority) order
    among the collection's other tagged rules of that chain.
  - B(Which attempt is refused.) The C(--set) rule runs before the check in the same chain, so the
    connection being checked is already counted. With O(hitcount=4), new connections 1, 2 and 3 of
    a source within O(seconds) pass and the B(4th is the first refused), and so is every later one
    while 4 or more of its attempts (refused ones included, since they are recorded too) fall in the
    last O(seconds) seconds. Measured with real connections on iptables-nft and iptables-legacy,
    IPv4 and IPv6. A SYN the client retransmits after a DROP is a new connection attempt too and
    counts as another hit.
  - B(IPv6.) The kernel keeps one recent list per name, shared by iptables and ip6tables, and masks
    addresses with the mask of the rule that created the list. A list created by an IPv4 rule written
    with C(--mask 255.255.255.255) (as this module writes it, and as any saved IPv4 rule is restored)
    makes an IPv6 rule of the same name count every address of a /32 as one source; an IPv4 rule
    added without C(--mask), or an IPv6 rule created first, does not. The module therefore uses the list
    O(name) for IPv4 and C(<name>_v6) for IPv6 (see C(/proc/net/xt_recent/)), each with the
    full-length mask iptables-save prints, C(255.255.255.255) and C(ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff)
    (every address counts alone). With O(rttl), IPv6 compares the packet's B(hop limit) with the
    hop limit recorded by C(--set), as IPv4 compares the TTL.
  - Bad input fails before anything runs, naming the option. O(hitcount) is checked against the
    running kernel's C(/sys/module/xt_recent/parameters/ip_pkt_list_tot) on the target.
author:
  - ironwall.iptables contributors (@ironwall)
extends_documentation_fragment:
  - ironwall.iptables.common
  - ironwall.iptables.common.attributes
options:
  name:
    description:
      - Identity of the limit and name of its kernel recent list (C(<name>_v6) for IPv6).
      - 1 to 196 characters of C(A-Z a-z 0-9 _ -) (the kernel keeps 199, and the IPv6 list adds C(_v6)).
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the limit; V(absent) removes the jump and the owned chain
        (and a chain an earlier O(chain_name) made) in one transaction.
    type: str
    choices: [present, absent]
    default: present
  chain:
    description:
      - The chain of the C(filter) table that holds the jump to the limit.
    type: str
    default: INPUT
  chain_name:
    description:
      - The owned chain, at most 28 characters. Default C(RATELIMIT_) followed by O(name) in upper case
        with C(-) turned into C(_), for example C(RATELIMIT_SSH).
      - Renaming it replaces the old chain.
    type: str
  priority:
    description:
      - Order of the jump among the collection's tagged rules in O(chain), 0 to 999 (lower first).
    type: int
    default: 300
  protocol:
    description:
      - Protocol of the limited connections.
    type: str
    choices: [tcp, udp, sctp, dccp, udplite]
    default: tcp
  ports:
    description:
      - Destination ports or ranges (V(1000:2000)) of the limited connections, at most 15.
    type: list
    elements: str
    default: ['22']
  hitcount:
    description:
      - Number of new connections within O(seconds) from which a source is refused; the
        O(hitcount)-th connection is the first refused.
      - 1 to what the running kernel honours; 255 when C(ip_pkt_list_tot) is 0 (the lists grow as
        needed; Linux 4.11 and later, and the default), else at most C(ip_pkt_list_tot) (older kernels
        default to 20 and reject a higher hitcount).
    type: int
    default: 4
  seconds:
    description:
      - The window in seconds, at least 1.
    type: int
    default: 60
  rttl:
    description:
      - Also require the packet's TTL (IPv4) or hop limit (IPv6) to equal the one recorded by C(--set)
        (C(--rttl)), so spoofed sources far away cannot get a real client refused.
    type: bool
    default: true
  update:
    description:
      - Use C(--update) in the O(action) rule instead of C(--rcheck); a refused attempt then also
        refreshes the source's timestamps (the C(LOG) rule always uses C(--rcheck)).
    type: bool
    default: false
  action:
    description:
      - What happens to a connection over the limit.
    type: str
    choices: [DROP, REJECT]
    default: DROP
  reject_with:
    description:
      - The C(--reject-with) type for O(action=REJECT), valid for every managed family
        (for example V(tcp-reset)); default the port-unreachable of each family.
    type: str
  log_prefix:
    description:
      - Log connections over the limit with this prefix (at most 29 characters), before O(action).
      - Unset, nothing is logged.
    type: str
  log_level:
    description:
      - Syslog level of the log, 0-7 or a name such as V(info). Default V(warning) (4).
    type: str
  log_limit:
    description:
      - Log at most this rate, for example V(3/minute), so a flood cannot flood syslog
        (C(-m limit) in the C(LOG) rule, burst 5).
    type: str
  accept:
    description:
      - V(true) accepts the new connections under the limit (and from O(exempt_sources)) at the end of
        the owned chain; V(false) returns them to O(chain), so later rules decide.
    type: bool
    default: true
  exempt_sources:
    description:
      - Addresses or networks never limited and never recorded; the first rules of the owned chain
        give them the verdict of connections under the limit (C(ACCEPT), or C(RETURN) with
        O(accept=false)).
      - Each address goes to the chain of its family; an address of a family outside O(ip_version)
        is an error.
    type: list
    elements: str
    default: []
notes:
  - The recent lists live in the kernel and are not part of the ruleset. Clear one by writing
    C(/) to C(/proc/net/xt_recent/<name>) (C(<name>_v6) for IPv6); they disappear with the last rule
    using them.
seealso:
  - module: ironwall.iptables.iptables_policy
  - module: ironwall.iptables.iptables_info
"""

EXAMPLES = r"""
- name: The classic SSH limit, 4 new connections per 60 s, logged, IPv4 and IPv6
  ironwall.iptables.iptables_ratelimit:
    name: ssh
    ports: [22]
    hitcount: 4
    seconds: 60
    log_prefix: "SSH_brute_force "
    log_limit: 3/minute

- name: Sliding window, reject with a TCP reset, never limit the office network
  ironwall.iptables.iptables_ratelimit:
    name: ssh
    update: true
    action: REJECT
    reject_with: tcp-reset
    exempt_sources:
      - 198.51.100.0/24
      - 2001:db8:100::/64

- name: Only count, let later rules (and the policy) decide what is accepted
  ironwall.iptables.iptables_ratelimit:
    name: smtp-auth
    ports: [587, 465]
    hitcount: 10
    seconds: 300
    accept: false
    ip_version: ipv4

- name: Remove the limit, its jump and its chain
  ironwall.iptables.iptables_ratelimit:
    name: ssh
    state: absent
"""

RETURN = r"""
chain_name:
  description: The owned chain holding the limit's rules.
  returned: always
  type: str
  sample: RATELIMIT_SSH
lists:
  description: The kernel recent list per family (C(/proc/net/xt_recent/<list>)).
  returned: always
  type: dict
  sample: {"ipv4": "ssh", "ipv6": "ssh_v6"}
hitcount_ceiling:
  description: The highest O(hitcount) the target's kernel honours, from C(ip_pkt_list_tot).
  returned: when O(state=present)
  type: int
  sample: 255
rules:
  description: The rules of the limit per family, as iptables-save prints them (jump first, then the owned chain).
  returned: when O(state=present)
  type: dict
  sample: {"ipv4": ["-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m comment --comment \"ironwall:300:ratelimit:ssh\" -j RATELIMIT_SSH",
                    "-A RATELIMIT_SSH -m recent --set --name ssh --mask 255.255.255.255 --rsource"]}
commands:
  description: The iptables-restore script lines run (or that would run in check mode), per family.
  returned: always
  type: dict
  sample: {"ipv4": ["*filter", ":RATELIMIT_SSH - [0:0]", "-A RATELIMIT_SSH -m recent --set --name ssh --mask 255.255.255.255 --rsource", "COMMIT"]}
calls:
  description:
    - How many times each binary ran - C(save) (iptables-save, one read per family and one
      read-back of a table the change inserted rules into), C(restore) (iptables-restore), and
      C(watchdog) (the rollback watchdog) or C(version) (C(iptables -V)) when they ran.
  returned: always
  type: dict
  sample: {"save": 2, "restore": 4}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ironwall.iptables.plugins.module_utils import _ratelimit
from ansible_collections.ironwall.iptables.plugins.module_utils._argspec import common_argument_spec
from ansible_collections.ironwall.iptables.plugins.module_utils._netfilter import host_protocols, host_recent_ceiling
from ansible_collections.ironwall.iptables.plugins.module_utils._transaction import run


def main():
    argument_spec = common_argument_spec(table=False)
    argument_spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=list(_ratelimit.STATES)),
        chain=dict(type="str", default=_ratelimit.DEFAULT_CHAIN),
        chain_name=dict(type="str"),
        priority=dict(type="int", default=_ratelimit.DEFAULT_PRIORITY),
        protocol=dict(type="str", default="tcp", choices=list(_ratelimit.PROTOCOLS)),
        ports=dict(type="list", elements="str", default=["22"]),
        hitcount=dict(type="int", default=4),
        seconds=dict(type="int", default=60),
        rttl=dict(type="bool", default=True),
        update=dict(type="bool", default=False),
        action=dict(type="str", default="DROP", choices=list(_ratelimit.ACTIONS)),
        reject_with=dict(type="str"),
        log_prefix=dict(type="str"),
        log_level=dict(type="str"),
        log_limit=dict(type="str"),
        accept=dict(type="bool", default=True),
        exempt_sources=dict(type="list", elements="str", default=[]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params

    def build():
        ceiling = None
        if params["state"] == "present":
            ceiling = host_recent_ceiling()
        limit = _ratelimit.validate(params, ceiling or _ratelimit.DYNAMIC_HITCOUNT_CEILING, host_protocols())
        return [_ratelimit.RateLimitResource(limit, ceiling)]

    run(module, build)


if __name__ == "__main__":
    main()
