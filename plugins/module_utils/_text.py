# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one check of free text every option goes through.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
"""

from __future__ import annotations

import unicodedata

from ._errors import SpecError

# Characters iptables-save never needs to see in a value: every C0/C1 control character
# (line breaks, tab, escape, NUL), DEL and the Unicode line and paragraph separators.

_CONTROL_CATEGORIES = ("Cc", "Zl", "Zp")


def check_text(value, option, max_bytes=None, what="characters"):
    """A single-line text: no control character of any kind, at most ``max_bytes`` UTF-8 bytes.

    The kernel counts bytes and cuts a longer text mid-character, after which iptables-save
    prints invalid UTF-8; a line break in a comment splits the saved rule.
    """
    text = value if isinstance(value, str) else str(value)
    for ch in text:
        if unicodedata.category(ch) in _CONTROL_CATEGORIES or "\ud800" <= ch <= "\udfff":
            raise SpecError(option, "must be one line of printable text; it contains the control character "
                                    "U+%04X" % ord(ch))
    if max_bytes is not None:
        size = len(text.encode("utf-8"))
        if size > max_bytes:
            raise SpecError(option, "%r is %d bytes in UTF-8; at most %d %s fit" % (text, size, max_bytes, what))
    return text


def check_all_text(params, prefix=""):
    """Refuse a control character in any text of the module's options (at any depth, naming the
    option as ``rules[2].comment``): no option of the collection has a use for one."""
    for key, value in (params or {}).items():
        if isinstance(value, str):
            check_text(value, prefix + str(key))
        elif isinstance(value, dict):
            check_all_text(value, prefix + str(key) + ".")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, str):
                    check_text(item, prefix + str(key))
                elif isinstance(item, dict):
                    check_all_text(item, "%s%s[%d]." % (prefix, key, i))
