"""tools/sandbox_net.py, sandbox_hosts.py and the sandbox.py CLI work: namespaces, both
iptables backends, real TCP, full hosts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import sandbox_hosts
import sandbox_net

SANDBOX_PY = os.path.join(sandbox_net.TOOLS_DIR, "sandbox.py")


def netns_names():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def pids_alive(pids):
    """Pids still running (a zombie waiting to be reaped by init is dead)."""
    alive = []
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as fh:
                state = fh.read().rpartition(")")[2].split()[0]
        except FileNotFoundError:
            continue
        if state not in ("Z", "X"):
            alive.append(pid)
    return alive


# ----------------------------------------------------------------------------- Netns

def test_netns_create_and_destroy():
    ns = sandbox_net.Netns()
    assert ns.name.startswith("iwt-%d-" % os.getpid())
    ns.create()
    try:
        assert ns.name in netns_names()
        links = ns.run(["ip", "-o", "link"]).stdout.splitlines()
        assert len(links) == 1 and links[0].startswith("1: lo: <LOOPBACK,UP,"), links
    finally:
        ns.destroy()
    assert ns.name not in netns_names()
    ns.destroy()  # already gone: tolerated


def test_netns_run_reports_failure(netns):
    with pytest.raises(sandbox_net.SandboxError, match="NO-SUCH-CHAIN"):
        netns.iptables("-L", "NO-SUCH-CHAIN")
    assert netns.run(["false"], check=False).returncode == 1


def test_cli_netns_create_and_destroy():
    name = "iwt-%d-cli" % os.getpid()
    subprocess.run([sys.executable, SANDBOX_PY, "netns-create", name], check=True)
    try:
        assert name in netns_names()
    finally:
        subprocess.run([sys.executable, SANDBOX_PY, "netns-destroy", name], check=True)
    assert name not in netns_names()


@pytest.mark.parametrize("backend,label", [("legacy", "(legacy)"), ("nft", "(nf_tables)")])
def test_backend_bin_dir_selects_backend_via_path(netns, backend, label):
    bindir = sandbox_net.backend_bin_dir(backend)
    assert os.path.dirname(bindir) == sandbox_net.CACHE_DIR
    for name in sandbox_net.XTABLES_NAMES:
        assert os.readlink(os.path.join(bindir, name)) == sandbox_net.XTABLES[backend]
    env = {"PATH": bindir + os.pathsep + os.environ["PATH"]}
    for binary in ("iptables", "ip6tables"):
        out = netns.run([binary, "-V"], env=env).stdout
        assert label in out, out


@pytest.mark.parametrize("backend", ["nft", "legacy"])
@pytest.mark.parametrize("family,addr", [(4, "198.51.100.7/32"), (6, "2001:db8::7/128")])
def test_load_then_save_round_trips(netns, backend, family, addr):
    text = ("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            ":IW_TEST - [0:0]\n-A INPUT -s %s -j IW_TEST\n-A IW_TEST -j RETURN\nCOMMIT\n" % addr)
    netns.load(text, family=family, backend=backend)
    saved = netns.save(family=family, backend=backend)
    assert "-A INPUT -s %s -j IW_TEST" % addr in saved
    assert ":IW_TEST - [0:0]" in saved
    other = 6 if family == 4 else 4
    assert "IW_TEST" not in netns.save(family=other, backend=backend)


def test_namespaces_have_separate_firewalls(netns):
    with sandbox_net.Netns() as other:
        netns.iptables("-N", "IW_ONLY_HERE")
        assert "IW_ONLY_HERE" in netns.save()
        assert "IW_ONLY_HERE" not in other.save()


# ----------------------------------------------------------------------------- Lan / TCP

def test_tcp_between_namespaces_v4_and_v6(lan):
    server = lan.add_client()
    client = lan.add_client()
    assert server.addr4.startswith("198.51.100.") and server.addr6.startswith("2001:db8:100:")
    pid4 = server.listen(8080, family=4)
    pid6 = server.listen(8080, family=6)
    assert sandbox_net.probe(client, server.addr4, 8080)
    assert sandbox_net.probe(client, server.addr6, 8080)
    assert not sandbox_net.probe(client, server.addr4, 8081)  # nobody listens: refused
    # the v6 listener is dual-stack: stop it first to see the families apart
    server.stop(pid6)
    assert not pids_alive([pid6])
    assert sandbox_net.probe(client, server.addr4, 8080)
    assert not sandbox_net.probe(client, server.addr6, 8080)
    server.stop(pid4)
    assert not sandbox_net.probe(client, server.addr4, 8080)


@pytest.mark.parametrize("backend", ["nft", "legacy"])
def test_firewall_in_server_namespace_filters_real_packets(lan, backend):
    server = lan.add_client()
    friend = lan.add_client()
    stranger = lan.add_client(subnet="203.0.113")
    assert stranger.addr4.startswith("203.0.113.")
    server.listen(22, family=4)
    server.listen(22, family=6)
    for peer in (friend, stranger):
        assert sandbox_net.probe(peer, server.addr4, 22)
        assert sandbox_net.probe(peer, server.addr6, 22)
    server.iptables("-A", "INPUT", "-p", "tcp", "--dport", "22", "-s", "203.0.113.0/24",
                    "-j", "DROP", backend=backend)
    server.iptables("-A", "INPUT", "-p", "tcp", "--dport", "22", "-s", stranger.addr6,
                    "-j", "REJECT", family=6, backend=backend)
    assert sandbox_net.probe(friend, server.addr4, 22)
    assert sandbox_net.probe(friend, server.addr6, 22)
    assert not sandbox_net.probe(stranger, server.addr4, 22, timeout=1)
    assert not sandbox_net.probe(stranger, server.addr6, 22, timeout=1)


def test_attach_existing_netns(lan, netns):
    v4, v6 = lan.attach(netns)
    assert (netns.addr4, netns.addr6) == (v4, v6)
    client = lan.add_client()
    netns.listen(9000)
    assert sandbox_net.probe(client, v4, 9000)
    lan.destroy()
    assert netns.name in netns_names()  # attached, not owned: survives the lan


def test_cleanup_stale_removes_leftovers_of_dead_creator():
    code = ("import sys, os, signal; sys.path.insert(0, %r); import sandbox_net;"
            "ns = sandbox_net.Netns().create(); print(ns.name, flush=True);"
            "os.kill(os.getpid(), signal.SIGKILL)" % sandbox_net.TOOLS_DIR)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == -signal.SIGKILL
    name = proc.stdout.strip()
    assert name in netns_names()  # SIGKILL: no chance to clean up
    removed = sandbox_hosts.cleanup_stale()
    assert "netns " + name in removed
    assert name not in netns_names()


def test_sigterm_tears_down_namespaces():
    code = ("import sys, time; sys.path.insert(0, %r); import sandbox_net;"
            "lan = sandbox_net.Lan().create(); c = lan.add_client();"
            "print(lan.name, c.name, flush=True); time.sleep(60)" % sandbox_net.TOOLS_DIR)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    names = proc.stdout.readline().split()
    assert len(names) == 2 and set(names) <= netns_names()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    proc.stdout.close()
    assert not set(names) & netns_names()


# ----------------------------------------------------------------------------- full hosts

@pytest.mark.host
def test_host_ssh_private_etc_and_clean_stop(lan):
    t0 = time.monotonic()
    host = sandbox_hosts.Host("iwtest1", lan).start()
    started = time.monotonic() - t0
    unshare_pid, init_pid = host.pid, host._init_pid()
    try:
        out = host.ssh("hostname; iptables -V; id -u").stdout.split("\n")
        assert out[0] == "iwtest1"
        assert out[1].startswith("iptables v1.8") and "(nf_tables)" in out[1]
        assert out[2] == "0"
        # own netfilter: a rule added on the host is not in the switch namespace
        host.ssh("iptables -N IW_HOST_ONLY")
        assert "IW_HOST_ONLY" in host.netns.save()
        assert "IW_HOST_ONLY" not in lan.switch.save()
        # own /etc: overlay upper dir, invisible on this machine and in the shared rootfs
        marker = "iwt-%d-private" % os.getpid()
        host.exec(["sh", "-c", "echo hello > /etc/%s" % marker])
        assert host.ssh("cat /etc/%s" % marker).stdout == "hello\n"
        assert not os.path.exists("/etc/" + marker)
        assert not os.path.exists(os.path.join(sandbox_hosts.ROOTFS_DIR, "etc", marker))
        assert host.exec(["cat", "/etc/hostname"]).stdout == "iwtest1\n"
        # own PID namespace: sshd is pid 1
        assert host.exec(["cat", "/proc/1/comm"]).stdout.strip() == "sshd"
    finally:
        host.stop()
    print("\nhost start: %.2fs" % started)
    assert host.netns.name not in netns_names()
    assert not pids_alive([unshare_pid, init_pid])
    assert not os.path.exists(host.dir)
    assert not os.path.exists(host.control_dir)


@pytest.mark.host
def test_host_up_and_host_down_cli(tmp_path):
    inventory = tmp_path / "inventory.yml"
    state = tmp_path / "state.json"
    proc = subprocess.Popen(
        [sys.executable, SANDBOX_PY, "host-up", "--count", "2", "--prefix", "iwcli",
         "--inventory", str(inventory), "--state", str(state)],
        stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY 2 hosts"), line
        data = json.loads(state.read_text())
        inv = inventory.read_text()
        for key in ("ansible_host:", "ansible_user: \"root\"", "ansible_ssh_private_key_file:",
                    "ProxyCommand='ip netns exec %s nc -q 0 %%h %%p'" % data["lan"],
                    "ansible_python_interpreter: \"/usr/bin/python3\""):
            assert key in inv
        assert [h["name"] for h in data["hosts"]] == ["iwcli1", "iwcli2"]
        # exactly what Ansible will run: ssh with the inventory's options and key
        for h in data["hosts"]:
            out = subprocess.run(
                ["ssh", "-i", sandbox_hosts.SSH_KEY, "-o", "BatchMode=yes",
                 "-o", "ProxyCommand=ip netns exec %s nc -q 0 %%h %%p" % data["lan"],
                 "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                 "-o", "LogLevel=ERROR", "root@" + h["addr4"], "hostname"],
                capture_output=True, text=True, timeout=30, check=False)
            assert out.stdout.strip() == h["name"], out.stderr
        down = subprocess.run([sys.executable, SANDBOX_PY, "host-down", "--state", str(state)],
                              capture_output=True, text=True, timeout=90, check=False)
        assert down.returncode == 0, down.stderr
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    names = netns_names()
    assert data["lan"] not in names
    assert not {h["netns"] for h in data["hosts"]} & names
    assert not pids_alive([h["pid"] for h in data["hosts"]])
    assert not any(os.path.exists(h["dir"]) for h in data["hosts"])


@pytest.mark.host
@pytest.mark.parametrize("count", [1, 6, 30])
def test_many_hosts_start_fast(lan, count):
    # Started in parallel, every host answering within start_hosts' own generous bound (it
    # raises otherwise). How long it took is printed, not asserted: a busy machine is slower,
    # not broken (DESIGN: 30 hosts in about 4 s on a quiet one).
    t0 = time.monotonic()
    hosts = sandbox_hosts.start_hosts(lan, ["iwn%d" % i for i in range(count)])
    elapsed = time.monotonic() - t0
    try:
        print("\n%d hosts started in %.2fs" % (count, elapsed))
        for host in hosts:
            assert host.exec(["hostname"]).stdout.strip() == host.name
        assert hosts[-1].ssh("hostname").stdout.strip() == hosts[-1].name
    finally:
        pids = [h.pid for h in hosts]
        for host in hosts:
            host.stop()
    assert not pids_alive(pids)
    assert not {h.netns.name for h in hosts} & netns_names()
