# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run one module of the collection in a fresh Python process inside a namespace and time it.

Ansible's own overhead (controller start, inventory, copying the module) is not the
module's: ``run_timed(ns, "iptables_whitelist", args, backend)`` measures what the module
itself costs on the target - a new interpreter importing the module, AnsibleModule argument
handling, the iptables-save / iptables-restore calls and the planning - and returns
``(result, seconds)``. The process wall time is measured from outside, so interpreter start
is included. Nothing here touches the machine's own firewall: the process runs under
``ip netns exec``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ansible_runs import collections_path, printed_json, timed_run
from sandbox_net import backend_env

_SCRIPT = r"""
import io, sys, contextlib, runpy
sys.path.insert(0, sys.argv[1])
from ansible.module_utils import basic
# As AnsiballZ's loader hands a module its arguments (ansible.module_utils._internal._ansiballz):
# the JSON as received, under ANSIBLE_MODULE_ARGS, and the profile; then the module runs as __main__.
basic._ANSIBLE_ARGS = b'{"ANSIBLE_MODULE_ARGS": ' + sys.stdin.buffer.read() + b'}'
basic._ANSIBLE_PROFILE = "legacy"
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        runpy.run_module("ansible_collections.ironwall.iptables.plugins.modules." + sys.argv[2], run_name="__main__",
                         alter_sys=True)
    except SystemExit:
        pass
sys.stdout.write(out.getvalue())
"""


def run_timed(ns, module, args, backend="nft", check=False):
    """(result dict, wall seconds of the whole module process) for one run in namespace ``ns``."""
    name = ns if isinstance(ns, str) else ns.name  # a sandbox_net.Netns or its name
    args = dict(args)
    if check:
        args["_ansible_check_mode"] = True
    env = backend_env(backend)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    argv = ["ip", "netns", "exec", name, sys.executable, "-c", _SCRIPT, collections_path(), module]
    proc, elapsed = timed_run(argv, input=json.dumps(args), env=env, timeout=600)
    return printed_json(proc, what="module " + module), elapsed


def warm_up():
    """Import once so the first timed run does not pay for a cold page cache."""
    subprocess.run([sys.executable, "-c", "import ansible.module_utils.basic"], check=True,
                   env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
