# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_ruleset with ``confirm``: apply, reconnect and confirm in one task, per host.

With ``rollback_timeout`` the module arms a watchdog on the host; the change is kept only if
iptables_confirm runs before the deadline, over a NEW connection (proving the new firewall
still lets one in). As separate tasks (``meta: reset_connection``, then iptables_confirm) the
confirmation of a host waits, with the linear strategy, until every host of the batch has
applied: the window between arming and confirming grows with the batch and can outlast the
deadline. With ``confirm: true`` this action confirms right after its own host's module
returned: the connection is reset (the next command logs in anew) and iptables_confirm runs,
in the same task, whatever the other hosts are doing.
"""

from __future__ import annotations

from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

MODULE = "ironwall.iptables.iptables_ruleset"
CONFIRM = "ironwall.iptables.iptables_confirm"


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # no longer has any effect
        args = dict(self._task.args)
        confirm = boolean(args.pop("confirm", False), strict=False)
        wrap_async = self._task.async_val and not self._connection.has_native_async
        result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars,
                                           wrap_async=wrap_async))
        if not confirm or result.get("failed") or not result.get("rollback") or self._task.check_mode or wrap_async:
            return result
        # The module's remote temporary directory (none with pipelining) belongs to this connection.
        self._remove_tmp_path(self._connection._shell.tmpdir)
        # A new connection: what meta: reset_connection does (ends the SSH control master).
        self._connection.reset()
        try:
            confirmed = self._execute_module(module_name=CONFIRM, module_args={}, task_vars=task_vars)
        except AnsibleConnectionFailure as exc:
            result.update(unreachable=True, msg="the firewall was applied, but a new connection to confirm it "
                          "failed (%s); the host restores its previous ruleset when rollback_timeout ends"
                          % exc)
            return result
        result["confirm"] = dict((k, v) for k, v in confirmed.items() if not k.startswith("_ansible")
                                 and k not in ("invocation", "changed"))
        if confirmed.get("failed"):
            result.update(failed=True, msg="the firewall was applied, but its confirmation failed: %s"
                          % confirmed.get("msg", ""))
        return result
