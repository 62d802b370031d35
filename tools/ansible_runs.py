# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How tests, the demo and benchmarks run this checkout's collection through real Ansible.

* ``collections_root`` / ``collections_path`` -- where ``ironwall.iptables`` resolves to this
  checkout; ``checkout_env`` -- os.environ with Ansible pointed there, quiet; ``ansible_bin``
  -- the venv's ``ansible`` / ``ansible-playbook``.
* Inside a throwaway network namespace (a sandbox_net.Netns or its name), with a local connection:
  ``run_module(ns, "iptables_policy", {...}, backend="legacy")`` runs
  ``ansible localhost -c local -m ironwall.iptables.iptables_policy`` under
  ``ip netns exec``, with PATH pointing iptables at the chosen backend, and returns the
  module's result dict; ``run_playbook`` does the same for a playbook text (JSON callback);
  ``save`` / ``load`` read and write the namespace's ruleset around them.
* Against sandbox hosts over SSH: ``play_recap`` reads the default callback's PLAY RECAP.
* ``timed_run`` -- one process and its wall time, the clock of module_timer.py and bench/.

Nothing here touches the machine's own firewall.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time

from sandbox_net import TOOLS_DIR, Netns, backend_bin_dir

ROOT = os.path.dirname(TOOLS_DIR)
BACKENDS = ("nft", "legacy")
TARGET_PYTHON = "/usr/bin/python3"


def collections_root():
    """A collections root where ironwall.iptables resolves to this checkout: the checkout's own
    when it already is .../ansible_collections/ironwall/iptables (ansible-test), else
    .cache/collections with a link to it, made once."""
    parts = ROOT.split(os.sep)
    if len(parts) >= 3 and parts[-3] == "ansible_collections":
        return os.sep.join(parts[:-3])
    base = os.path.join(ROOT, ".cache", "collections")
    link = os.path.join(base, "ansible_collections", "ironwall", "iptables")
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(ROOT, link)
    return base


def collections_path():
    """ANSIBLE_COLLECTIONS_PATH as the caller set it, else collections_root()."""
    return os.environ.get("ANSIBLE_COLLECTIONS_PATH") or collections_root()


def ansible_bin(name):
    """The Ansible command next to the running interpreter (the project venv), else PATH."""
    cand = os.path.join(os.path.dirname(sys.executable), name)
    return cand if os.path.exists(cand) else name


def checkout_env(**settings):
    """os.environ with Ansible using this checkout's collection, no host key checks, retry
    files or colour; then settings (``ANSIBLE_FORKS="30"``...)."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=collections_path(),
        ANSIBLE_HOST_KEY_CHECKING="0",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_NOCOLOR="1",
    )
    env.update(settings)
    return env


def ansible_env(backend):
    """checkout_env for runs in a namespace: backend's iptables first on PATH, JSON callback,
    no deprecation or localhost warnings."""
    return checkout_env(
        PATH=backend_bin_dir(backend) + os.pathsep + os.environ.get("PATH", ""),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
    )


def timed_run(argv, **kwargs):
    """(completed process, wall seconds) of one process, output captured as text; a non-zero
    exit is the caller's to judge."""
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    return proc, time.perf_counter() - start


def _netns(ns):
    return Netns(ns) if isinstance(ns, str) else ns


def printed_json(proc, text=None, what="ansible"):
    """json.loads(text, default proc.stdout), or an AssertionError that quotes the process."""
    try:
        return json.loads(proc.stdout if text is None else text)
    except ValueError:
        raise AssertionError("%s printed no JSON result (rc=%d)\nstdout:\n%s\nstderr:\n%s"
                             % (what, proc.returncode, proc.stdout, proc.stderr))


def adhoc_result(proc):
    """The result of one ``ansible HOST -m MODULE`` run with the default callback, which
    prints ``HOST | STATUS => {json}``: the JSON, plus ``_rc``, ``_status`` and ``_stderr``."""
    head, _sep, body = proc.stdout.partition(" => ")
    result = printed_json(proc, body)
    result["_rc"] = proc.returncode
    result["_status"] = head.rpartition("| ")[2].strip()
    result["_stderr"] = proc.stderr
    return result


def run_module(ns, module, args, backend="nft", check=False, diff=False, extra=(), env=None):
    """Run one module once in namespace ``ns`` (a sandbox_net.Netns or its name); return its result."""
    argv = ["ip", "netns", "exec", _netns(ns).name, ansible_bin("ansible"), "localhost", "-c", "local",
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
    return adhoc_result(subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=300, check=False))


def playbook_argv(ns, path, check=False, diff=False):
    """ansible-playbook of the file ``path`` on localhost inside namespace ``ns``."""
    argv = ["ip", "netns", "exec", _netns(ns).name, ansible_bin("ansible-playbook"), "-i", "localhost,", "-c", "local",
            "-e", "ansible_python_interpreter=" + TARGET_PYTHON, path]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    return argv


def run_playbook(ns, playbook_yaml, backend="nft", check=False, diff=False, env=None, timeout=600):
    """Run a playbook text in ``ns``; return the JSON callback's data (plays, stats), with
    ``_rc`` and ``_seconds`` (timed_run's wall time of ansible-playbook) added.

    ``env`` is merged over ansible_env(backend).
    """
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as fh:
        fh.write(playbook_yaml)
        path = fh.name
    full_env = ansible_env(backend)
    full_env.update(env or {})
    try:
        proc, elapsed = timed_run(playbook_argv(ns, path, check, diff), env=full_env, timeout=timeout)
    finally:
        os.unlink(path)
    data = printed_json(proc, what="ansible-playbook")
    data["_rc"] = proc.returncode
    data["_stderr"] = proc.stderr
    data["_seconds"] = elapsed
    return data


def play_recap(output):
    """{host: {"ok": n, "changed": n, "unreachable": n, "failed": n, ...}} from the PLAY RECAP
    that ansible-playbook's default callback prints."""
    return {m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
            for m in re.finditer(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", output, re.M)}


def task_results(data):
    """[(task name, result for localhost)] from run_playbook's data."""
    out = []
    for play in data["plays"]:
        for task in play["tasks"]:
            out.append((task["task"]["name"], task["hosts"].get("localhost", {})))
    return out


def save(ns, family=4, backend="nft"):
    """iptables-save of namespace ns (a Netns or its name) without the timestamp comment lines."""
    text = _netns(ns).save(family, backend)
    # lines end at line feeds only: a comment may hold a carriage return or U+2028
    return "".join(line + "\n" for line in text.split("\n") if line and not line.startswith("#"))


def load(ns, text, family=4, backend="nft", noflush=False):
    """iptables-restore text into namespace ns (a Netns or its name)."""
    _netns(ns).load(text, family, backend, noflush=noflush)
