# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Options shared by every module; mirrored by plugins/doc_fragments/common.py.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
"""

from __future__ import annotations

from ._model import TABLES
from ._rulespec import IP_VERSIONS


def common_argument_spec(table=True, changes=True):
    """ip_version and wait; with ``changes`` the lockout guard and rollback options too."""
    spec = dict(
        ip_version=dict(type="str", default="both", choices=list(IP_VERSIONS)),
        wait=dict(type="int", default=5),
    )
    if changes:
        spec.update(
            force=dict(type="bool", default=False),
            rollback_timeout=dict(type="int", default=0),
            guard_sources=dict(type="list", elements="str"),
            guard_port=dict(type="int", default=22),
        )
    if table:
        spec["table"] = dict(type="str", default="filter", choices=list(TABLES))
    return spec
