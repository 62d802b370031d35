# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The role's blocklists over REAL SSH, Ansible connecting over IPv4 and then over IPv6.

A blocklist rule sits before the established rule, so it is on the path of the SSH connection
Ansible uses. The lockout guard used to treat its set match as unknown and refused the role
over SSH without firewall_force; now it looks the SSH client's address up in the sets, and
neighbour discovery is accepted before the blocklists (the guard cannot know the next hop's
address). A blocklist listing the SSH client itself is still refused, changing nothing, and the
host stays reachable.
"""

from __future__ import annotations

import os
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import sandbox_hosts  # noqa: E402
import sandbox_inventory  # noqa: E402
import sandbox_net  # noqa: E402
import site_sandbox  # noqa: E402

pytestmark = pytest.mark.host


@pytest.fixture
def host(tmp_path):
    """(host, {4: inventory over IPv4, 6: inventory over IPv6})."""
    sandbox_hosts.ensure_rootfs()
    with sandbox_net.Lan() as lan:
        h = sandbox_hosts.Host("blocky", lan)
        h.start()
        try:
            inventories = {4: sandbox_inventory.write_inventory([h], str(tmp_path / "inventory4.yml"))}
            inventories[6] = sandbox_inventory.write_inventory(
                [h], str(tmp_path / "inventory6.yml"), host_vars=lambda x: {"ansible_host": x.addr6})
            yield h, inventories
        finally:
            h.end_ssh_masters()
            h.stop()


def playbook(tmp_path, entries, name):
    path = tmp_path / (name + ".yml")
    path.write_text(yaml.safe_dump([{
        "name": "Blocklists", "hosts": "sandbox", "gather_facts": False,
        "vars": {"firewall_open_ports": [8080], "firewall_blocklists": [{"name": "abuse", "entries": entries}]},
        "roles": [{"role": "ironwall.iptables.firewall"}]}]))
    return str(path)


def firewall(h):
    return [sandbox_net.comparable_save(h.exec([tool]).stdout) for tool in ("iptables-save", "ip6tables-save")] \
        + [h.exec(["ipset", "save"]).stdout]


def test_blocklists_converge_over_ssh_on_both_families_and_listing_the_client_is_refused(host, tmp_path):
    h, inventories = host
    others = playbook(tmp_path, ["198.18.0.0/15", "2001:db8:ffff::/48"], "others")
    for family in (4, 6):
        rc, out, recap = site_sandbox.run_site(inventories[family], playbook=others)[:3]
        assert rc == 0 and recap["blocky"]["failed"] == 0, out
        rc, out, recap = site_sandbox.run_site(inventories[family], playbook=others)[:3]
        assert rc == 0 and recap["blocky"]["changed"] == 0, "the rerun over IPv%d changed something:\n%s" % (
            family, out)
    before = firewall(h)
    assert "-A INPUT -m set --match-set abuse src" in before[0] and "--match-set abuse_v6 src" in before[1]

    # 2001:db8::/32 and 198.51.100.0/24 hold the SSH client (the switch) of each inventory.
    for family, entries in ((6, ["198.18.0.0/15", "2001:db8::/32"]), (4, ["198.51.100.0/24", "2001:db8:ffff::/48"])):
        rc, out, recap = site_sandbox.run_site(inventories[family], playbook=playbook(tmp_path, entries, "me%d" % family))[:3]
        assert rc != 0 and recap["blocky"]["failed"] == 1 and "lockout guard" in out, out
        assert firewall(h) == before
    for family in (4, 6):
        rc, out, recap = site_sandbox.run_site(inventories[family], playbook=others)[:3]
        assert rc == 0 and recap["blocky"]["changed"] == 0, out   # still reachable, still the same
