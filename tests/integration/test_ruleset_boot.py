# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_ruleset and the firewall role on a sandbox host over REAL SSH: the guard, and a reboot.

One host (own netns, own /etc, sshd; its iptables is Debian's default, nft) is shared by the
tests of this file (a host start costs seconds); each test resets the host's firewall first.
Everything runs inside the host's namespaces; the machine's firewall is never touched.

2. The lockout guard judges the FINAL state of one ruleset task, with the real
   ``SSH_CONNECTION`` of Ansible's session: ``iptables_policy INPUT: DROP`` alone is refused,
   one ruleset task that sets ``INPUT: DROP`` and accepts ESTABLISHED and tcp 22 passes, and
   rulesets whose final state cuts port 22 (the accept removed by ``exclusive``, or a whitelist
   of port 22 placed before it) are refused, the ruleset unchanged, and a NEW SSH connection
   still gets in.
3. A reboot with Docker and fail2ban: their chains are made the way they make them
   (``iptables -N DOCKER-USER``, ``-I INPUT 1 ... -j f2b-sshd``...), then playbooks/site.yml (the
   role, with the example inventory) saves what the collection owns and installs the ifupdown
   hook. The files hold nothing of Docker or fail2ban. The reboot: every table flushed and
   deleted (``iptables -F/-X``, nat too, policies ACCEPT, then ``nft flush ruleset``: no table at
   all, as after a real boot), the once-per-boot flag removed, the installed hook run: it logs
   no error and our rules are back; then Docker and fail2ban create their chains again without
   an error, a second run of the hook (``ifup`` of another interface) changes nothing, the
   ruleset is ours plus theirs with our tagged INPUT rules in ascending priority order, and
   the role then has nothing to change. The contrast, ``firewall_persist_scope: all``: the file
   holds the foreign chains, and after the same reboot fail2ban's ``iptables -N f2b-sshd``
   fails with "Chain already exists" (the known failure mode ``owned`` avoids).

The hook logs through ``logger``; the host has no syslog daemon, so a stand-in ``logger`` in
the host's /usr/local/sbin (first on the hook's PATH) records what would go to syslog.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

import ansible_runs
import sandbox_hosts
import sandbox_net
import site_sandbox

pytestmark = pytest.mark.host

HOOK = "/etc/network/if-pre-up.d/ironwall-iptables"
FLAG = "/run/ironwall-iptables.restored"
FILES = ("/etc/iptables.rules", "/etc/ip6tables.rules")
SYSLOG = "/run/fake-syslog"
FAMILIES = ((4, "iptables"), (6, "ip6tables"))
TAG_RE = re.compile(r'--comment "?ironwall:(\d+):')

FAKE_LOGGER = r"""#!/bin/sh
# Test stand-in for logger(1) (the sandbox host runs no syslog daemon): one line per message,
# "<facility.priority> <tag>: <message>", appended to /run/fake-syslog.
tag=logger; pri=user.notice
while [ $# -gt 0 ]; do
    case "$1" in
        -t) tag=$2; shift 2 ;;
        -p) pri=$2; shift 2 ;;
        --) shift; break ;;
        *) break ;;
    esac
done
echo "$pri $tag: $*" >> /run/fake-syslog
"""

# Docker's chains as dockerd makes them at start (filter and nat), for one family; {ipt} is
# iptables or ip6tables. Only documentation addresses.
DOCKER_UP = """
{ipt} -N DOCKER
{ipt} -N DOCKER-ISOLATION-STAGE-1
{ipt} -N DOCKER-USER
{ipt} -A DOCKER-USER -j RETURN
{ipt} -A DOCKER-ISOLATION-STAGE-1 -j RETURN
{ipt} -A DOCKER -d {host} ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
{ipt} -I FORWARD 1 -j DOCKER-USER
{ipt} -I FORWARD 2 -j DOCKER-ISOLATION-STAGE-1
{ipt} -A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
{ipt} -A FORWARD -o docker0 -j DOCKER
{ipt} -A FORWARD -i docker0 ! -o docker0 -j ACCEPT
{ipt} -t nat -N DOCKER
{ipt} -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
{ipt} -t nat -A POSTROUTING -s {net} ! -o docker0 -j MASQUERADE
{ipt} -t nat -A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination {dnat}
"""
# fail2ban's iptables-multiport action: actionstart, then one ban.
F2B_UP = """
{ipt} -N f2b-sshd
{ipt} -A f2b-sshd -j RETURN
{ipt} -I INPUT 1 -p tcp -m multiport --dports 22 -j f2b-sshd
{ipt} -I f2b-sshd 1 -s {ban} -j REJECT --reject-with {unreach}
"""
V4 = dict(ipt="iptables", host="203.0.113.2/32", net="203.0.113.0/24", dnat="203.0.113.2:80", ban="203.0.113.9",
          unreach="icmp-port-unreachable")
V6 = dict(ipt="ip6tables", host="2001:db8:17::2/128", net="2001:db8:17::/64", dnat="[2001:db8:17::2]:80",
          ban="2001:db8:203::9", unreach="icmp6-port-unreachable")
FOREIGN_UP = "set -e\n" + "".join(t.format(**v) for v in (V4, V6) for t in (DOCKER_UP, F2B_UP))

# The reboot: what is left of the tables after a boot is nothing.
REBOOT = "".join("""
{ipt} -F; {ipt} -X; {ipt} -t nat -F; {ipt} -t nat -X
{ipt} -P INPUT ACCEPT; {ipt} -P FORWARD ACCEPT; {ipt} -P OUTPUT ACCEPT
""".format(ipt=ipt) for ipt in ("iptables", "ip6tables")) + "rm -f %s %s\n" % (FLAG, SYSLOG)

BASELINE = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p udp -m udp --dport 53 -j ACCEPT
COMMIT
"""


# --------------------------------------------------------------------------- the host

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One sandbox host, shared by this file's tests, with an inventory that puts it in `firewall`."""
    sandbox_hosts.ensure_rootfs()
    with sandbox_net.Lan() as lan:
        host = sandbox_hosts.Host("rsboot", lan)
        try:
            host.start()
            host.inventory = site_sandbox.write_site_inventory([host], str(tmp_path_factory.mktemp("inventory")))
            host.plays = str(tmp_path_factory.mktemp("plays"))
            host.exec(["sh", "-c", "cat > /usr/local/sbin/logger && chmod 755 /usr/local/sbin/logger"],
                      input=FAKE_LOGGER)
            yield host
        finally:
            host.end_ssh_masters()
            host.stop()


def reset(host):
    """A fresh firewall and /etc: no rules, no chains, no saved files, no hook."""
    host.exec(["sh", "-c", REBOOT + "rm -f %s %s %s\n" % (FILES[0], FILES[1], HOOK)])
    netns_nft(host, "flush", "ruleset")


def netns_nft(host, *args):
    """nft inside the host's network namespace (it deletes tables iptables cannot)."""
    return host.netns.run(["nft"] + list(args))


def rules(host, family):
    """iptables-save of one family on the host, without timestamps and counters."""
    return sandbox_net.comparable_save(host.exec(["%s-save" % dict(FAMILIES)[family]]).stdout)


def both(host):
    return {f: rules(host, f) for f, _ipt in FAMILIES}


def tables(text):
    """{table: [lines]} of a comparable save."""
    out = {}
    table = None
    for line in text.splitlines():
        if line.startswith("*"):
            table = out.setdefault(line[1:], [])
        elif line != "COMMIT":
            table.append(line)
    return out


def foreign(line):
    return any(word in line for word in ("DOCKER", "docker0", "f2b-"))


def tagged_priorities(text, chain="INPUT"):
    return [int(m.group(1)) for line in text.splitlines() if line.startswith("-A %s " % chain)
            for m in [TAG_RE.search(line)] if m]


def ssh_works(host, timeout=30):
    """A NEW SSH connection (no control master) runs a command on the host."""
    argv = host.ssh_argv("true")
    argv[argv.index("ConnectTimeout=10")] = "ConnectTimeout=%d" % timeout
    argv[1:1] = ["-o", "ControlMaster=no"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30, check=False)
    return proc.returncode == 0


def ssh_play(host, tasks, playbook=None, extra_args=()):
    """ansible-playbook over SSH (pipelining), JSON callback: (rc, {task name: result on the host}, data).

    ``tasks`` (a list of task dicts) makes a one-play playbook on the host; else ``playbook`` is run.
    """
    if tasks is not None:
        path = os.path.join(host.plays, "play-%d.yml" % len(os.listdir(host.plays)))
        with open(path, "w") as fh:
            fh.write(json.dumps([{"hosts": "firewall", "gather_facts": False, "tasks": tasks}], indent=1))
        playbook = path
    env = ansible_runs.checkout_env(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                                    ANSIBLE_PIPELINING="1", ANSIBLE_DEPRECATION_WARNINGS="0")
    proc, _took = ansible_runs.timed_run([ansible_runs.ansible_bin("ansible-playbook"), "-i", host.inventory,
                                          playbook] + list(extra_args), env=env, timeout=900)
    data = ansible_runs.printed_json(proc, what="ansible-playbook")
    results = {}
    for play in data["plays"]:
        for task in play["tasks"]:
            results[task["task"]["name"]] = task["hosts"].get(host.name, {})
    return proc.returncode, results, data


def module_task(name, module, args):
    return {"name": name, "ironwall.iptables." + module: args, "ignore_errors": True}


def capture_task(name):
    return {"name": name, "ansible.builtin.command": "sh -c 'iptables-save; ip6tables-save'", "changed_when": False}


def failed(res):
    return res.get("failed") is True


def errors(stderr):
    """stderr of a command run by Host.exec, without the shell's note that its working directory
    (nsenter's --wd, opened outside the host's root) has no name inside the host."""
    return "".join(line + "\n" for line in stderr.splitlines() if "getcwd() failed" not in line)


# --------------------------------------------------------------------------- 2. the guard, over SSH

ESTABLISHED = {"name": "established", "priority": 100, "ctstate": ["ESTABLISHED", "RELATED"], "jump": "ACCEPT"}
SSH = {"name": "ssh", "priority": 200, "protocol": "tcp", "dports": [22], "jump": "ACCEPT"}


def test_the_guard_judges_the_final_state_of_one_ruleset_task_over_real_ssh(site):
    host = site
    reset(host)
    host.exec(["iptables-restore"], input=BASELINE)
    host.exec(["ip6tables-restore"], input=BASELINE)
    start = both(host)
    # The SSH accept is listed before the ESTABLISHED one: the order of the parts does not matter.
    good = {"policies": {"INPUT": "DROP"}, "rules": [SSH, ESTABLISHED]}
    cut_by_exclusive = {"policies": {"INPUT": "DROP"}, "rules": [ESTABLISHED], "exclusive": True}
    cut_by_whitelist = {"policies": {"INPUT": "DROP"}, "rules": [SSH, ESTABLISHED],
                        "whitelists": [{"name": "SSH_WHITELIST", "ports": [22], "priority": 150,
                                        "sources": ["203.0.113.50", "2001:db8:203::50"]}]}
    tasks = [module_task("policy alone", "iptables_policy", {"chain": "INPUT", "policy": "DROP"}),
             capture_task("after policy alone"),
             module_task("good ruleset", "iptables_ruleset", good),
             capture_task("after good ruleset"),
             module_task("cut by exclusive", "iptables_ruleset", cut_by_exclusive),
             module_task("cut by whitelist", "iptables_ruleset", cut_by_whitelist),
             capture_task("after refusals")]
    rc, res, data = ssh_play(host, tasks)
    assert len(res) == len(tasks), data

    alone = res["policy alone"]
    assert failed(alone) and "lockout guard" in alone["msg"], alone
    assert "198.51.100.1" in alone["msg"], alone["msg"]  # the real SSH client: the switch
    assert sandbox_net.comparable_save(res["after policy alone"]["stdout"]) == start[4] + start[6]

    ok = res["good ruleset"]
    assert not failed(ok) and ok["changed"] is True, ok
    assert ok["guard"]["before"] == "ACCEPT" and ok["guard"]["after"] == "ACCEPT", ok
    assert ok["guard"]["forced"] is False and "198.51.100.1" in ok["guard"]["connection"], ok
    applied = sandbox_net.comparable_save(res["after good ruleset"]["stdout"])
    assert applied.count(":INPUT DROP") == 2 and applied.count("ironwall:200:rule:ssh") == 2, applied

    for name in ("cut by exclusive", "cut by whitelist"):
        refused = res[name]
        assert failed(refused) and refused.get("changed") is False, (name, refused)
        assert refused["msg"].startswith("lockout guard"), (name, refused["msg"])
        assert refused["guard"]["before"] == "ACCEPT" and refused["guard"]["after"] != "ACCEPT", (name, refused)
        assert "would drop the SYN" in refused["guard"].get("where", ""), (name, refused)
    assert sandbox_net.comparable_save(res["after refusals"]["stdout"]) == applied
    now = both(host)
    assert now[4] + now[6] == applied
    assert ssh_works(host), "a NEW SSH connection does not get in"


# --------------------------------------------------------------------------- 3. the reboot

CONVERGE = "Converge the firewall in one transaction per family, save it and install the boot hook"


def converge_result(results):
    for name, res in results.items():
        if name.endswith(CONVERGE):
            return res
    raise AssertionError("no converge task in %s" % sorted(results))


def run_hook(host):
    """The installed ifupdown hook, as ifup runs it; (its stderr, what it logged)."""
    proc = host.exec(["env", "IFACE=eth0", "MODE=start", "PHASE=pre-up", HOOK], check=False)
    assert proc.returncode == 0, proc
    log = host.exec(["sh", "-c", "cat %s 2>/dev/null || true" % SYSLOG]).stdout
    return errors(proc.stderr), log


def reboot(host):
    host.exec(["sh", "-c", REBOOT])
    left = both(host)
    for family, text in left.items():
        assert not [x for x in text.splitlines() if x.startswith("-A")], (family, text)
    netns_nft(host, "flush", "ruleset")  # after a boot the tables do not even exist
    assert netns_nft(host, "list", "ruleset").stdout.strip() == ""


def test_reboot_with_docker_and_fail2ban_restores_ours_and_lets_theirs_come_back(site):
    host = site
    reset(host)
    up = host.exec(["sh", "-c", FOREIGN_UP], check=False)
    assert up.returncode == 0 and errors(up.stderr) == "", up

    rc, res, data = ssh_play(host, None, playbook=site_sandbox.SITE)
    assert rc == 0, json.dumps(data)[-3000:]
    converge = converge_result(res)
    assert converge["saved"]["ipv4"]["changed"] is True and not converge["saved"]["ipv4"].get("skipped"), converge
    assert converge["saved"]["ipv6"]["changed"] is True and not converge["saved"]["ipv6"].get("skipped"), converge
    assert converge["boot"]["method"] == "ifupdown" and HOOK in converge["boot"]["written"], converge
    before = both(host)
    for family in (4, 6):
        assert "-A f2b-sshd" in before[family] and "-A DOCKER" in before[family] and "MYSQL_WHITELIST" in before[family]

    # The files hold what the collection owns, nothing of Docker or fail2ban.
    saved = {path: host.exec(["cat", path]).stdout for path in FILES}
    for path, text in saved.items():
        assert "DOCKER" not in text and "docker0" not in text and "f2b-" not in text, (path, text)
        assert "*nat" not in text, (path, text)
        assert ":INPUT DROP" in text and "MYSQL_WHITELIST" in text and "RATELIMIT_SSH" in text, (path, text)
    hook = host.exec(["cat", HOOK]).stdout
    assert "--noflush" in hook, hook

    # The reboot, then the hook, as ifupdown runs it before the first interface comes up.
    reboot(host)
    stderr, log = run_hook(host)
    assert stderr == "", stderr
    assert "daemon.err" not in log and "failed" not in log, log
    for path in FILES:
        assert "daemon.info ironwall-iptables: restored %s" % path in log, log
    host.exec(["test", "-e", FLAG])
    restored = both(host)
    for family in (4, 6):
        ours = [x for x in tables(before[family])["filter"] if not foreign(x)]
        assert tables(restored[family])["filter"] == ours, (family, restored[family])
        assert not [x for t, lines in tables(restored[family]).items() if t != "filter" for x in lines
                    if x.startswith("-A")], restored[family]

    # Docker and fail2ban start as on a clean boot: every chain they make is new to them.
    again = host.exec(["sh", "-c", FOREIGN_UP], check=False)
    assert again.returncode == 0 and errors(again.stderr) == "", again
    # ifup of another interface: the hook runs again and must not wipe what they added.
    with_theirs = both(host)
    stderr, log2 = run_hook(host)
    assert stderr == "" and log2 == log, (stderr, log2)
    after = both(host)
    assert after == with_theirs
    for family in (4, 6):
        assert sorted(after[family].splitlines()) == sorted(before[family].splitlines()), family
        inputs = [x for x in after[family].splitlines() if x.startswith("-A INPUT ")]
        assert "-j f2b-sshd" in inputs[0], inputs  # fail2ban's -I INPUT 1, first as always
        prios = tagged_priorities(after[family])
        assert len(prios) > 5 and prios == sorted(prios), (family, prios)

    # The role, run again on the rebooted host, finds nothing to do.
    rc, res, data = ssh_play(host, None, playbook=site_sandbox.SITE)
    assert rc == 0, json.dumps(data)[-3000:]
    converge = converge_result(res)
    assert converge["changed"] is False, converge
    assert both(host) == after

    # The contrast: scope all saves Docker's and fail2ban's chains too ...
    rc, res, data = ssh_play(host, None, playbook=site_sandbox.SITE, extra_args=["-e", "firewall_persist_scope=all"])
    assert rc == 0, json.dumps(data)[-3000:]
    everything = {path: host.exec(["cat", path]).stdout for path in FILES}
    for path, text in everything.items():
        assert "f2b-sshd" in text and "DOCKER-USER" in text and "*nat" in text, (path, text)
    assert "--noflush" not in host.exec(["cat", HOOK]).stdout
    # ... so after the reboot they are back before fail2ban starts, and its start fails: the known
    # failure mode of saving the whole ruleset (scope owned avoids it).
    reboot(host)
    stderr, log = run_hook(host)
    assert stderr == "" and "daemon.err" not in log, (stderr, log)
    assert "-A f2b-sshd" in rules(host, 4)
    f2b = host.exec(["sh", "-c", "set -e\n" + F2B_UP.format(**V4)], check=False)
    assert f2b.returncode != 0 and "Chain already exists" in f2b.stderr, f2b
    docker = host.exec(["iptables", "-N", "DOCKER-USER"], check=False)
    assert docker.returncode != 0 and "Chain already exists" in docker.stderr, docker
