#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: iptables_ipset
short_description: Address lists of any size as ipsets, swapped in atomically
version_added: 0.1.0
description:
  - Manages a named ipset holding exactly O(entries), for IPv4 and IPv6 from one task. A rule
    matches a set with one hash lookup whatever its size (C(-m set --match-set NAME src)), where a
    whitelist chain or a list of rules costs every packet the length of the list.
  - B(Naming.) An ipset holds one address family. The IPv4 set is named O(name), the IPv6 set
    O(name) followed by C(_v6) (for example C(blocklist) and C(blocklist_v6)); match them with
    M(ironwall.iptables.iptables_rule)'s C(match_set) and C(ip_version) V(ipv4) or V(ipv6).
  - B(Ownership.) The set C(ironwall-sets) (type C(list:set)) lists every set the collection owns.
    A set of the same name that is not listed there belongs to other software and is never
    filled, swapped or destroyed; the task fails naming O(name). Names starting with C(iwtmp-)
    are the collection's temporary sets.
  - B(Atomic.) The module reads every set with one C(ipset save) and compares entries as ipset
    prints them, so a rerun changes nothing and runs no C(ipset restore). A change loads the whole
    new list into a temporary set and swaps it in with C(ipset swap), in one C(ipset restore);
    a packet is matched against the old list or the new one, never a half-loaded one.
  - O(state=absent) destroys the sets, but never a set still used by a rule; the task then fails
    naming the rule.
  - Set contents are not part of O(rollback_timeout)'s undo; the option is accepted so the module
    can be in the C(ironwall.iptables.iptables) action group.
author:
  - ironwall.iptables contributors (@ironwall)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The diff lists the entries removed (before) and added (after) per set.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
options:
  name:
    description:
      - The set's name, for example V(blocklist); the IPv6 set is this name followed by C(_v6).
      - At most 28 characters of C(A-Z a-z 0-9 _ . -) (ipset allows 31, and C(_v6) takes 3).
        Not C(ironwall-sets) and not starting with C(iwtmp-).
    type: str
    required: true
  entries:
    description:
      - The set's content, IPv4 and IPv6 mixed; duplicates are dropped.
      - V(hash:ip) takes addresses (V(198.51.100.7)); V(hash:net) addresses and networks
        (V(203.0.113.0/24), host bits are masked); V(hash:ip,port) and V(hash:net,port) take
        C(ADDRESS,PORT) or C(ADDRESS,PROTOCOL:PORT) with one port number and protocol C(tcp)
        (the default), C(udp), C(sctp) or C(udplite) (V(198.51.100.7,udp:53)).
      - Entries are compared as C(ipset save) prints them (V(198.51.100.7/32) is V(198.51.100.7)).
      - A list, or one text with an entry per line, where blank lines and what follows a C(#) are
        ignored - a published blocklist file as it is, read with
        C(lookup('ansible.builtin.file', 'blocklist.txt')). For large lists give the text, since
        Ansible templates and checks a list item by item on the controller (100,000 items cost it
        seconds) and a text as one string. An error names the list item (C(entries[3])) or the line
        (C(entries line 4)).
    type: raw
    default: []
  type:
    description:
      - The ipset type. Changing it destroys and recreates the set, which is refused while a rule
        uses the set.
    type: str
    choices: ['hash:ip', 'hash:net', 'hash:ip,port', 'hash:net,port']
    default: hash:net
  ip_version:
    description:
      - V(auto) manages a set for each family that has entries (the IPv4 set when the list is
        empty); an existing set of a family the list no longer has is emptied, not destroyed, since
        rules may use it.
      - V(both) keeps both sets, empty or not; V(ipv4) or V(ipv6) manages that family's set only,
        and an entry of the other family is an error.
    type: str
    choices: [auto, ipv4, ipv6, both]
    default: auto
  timeout:
    description:
      - Default lifetime of every entry, in seconds (the set is created with C(timeout)); an entry
        that expired is added again by the next run. V(0) means entries never expire but the set
        accepts per-entry timeouts from other tools. Leave it out for a set without timeouts.
    type: int
  maxelem:
    description:
      - The most entries the set can hold. By default 65536, or twice the entries rounded up to a
        power of two for longer lists. Smaller than the list is an error.
    type: int
  hashsize:
    description:
      - The initial hash size (rounded up to a power of two). By default half the entries rounded
        up to a power of two, at least 1024; the kernel grows it when needed.
    type: int
  state:
    description:
      - V(present) creates or updates the sets; V(absent) destroys them (only O(name) and
        O(ip_version) matter then).
    type: str
    choices: [present, absent]
    default: present
  wait:
    description:
      - Seconds C(iptables-save) waits for the xtables lock when the module reads the rules that use
        a set before destroying it.
    type: int
    default: 5
  force:
    description:
      - Apply a change the lockout guard refuses. When Ansible runs over SSH and a rule on the SSH
        connection's path matches one of the collection's sets (a blocklist before the established
        rule, an ipset whitelist on the SSH port), the guard looks the operator's address up in the
        sets before and after the change (reading C(iptables-save) of that family and C(ipset save)
        once more) and refuses, changing nothing, a change after which the connection would not be
        accepted - the operator's address added to a blocklist, or removed from a whitelist.
      - The guard judges only the address of C(SSH_CONNECTION); O(guard_sources) has no effect here.
    type: bool
    default: false
  rollback_timeout:
    description:
      - Accepted for the C(ironwall.iptables.iptables) action group. Set contents are not undone by
        the rollback watchdog; a value above 0 only adds a warning saying so.
    type: int
    default: 0
  guard_sources:
    description:
      - Accepted for the C(ironwall.iptables.iptables) action group; no effect here (see O(force)).
    type: list
    elements: str
  guard_port:
    description:
      - Accepted for the C(ironwall.iptables.iptables) action group; no effect (see O(force)).
    type: int
    default: 22
notes:
  - Ipsets exist per network namespace; this module needs the C(ipset) tool on the target.
  - M(ironwall.iptables.iptables_ruleset)'s C(save.sets) saves the owned sets for the next boot, and
    its boot hook loads them before the rules.
seealso:
  - module: ironwall.iptables.iptables_rule
  - module: ironwall.iptables.iptables_whitelist
  - module: ironwall.iptables.iptables_info
"""

EXAMPLES = r"""
- name: A blocklist of networks, IPv4 and IPv6 (sets blocklist and blocklist_v6)
  ironwall.iptables.iptables_ipset:
    name: blocklist
    entries: "{{ lookup('ansible.builtin.file', 'blocklist.txt') }}"

- name: Drop what the IPv4 list names, before anything else in INPUT
  ironwall.iptables.iptables_rule:
    name: blocklist
    priority: 50
    match_set: blocklist
    ip_version: ipv4
    jump: DROP

- name: The same for IPv6
  ironwall.iptables.iptables_rule:
    name: blocklist-v6
    priority: 50
    match_set: blocklist_v6
    ip_version: ipv6
    jump: DROP

- name: Clients allowed to one port each, expiring after a day
  ironwall.iptables.iptables_ipset:
    name: partners
    type: hash:ip,port
    entries: ["198.51.100.7,tcp:443", "203.0.113.9,udp:53"]
    timeout: 86400
    ip_version: ipv4

- name: Remove the sets (fails, naming the rule, while a rule still uses one)
  ironwall.iptables.iptables_ipset:
    name: partners
    state: absent
"""

RETURN = r"""
sets:
  description:
    - Per family, the set's C(name), the C(action) taken (or that check mode would take) -
      V(none), V(create), V(swap) (new content swapped in), V(recreate) (type changed) or
      V(destroy) - and the number of C(entries) it holds afterwards and of entries C(added) and
      C(removed). The entries themselves are in the diff (C(--diff)).
  returned: always
  type: dict
  sample: {"ipv4": {"name": "blocklist", "action": "swap", "entries": 3, "added": 1, "removed": 0}}
guard:
  description:
    - What the lockout guard evaluated (see O(force)) - the SSH C(connection), the verdict C(before)
      and C(after) the change (V(ACCEPT), V(DROP) or V(UNPROVEN)), C(where) it is decided and
      whether it was C(forced).
  returned: when a set changed under SSH and a rule on the SSH path matches a set
  type: dict
  sample: {"connection": "a NEW TCP connection from 203.0.113.5 to 198.51.100.1 port 22",
           "before": "ACCEPT", "after": "ACCEPT", "forced": false}
calls:
  description: How many times each binary ran - C(ipset_save), C(ipset_restore), and C(ipset_list) and
    C(save) (iptables-save) when a set was about to be destroyed or the guard judged a change.
  returned: always
  type: dict
  sample: {"ipset_save": 1, "ipset_restore": 0}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ironwall.iptables.plugins.module_utils import _ipset, _ipset_apply
from ansible_collections.ironwall.iptables.plugins.module_utils._errors import IronwallError, SpecError, printable
from ansible_collections.ironwall.iptables.plugins.module_utils._netfilter import Netfilter
from ansible_collections.ironwall.iptables.plugins.module_utils._lock import serialized
from ansible_collections.ironwall.iptables.plugins.module_utils._text import check_all_text


def argument_spec():
    return dict(
        name=dict(type="str", required=True),
        entries=dict(type="raw", default=[]),
        type=dict(type="str", default=_ipset.DEFAULT_TYPE, choices=list(_ipset.TYPES)),
        ip_version=dict(type="str", default="auto", choices=list(_ipset.IP_VERSIONS)),
        timeout=dict(type="int"),
        maxelem=dict(type="int"),
        hashsize=dict(type="int"),
        state=dict(type="str", default="present", choices=list(_ipset.STATES)),
        wait=dict(type="int", default=5),
        force=dict(type="bool", default=False),
        rollback_timeout=dict(type="int", default=0),
        guard_sources=dict(type="list", elements="str"),
        guard_port=dict(type="int", default=22),
    )


def converge(module):
    params = module.params
    check_all_text(dict((k, v) for k, v in params.items() if k != "entries"))
    if params["wait"] < 0:
        raise SpecError("wait", "must be 0 or more seconds, got %r" % params["wait"])
    spec = _ipset.validate(params)
    if params["rollback_timeout"]:
        module.warn("rollback_timeout: set contents are not undone by the rollback watchdog; only rule changes are")
    nf = Netfilter(module, params["wait"])
    nf.calls = {"ipset_save": 0, "ipset_restore": 0}
    names = [s.name for s in spec.sets] + [_ipset.set_name(spec.name, f) for f in spec.empty] + list(spec.absent)
    with serialized(not module.check_mode):
        sets = _ipset_apply.read(nf, names)
        set_plan = _ipset.plan(spec, sets)
        guard = _ipset_apply.guard(nf, set_plan, spec.type, sets, params["force"])
        if set_plan.changed and module.check_mode:
            _ipset_apply.check_unused(nf, set_plan.need_unreferenced,
                                      "state" if spec.state == "absent" else "type")
        elif set_plan.changed:
            _ipset_apply.apply(nf, set_plan, "state" if spec.state == "absent" else "type")
    sets_report, diffs = _ipset_apply.report(set_plan, module._diff)
    result = dict(changed=set_plan.changed, sets=sets_report, calls=dict(nf.calls),
                  _given=sum(c.count for c in set_plan.changes))
    if guard is not None:
        result["guard"] = guard
    if module._diff:
        result["diff"] = diffs
    return result


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        result = converge(module)
    except IronwallError as exc:
        module.fail_json(**printable(exc.as_dict()))
    # The echo of the arguments (``invocation``) would hold every entry: with 100,000 entries
    # Ansible spends longer scanning it for secrets than the module spends on its work.
    args = dict(module.params, entries="%d entries" % result.pop("_given"))
    result["invocation"] = dict(module_args=args)
    module.exit_json(**printable(result))


if __name__ == "__main__":
    main()
