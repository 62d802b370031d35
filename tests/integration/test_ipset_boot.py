# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Owned ipsets saved for boot and loaded before the rules, and the hook failing closed.

A whitelist through the ipset backend and a blocklist set matched by iptables_rule, saved by
iptables_ruleset (save.ipv4, save.ipv6, save.sets) into a temporary directory. The reboot, in
the throwaway namespace: every table flushed, every set destroyed, then the boot script the
module installs (_persist.hook_script, its once-per-boot flag moved into the temporary
directory and its log going to stderr instead of syslog) run inside the namespace. With the
sets file, sets and rules come back and real packets get the same answers; with the sets file
removed or corrupt, the whitelisted port stays closed (to the listed client too) and the rest
of the firewall is back. nft and legacy, IPv4 and IPv6.
"""

from __future__ import annotations

import os
import re
import stat
import sys

import pytest

import ansible_runs
import sandbox_net
import tcp_load

if ansible_runs.collections_path() not in sys.path:  # the pure hook renderer, from this checkout
    sys.path.insert(0, ansible_runs.collections_path())

from ansible_collections.ironwall.iptables.plugins.module_utils import _persist  # noqa: E402

NAME = "MYSQL_WHITELIST"


def ipsets(ns):
    """ipset save of the namespace, sorted, without the hash seeds (initval: random per creation)."""
    return sorted(re.sub(r" initval 0x[0-9a-f]+", "", line) for line in ns.run(["ipset", "save"]).stdout.splitlines())


def filter_save(ns, family, backend):
    """The filter table as iptables-save prints it, comments and counters aside (legacy prints every
    table the reboot's flush loaded, nft only the ones with rules)."""
    return sandbox_net.comparable_save(ns.save(family, backend, table="filter"))


def reachable(client, server):
    return (sandbox_net.probe(client, server.addr4, 3306, timeout=1),
            sandbox_net.probe(client, server.addr6, 3306, timeout=1))


def reboot(ns, backend, hook, tmp_path):
    """Flush and delete every table and set of the namespace, then run the boot script in it."""
    for fam in (4, 6):
        for table in ("filter", "nat", "mangle", "raw"):
            ns.run([sandbox_net.family_bin(fam, backend), "-t", table, "-F"], check=False)
            ns.run([sandbox_net.family_bin(fam, backend), "-t", table, "-X"], check=False)
    ns.run(["ipset", "flush", "ironwall-sets"], check=False)
    ns.run(["ipset", "destroy"])
    assert ns.run(["ipset", "save"]).stdout == ""
    flag = tmp_path / "restored"
    if flag.exists():
        flag.unlink()
    script = tmp_path / "hook.sh"
    script.write_text(hook.replace("FLAG=/run/ironwall-iptables.restored", "FLAG=%s" % flag)
                      .replace('logger -t "$TAG"', "false"))
    # the backend's iptables first: the hook's own PATH would pick the machine's default
    text = script.read_text().replace("PATH=/usr/local/sbin", "PATH=%s:/usr/local/sbin" % sandbox_net.backend_bin_dir(
        backend))
    script.write_text(text)
    proc = ns.run(["sh", str(script)], check=False)
    assert proc.returncode == 0, proc
    return proc.stderr


@pytest.mark.parametrize("backend", ansible_runs.BACKENDS)
def test_sets_come_back_before_the_rules_and_a_missing_or_corrupt_sets_file_fails_closed(lan, backend, tmp_path):
    server = lan.add_client(subnet="198.51.100")
    alice = lan.add_client(subnet="203.0.113")
    bob = lan.add_client(subnet="203.0.113")
    with tcp_load.Server(server, 3306, family=6):
        wl = {"name": NAME, "ports": [3306], "sources": [alice.addr4, alice.addr6, bob.addr4, bob.addr6],
              "backend": "ipset", "fallback": "REJECT"}
        assert ansible_runs.run_module(server, "iptables_whitelist", wl, backend)["_status"] == "CHANGED"
        res = ansible_runs.run_module(server, "iptables_ipset", {"name": "blocklist", "entries": [bob.addr4, bob.addr6]},
                                      backend)
        assert res["_status"] == "CHANGED", res
        for family, setname in (("ipv4", "blocklist"), ("ipv6", "blocklist_v6")):
            res = ansible_runs.run_module(server, "iptables_rule", {"name": "blocklist", "priority": 50,
                                                                    "match_set": setname, "ip_version": family,
                                                                    "jump": "DROP"}, backend)
            assert res["_status"] == "CHANGED", res
        assert reachable(alice, server) == (True, True) and reachable(bob, server) == (False, False)

        files = dict(ipv4=str(tmp_path / "iptables.rules"), ipv6=str(tmp_path / "ip6tables.rules"),
                     sets=str(tmp_path / "iptables.ipsets"))
        args = {"rules": [{"name": "loopback", "priority": 100, "in_interface": "lo", "jump": "ACCEPT"}],
                "save": files}
        res = ansible_runs.run_module(server, "iptables_ruleset", args, backend)
        assert res["_status"] == "CHANGED", res
        assert res["saved"]["sets"] == dict(path=files["sets"], changed=True,
                                            sets=["MYSQL_WHITELIST", "MYSQL_WHITELIST_v6", "blocklist", "blocklist_v6"])
        assert stat.S_IMODE(os.stat(files["sets"]).st_mode) == 0o600
        rules4 = open(files["ipv4"]).read()
        assert "# ironwall-set: blocklist hash:net inet\n" in rules4
        assert "# ironwall-set: MYSQL_WHITELIST hash:net inet\n" in rules4
        assert "# ironwall-set: MYSQL_WHITELIST_v6 hash:net inet6\n" in open(files["ipv6"]).read()
        again = ansible_runs.run_module(server, "iptables_ruleset", args, backend)
        assert again["changed"] is False and again["saved"]["sets"]["changed"] is False, again
        assert again["calls"]["ipset_save"] == 1

        hook = _persist.hook_script(_persist.Save((("ipv4", files["ipv4"]), ("ipv6", files["ipv6"])),
                                                  sets=files["sets"]))
        saved4, saved6 = filter_save(server, 4, backend), filter_save(server, 6, backend)
        sets_before = ipsets(server)

        log = reboot(server, backend, hook, tmp_path)
        assert "err" not in log, log
        assert ipsets(server) == sets_before
        assert filter_save(server, 4, backend) == saved4 and filter_save(server, 6, backend) == saved6
        assert reachable(alice, server) == (True, True) and reachable(bob, server) == (False, False)
        assert ansible_runs.run_module(server, "iptables_ruleset", args, backend)["changed"] is False

        os.unlink(files["sets"])
        log = reboot(server, backend, hook, tmp_path)
        assert "is missing" in log and "fail closed" in log, log
        assert reachable(alice, server) == (False, False)          # the whitelisted port stays closed
        assert filter_save(server, 4, backend) == saved4     # every rule is back
        assert filter_save(server, 6, backend) == saved6
        assert "add ironwall-sets MYSQL_WHITELIST" in server.run(["ipset", "save"]).stdout

        # the next run fills the empty sets again; its save writes the sets file again
        assert ansible_runs.run_module(server, "iptables_whitelist", wl, backend)["changed"] is True
        res = ansible_runs.run_module(server, "iptables_ruleset", args, backend)
        assert res["saved"]["sets"]["changed"] is True and reachable(alice, server) == (True, True)

        with open(files["sets"]) as fh:
            lines = fh.read().splitlines()
        with open(files["sets"], "w") as fh:
            fh.write("\n".join(lines[:3] + ["add MYSQL_WHITELIST not-an-address"] + lines[3:]) + "\n")
        log = reboot(server, backend, hook, tmp_path)
        assert "failed ipset restore" in log and "fail closed" in log, log
        assert reachable(alice, server) == (False, False)
        assert filter_save(server, 4, backend) == saved4
