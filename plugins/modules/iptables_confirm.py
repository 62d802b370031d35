#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: iptables_confirm
short_description: Confirm firewall changes made with a rollback deadline, so they are kept
version_added: 0.1.0
description:
  - The changing modules of this collection accept C(rollback_timeout). They snapshot the
    ruleset, apply the change and leave a detached watchdog that restores the snapshot when
    the deadline passes. This module disarms that watchdog, keeping the new ruleset, like
    answering C(iptables-apply)'s question.
  - Run it from a fresh connection (M(ansible.builtin.meta) with C(reset_connection) first) so that a
    successful confirmation proves the host is still reachable through the new firewall.
  - Fails when the rollback has already happened, so the play shows that the change was undone.
author:
  - ironwall.iptables contributors (@ironwall)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
options: {}
seealso:
  - module: ironwall.iptables.iptables_policy
"""

EXAMPLES = r"""
- name: Lock down with a safety net
  ironwall.iptables.iptables_policy:
    policies: {INPUT: DROP, FORWARD: DROP}
    rollback_timeout: 60

- name: Prove we can still get in over a new connection
  ansible.builtin.meta: reset_connection

- name: Keep the change
  ironwall.iptables.iptables_confirm:
"""

RETURN = r"""
state:
  description: V(confirmed) (a pending rollback was disarmed) or V(nothing) (none was pending).
  returned: success
  type: str
  sample: confirmed
saved:
  description:
    - The files M(ironwall.iptables.iptables_ruleset) staged with O(ironwall.iptables.iptables_ruleset#module:save)
      during the confirmed series, written in place now (mode 0600). A rollback drops them, so an
      unconfirmed firewall is never persisted.
  returned: success
  type: list
  elements: str
  sample: ["/etc/iptables.rules", "/etc/ip6tables.rules"]
waited:
  description:
    - Seconds between the arming of the confirmed series (the first change made with
      C(rollback_timeout)) and this confirmation, measured on the target. Compare it with
      C(rollback_timeout) to see how much of the window a run used.
  returned: when RV(state) is V(confirmed)
  type: float
  sample: 2.314
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ironwall.iptables.plugins.module_utils._rollback import confirm, pending


def main():
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    if module.check_mode:
        waiting = pending()
        module.exit_json(changed=waiting, state="confirmed" if waiting else "nothing")
    try:
        state, when, saved, waited = confirm()
    except (IOError, OSError) as exc:
        module.fail_json(msg="could not read or clear the rollback state: %s" % exc)
    if state == "rolled-back":
        module.fail_json(msg="too late: no confirmation came within rollback_timeout, so the watchdog undid "
                             "the change (at %s: seconds since the epoch, then undo or snapshot). Fix the "
                             "change and apply it again." % when, state=state)
    result = dict(changed=state == "confirmed", state=state, saved=saved)
    if waited is not None:
        result["waited"] = waited
    module.exit_json(**result)


if __name__ == "__main__":
    main()
