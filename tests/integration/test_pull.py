# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ansible-pull on a sandbox host: playbooks/pull.yml from a local bare repository, and the
lockout guard with no SSH_CONNECTION, checked with real SSH from the management network.

The host is a full sandbox host (own netns, own /etc, sshd) whose SSH clients come through the
switch, 198.51.100.1: the management network 198.51.100.0/24. ansible-core (this checkout's
pinned one, run by the host's own /usr/bin/python3) and git are bind-mounted read-only into the
host; the repository is a bare git repository on the controller, bind-mounted at
/srv/firewall.git and pulled as file:///srv/firewall.git. It holds pull.yml, group_vars/all.yml
and the collection installed from its release tarball under collections/ (pull mode runs no
ansible-galaxy). The firewall allows SSH only from the management network, INPUT DROP.

In order, each run is ``ansible-pull`` inside the host (no SSH_CONNECTION):

1. without guard_sources: refused by the guard (it runs under ansible-pull and SSH would no
   longer be open to every address); nothing changed, so an outsider still reaches SSH;
2. with guard_sources = the management networks (new commit, ``-o``): converges; a new SSH
   connection from the management network works, the outsider no longer reaches port 22;
3. again without ``-o``: the playbook runs and reports no change;
4. ``-o`` with no new commit: the repository did not change, no playbook runs;
5. a commit that keeps SSH only for 198.51.100.128/25 (cutting the listed 198.51.100.0/24
   below .128, the switch included): refused naming the first cut address; SSH still works.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sysconfig

import pytest
import yaml

import ansible_runs
import sandbox_hosts
import sandbox_net

pytestmark = pytest.mark.host

TOOLS = "/opt/ironwall-ansible"
REPO = "/srv/firewall.git"
CHECKOUT = "/var/lib/ironwall-pull"
MGMT = ["198.51.100.0/24", "2001:db8:100::/64"]
WRAPPER = """#!/usr/bin/python3
import sys
sys.path.insert(0, "%s/site-packages")
from ansible.cli.%s import main
sys.exit(main())
"""
FIREWALL = {
    "firewall_ssh_accept": False,
    "firewall_open_ports": [{"port": 22, "sources": MGMT}, 80],
}


def _git(cwd, *args):
    return subprocess.run(["git", "-C", cwd, "-c", "user.name=pull test", "-c", "user.email=pull@example.org"]
                          + list(args), capture_output=True, text=True, check=True, timeout=60)


def _bind(host, source, target, directory=True):
    """Bind-mount the controller's ``source`` read-only at ``target`` inside the host (its own mount
    namespace: the mount ends with the host)."""
    host.exec(["mkdir", "-p", target] if directory else ["sh", "-c", 'mkdir -p "$(dirname "$1")" && touch "$1"',
                                                         "touch", target])
    merged = os.path.join(host.dir, "merged") + target
    pid = str(host._init_pid())
    for argv in (["mount", "--bind", source, merged], ["mount", "-o", "remount,bind,ro", merged]):
        sandbox_net.run(["nsenter", "-t", pid, "--mount", "--"] + argv)


@pytest.fixture(scope="module")
def pulled(tmp_path_factory):
    """(host, outsider client, work dir of the repository) with ansible-core and git inside the host."""
    tmp = tmp_path_factory.mktemp("pull")
    with sandbox_net.Lan() as lan:
        outsider = lan.add_client(subnet="203.0.113")
        host = sandbox_hosts.Host("pull-fw", lan)
        try:
            host.start()
            host.start_listeners([80])
            _bind(host, sysconfig.get_path("purelib"), TOOLS + "/site-packages")
            _bind(host, shutil.which("git"), "/usr/bin/git", directory=False)
            _bind(host, "/usr/lib/git-core", "/usr/lib/git-core")
            for cli in ("pull", "adhoc", "playbook"):
                name = {"pull": "ansible-pull", "adhoc": "ansible", "playbook": "ansible-playbook"}[cli]
                host.exec(["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod 0755 "$1"', "w",
                           "%s/bin/%s" % (TOOLS, name)], input=WRAPPER % (TOOLS, cli))
            bare, work = str(tmp / "firewall.git"), str(tmp / "work")
            subprocess.run(["git", "init", "-q", "--bare", "-b", "main", bare], check=True)
            _bind(host, bare, REPO)
            subprocess.run(["git", "init", "-q", "-b", "main", work], check=True)
            shutil.copy(os.path.join(ansible_runs.ROOT, "playbooks", "pull.yml"), os.path.join(work, "pull.yml"))
            _install_collection(str(tmp), os.path.join(work, "collections"))
            yield host, outsider, work
        finally:
            host.stop()


def _install_collection(tmp, dest):
    env = ansible_runs.checkout_env(ANSIBLE_COLLECTIONS_PATH=dest, ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false")
    galaxy = ansible_runs.ansible_bin("ansible-galaxy")
    subprocess.run([galaxy, "collection", "build", "--output-path", os.path.join(tmp, "dist"), ansible_runs.ROOT],
                   env=env, capture_output=True, check=True, timeout=300)
    [tarball] = [f for f in os.listdir(os.path.join(tmp, "dist")) if f.endswith(".tar.gz")]
    subprocess.run([galaxy, "collection", "install", "--offline", "--no-deps", "-p", dest,
                    os.path.join(tmp, "dist", tarball)], env=env, capture_output=True, check=True, timeout=300)
    assert os.path.isfile(os.path.join(dest, "ansible_collections", "ironwall", "iptables", "playbooks", "pull.yml"))


def commit(work, variables, message):
    os.makedirs(os.path.join(work, "group_vars"), exist_ok=True)
    with open(os.path.join(work, "group_vars", "all.yml"), "w") as fh:
        fh.write("---\n" + yaml.safe_dump(variables, default_flow_style=False))
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", message)
    _git(work, "push", "-q", "file://" + os.path.dirname(work) + "/firewall.git", "main")


def pull(host, only_if_changed=True):
    argv = ["%s/bin/ansible-pull" % TOOLS, "-U", "file://" + REPO, "-C", "main", "-d", CHECKOUT,
            "-i", "localhost,", "pull.yml"]
    if only_if_changed:
        argv.insert(-1, "-o")
    # a systemd timer runs it from /; so does this (nsenter's working directory is not a path here)
    proc = host.exec(["sh", "-c", 'cd / && exec "$@"', "pull"] + argv, check=False, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def recap(output):
    return ansible_runs.play_recap(output).get("localhost")


def ssh_from_management(host, timeout=30):
    """A NEW SSH connection (no control master) from the switch, 198.51.100.1, runs a command."""
    argv = host.ssh_argv("true")
    argv[argv.index("ConnectTimeout=10")] = "ConnectTimeout=%d" % timeout
    argv[1:1] = ["-o", "ControlMaster=no"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 20, check=False).returncode == 0


def test_pull_converges_once_and_the_guard_keeps_the_management_networks(pulled):
    host, outsider, work = pulled
    before = sandbox_net.comparable_save(host.exec(["iptables-save"]).stdout)

    # 1. no guard_sources under ansible-pull: refused, nothing changed
    commit(work, FIREWALL, "SSH from the management networks only")
    rc, out = pull(host)
    assert rc != 0, out
    assert "lockout guard" in out and "ansible-pull" in out and "guard_sources" in out, out[-3000:]
    assert sandbox_net.comparable_save(host.exec(["iptables-save"]).stdout) == before
    assert sandbox_net.probe(outsider, host.addr4, 22), "nothing was applied: the outsider still reaches SSH"

    # 2. with the management networks as guard_sources: converges
    commit(work, dict(FIREWALL, firewall_guard_sources=MGMT), "keep SSH for the management networks")
    rc, out = pull(host)
    assert rc == 0, out[-4000:]
    assert recap(out) and recap(out)["changed"] >= 1 and recap(out)["failed"] == 0, out[-3000:]
    assert ":INPUT DROP" in host.exec(["iptables-save", "-t", "filter"]).stdout
    assert os.path.exists(os.path.join(host.dir, "merged", "etc", "iptables.rules")) or \
        host.exec(["test", "-s", "/etc/iptables.rules"], check=False).returncode == 0
    assert ssh_from_management(host), "a new SSH connection from the management network must work"
    assert not sandbox_net.probe(outsider, host.addr4, 22), "the outsider must no longer reach SSH"
    assert sandbox_net.probe(outsider, host.addr4, 80), "port 80 stays open to everyone"

    # 3. the same commit again, without -o: the playbook runs and changes nothing
    rc, out = pull(host, only_if_changed=False)
    assert rc == 0 and recap(out) and recap(out)["changed"] == 0 and recap(out)["failed"] == 0, out[-3000:]

    # 4. -o and no new commit: nothing runs
    rc, out = pull(host)
    assert rc == 0, out[-3000:]
    assert "Repository has not changed, quitting" in out and recap(out) is None, out[-3000:]

    # 5. a commit that would cut part of the listed management network (the switch included)
    cut = dict(FIREWALL, firewall_guard_sources=MGMT,
               firewall_open_ports=[{"port": 22, "sources": ["198.51.100.128/25", MGMT[1]]}, 80])
    commit(work, cut, "SSH from the upper half only")
    applied = host.exec(["iptables-save", "-t", "filter"]).stdout
    rc, out = pull(host)
    assert rc != 0, out[-3000:]
    assert re.search(r"lockout guard: .*198\.51\.100\.0\b.*guard_sources", out), out[-3000:]
    assert host.exec(["iptables-save", "-t", "filter"]).stdout.count("198.51.100.128/25") == \
        applied.count("198.51.100.128/25")
    assert ssh_from_management(host), "the refused change must leave SSH from the management network working"
