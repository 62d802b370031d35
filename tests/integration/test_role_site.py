# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/site.yml on a sandbox host over SSH, judged by real packets.

One host (own netns, own /etc, sshd) and two clients on a switch namespace: `trusted`
(198.51.100.3 / 2001:db8:100::3, listed in MYSQL_WHITELIST by the example inventory) and
`outsider` (203.0.113.2 / 2001:db8:203::2, not listed). Expected, on IPv4 and IPv6: 80 open
to both, 3306 only from trusted, other ports dropped, ping answered, and the 4th new SSH
connection from one source within 60 s dropped while another source is unaffected.
The second run of site.yml changes nothing.
"""

from __future__ import annotations

import os
import sys
import time

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import sandbox_hosts  # noqa: E402
import sandbox_net  # noqa: E402
import site_sandbox  # noqa: E402

pytestmark = pytest.mark.host


def _example_vars():
    with open(os.path.join(site_sandbox.GROUP_VARS, "firewall.yml")) as fh:
        return yaml.safe_load(fh)


@pytest.fixture
def site_host(tmp_path):
    sandbox_hosts.ensure_rootfs()
    with sandbox_net.Lan() as lan:
        host = sandbox_hosts.Host("site", lan)
        host.start()
        try:
            trusted = lan.add_client(subnet="198.51.100")
            outsider = lan.add_client(subnet="203.0.113")
            inventory = site_sandbox.write_site_inventory([host], str(tmp_path / "inventory"))
            yield host, trusted, outsider, inventory
        finally:
            host.end_ssh_masters()
            host.stop()


def test_site_playbook_with_real_packets(site_host):
    host, trusted, outsider, inventory = site_host
    whitelist = _example_vars()["firewall_whitelists"][0]["sources"]
    assert trusted.addr4 in whitelist and trusted.addr6 in whitelist, "the example inventory lists the trusted client"
    assert not any(a in whitelist for a in (outsider.addr4, outsider.addr6))

    rc, out, recap = site_sandbox.run_site(inventory)[:3]
    assert rc == 0, out
    assert recap["site"]["changed"] > 0 and recap["site"]["failed"] == 0, out
    rc, out, recap = site_sandbox.run_site(inventory)[:3]
    assert rc == 0, out
    assert recap["site"]["changed"] == 0 and recap["site"]["failed"] == 0, "second run changed something:\n" + out

    # Persisted and hooked (Molecule checks the contents and the reboot in depth).
    modes = host.exec(["stat", "-c", "%a %n", "/etc/iptables.rules", "/etc/ip6tables.rules",
                       "/etc/network/if-pre-up.d/ironwall-iptables"]).stdout.split("\n")
    assert modes[:3] == ["600 /etc/iptables.rules", "600 /etc/ip6tables.rules",
                         "755 /etc/network/if-pre-up.d/ironwall-iptables"]

    host.start_listeners((80, 3306, 8080))
    table = {}
    for name, client in (("trusted", trusted), ("outsider", outsider)):
        for fam, addr in ((4, host.addr4), (6, host.addr6)):
            for port in (80, 3306, 8080):
                table[(port, name, fam)] = sandbox_net.probe(client, addr, port, timeout=1)
            table[("ping", name, fam)] = site_sandbox.ping(client, addr, fam)
    expected = {}
    for name in ("trusted", "outsider"):
        for fam in (4, 6):
            expected[(80, name, fam)] = True
            expected[(3306, name, fam)] = name == "trusted"
            expected[(8080, name, fam)] = False
            expected[("ping", name, fam)] = True
    wrong = {k: v for k, v in table.items() if expected[k] != v}
    assert not wrong, "probes (port, client, family) -> open? that differ: %s" % wrong

    # SSH: hitcount 4 in 60 s -> the 4th new connection from one source is the first dropped
    # (--set records it before --rcheck counts 4). Each family has its own recent list.
    for fam, addr in ((4, host.addr4), (6, host.addr6)):
        attempts = site_sandbox.ssh_attempts(outsider, addr, 5)
        assert attempts == [True, True, True, False, False], (fam, attempts)
        assert sandbox_net.probe(trusted, addr, 22, timeout=2), "another source is not limited (IPv%d)" % fam
    log = [r for r in host.exec(["iptables-save"]).stdout.splitlines() if "SSH_brute_force" in r]
    assert log and "-j LOG" in log[0]

    # A port dropped from firewall_open_ports is closed by the next run (the role's rules are
    # an exclusive list), and nothing else changes.
    before = host.exec(["sh", "-c", "iptables-save; ip6tables-save"]).stdout
    assert "firewall-port-tcp-80" in before
    rc, out, recap = site_sandbox.run_site(inventory, extra_args=["-e", '{"firewall_open_ports": []}'])[:3]
    assert rc == 0 and recap["site"]["failed"] == 0, out
    after = host.exec(["sh", "-c", "iptables-save; ip6tables-save"]).stdout
    assert "firewall-port-tcp-80" not in after
    assert [x for x in before.splitlines() if "firewall-port-tcp-80" not in x and not x.startswith("#")] == [
        x for x in after.splitlines() if not x.startswith("#")]
    for fam, addr in ((4, host.addr4), (6, host.addr6)):
        assert not sandbox_net.probe(trusted, addr, 80, timeout=1), "port 80 still open over IPv%d" % fam


def test_site_refuses_a_config_that_locks_out_ssh(site_host, tmp_path):
    host, _trusted, _outsider, inventory = site_host
    extra = tmp_path / "lockout.yml"
    extra.write_text("firewall_ratelimits: []\nfirewall_ssh_accept: false\n")
    rc, out, recap = site_sandbox.run_site(inventory, extra_args=["-e", "@%s" % extra])[:3]
    assert rc != 0
    assert "Refusing to apply" in out and "firewall_ssh_port=22" in out and "firewall_force" in out, out
    assert "ironwall" not in host.exec(["iptables-save"]).stdout, "nothing changed on the host"

    bad = tmp_path / "bad.yml"
    bad.write_text("firewall_restore: sometimes\n")
    rc, out, recap = site_sandbox.run_site(inventory, extra_args=["-e", "@%s" % bad])[:3]
    assert rc != 0 and "firewall_restore" in out and "sometimes" in out, out
    assert "ironwall" not in host.exec(["iptables-save"]).stdout


def test_site_restore_methods(site_host, tmp_path):
    """firewall_restore: systemd installs the oneshot unit instead of the hook; auto switches back."""
    host, _trusted, _outsider, inventory = site_host
    rc, out, recap = site_sandbox.run_site(inventory, extra_args=["-e", "firewall_restore=systemd"])[:3]
    assert rc == 0, out
    listing = host.exec(["sh", "-c", "stat -c '%a %N' /etc/systemd/system/ironwall-iptables.service "
                         "/etc/systemd/system/multi-user.target.wants/ironwall-iptables.service "
                         "/usr/local/sbin/ironwall-iptables-restore; "
                         "test ! -e /etc/network/if-pre-up.d/ironwall-iptables && echo no-hook"]).stdout
    assert "644 '/etc/systemd/system/ironwall-iptables.service'" in listing
    assert "-> '/etc/systemd/system/ironwall-iptables.service'" in listing
    assert "755 '/usr/local/sbin/ironwall-iptables-restore'" in listing
    assert "no-hook" in listing
    unit = host.exec(["cat", "/etc/systemd/system/ironwall-iptables.service"]).stdout
    assert "Before=network-pre.target" in unit and "ExecStart=/usr/local/sbin/ironwall-iptables-restore" in unit
    # The script restores once per boot, like the hook.
    host.exec(["sh", "-c", "iptables -P INPUT ACCEPT; iptables -F; iptables -X; rm -f /run/ironwall-iptables.restored"])
    host.exec(["/usr/local/sbin/ironwall-iptables-restore"])
    assert ":INPUT DROP" in host.exec(["iptables-save"]).stdout

    rc, out, recap = site_sandbox.run_site(inventory)[:3]
    assert rc == 0, out
    left = host.exec(["sh", "-c", "ls /etc/systemd/system /usr/local/sbin; ls /etc/network/if-pre-up.d"]).stdout
    assert "ironwall-iptables.service" not in left and "ironwall-iptables-restore" not in left
    assert "ironwall-iptables" in left


def _ruleset(host):
    """Both families' iptables-save on the host, without timestamps and counters."""
    return sandbox_net.comparable_save(host.exec(["sh", "-c", "iptables-save; ip6tables-save"]).stdout)


def _rollback_state(host):
    """The rollback state files of the host's network namespace (the locks aside)."""
    out = host.exec(["sh", "-c", "ls /run/ironwall-iptables/net-*/ 2>/dev/null || true"]).stdout.split()
    return sorted(name for name in out if not name.endswith(".lock") and name != "lock")


def _wait_for_watchdog(host, limit):
    """Wait until the rollback watchdog on the host has exited (its deadline passed)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if host.exec(["pgrep", "-f", "ironwall-rollbac[k]"], check=False).returncode != 0:
            return
        time.sleep(0.5)
    raise AssertionError("the rollback watchdog still runs after %d s" % limit)


def test_site_rollback_timeout_keeps_a_confirmed_run_and_undoes_a_lockout(site_host, tmp_path):
    import observe  # tools/observe.py

    host, trusted, _outsider, inventory = site_host
    # The play must get from its first change to its reconnect (and confirmation) before the
    # deadline: about 12 s on a quiet machine, 30 s on a loaded 2-CPU one. Nothing else has to
    # beat it; the test waits for events, `bound` only turns a hang into a failure.
    timeout, bound = 90, 120
    # A good run: armed, reconnected, confirmed; after the deadline the ruleset is still there.
    rc, out, recap = site_sandbox.run_site(inventory, extra_args=["-e", "firewall_rollback_timeout=%d" % timeout])[:3]
    assert rc == 0 and recap["site"]["failed"] == 0, out
    # The ruleset task confirmed over a new connection itself (confirm): nothing is left pending.
    assert "pending" not in _rollback_state(host), out
    kept = _ruleset(host)
    assert ":INPUT DROP" in kept and "ironwall:" in kept
    _wait_for_watchdog(host, timeout + bound)
    assert _rollback_state(host) == [], "confirmed: nothing pending"
    assert _ruleset(host) == kept

    # A forced run that locks SSH out (port 22 loses both its rate limit and its accept rule):
    # the reconnect fails, nothing confirms, and the watchdog brings the previous ruleset back.
    lockout = tmp_path / "lockout.yml"
    lockout.write_text("firewall_ssh_port: 2222\nfirewall_ratelimits: [{name: ssh, state: absent}]\n"
                       "firewall_force: true\nfirewall_rollback_timeout: %d\n" % timeout)
    host.end_ssh_masters()
    # New connections from `trusted` to port 22, watched from before the run until after the
    # rollback: one every 21 s, so the site's own SSH limit (4 within 60 s) never drops them.
    with observe.Watch(trusted, host.addr4, 22, interval=21) as watch:
        assert watch.wait_for(lambda a: a.result == "open", bound), watch.summary()
        t0 = time.monotonic()
        rc, out, recap = site_sandbox.run_site(inventory, extra_args=["-e", "@%s" % lockout])[:3]
        assert rc != 0 and "UNREACHABLE" in out, out
        locked = watch.wait_for(lambda a: a.result == "dropped" and a.start >= t0, timeout + bound)
        assert locked, "port 22 was never closed before the rollback: %s" % watch.summary(t0)
        back = watch.wait_for(lambda a: a.result == "open" and a.start > locked.start, timeout + bound)
        assert back, "port 22 still closed: %s" % watch.summary(t0)
    assert back.end - t0 >= timeout, "port 22 open again before the deadline: %s" % watch.summary(t0)
    _wait_for_watchdog(host, timeout + bound)
    assert _rollback_state(host) == ["rolled-back"]
    assert _ruleset(host) == kept
    assert host.ssh("true", check=False).returncode == 0, "a new SSH connection gets in again"
    assert "2222" not in host.exec(["cat", "/etc/iptables.rules"]).stdout, "nothing persisted before confirming"
