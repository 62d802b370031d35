# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection's failures: each one becomes one ``fail_json`` at the module edge.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
Pure code: no Ansible imports, no processes.
"""

from __future__ import annotations


class IronwallError(Exception):
    """A failure with a message a person can act on; ``as_dict()`` is what fail_json gets."""

    def __init__(self, msg, **extra):
        super(IronwallError, self).__init__(msg)
        self.msg = msg
        self.extra = extra

    def as_dict(self):
        out = {"msg": self.msg}
        out.update(self.extra)
        return out


class SpecError(IronwallError, ValueError):
    """Invalid user input; the message names the option and what would be valid."""

    def __init__(self, option, message):
        super(SpecError, self).__init__("%s: %s" % (option, message))
        self.option = option
        self.message = message

    def within(self, prefix):
        """The same error, its option named inside a list item (``whitelists[2].`` + option)."""
        return type(self)(prefix + self.option, self.message)


class PlanError(SpecError):
    """The desired state cannot be reached from the current ruleset (names the option)."""


class LockoutError(IronwallError):
    """The lockout guard refused the change; ``guard`` says what it evaluated."""


def printable(value):
    """``value`` (a result: dicts, lists, text) as a controller can read it back.

    Ansible decodes command output with surrogate escapes, so a foreign comment that is not
    valid UTF-8 reaches us as lone surrogates, which ansible-core refuses to deserialize.
    Such bytes are shown as ``\\xNN``; everything else is returned as it is.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return dict((printable(k), printable(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [printable(v) for v in value]
    return value
