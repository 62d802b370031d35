#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: iptables_ruleset
short_description: The whole host firewall in one task and one transaction, saved for the next boot
version_added: 0.2.0
description:
  - Declares everything the collection manages on a host in one task - chain policies, rules,
    per-service whitelists, SSH rate limits and the ipsets its rules match - for IPv4 and IPv6, and
    applies it as B(one transaction per family).
  - One C(iptables-save) per family, one plan for all of it, at most one C(iptables-restore --noflush)
    per family, the lockout guard evaluated once on the B(final) state (a declaration whose final
    state still carries the SSH connection passes, whatever the order of its parts), one rollback
    deadline. If any part fails (a whitelist the kernel refuses, a failing C(ip6tables-restore)),
    both families stay byte-identical.
  - Each list item takes the options of the module it mirrors and is checked by the same code
    (M(ironwall.iptables.iptables_rule), M(ironwall.iptables.iptables_whitelist),
    M(ironwall.iptables.iptables_ratelimit), M(ironwall.iptables.iptables_ipset)); errors name the item, for
    example C(whitelists[2].ports) or C(sets[1].entries line 3). Every item is checked before any binary runs.
  - B(Ipsets.) The sets of O(sets) and of the whitelists with C(backend=ipset) are filled (created, or new
    content swapped in atomically) B(before) the transaction, so a rule matching a set (C(rules[].match_set))
    and the set can be declared in the same task; sets that go (C(state=absent), or undeclared with
    O(exclusive)) are destroyed B(after) it, once no rule matches them. One C(ipset save) serves the whole task;
    a rerun that changes nothing runs no C(ipset restore). Set contents are not part of O(rollback_timeout)'s
    undo, but no set is destroyed while a rollback is pending.
  - Rules without an C(ironwall) tag belong to other software (Docker, fail2ban, an admin) and are
    never touched, except by O(purge).
  - With O(exclusive=true) the task is the B(complete declaration) of what the collection owns on the
    host - every tagged rule and owned chain it does not declare (a whitelist or rate limit dropped
    from the lists, a rule of an earlier single-module task) is removed in the same transaction. Do
    not combine it with other tasks of the collection on the same host, or they undo each other on
    every run; without it, remove a dropped item with C(state=absent) (or O(exclusive_prefix) for rules).
  - O(save) writes, after a successful apply and in the same run, what the collection owns to a file
    per family, and O(save.boot) installs the hook that loads it at boot.
author:
  - ironwall.iptables contributors (@ironwall)
extends_documentation_fragment:
  - ironwall.iptables.common
  - ironwall.iptables.common.attributes
  - ironwall.iptables.rule_options.RULESET
options:
  policies:
    description:
      - Policies of built-in chains of the C(filter) table, for example C(INPUT=DROP), C(FORWARD=DROP), C(OUTPUT=ACCEPT).
      - They are set in the same transaction as everything else, and the lockout guard judges the result,
        so the order of the parts does not matter.
    type: dict
  purge:
    description:
      - Remove rules without an C(ironwall) tag from the chains named in O(policies), except lines
        matching O(keep) (like M(ironwall.iptables.iptables_policy)'s O(ironwall.iptables.iptables_policy#module:purge)).
    type: bool
    default: false
  keep:
    description: Regular expressions searched in each untagged C(-A CHAIN ...) line; a matching line survives O(purge).
    type: list
    elements: str
    default: []
  state_match:
    description:
      - How rules and whitelists match connection states unless an item says otherwise -
        V(conntrack) (C(-m conntrack --ctstate)) or V(state) (the legacy C(-m state --state)).
    type: str
    choices: [conntrack, state]
    default: conntrack
  exclusive_prefix:
    description:
      - Makes O(rules) the complete list of the rule names that start with this prefix - a rule of
        that namespace not listed is removed (like M(ironwall.iptables.iptables_rule)'s).
    type: str
  whitelists:
    description:
      - Whitelist chains, each a dictionary with the options of M(ironwall.iptables.iptables_whitelist)
        (C(name), C(sources), C(ports), C(protocol), C(chain), C(priority), C(ctstate), C(state_match),
        C(fallback), C(state), C(ip_version), C(backend)), with the same defaults, except that C(ip_version)
        defaults to the task's O(ip_version) (and may only narrow it) and C(state_match) to the task's O(state_match).
      - C(backend=ipset) keeps the sources in the ipsets C(name) (IPv4) and C(name_v6) (IPv6) instead of a chain;
        they are filled before the transaction and destroyed after it when the whitelist switches back to
        V(chain) or goes. Their names may not be used by an item of O(sets).
      - A whitelist is removed from a family its C(ip_version) leaves out (with its set there).
    type: list
    elements: dict
    default: []
  ratelimits:
    description:
      - SSH brute-force limits, each a dictionary with the options of M(ironwall.iptables.iptables_ratelimit)
        (C(name), C(ports), C(protocol), C(hitcount), C(seconds), C(rttl), C(update), C(action), C(reject_with),
        C(log_prefix), C(log_level), C(log_limit), C(accept), C(exempt_sources), C(chain), C(chain_name),
        C(priority), C(state), C(ip_version)), with the same defaults, except that C(ip_version) defaults to the
        task's O(ip_version) (and may only narrow it).
      - A rate limit is removed from a family its C(ip_version) leaves out.
    type: list
    elements: dict
    default: []
  sets:
    description:
      - Ipsets, each a dictionary with the options of M(ironwall.iptables.iptables_ipset) - C(name), C(entries)
        (a list, or one text with an entry per line, for example a file read with C(lookup('ansible.builtin.file',
        ...))), C(type), C(ip_version) (V(auto), V(ipv4), V(ipv6), V(both); it does not follow the task's),
        C(timeout), C(maxelem), C(hashsize), C(state) - with the same defaults, naming and ownership (the IPv4
        set is C(name), the IPv6 set C(name_v6), both registered in the C(ironwall-sets) list). Errors name
        the item, for example C(sets[0].entries line 2) or C(sets[1].name).
      - The sets that change are loaded in one C(ipset restore) (temporary sets swapped in) before the
        transaction, so O(rules) may match them (C(match_set)) in the same task. In check mode the rules of a
        family whose set does not exist yet are not tested with C(iptables-restore --test).
      - C(state=absent) destroys the sets after the transaction, when no rule uses them any more; a rule of this
        task matching one is an error, and a rule of other software using one fails the task after the rules
        were applied, keeping the set.
    type: list
    elements: dict
    default: []
  chains:
    description:
      - User chains the collection creates for O(rules) - each a chain name, or a dictionary with C(name),
        C(table) (default V(filter)) and C(state) (V(present), the default, or V(absent)). A chain name is at
        most 28 characters of C(A-Z a-z 0-9 _ . @ -) and not a built-in chain or target name.
      - A missing chain is created, in every family of O(ip_version), with the collection's ownership marker as
        its first rule (C(ironwall:chain:rule-chain:<name>), a comment-only rule). Rules go into it by their
        C(rules[N].chain), after the marker, in priority order like in C(INPUT), and jump to it with
        C(rules[N].jump), in the same transaction that creates it. It is never replaced whole (unlike a
        whitelist chain).
      - A chain of that name that exists without the marker (Docker's, fail2ban's, an admin's) is refused, naming
        C(chains[N]), and is never adopted nor flushed; so is a chain of a whitelist or rate limit, and a name a
        whitelist or rate limit of this task uses in C(filter).
      - A chain that is no longer declared is removed by O(exclusive=true) (returned in RV(removed) as
        C(rule-chain:<name>)), or by an item with C(state=absent) - with the tagged rules in it and every tagged
        rule jumping to it, in the same transaction. That fails, changing nothing, while a rule without the
        collection's tag is in the chain or jumps to it, or a rule of this task is placed in it or jumps to it.
    type: list
    elements: raw
    default: []
  exclusive:
    description:
      - Remove, in the same transaction, every rule the collection tagged and every chain it owns that
        this task does not declare (in the families of O(ip_version)), a rule chain O(chains) no longer
        names included. Returned as RV(removed).
      - After the transaction, also destroy the ipsets the collection owns (of the families of O(ip_version))
        that neither O(sets) nor a whitelist of O(whitelists) declares - a blocklist or an ipset whitelist
        dropped from the task - returned in RV(removed) as C(ipset:<name>). A set something still uses (a rule
        of other software, a rule of this task, another list) is kept, with a warning and an entry in
        RV(sets_kept); so is every set while a rollback is pending (a run after the confirmation destroys it).
      - Sets made by separate M(ironwall.iptables.iptables_ipset) tasks are undeclared too; declare them in
        O(sets) instead.
    type: bool
    default: false
  confirm:
    description:
      - With O(rollback_timeout), keep the change in the same task once it is applied - reset the
        connection (the next command logs in anew, as M(ansible.builtin.meta) C(reset_connection) does)
        and run M(ironwall.iptables.iptables_confirm) over the new connection - instead of in later tasks.
      - The confirmation then follows this host's own apply at once, whatever the play's strategy and
        batch, so the time between arming the rollback and confirming it (C(waited) in RV(confirm)) does not
        grow with the number of hosts. Later changes of the same play can no longer join the series.
      - A confirmation that fails (the new connection is refused, or it comes too late) fails the task; the
        host then restores its previous ruleset when the deadline passes.
      - Nothing happens without O(rollback_timeout), when nothing changed, or in check mode.
    type: bool
    default: false
  save:
    description:
      - Save the firewall for the next boot, after a successful apply, in the same run.
      - A file is written only when its content (or its mode, 0600, owner root) differs; it is first
        tested with C(iptables-restore --test) into empty tables, as at boot, then written atomically.
      - With O(rollback_timeout) the files are staged, and M(ironwall.iptables.iptables_confirm) writes
        them when it confirms the change; a rollback drops them. An unconfirmed firewall is never persisted.
    type: dict
    suboptions:
      ipv4:
        description: The IPv4 file, for example V(/etc/iptables.rules). Its directory must exist.
        type: str
      ipv6:
        description: The IPv6 file, for example V(/etc/ip6tables.rules).
        type: str
      sets:
        description:
          - A file for the ipsets the collection owns (M(ironwall.iptables.iptables_ipset), the ipset backend
            of M(ironwall.iptables.iptables_whitelist)), for example V(/etc/iptables.ipsets); needs O(save.ipv4)
            or O(save.ipv6). Written like the rules files (only on change, read back first, atomically,
            mode 0600, staged while a rollback is pending), from one C(ipset save).
          - The hook loads it with C(ipset restore) before the rules. Each rules file names the sets its rules
            match in C(# ironwall-set:) comment lines, so when the sets file is missing or does not load, the
            hook creates those sets empty and the rules still load - failing closed, a port whitelisted
            through a set is closed to everyone (its fallback drops) and a blocklist blocks nobody until the
            next run; the rest of the firewall, policies included, is in place. Without the C(ipset) tool the
            hook loads the rules without their set-matching lines, with the same effect. Failures are logged.
        type: str
      scope:
        description:
          - V(owned) saves what the collection owns - the policies of O(policies), the chains it owns and its
            tagged rules in the built-in chains, in their order. The hook loads it with
            C(iptables-restore --noflush) into the empty tables of a fresh boot, so Docker and fail2ban then
            add their own chains as on a clean boot (no stale foreign chain, no C(Chain already exists)).
            A tagged rule placed in, or jumping to, a chain of other software cannot be loaded before that
            software starts; it is left out, with a warning, and returned under RV(saved).
          - V(all) saves the whole ruleset, other software's chains included, loaded without C(--noflush).
        type: str
        choices: [owned, all]
        default: owned
      boot:
        description:
          - Install the hook that loads the files once per boot. V(ifupdown) writes
            C(/etc/network/if-pre-up.d/ironwall-iptables); V(systemd) writes
            C(/usr/local/sbin/ironwall-iptables-restore) and the unit C(ironwall-iptables.service) (before
            C(network-pre.target)), enabled by its C(multi-user.target.wants) link without needing a running
            systemd; V(auto) picks ifupdown when C(/etc/network/interfaces) and C(ifup) exist, else systemd.
            The other method's files are removed. V(none) removes both.
          - Not given, the hook is left as it is.
        type: str
        choices: [auto, ifupdown, systemd, none]
notes:
  - Only the C(filter) table takes O(policies); rules may go to any table (O(rules[].table)).
  - Counters and rules of other software are never changed (except by O(purge)).
  - With pipelining on, a no-change run of a whole firewall is one module run over one SSH round trip.
seealso:
  - module: ironwall.iptables.iptables_rule
  - module: ironwall.iptables.iptables_whitelist
  - module: ironwall.iptables.iptables_ratelimit
  - module: ironwall.iptables.iptables_ipset
  - module: ironwall.iptables.iptables_policy
  - module: ironwall.iptables.iptables_confirm
"""

EXAMPLES = r"""
- name: The classic host firewall, IPv4 and IPv6, one transaction, saved for the next boot
  ironwall.iptables.iptables_ruleset:
    policies: {INPUT: DROP, FORWARD: DROP, OUTPUT: ACCEPT}
    rules:
      - {name: loopback, priority: 100, in_interface: lo, jump: ACCEPT}
      - {name: established, priority: 110, ctstate: [ESTABLISHED, RELATED], jump: ACCEPT}
      - {name: icmp, priority: 130, protocol: icmp, jump: ACCEPT}
      - {name: web, protocol: tcp, dports: [80, 443], ctstate: [NEW], jump: ACCEPT}
    whitelists:
      - name: MYSQL_WHITELIST
        ports: [3306]
        sources: [198.51.100.25, 203.0.113.0/24, "2001:db8:100::/64"]
    ratelimits:
      - {name: ssh, ports: [22], hitcount: 4, seconds: 60, log_prefix: "ssh-limit: "}
    exclusive: true
    save:
      ipv4: /etc/iptables.rules
      ipv6: /etc/ip6tables.rules
      boot: auto

- name: A blocklist, the rules dropping it and an ipset whitelist, in one task (exclusive destroys dropped sets)
  ironwall.iptables.iptables_ruleset:
    sets:
      - name: abuse
        entries: "{{ lookup('ansible.builtin.file', 'abuse.txt') }}"
        ip_version: both
    rules:
      - {name: abuse, priority: 50, match_set: abuse, ip_version: ipv4, jump: DROP}
      - {name: abuse-v6, priority: 50, match_set: abuse_v6, ip_version: ipv6, jump: DROP}
      - {name: established, priority: 110, ctstate: [ESTABLISHED, RELATED], jump: ACCEPT}
    whitelists:
      - {name: PG_WHITELIST, ports: [5432], sources: [198.51.100.0/24, "2001:db8:100::/64"], backend: ipset}
    exclusive: true
    save: {ipv4: /etc/iptables.rules, ipv6: /etc/ip6tables.rules, sets: /etc/iptables.ipsets, boot: auto}

- name: Rules in a chain of their own, entered from INPUT (exclusive removes the chain once it is dropped from chains)
  ironwall.iptables.iptables_ruleset:
    chains: [ADMIN]
    rules:
      - {name: to-admin, priority: 300, protocol: tcp, dports: [8443], jump: ADMIN}
      - {name: admin-lan, chain: ADMIN, priority: 100, source: [198.51.100.0/24], jump: ACCEPT}
      - {name: admin-rest, chain: ADMIN, priority: 900, jump: REJECT}
    exclusive: true

- name: Same, with a safety net
  ironwall.iptables.iptables_ruleset:
    policies: {INPUT: DROP}
    rules:
      - {name: established, ctstate: [ESTABLISHED, RELATED], jump: ACCEPT}
      - {name: ssh, protocol: tcp, dports: [22], jump: ACCEPT}
    save: {ipv4: /etc/iptables.rules, ipv6: /etc/ip6tables.rules}
    rollback_timeout: 60

- name: Reconnect, proving a new SSH connection gets through
  ansible.builtin.meta: reset_connection

- name: Keep the change (and write the staged files)
  ironwall.iptables.iptables_confirm:
"""

RETURN = r"""
commands:
  description: The iptables-restore script lines run (or that would run in check mode), per family.
  returned: always
  type: dict
  sample: {"ipv4": ["*filter", ":MYSQL_WHITELIST - [0:0]", "-P INPUT DROP", "COMMIT"], "ipv6": []}
policies:
  description: The policies of the chains of O(policies) after the run, per family.
  returned: when O(policies) is given
  type: dict
  sample: {"ipv4": {"INPUT": "DROP"}, "ipv6": {"INPUT": "DROP"}}
purged:
  description: Untagged rules O(purge) removed (or would remove), per family.
  returned: when O(policies) is given
  type: dict
  sample: {"ipv4": [], "ipv6": []}
rules:
  description: The C(-A CHAIN spec) lines O(rules) keeps, in priority order, per family.
  returned: when O(rules) or O(exclusive_prefix) is given
  type: dict
  sample: {"ipv4": ['-A INPUT -i lo -m comment --comment "ironwall:100:rule:loopback" -j ACCEPT']}
pruned:
  description: Per family, the rule names O(exclusive_prefix) removed.
  returned: when O(exclusive_prefix) is given
  type: dict
  sample: {"ipv4": ["open-ftp"], "ipv6": []}
whitelists:
  description: Per family and whitelist name, what M(ironwall.iptables.iptables_whitelist) returns (count, added, removed, rules).
  returned: when O(whitelists) is not empty
  type: dict
  sample: {"ipv4": {"MYSQL_WHITELIST": {"count": 2, "added": [], "removed": [], "rules": []}}}
ratelimits:
  description: Per family and rate limit name, what M(ironwall.iptables.iptables_ratelimit) returns (lists, rules, chain_name).
  returned: when O(ratelimits) is not empty
  type: dict
  sample: {"ipv4": {"ssh": {"lists": "ssh", "chain_name": "RATELIMIT_SSH", "rules": []}}}
chains:
  description: Per family, C(table:name) of the chains of O(chains) created and removed (or that would be in check mode).
  returned: when O(chains) is not empty
  type: dict
  sample: {"ipv4": {"created": ["filter:ADMIN"], "removed": []}, "ipv6": {"created": ["filter:ADMIN"], "removed": []}}
sets:
  description:
    - Per item name of O(sets), per family, what M(ironwall.iptables.iptables_ipset) returns under C(sets) - the
      set's C(name), the C(action) taken (or that check mode would take) - V(none), V(create), V(swap),
      V(recreate), V(destroy) - and the numbers of C(entries) it holds afterwards and of entries C(added) and
      C(removed); C(deferred) when a destroy waits for a pending rollback.
    - Not the sets file of O(save.sets), which RV(saved) reports under C(sets).
  returned: when O(sets) is not empty
  type: dict
  sample: {"abuse": {"ipv4": {"name": "abuse", "action": "swap", "entries": 3, "added": 1, "removed": 0},
                     "ipv6": {"name": "abuse_v6", "action": "none", "entries": 1, "added": 0, "removed": 0}}}
removed:
  description:
    - Per family, C(kind:name) of what O(exclusive) removed (or would remove in check mode); C(ipset:NAME) for
      an owned set it destroyed (the family of the set).
  returned: when O(exclusive=true)
  type: dict
  sample: {"ipv4": ["ipset:PG_WHITELIST", "whitelist:PG_WHITELIST"], "ipv6": ["ipset:PG_WHITELIST_v6", "whitelist:PG_WHITELIST"]}
sets_kept:
  description:
    - The undeclared owned sets O(exclusive) did not destroy, each with why - the rules using it, a count of
      references outside iptables (another list:set, another tool), or a pending rollback. A warning says the same.
  returned: when O(exclusive=true) kept a set
  type: dict
  sample: {"abuse": "used by ipv4: -A INPUT -m set --match-set abuse src -j DROP"}
saved:
  description:
    - Per family, the file of O(save), whether it changed (or would in check mode), and C(staged) when it
      waits for M(ironwall.iptables.iptables_confirm); C(skipped) lists tagged rules left out of it, with why.
    - Under C(sets), the same for O(save.sets), with the names of the sets saved.
  returned: when O(save) is given
  type: dict
  sample: {"ipv4": {"path": "/etc/iptables.rules", "scope": "owned", "changed": true},
           "sets": {"path": "/etc/iptables.ipsets", "changed": false, "sets": ["blocklist", "blocklist_v6"]}}
boot:
  description: The boot hook method used, whether anything changed, and the files written and removed.
  returned: when O(save.boot) is given
  type: dict
  sample: {"method": "ifupdown", "changed": false, "written": [], "removed": []}
guard:
  description: What the lockout guard evaluated on the final state (see O(force)).
  returned: when the task runs over SSH and changes a table on the SSH path
  type: dict
  sample: {"connection": "tcp 198.51.100.1:50000 -> 198.51.100.2:22", "before": "ACCEPT", "after": "ACCEPT", "forced": false}
rollback:
  description: The rollback armed by O(rollback_timeout).
  returned: when O(rollback_timeout) is set and the task changed the firewall
  type: dict
  sample: {"armed": true, "joined": false, "timeout": 60, "token": "123-1700000000000"}
confirm:
  description:
    - The result of M(ironwall.iptables.iptables_confirm) run by O(confirm) over a new connection - its
      C(state) (V(confirmed)), C(saved) files and C(waited), the seconds between arming the rollback and
      the confirmation, measured on the host.
  returned: when O(confirm) is true and the task armed a rollback
  type: dict
  sample: {"state": "confirmed", "saved": ["/etc/iptables.rules"], "waited": 1.8}
calls:
  description:
    - How many times each binary ran - C(save) (one read per family, and one read-back of a table the change
      inserted rules into), C(restore) (one per changed family, plus the C(--test) of a changed file of
      O(save)), C(watchdog) when a rollback was armed, C(learn) (one private network namespace,
      C(unshare --net), where the kernel prints the lines of rules with O(rules[].raw) in its own form)
      when a rule has O(rules[].raw).
    - With ipsets - C(ipset_save) (one per run while no set changes, shared by O(sets), the ipset whitelists,
      O(exclusive) and O(save.sets)), C(ipset_restore) (one for the sets filled before the transaction, one per
      whitelist set change, one for the sets destroyed after it), C(ipset_list) (C(ipset list -t), the
      references of sets about to be destroyed).
  returned: always
  type: dict
  sample: {"save": 2, "restore": 0}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ironwall.iptables.plugins.module_utils import _options, _persist, _ruleset
from ansible_collections.ironwall.iptables.plugins.module_utils._argspec import common_argument_spec
from ansible_collections.ironwall.iptables.plugins.module_utils._netfilter import host_protocols, host_recent_ceiling
from ansible_collections.ironwall.iptables.plugins.module_utils._rulespec import families
from ansible_collections.ironwall.iptables.plugins.module_utils._save import finisher
from ansible_collections.ironwall.iptables.plugins.module_utils._transaction import run


def main():
    argument_spec = common_argument_spec(table=False)
    argument_spec.update(
        policies=dict(type="dict"),
        purge=dict(type="bool", default=False),
        keep=dict(type="list", elements="str", default=[]),
        state_match=dict(type="str", default="conntrack", choices=list(_options.STATE_MATCHES)),
        rules=dict(type="list", elements="dict", default=[], options=_options.argspec(top=False)),
        exclusive_prefix=dict(type="str"),
        whitelists=dict(type="list", elements="dict", default=[]),
        sets=dict(type="list", elements="dict", default=[]),
        ratelimits=dict(type="list", elements="dict", default=[]),
        chains=dict(type="list", elements="raw", default=[]),
        exclusive=dict(type="bool", default=False),
        confirm=dict(type="bool", default=False),  # done by the action plugin (plugins/action)
        save=dict(type="dict", options=dict(
            ipv4=dict(type="str"),
            ipv6=dict(type="str"),
            scope=dict(type="str", default="owned", choices=list(_persist.SCOPES)),
            boot=dict(type="str", choices=list(_persist.BOOT_METHODS)),
            sets=dict(type="str"),
        )),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params

    def build():
        resources = _ruleset.validate(params, host_protocols(), host_recent_ceiling)
        save = _persist.validate(params["save"], families(params["ip_version"]))
        if save is None:
            return resources
        policies = set(c for c, p in (params["policies"] or {}).items() if p is not None)
        return resources, finisher(module, _persist.resolved(save), policies)

    run(module, build)


if __name__ == "__main__":
    main()
