# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_persist: the save option, the owned/all boot files, the boot hook and the file helpers.

Files only under tmp_path (``root`` stands in for the target's /); no binary runs, except
``sh -n`` and a ``sh -c`` that only prints the arguments of the hook's restore lines. Whether
the rendered owned file passes ``iptables-restore --test`` is for the integration tests.
"""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from ansible_collections.ironwall.iptables.plugins.module_utils import _persist
from ansible_collections.ironwall.iptables.plugins.module_utils._errors import SpecError
from ansible_collections.ironwall.iptables.plugins.module_utils._model import Ruleset, Table, parse_save, render_table
from ansible_collections.ironwall.iptables.plugins.module_utils._plan import Desired, OwnedChain, plan_changes

BOTH = ("ipv4", "ipv6")


@pytest.fixture
def root(tmp_path):
    """A fake target root with an /etc."""
    (tmp_path / "etc").mkdir()
    return str(tmp_path)


def refused(save, fams=BOTH, root=""):
    with pytest.raises(SpecError) as err:
        _persist.validate(save, fams, root)
    return err.value


# --- validate ----------------------------------------------------------------------------------

def test_no_save_is_none(root):
    assert _persist.validate(None, BOTH, root) is None
    assert _persist.validate({}, BOTH, root) is None


def test_a_valid_save_with_defaults(root):
    save = _persist.validate({"ipv4": "/etc/iptables.rules", "ipv6": "/etc/ip6tables.rules"}, BOTH, root)
    assert save == _persist.Save((("ipv4", "/etc/iptables.rules"), ("ipv6", "/etc/ip6tables.rules")), "owned", None)
    assert save.noflush
    assert not _persist.validate({"ipv4": "/etc/iptables.rules", "scope": "all"}, BOTH, root).noflush


@pytest.mark.parametrize("path", ["iptables.rules", "etc/iptables.rules", "./iptables.rules", "/etc/", "/", ""])
def test_a_save_path_must_be_an_absolute_file_path(root, path):
    err = refused({"ipv4": path}, root=root)
    assert err.option == "save.ipv4"


def test_a_family_outside_ip_version_is_refused(root):
    err = refused({"ipv4": "/etc/iptables.rules", "ipv6": "/etc/ip6tables.rules"}, ("ipv4",), root)
    assert err.option == "save.ipv6" and "ip_version" in err.message
    err = refused({"ipv4": "/etc/iptables.rules"}, ("ipv6",), root)
    assert err.option == "save.ipv4"


def test_the_same_file_twice_is_refused(root):
    err = refused({"ipv4": "/etc/iptables.rules", "ipv6": "/etc/iptables.rules"}, root=root)
    assert err.option == "save.ipv6" and "two different files" in err.message


def test_the_same_file_spelled_another_way_is_refused(root):
    # Both families would be written to one file: the IPv6 rules overwrite the IPv4 ones, and at
    # boot iptables-restore --test fails on that file, so IPv4 comes up without its firewall.
    accepted = []
    for other in ("/etc//iptables.rules", "/etc/./iptables.rules", "/etc/../etc/iptables.rules"):
        try:
            _persist.validate({"ipv4": "/etc/iptables.rules", "ipv6": other}, BOTH, root)
            accepted.append(other)
        except SpecError as exc:
            assert exc.option == "save.ipv6"
    assert not accepted, "save.ipv4 /etc/iptables.rules and save.ipv6 %s are one file, accepted" % " or ".join(accepted)


def test_a_missing_directory_is_refused_naming_the_target_path(root):
    err = refused({"ipv4": "/etc/iptables/rules.v4"}, root=root)
    assert err.option == "save.ipv4" and "directory /etc/iptables does not exist" in err.message
    assert root not in err.message  # the message names the target's path, not the test root
    os.mkdir(os.path.join(root, "etc", "iptables"))
    save = _persist.validate({"ipv4": "/etc/iptables/rules.v4"}, BOTH, root)
    assert save.paths == (("ipv4", "/etc/iptables/rules.v4"),)


def test_a_directory_is_not_a_file(root):
    err = refused({"ipv6": "/etc"}, root=root)
    assert err.option == "save.ipv6" and "is a directory" in err.message


@pytest.mark.parametrize("ch", ["\n", "\r", "\x00", "\t", "\x1b", "\u2028", "\x85"])
def test_a_control_character_in_a_path_is_refused(root, ch):
    err = refused({"ipv4": "/etc/ipt%sables.rules" % ch}, root=root)
    assert err.option == "save.ipv4" and "control character" in err.message


@pytest.mark.parametrize("save,option", [
    ({"ipv4": "/etc/iptables.rules", "scope": "everything"}, "save.scope"),
    ({"ipv4": "/etc/iptables.rules", "scope": "owned\n"}, "save.scope"),
    ({"ipv4": "/etc/iptables.rules", "boot": "rc.local"}, "save.boot"),
    ({"ipv4": "/etc/iptables.rules", "boot": "systemd\n"}, "save.boot"),
    ({"boot": "auto"}, "save.boot"),
    ({"boot": "ifupdown", "scope": "all"}, "save.boot"),
])
def test_bad_scope_and_boot(root, save, option):
    assert refused(save, root=root).option == option


def test_boot_none_without_paths_removes_the_hook_only(root):
    assert _persist.validate({"boot": "none"}, BOTH, root) == _persist.Save((), "owned", "none")


# --- render: what is saved ----------------------------------------------------------------------

T = '-m comment --comment "ironwall:%03d:%s:%s"'
SNAPSHOT = "\n".join([
    "# Generated by iptables-save v1.8.9 (nf_tables) on Wed Nov 25 13:59:46 2026",
    "*raw", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
    "-A PREROUTING -p udp -m udp --dport 123 %s -j CT --notrack" % (T % (100, "rule", "notrack")),
    "-A PREROUTING -s 203.0.113.0/24 -j DROP",
    "COMMIT",
    "*mangle", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
    ":POSTROUTING ACCEPT [0:0]",
    "-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu",
    "COMMIT",
    "*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]",
    ":DOCKER - [0:0]",
    "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
    "-A PREROUTING -p tcp -m tcp --dport 8080 %s -j DOCKER" % (T % (300, "rule", "to-docker")),
    "-A POSTROUTING -s 198.51.100.0/24 -o eth0 %s -j ACCEPT" % (T % (500, "rule", "nat-accept")),
    "-A DOCKER -i docker0 -j RETURN",
    "COMMIT",
    "*filter", ":INPUT DROP [57:3420]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [9:540]", ":DOCKER-USER - [0:0]",
    ":RATELIMIT_SSH - [0:0]", ":WL - [0:0]", ":f2b-sshd - [0:0]",
    "-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd",
    "[12:720] -A INPUT -i lo %s -j ACCEPT" % (T % (100, "rule", "lo")),
    "-A INPUT -p tcp -m tcp --dport 22 %s -j f2b-sshd" % (T % (150, "rule", "to-f2b")),
    "-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW %s -j RATELIMIT_SSH"
    % (T % (200, "ratelimit", "ssh")),
    "-A INPUT -s 198.51.100.50/32 -j ACCEPT",
    "-A INPUT -p tcp -m tcp --dport 3306 %s -j WL" % (T % (400, "whitelist", "WL")),
    "-A INPUT -p tcp -m tcp --dport 3306 %s -j DROP" % (T % (400, "whitelist", "WL")),
    "-A FORWARD -j DOCKER-USER",
    "-A DOCKER-USER -s 203.0.113.0/24 %s -j DROP" % (T % (100, "rule", "in-docker")),
    "-A DOCKER-USER -j RETURN",
    '-A RATELIMIT_SSH -m comment --comment "ironwall:chain:ratelimit:ssh"',
    "-A RATELIMIT_SSH -m recent --set --name ssh --mask 255.255.255.255 --rsource",
    "-A RATELIMIT_SSH -j ACCEPT",
    '-A WL -m comment --comment "ironwall:chain:whitelist:WL"',
    "-A WL -s 198.51.100.7/32 -j ACCEPT",
    "-A f2b-sshd -s 203.0.113.66/32 -j REJECT --reject-with icmp-port-unreachable",
    "-A f2b-sshd -j RETURN",
    "COMMIT", ""])
OWNED_V4 = "\n".join([
    "# ironwall.iptables: what the collection owns (scope owned). The boot hook loads it with "
    "iptables-restore --noflush.",
    "*filter", ":INPUT DROP [0:0]", ":RATELIMIT_SSH - [0:0]", ":WL - [0:0]",
    "-A INPUT -i lo %s -j ACCEPT" % (T % (100, "rule", "lo")),
    "-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW %s -j RATELIMIT_SSH"
    % (T % (200, "ratelimit", "ssh")),
    "-A INPUT -p tcp -m tcp --dport 3306 %s -j WL" % (T % (400, "whitelist", "WL")),
    "-A INPUT -p tcp -m tcp --dport 3306 %s -j DROP" % (T % (400, "whitelist", "WL")),
    '-A RATELIMIT_SSH -m comment --comment "ironwall:chain:ratelimit:ssh"',
    "-A RATELIMIT_SSH -m recent --set --name ssh --mask 255.255.255.255 --rsource",
    "-A RATELIMIT_SSH -j ACCEPT",
    '-A WL -m comment --comment "ironwall:chain:whitelist:WL"',
    "-A WL -s 198.51.100.7/32 -j ACCEPT",
    "COMMIT",
    "*nat",
    "-A POSTROUTING -s 198.51.100.0/24 -o eth0 %s -j ACCEPT" % (T % (500, "rule", "nat-accept")),
    "COMMIT",
    "*raw",
    "-A PREROUTING -p udp -m udp --dport 123 %s -j CT --notrack" % (T % (100, "rule", "notrack")),
    "COMMIT", ""])


def test_owned_holds_the_declared_policies_owned_chains_and_tagged_rules_in_order():
    text, skipped = _persist.render(parse_save(SNAPSHOT), "ipv4", "owned", {"INPUT"})
    assert text == OWNED_V4
    assert len(skipped) == 3


def test_owned_sets_only_the_policies_the_task_declares():
    rs = parse_save(SNAPSHOT)
    text, _skipped = _persist.render(rs, "ipv4", "owned", set())
    assert ":INPUT" not in text and ":FORWARD" not in text and ":OUTPUT" not in text
    text, _skipped = _persist.render(rs, "ipv4", "owned", {"INPUT", "FORWARD", "OUTPUT"})
    assert ":INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n" in text
    # a policy is never set in another table (nat's INPUT, raw's OUTPUT), and foreign chains are not declared
    for other in ("*nat\n", "*raw\n"):
        block = text.split(other)[1].split("COMMIT")[0]
        assert block and not [line for line in block.split("\n") if line.startswith(":")]


def test_owned_leaves_out_tagged_rules_that_need_another_programs_chain_and_says_why():
    _text, skipped = _persist.render(parse_save(SNAPSHOT), "ipv4", "owned", {"INPUT"})
    by_rule = dict((s["rule"], s["reason"]) for s in skipped)
    assert set(by_rule) == {
        "-A INPUT -p tcp -m tcp --dport 22 %s -j f2b-sshd" % (T % (150, "rule", "to-f2b")),
        "-A DOCKER-USER -s 203.0.113.0/24 %s -j DROP" % (T % (100, "rule", "in-docker")),
        "-A PREROUTING -p tcp -m tcp --dport 8080 %s -j DOCKER" % (T % (300, "rule", "to-docker")),
    }
    assert by_rule["-A INPUT -p tcp -m tcp --dport 22 %s -j f2b-sshd" % (T % (150, "rule", "to-f2b"))].startswith(
        "it jumps to chain f2b-sshd (table filter)")
    assert by_rule["-A DOCKER-USER -s 203.0.113.0/24 %s -j DROP" % (T % (100, "rule", "in-docker"))].startswith(
        "chain DOCKER-USER (table filter) belongs to other software")
    assert "chain DOCKER (table nat)" in by_rule[
        "-A PREROUTING -p tcp -m tcp --dport 8080 %s -j DOCKER" % (T % (300, "rule", "to-docker"))]


def test_owned_holds_nothing_foreign():
    text, _skipped = _persist.render(parse_save(SNAPSHOT), "ipv4", "owned", {"INPUT", "FORWARD"})
    for foreign in ("f2b-sshd", "DOCKER", "TCPMSS", "*mangle", "198.51.100.50", "203.0.113.0/24 -j DROP",
                    "addrtype", "[57:3420]", "[12:720]"):
        assert foreign not in text.replace('"ironwall:150:rule:to-f2b"', ""), foreign
    for line in text.split("\n"):
        if line.startswith("-A "):
            assert "ironwall:" in line or line.startswith(("-A WL ", "-A RATELIMIT_SSH ")), line


def test_owned_of_a_ruleset_with_nothing_of_ours_is_the_header_only():
    rs = parse_save("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                    ":f2b-sshd - [0:0]\n-A INPUT -j f2b-sshd\n-A f2b-sshd -j RETURN\nCOMMIT\n")
    text, skipped = _persist.render(rs, "ipv6", "owned", set())
    assert text == _persist.HEADER % "ip6tables-restore" + "\n" and skipped == []


def test_all_holds_everything_without_counters():
    rs = parse_save(SNAPSHOT)
    text, skipped = _persist.render(rs, "ipv4", "all", {"INPUT"})
    assert skipped == []
    assert "[57:3420]" not in text and "[12:720]" not in text
    back = parse_save(text)
    assert [t.name for t in back.tables] == ["filter", "nat", "mangle", "raw"]
    for table in rs.tables:  # every table, chain and rule; only the order of tables and chains is fixed
        assert sorted(render_table(table, counters=False)) == sorted(render_table(back.table(table.name)))
        for chain in table.chains:
            assert back.table(table.name).chain(chain.name).specs == chain.specs
    assert back.table("filter").chain("INPUT").policy == "DROP"


def shuffled(ruleset):
    """The same ruleset, tables and user chains in reverse order (as another backend or a plan prints them)."""
    return Ruleset(tuple(Table(t.name, tuple(c for c in t.chains if c.builtin)[::-1]
                               + tuple(c for c in t.chains if not c.builtin)[::-1])
                         for t in ruleset.tables[::-1]), ruleset.header)


@pytest.mark.parametrize("scope", _persist.SCOPES)
def test_the_file_does_not_depend_on_the_order_tables_and_chains_were_read_in(scope):
    rs = parse_save(SNAPSHOT)
    assert _persist.render(shuffled(rs), "ipv4", scope, {"INPUT", "FORWARD"}) == \
        _persist.render(rs, "ipv4", scope, {"INPUT", "FORWARD"})
    text, _skipped = _persist.render(shuffled(rs), "ipv4", scope, {"INPUT", "FORWARD"})
    filter_block = text.split("*filter\n")[1].split("COMMIT")[0]
    heads = [line for line in filter_block.split("\n") if line.startswith(":")]
    names = [h[1:].split(" ")[0] for h in heads]
    builtins = [n for n in names if n in ("INPUT", "FORWARD", "OUTPUT")]
    assert names[:len(builtins)] == [n for n in ("INPUT", "FORWARD", "OUTPUT") if n in builtins]
    assert names[len(builtins):] == sorted(names[len(builtins):])


def test_after_is_the_snapshot_with_the_plan_applied_new_tables_included():
    snapshot = parse_save("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")
    desired = Desired(policies=(("filter", "INPUT", "DROP"),),
                      chains=(OwnedChain("raw", "RAW_X", ('-m comment --comment "ironwall:chain:rule:x"',)),))
    plan = plan_changes(snapshot, desired)
    rs = _persist.after(snapshot, plan)
    assert [t.name for t in rs.tables] == ["filter", "raw"]
    assert rs.table("filter").chain("INPUT").policy == "DROP"
    assert rs.table("raw").chain("RAW_X") is not None
    assert snapshot.table("filter").chain("INPUT").policy == "ACCEPT"  # the snapshot itself is unchanged


# --- the boot hook ------------------------------------------------------------------------------

ODD = "/etc/fire wall/it's \"here\" $(touch /tmp/x) `id`.rules"


def restore_lines(script):
    return [line for line in script.split("\n") if line.startswith("restore ")]


def test_hook_script_restores_with_noflush_only_for_owned():
    owned = _persist.hook_script(_persist.Save((("ipv4", "/etc/iptables.rules"),), "owned", "ifupdown"))
    assert '"$tool" --test --noflush "$file"' in owned and '"$tool" -w 10 --noflush "$file"' in owned
    assert "Scope owned:" in owned
    full = _persist.hook_script(_persist.Save((("ipv4", "/etc/iptables.rules"),), "all", "ifupdown"))
    assert "--noflush" not in full.split("Scope all:")[1]
    assert '"$tool" --test "$file"' in full and '"$tool" -w 10 "$file"' in full


def test_hook_script_restores_each_family_with_its_tool_in_order():
    script = _persist.hook_script(_persist.Save((("ipv4", "/etc/iptables.rules"), ("ipv6", "/etc/ip6tables.rules")),
                                                "owned", "systemd"))
    assert restore_lines(script) == ["restore iptables-restore /etc/iptables.rules",
                                     "restore ip6tables-restore /etc/ip6tables.rules"]
    assert script.startswith("#!/bin/sh\n") and script.rstrip().endswith("exit 0")


def test_hook_script_is_valid_sh():
    for scope in _persist.SCOPES:
        script = _persist.hook_script(_persist.Save((("ipv4", ODD), ("ipv6", "/etc/ip6tables.rules")), scope, "auto"))
        proc = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr


def test_hook_script_quotes_paths_for_the_shell(tmp_path):
    script = _persist.hook_script(_persist.Save((("ipv4", ODD), ("ipv6", "/etc/a b'c")), "owned", "ifupdown"))
    calls = restore_lines(script)
    assert [shlex.split(c)[1:] for c in calls] == [["iptables-restore", ODD], ["ip6tables-restore", "/etc/a b'c"]]
    # what sh itself makes of them: restore() replaced by one that prints its arguments
    probe = 'restore() { printf "%s|%s\\n" "$1" "$2"; }\n' + "\n".join(calls)
    proc = subprocess.run(["sh", "-c", probe], capture_output=True, text=True, check=True, cwd=str(tmp_path))
    assert proc.stdout.split("\n")[:-1] == ["iptables-restore|" + ODD, "ip6tables-restore|/etc/a b'c"]
    assert os.listdir(str(tmp_path)) == []  # nothing in the path was run


# --- boot_method ---------------------------------------------------------------------------------

def tree(tmp_path, *paths):
    for p in paths:
        full = tmp_path / p.lstrip("/")
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text("")
    return str(tmp_path)


@pytest.mark.parametrize("method", ["ifupdown", "systemd", "none"])
def test_boot_method_other_than_auto_is_taken_as_given(tmp_path, method):
    assert _persist.boot_method(method, str(tmp_path)) == method


@pytest.mark.parametrize("paths,expected", [
    (["/etc/network/interfaces", "/sbin/ifup"], "ifupdown"),
    (["/etc/network/interfaces", "/usr/sbin/ifup", "/lib/systemd/systemd"], "ifupdown"),
    (["/etc/network/interfaces", "/usr/lib/systemd/systemd"], "systemd"),
    (["/sbin/ifup", "/lib/systemd/systemd"], "systemd"),
    (["/usr/lib/systemd/systemd"], "systemd"),
])
def test_boot_method_auto_picks_what_the_host_has(tmp_path, paths, expected):
    assert _persist.boot_method("auto", tree(tmp_path, *paths)) == expected


@pytest.mark.parametrize("paths", [[], ["/etc/network/interfaces"], ["/sbin/ifup", "/etc/systemd/system/x"]])
def test_boot_method_auto_without_ifupdown_or_systemd_is_refused(tmp_path, paths):
    with pytest.raises(SpecError) as err:
        _persist.boot_method("auto", tree(tmp_path, *paths))
    assert err.value.option == "save.boot"


def test_resolved_decides_auto_and_leaves_the_rest(tmp_path):
    root = tree(tmp_path, "/etc/network/interfaces", "/sbin/ifup")
    save = _persist.Save((("ipv4", "/etc/iptables.rules"),), "owned", "auto")
    assert _persist.resolved(save, root) == _persist.Save(save.paths, "owned", "ifupdown")
    untouched = _persist.Save(save.paths, "all", None)
    assert _persist.resolved(untouched, root) is untouched


# --- boot_files ------------------------------------------------------------------------------------

SAVE = _persist.Save((("ipv4", "/etc/iptables.rules"), ("ipv6", "/etc/ip6tables.rules")), "owned", "ifupdown")


def test_boot_files_of_ifupdown_is_the_hook():
    files = _persist.boot_files("ifupdown", SAVE)
    assert files == {_persist.HOOK: (_persist.hook_script(SAVE), 0o755)}
    assert _persist.HOOK == "/etc/network/if-pre-up.d/ironwall-iptables"


def test_boot_files_of_systemd_are_the_script_the_unit_and_its_link():
    files = _persist.boot_files("systemd", SAVE)
    assert set(files) == {_persist.SCRIPT, _persist.UNIT, _persist.UNIT_LINK}
    assert files[_persist.SCRIPT] == (_persist.hook_script(SAVE), 0o755)
    unit, mode = files[_persist.UNIT]
    assert mode == 0o644
    assert "\nExecStart=%s\n" % _persist.SCRIPT in unit and "\nType=oneshot\n" in unit
    assert "\nBefore=network-pre.target\n" in unit and "\nWantedBy=multi-user.target\n" in unit
    assert files[_persist.UNIT_LINK] == (("->", _persist.UNIT), None)
    assert _persist.UNIT_LINK.startswith("/etc/systemd/system/multi-user.target.wants/")


def test_boot_files_of_none_is_nothing_and_boot_files_lists_every_method():
    assert _persist.boot_files("none", SAVE) == {}
    for method, paths in _persist.BOOT_FILES.items():
        assert set(paths) == set(_persist.boot_files(method, SAVE))


# --- files -------------------------------------------------------------------------------------------

def test_needs_write_and_write_file(tmp_path):
    path = str(tmp_path / "iptables.rules")
    assert _persist.needs_write(path, "x\n", 0o600)
    _persist.write_file(path, "*filter\nCOMMIT\n", 0o600)
    assert open(path).read() == "*filter\nCOMMIT\n"
    assert os.stat(path).st_mode & 0o7777 == 0o600
    assert not _persist.needs_write(path, "*filter\nCOMMIT\n", 0o600)
    assert _persist.needs_write(path, "*filter\nCOMMIT\n\n", 0o600)
    os.chmod(path, 0o644)
    assert _persist.needs_write(path, "*filter\nCOMMIT\n", 0o600)


def test_write_file_mode_is_exact_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        _persist.write_file(str(tmp_path / "hook"), "#!/bin/sh\n", 0o755)
    finally:
        os.umask(0)
    try:
        _persist.write_file(str(tmp_path / "rules"), "x\n", 0o600)
    finally:
        os.umask(old)
    assert os.stat(str(tmp_path / "hook")).st_mode & 0o7777 == 0o755
    assert os.stat(str(tmp_path / "rules")).st_mode & 0o7777 == 0o600


def test_write_file_is_atomic_and_leaves_no_temporary_file(tmp_path):
    path = str(tmp_path / "iptables.rules")
    _persist.write_file(path, "old\n", 0o600)
    inode = os.stat(path).st_ino
    _persist.write_file(path, "new\n", 0o600)
    assert open(path).read() == "new\n"
    assert os.stat(path).st_ino != inode  # a new file renamed over the old one, not rewritten in place
    assert os.listdir(str(tmp_path)) == ["iptables.rules"]


def test_write_file_replaces_a_symlink_instead_of_following_it(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("do not touch\n")
    os.chmod(str(victim), 0o644)
    path = str(tmp_path / "iptables.rules")
    os.symlink(str(victim), path)
    assert _persist.needs_write(path, "do not touch\n", 0o644)  # a symlink is never the file we want
    _persist.write_file(path, "*filter\nCOMMIT\n", 0o600)
    assert not os.path.islink(path) and open(path).read() == "*filter\nCOMMIT\n"
    assert victim.read_text() == "do not touch\n" and os.stat(str(victim)).st_mode & 0o7777 == 0o644


def test_write_file_never_writes_through_a_planted_temporary_name(tmp_path):
    # Someone who can write into the directory plants the temporary name as a symlink. The writer
    # must not follow it (O_EXCL/O_NOFOLLOW, or unlink first as the symlink branch does).
    victim = tmp_path / "victim"
    victim.write_text("do not touch\n")
    os.chmod(str(victim), 0o644)
    path = str(tmp_path / "iptables.rules")
    os.symlink(str(victim), "%s.ironwall-tmp-%d" % (path, os.getpid()))
    try:
        _persist.write_file(path, "*filter\nCOMMIT\n", 0o600)
    except OSError:
        pass  # refusing is fine; writing through the link is not
    assert victim.read_text() == "do not touch\n"
    assert os.stat(str(victim)).st_mode & 0o7777 == 0o644
    assert not os.path.islink(path)


def test_write_file_makes_the_directory_and_writes_symlinks(tmp_path):
    link = str(tmp_path / "wants" / "unit.service")
    target = str(tmp_path / "unit.service")
    assert _persist.needs_write(link, ("->", target), None)
    _persist.write_file(link, ("->", target), None)
    assert os.readlink(link) == target
    assert not _persist.needs_write(link, ("->", target), None)
    assert _persist.needs_write(link, ("->", target + ".other"), None)
    _persist.write_file(link, ("->", target + ".other"), None)
    assert os.readlink(link) == target + ".other"
    assert sorted(os.listdir(str(tmp_path / "wants"))) == ["unit.service"]
    # a regular file where the link belongs is replaced too
    os.unlink(link)
    open(link, "w").close()
    assert _persist.needs_write(link, ("->", target), None)


def test_remove_file_and_read_text(tmp_path):
    path = str(tmp_path / "f")
    assert _persist.read_text(path) is None
    assert _persist.remove_file(path) is False
    with open(path, "wb") as fh:
        fh.write(b"-A INPUT -m comment --comment \"\xff\"\n")
    text = _persist.read_text(path)
    assert text == "-A INPUT -m comment --comment \"\udcff\"\n"
    _persist.write_file(path, text, 0o600)  # surrogates go back out as the same bytes
    with open(path, "rb") as fh:
        assert fh.read() == b"-A INPUT -m comment --comment \"\xff\"\n"
    assert _persist.remove_file(path) is True and not os.path.lexists(path)
    os.symlink(str(tmp_path / "missing"), path)
    assert _persist.remove_file(path) is True and not os.path.lexists(path)


def test_stage_name_is_stable_and_distinct():
    a = _persist.stage_name("/etc/iptables.rules")
    assert a == _persist.stage_name("/etc/iptables.rules")
    assert a != _persist.stage_name("/etc/ip6tables.rules")
    assert a.startswith("stage-") and len(a) == len("stage-") + 16 and all(c in "0123456789abcdef" for c in a[6:])
