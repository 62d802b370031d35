# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the collection's modules through real Ansible inside a throwaway network namespace.

``run_module(ns, "iptables_policy", {...}, backend="legacy")`` runs
``ansible localhost -c local -m ironwall.iptables.iptables_policy`` under
``ip netns exec``, with PATH pointing iptables at the chosen backend, and returns the
module's result dict (JSON callback). Nothing here touches the machine's own firewall.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import sandbox  # noqa: E402  (tools/sandbox.py)

BACKENDS = ("nft", "legacy")
TARGET_PYTHON = "/usr/bin/python3"


def collections_path():
    """A collections root where ironwall.iptables resolves to this checkout."""
    env = os.environ.get("ANSIBLE_COLLECTIONS_PATH")
    if env:
        return env
    return sandbox.collections_link(ROOT)


def ansible_env(backend):
    env = dict(os.environ)
    env.update(
        PATH=sandbox.backend_bin_dir(backend) + os.pathsep + env.get("PATH", ""),
        ANSIBLE_COLLECTIONS_PATH=collections_path(),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_HOST_KEY_CHECKING="0",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
    )
    return env


def _bin(name):
    """The Ansible command next to the running interpreter (the project venv), else PATH."""
    cand = os.path.join(os.path.dirname(sys.executable), name)
    return cand if os.path.exists(cand) else name


def run_module(ns, module, args, backend="nft", check=False, diff=False, extra=(), env=None):
    """Run one module once in namespace ``ns`` (a sandbox.Netns or its name); return its result."""
    name = ns if isinstance(ns, str) else ns.name
    argv = ["ip", "netns", "exec", name, _bin("ansible"), "localhost", "-c", "local",
            "-e", "ansible_python_interpreter=" + TARGET_PYTHON,
            "-m", "ironwall.iptables." + module] + (["-a", json.dumps(args)] if args else [])
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    argv.extend(extra)
    full_env = ansible_env(backend)
    full_env.pop("ANSIBLE_STDOUT_CALLBACK")  # ad-hoc: 'localhost | CHANGED => {json}'
    full_env.update(env or {})
    proc = subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=300, check=False)
    head, sep, body = proc.stdout.partition(" => ")
    try:
        result = json.loads(body)
    except ValueError:
        raise AssertionError("ansible printed no result (rc=%d)\nstdout:\n%s\nstderr:\n%s"
                             % (proc.returncode, proc.stdout, proc.stderr))
    result["_rc"] = proc.returncode
    result["_status"] = head.rpartition("| ")[2].strip()
    result["_stderr"] = proc.stderr
    return result


def playbook_argv(ns, path, check=False, diff=False):
    """ansible-playbook of the file ``path`` on localhost inside namespace ``ns``."""
    name = ns if isinstance(ns, str) else ns.name
    argv = ["ip", "netns", "exec", name, _bin("ansible-playbook"), "-i", "localhost,", "-c", "local",
            "-e", "ansible_python_interpreter=" + TARGET_PYTHON, path]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    return argv


def run_playbook(ns, playbook_yaml, backend="nft", check=False, diff=False):
    """Run a playbook text in ``ns``; return the JSON callback's data (plays, stats)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as fh:
        fh.write(playbook_yaml)
        path = fh.name
    try:
        proc = subprocess.run(playbook_argv(ns, path, check, diff), env=ansible_env(backend), capture_output=True,
                              text=True, timeout=600, check=False)
    finally:
        os.unlink(path)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("ansible-playbook printed no JSON (rc=%d)\nstdout:\n%s\nstderr:\n%s"
                             % (proc.returncode, proc.stdout, proc.stderr))
    data["_rc"] = proc.returncode
    return data


def task_results(data):
    """[(task name, result for localhost)] from run_playbook's data."""
    out = []
    for play in data["plays"]:
        for task in play["tasks"]:
            out.append((task["task"]["name"], task["hosts"].get("localhost", {})))
    return out


def save(ns, family=4, backend="nft"):
    """iptables-save of the namespace without the timestamp comment lines."""
    name = ns if isinstance(ns, str) else ns.name
    tool = sandbox.backend_bin_dir(backend) + ("/iptables-save" if family == 4 else "/ip6tables-save")
    out = subprocess.run(["ip", "netns", "exec", name, tool], capture_output=True, text=True, check=True).stdout
    return "".join(line + "\n" for line in out.splitlines() if not line.startswith("#"))


def load(ns, text, family=4, backend="nft", noflush=False):
    name = ns if isinstance(ns, str) else ns.name
    tool = sandbox.backend_bin_dir(backend) + ("/iptables-restore" if family == 4 else "/ip6tables-restore")
    argv = ["ip", "netns", "exec", name, tool] + (["--noflush"] if noflush else [])
    subprocess.run(argv, input=text, capture_output=True, text=True, check=True)
