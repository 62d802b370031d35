# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The role's firewall_blocklists with real packets: listed sources (entries and a controller file) get
nothing, others reach the open port, the sets are saved beside the rules, a rerun changes nothing; the sets
are items of the one iptables_ruleset task, and a blocklist dropped from the variable loses its rules and its
sets (firewall_exclusive, the default).
The role runs with a local connection inside a throwaway namespace (nft), files in a temporary directory."""

from __future__ import annotations

import json
import os
import stat

import ansible_runs
import sandbox_net
import tcp_load


def test_blocklists_drop_listed_sources_and_are_saved(lan, tmp_path):
    server = lan.add_client(subnet="198.51.100")
    alice = lan.add_client(subnet="203.0.113")
    bob = lan.add_client(subnet="203.0.113")
    carol = lan.add_client(subnet="203.0.113")
    feed = tmp_path / "feed.txt"
    feed.write_text("# an abuse feed\n%s\n\n%s/128\n198.18.0.0/15\n" % (carol.addr4, carol.addr6))
    variables = {
        "firewall_open_ports": [8080],
        "firewall_blocklists": [{"name": "abuse", "entries": [bob.addr4, bob.addr6]},
                                {"name": "feed", "file": str(feed), "action": "REJECT"}],
        "firewall_rules_file": str(tmp_path / "iptables.rules"),
        "firewall_rules6_file": str(tmp_path / "ip6tables.rules"),
        "firewall_sets_file": str(tmp_path / "iptables.ipsets"),
        "firewall_restore": "none",
    }
    play = json.dumps([{"hosts": "localhost", "gather_facts": False, "vars": variables,
                        "roles": ["ironwall.iptables.firewall"]}])
    with tcp_load.Server(server, 8080, family=6):
        # check mode first: the sets do not exist yet, so the rules matching them cannot be tested, and
        # nothing changes
        check = ansible_runs.run_playbook(server, play, check=True)
        assert check["_rc"] == 0, check["_stderr"][-3000:]
        assert server.run(["ipset", "save"]).stdout == "" and "ironwall" not in ansible_runs.save(server, 4)
        first = ansible_runs.run_playbook(server, play)
        assert first["_rc"] == 0, first["_stderr"][-3000:]
        # one module run converges the sets and the rules: no task per blocklist
        (result,) = [r for name, r in ansible_runs.task_results(first) if "one transaction" in name]
        assert sorted(result["sets"]) == ["abuse", "feed"] and result["sets"]["feed"]["ipv4"]["entries"] == 2
        assert not [name for name, _r in ansible_runs.task_results(first) if "blocklist" in name.lower()]
        for client, expected in ((alice, True), (bob, False), (carol, False)):
            assert sandbox_net.probe(client, server.addr4, 8080, timeout=20 if expected else 1) is expected
            assert sandbox_net.probe(client, server.addr6, 8080, timeout=20 if expected else 1) is expected
        v4 = ansible_runs.save(server, 4)
        assert '-A INPUT -m set --match-set abuse src -m comment --comment "ironwall:105:rule:firewall-blocklist-abuse" ' \
               '-j DROP' in v4
        inputs = [line for line in v4.splitlines() if line.startswith("-A INPUT")]
        assert "firewall-blocklist" in inputs[1] and "firewall-established" in inputs[3], inputs
        saved = (tmp_path / "iptables.ipsets").read_text()
        assert "add feed 198.18.0.0/15\n" in saved and "add abuse_v6 %s\n" % bob.addr6 in saved
        assert stat.S_IMODE(os.stat(str(tmp_path / "iptables.ipsets")).st_mode) == 0o600
        assert "# ironwall-set: feed_v6 hash:net inet6" in (tmp_path / "ip6tables.rules").read_text()

        again = ansible_runs.run_playbook(server, play)
        assert again["_rc"] == 0 and again["stats"]["localhost"]["changed"] == 0, again["stats"]
        (result,) = [r for name, r in ansible_runs.task_results(again) if "one transaction" in name]
        assert result["calls"]["ipset_save"] == 1 and "ipset_restore" not in result["calls"], result["calls"]

        # feed dropped from the variable: its rules and its sets go, carol gets through again
        variables["firewall_blocklists"] = variables["firewall_blocklists"][:1]
        play = json.dumps([{"hosts": "localhost", "gather_facts": False, "vars": variables,
                            "roles": ["ironwall.iptables.firewall"]}])
        dropped = ansible_runs.run_playbook(server, play)
        assert dropped["_rc"] == 0, dropped["_stderr"][-3000:]
        (result,) = [r for name, r in ansible_runs.task_results(dropped) if "one transaction" in name]
        assert result["removed"] == {"ipv4": ["ipset:feed", "rule:firewall-blocklist-feed"],
                                     "ipv6": ["ipset:feed_v6", "rule:firewall-blocklist-feed-v6"]}, result["removed"]
        sets = sorted(line.split()[1] for line in server.run(["ipset", "save"]).stdout.splitlines()
                      if line.startswith("create "))
        assert sets == ["abuse", "abuse_v6", "ironwall-sets"]
        assert "feed" not in ansible_runs.save(server, 4) and "feed" not in (tmp_path / "iptables.ipsets").read_text()
        for client, expected in ((bob, False), (carol, True)):
            assert sandbox_net.probe(client, server.addr4, 8080, timeout=20 if expected else 1) is expected
            assert sandbox_net.probe(client, server.addr6, 8080, timeout=20 if expected else 1) is expected
        again = ansible_runs.run_playbook(server, play)
        assert again["_rc"] == 0 and again["stats"]["localhost"]["changed"] == 0, again["stats"]

        # firewall_exclusive false: the role prunes its own rules only; a dropped blocklist's sets stay
        variables.update(firewall_exclusive=False, firewall_blocklists=[])
        play = json.dumps([{"hosts": "localhost", "gather_facts": False, "vars": variables,
                            "roles": ["ironwall.iptables.firewall"]}])
        kept = ansible_runs.run_playbook(server, play)
        assert kept["_rc"] == 0, kept["_stderr"][-3000:]
        assert "blocklist" not in ansible_runs.save(server, 4) and "blocklist" not in ansible_runs.save(server, 6)
        assert "create abuse hash:net" in server.run(["ipset", "save"]).stdout
        assert sandbox_net.probe(bob, server.addr4, 8080, timeout=20) is True
