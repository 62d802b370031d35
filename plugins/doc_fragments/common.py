# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Documentation of the options every ironwall.iptables module shares (plugins/module_utils/_argspec.py)."""

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  ip_version:
    description:
      - Which address families to manage.
      - V(both) reads and changes C(iptables) and C(ip6tables) in the same task; the two
        kernel transactions are kept consistent (if the IPv6 change fails, the IPv4 change
        is rolled back).
    type: str
    choices: [ipv4, ipv6, both]
    default: both
  wait:
    description:
      - Seconds C(iptables-restore) waits for the xtables lock held by another program
        before it gives up (C(-w)). The nft backend does not need the lock.
    type: int
    default: 5
  force:
    description:
      - Apply a change even when the lockout guard refuses it.
      - The guard runs when the module is reached over SSH (C(SSH_CONNECTION) is set) and
        the change touches a table on the SSH path (raw, mangle, nat, filter, security) of the
        SSH client's address family. It follows the whole SSH exchange as it would be after
        the change (the SYN of a new connection through the PREROUTING and INPUT chains, the
        client's established packets, and the server's replies through the OUTPUT and
        POSTROUTING chains), and
        refuses the change when that exchange is carried now but would not be afterwards. The
        failure and the returned C(guard.where) name the table, chain and packet.
      - The guard evaluates addresses, protocols, ports, C(conntrack)/C(state), C(comment),
        C(limit) (unknown), C(recent) (the operator's own packet counts once; above that the
        operator is taken to be under the limit), C(lo), jumps, RETURN and policies; a match
        it does not understand never counts as accepting.
      - Without C(SSH_CONNECTION) (under C(ansible-pull), which runs with C(-c local)) the guard
        judges new SSH connections from O(guard_sources) instead, and under C(ansible-pull) without
        O(guard_sources) it refuses a change after which a new SSH connection is not provably
        accepted from any address.
    type: bool
    default: false
  guard_sources:
    description:
      - The management networks (addresses or networks, IPv4 and IPv6) whose SSH access must
        survive the change, for runs without C(SSH_CONNECTION), such as C(ansible-pull).
      - When C(SSH_CONNECTION) is absent, the lockout guard judges a new SSH connection to
        O(guard_port) from each of them before and after the change, through the same tables and
        chains as for an SSH client, and refuses the change when one that is accepted now would
        not be afterwards (unless O(force)). A network is judged range by range wherever a rule's
        address match splits it, so a rule that drops part of it is found.
      - Under C(ansible-pull) (the module's ancestor processes include it) without this option, the
        guard cannot know who must keep SSH and refuses a change after which a new SSH connection
        from an unknown address is not provably accepted (for example a DROP policy with SSH
        accepted only from some sources), unless O(force).
      - Not used when C(SSH_CONNECTION) is set; then the connection Ansible uses is judged. Other runs
        without C(SSH_CONNECTION) and without this option (a console, C(-c local)) are not guarded.
    type: list
    elements: str
  guard_port:
    description:
      - The SSH port the lockout guard checks for O(guard_sources) and under C(ansible-pull).
    type: int
    default: 22
  rollback_timeout:
    description:
      - Seconds after which this change is undone unless M(ironwall.iptables.iptables_confirm)
        confirms it first, like C(iptables-apply).
      - V(0) (the default) applies without a deadline.
      - The module records how to undo exactly what it changes (and a snapshot of the tables it
        touches, used only when that undo no longer applies), applies, and leaves a detached
        watchdog on the target; no C(async) or C(poll) is needed and it works with pipelining.
        Rules other programs add during the window stay. Confirm from a fresh connection
        (M(ansible.builtin.meta) with C(reset_connection)) to prove the host is still reachable.
      - While a rollback is armed, later changes join it, and the watchdog undoes all of them.
        The state is kept per network namespace under C(/run/ironwall-iptables); a run that
        fails disarms its part, and a run that finds the watchdog gone starts a new one.
    type: int
    default: 0
requirements:
  - iptables 1.8 or later (C(iptables-save), C(iptables-restore), and the C(ip6tables) pair for IPv6),
    with either the nft or the legacy backend.
notes:
  - The module reads the ruleset once per family with C(iptables-save), compares it with the
    requested state and writes only the difference with one C(iptables-restore --noflush)
    transaction per family. When both families change, the second script is checked with
    C(--test) before the first is applied, and a failure in the second rolls the first back.
    A run that changes nothing runs no C(iptables-restore).
  - Rules the collection places in chains it does not own carry a comment tag
    C(ironwall:<priority>:<kind>:<name>); rules without such a tag belong to other software
    and are never touched (except by O(ironwall.iptables.iptables_policy#module:purge)).
"""

    READ = r"""
options:
  ip_version:
    description:
      - Which address families to read.
    type: str
    choices: [ipv4, ipv6, both]
    default: both
  wait:
    description:
      - Accepted for symmetry with the changing modules; reading needs no xtables lock.
    type: int
    default: 5
requirements:
  - iptables 1.8 or later (C(iptables-save), and C(ip6tables-save) for IPv6), nft or legacy backend.
"""

    TABLE = r"""
options:
  table:
    description:
      - The netfilter table.
    type: str
    choices: [filter, nat, mangle, raw, security]
    default: filter
"""

    ATTRIBUTES = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Plans the change and validates it with C(iptables-restore --test) without applying it.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: Shows the affected chains before and after, in C(iptables-save) form, per family.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
"""
