# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A sliced job as AWX / Ansible Automation Platform runs it (``job_slice_count``), on sandbox hosts.

AWX sorts the inventory's hosts by name and deals them round-robin to M slices (slice k gets
hosts k, k+M, k+2M... of the sorted list); each slice is its own ``ansible-playbook`` run,
limited to its hosts, on its own execution node, all at the same time. Here: 12 sandbox hosts
(tools/fleet.py, real SSH through the switch namespace), 3 slices run concurrently with
``--limit``, the firewall role with a rollback deadline and the confirmation over a new
connection (in the ruleset task itself: ``confirm``), as playbooks/site.yml applies it (canary
first, then 25% per batch, within each slice).

Checked: the slices are disjoint and cover the inventory; every host is converged exactly once
(one changed ruleset result and one confirmation, in its own slice's run, none in another), its
firewall is in place (read on the host, and real TCP probes from the outsider client); then all
three slices rerun concurrently and change nothing.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

import fleet
from ansible_runs import ROOT, ansible_bin, checkout_env
from sandbox_net import probe

pytestmark = pytest.mark.host

HOSTS = 12
SLICES = 3
RULESET = "ironwall.iptables.iptables_ruleset"
CONFIRM = "ironwall.iptables.iptables_confirm"
PLAYBOOK = {
    "name": "Sliced firewall job",
    "hosts": "fleet",
    "gather_facts": False,
    "serial": [1, "25%"],
    "max_fail_percentage": 0,
    "vars": {
        "firewall_rollback_timeout": 600,
        "firewall_open_ports": [80],
        "firewall_ratelimits": [{"name": "ssh", "ports": [22], "hitcount": 4, "seconds": 60,
                                 "exempt_sources": ["{{ fleet_management.v4 }}", "{{ fleet_management.v6 }}"]}],
    },
    "roles": [{"role": "ironwall.iptables.firewall"}],
}


def awx_slices(names, count):
    """AWX's job slicing: the hosts sorted by name, dealt round-robin; slice k (1-based) gets
    sorted[k-1::count]."""
    ordered = sorted(names)
    return [ordered[k::count] for k in range(count)]


def test_awx_slices_are_round_robin_over_sorted_names():
    names = ["fw%02d" % i for i in (3, 1, 12, 2, 5, 4, 7, 6, 9, 8, 11, 10)]
    assert awx_slices(names, 3) == [["fw01", "fw04", "fw07", "fw10"], ["fw02", "fw05", "fw08", "fw11"],
                                    ["fw03", "fw06", "fw09", "fw12"]]


def run_slices(inventory, playbook, slices):
    """Start one ansible-playbook per slice at once; wait for all; [(rc, json data, stderr)]."""
    env = checkout_env(ANSIBLE_FORKS=str(max(len(s) for s in slices)), ANSIBLE_PIPELINING="1",
                       ANSIBLE_SSH_ARGS="-C -o ControlMaster=auto -o ControlPersist=600s",
                       ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
                       ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    procs = [subprocess.Popen([ansible_bin("ansible-playbook"), "-i", inventory, "--limit", ",".join(hosts),
                               playbook], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for hosts in slices]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=1800)
        try:
            data = json.loads(stdout[stdout.index("{"):])
        except ValueError:
            raise AssertionError("a slice printed no JSON (rc=%d)\n%s\n%s" % (proc.returncode, stdout[-3000:],
                                                                              stderr[-3000:]))
        out.append((proc.returncode, data, stderr))
    return out


def results(data, action):
    """{host: [result, ...]} of the tasks running ``action`` in one run's json output; for
    iptables_confirm also the confirmation iptables_ruleset ran itself (its ``confirm``)."""
    out = {}
    for play in data["plays"]:
        for task in play["tasks"]:
            for host, res in task["hosts"].items():
                if res.get("action") == action:
                    out.setdefault(host, []).append(res)
                elif action == CONFIRM and res.get("action") == RULESET and res.get("confirm"):
                    out.setdefault(host, []).append(res["confirm"])
    return out


@pytest.fixture(scope="module")
def sliced(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slicing")
    with fleet.Fleet(HOSTS, listeners=False, sentinels=False) as hosts:
        inventory = hosts.write_inventory(str(tmp / "inventory.yml"))
        playbook = str(tmp / "sliced.yml")
        with open(playbook, "w") as fh:
            fh.write("---\n" + yaml.safe_dump([PLAYBOOK], sort_keys=False))
        yield hosts, inventory, playbook


def test_three_concurrent_slices_converge_every_host_once_and_rerun_unchanged(sliced):
    hosts, inventory, playbook = sliced
    names = [h.name for h in hosts.hosts]
    slices = awx_slices(names, SLICES)
    assert sorted(sum(slices, [])) == sorted(names) and len(set(sum(slices, []))) == HOSTS

    first = run_slices(inventory, playbook, slices)
    seen = {}
    for index, (rc, data, stderr) in enumerate(first):
        assert rc == 0, (index, stderr[-2000:], json.dumps(data.get("stats"))[:2000])
        assert sorted(data["stats"]) == sorted(slices[index]), "slice %d ran other hosts" % (index + 1)
        applied, confirmed = results(data, RULESET), results(data, CONFIRM)
        for host in slices[index]:
            assert [r["changed"] for r in applied.get(host, [])] == [True], (host, applied.get(host))
            assert [r["state"] for r in confirmed.get(host, [])] == ["confirmed"], (host, confirmed.get(host))
            seen.setdefault(host, []).append(index)
        assert not set(applied) - set(slices[index]) and not set(confirmed) - set(slices[index])
    assert seen == dict((h, [i]) for i, s in enumerate(slices) for h in s), "each host converged once"

    for host in hosts.hosts:
        rules = host.exec(["iptables-save", "-t", "filter"]).stdout
        assert ":INPUT DROP" in rules and "ironwall:chain:ratelimit:ssh" in rules, (host.name, rules)
        assert host.exec(["test", "-s", "/etc/iptables.rules"], check=False).returncode == 0, host.name
    # the firewall is real: port 22 (rate limited, then accepted) open to the outsider, 3306 not
    host = hosts.hosts[-1]
    host.start_listeners([3306])
    assert probe(hosts.outsider, host.addr4, 22) and not probe(hosts.outsider, host.addr4, 3306)

    again = run_slices(inventory, playbook, slices)
    for index, (rc, data, stderr) in enumerate(again):
        assert rc == 0, (index, stderr[-2000:])
        for host, stats in data["stats"].items():
            assert stats["changed"] == 0 and stats["failures"] == 0, (host, stats)
        assert [h for h, rs in results(data, RULESET).items() if any(r["changed"] for r in rs)] == []
        assert results(data, CONFIRM) == {}, "a rerun arms nothing, so it confirms nothing"


def test_playbook_matches_the_example():
    """The sliced play applies the role the way playbooks/site.yml does."""
    with open(os.path.join(ROOT, "playbooks", "site.yml")) as fh:
        site = yaml.safe_load(fh)[0]
    for key in ("strategy", "serial", "max_fail_percentage", "gather_facts"):
        assert site.get(key) == PLAYBOOK.get(key), key
