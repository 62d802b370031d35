# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What iptables_ruleset saves for the next boot, and the hook that loads it.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
The rendering functions are pure; the file functions at the end touch only the paths
they are given (plus ``root``, a prefix for tests), never a binary.

Scope ``owned`` (the default) saves what the collection owns: the policies the task sets,
the chains the collection owns (their ownership marker first), and its tagged rules in the
built-in chains, in their order. The boot hook loads it with ``iptables-restore --noflush``
into the empty tables of a fresh boot, so Docker and fail2ban then create their own chains as
they do on a clean boot: no stale foreign chain, no "Chain already exists". A tagged rule
that lives in, or jumps to, a chain another program owns (``DOCKER-USER``) cannot be loaded
before that program runs: it is left out and reported (the next run puts it back).
Scope ``all`` saves the whole ruleset, loaded without ``--noflush``, as before.

Ipsets. ``save.sets`` names a file for the sets the collection owns (_ipset.owned_save), loaded
by the hook before the rules. Each rules file lists the sets its rules match in comment lines
``# ironwall-set: NAME TYPE FAMILY``, so the hook knows them even when the sets file is missing
or corrupt: it then creates them empty (registered, so the next run fills them) and the rules
load. That fails closed where it matters: a port whitelisted through a set is closed to everyone
(its fallback drops), never open; a blocklist set is empty (it blocks nobody until the next run),
and the rest of the firewall, policies included, is in place. Where no set can be created (no
ipset tool), the rules are loaded without their set-matching lines, with the same effect.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import tempfile
from dataclasses import dataclass

from ._errors import SpecError
from ._model import BUILTIN_CHAINS, TABLES, Ruleset, Table, render_table
from ._rulespec import FAMILIES
from ._text import check_text

SCOPES = ("owned", "all")
BOOT_METHODS = ("auto", "ifupdown", "systemd", "none")
FILE_MODE = 0o600
RESTORE = {"ipv4": "iptables-restore", "ipv6": "ip6tables-restore"}
HOOK = "/etc/network/if-pre-up.d/ironwall-iptables"
SCRIPT = "/usr/local/sbin/ironwall-iptables-restore"
UNIT = "/etc/systemd/system/ironwall-iptables.service"
UNIT_LINK = "/etc/systemd/system/multi-user.target.wants/ironwall-iptables.service"
BOOT_FILES = {"ifupdown": (HOOK,), "systemd": (SCRIPT, UNIT, UNIT_LINK)}
HEADER = ("# ironwall.iptables: what the collection owns (scope owned). The boot hook loads it with "
          "%s --noflush.")
SET_LINE = "# ironwall-set: %s %s %s"
_MATCH_SET_RE = re.compile(r"--match-set (\S+) ")
INET = {"ipv4": "inet", "ipv6": "inet6"}


@dataclass(frozen=True)
class Save:
    """The validated ``save`` option: ((family, path), ...), scope, boot method (None: leave it)."""

    paths: tuple = ()
    scope: str = "owned"
    boot: str = None
    sets: str = None

    @property
    def noflush(self):
        return self.scope == "owned"


def validate(save, fams, root=""):
    """The ``save`` option (a dict, or None) -> Save or None; SpecError names ``save.<key>``."""
    if not save:
        return None
    paths = []
    for family in FAMILIES:
        path = save.get(family)
        if path is None:
            continue
        option = "save." + family
        check_text(path, option)
        if family not in fams:
            raise SpecError(option, "this task's ip_version leaves %s alone, so there is nothing to save; remove it"
                            % family)
        if not path.startswith("/") or path.endswith("/"):
            raise SpecError(option, "must be an absolute file path, e.g. /etc/iptables.rules, got %r" % path)
        directory = os.path.dirname(root + path)
        if not os.path.isdir(directory):
            raise SpecError(option, "directory %s does not exist on the target" % os.path.dirname(path))
        if os.path.isdir(root + path):
            raise SpecError(option, "%s is a directory; give the file to write" % path)
        paths.append((family, path))
    if len(set(os.path.realpath(root + p) for _f, p in paths)) < len(paths):
        raise SpecError("save.ipv6", "names the same file as save.ipv4; ipv4 and ipv6 need two different files")
    sets = save.get("sets")
    if sets is not None:
        check_text(sets, "save.sets")
        if not sets.startswith("/") or sets.endswith("/"):
            raise SpecError("save.sets", "must be an absolute file path, e.g. /etc/iptables.ipsets, got %r" % sets)
        if not os.path.isdir(os.path.dirname(root + sets)):
            raise SpecError("save.sets", "directory %s does not exist on the target" % os.path.dirname(sets))
        if os.path.realpath(root + sets) in set(os.path.realpath(root + p) for _f, p in paths):
            raise SpecError("save.sets", "names the file of a rules file; the sets need a file of their own")
        if not paths:
            raise SpecError("save.sets", "the sets are saved for the rules that match them: give save.ipv4 "
                                         "and/or save.ipv6 too")
    scope = save.get("scope") or "owned"
    if scope not in SCOPES:
        raise SpecError("save.scope", "must be owned or all, got %r" % (scope,))
    boot = save.get("boot")
    if boot is not None and boot not in BOOT_METHODS:
        raise SpecError("save.boot", "must be one of %s, got %r" % (", ".join(BOOT_METHODS), boot))
    if not paths and boot not in (None, "none"):
        raise SpecError("save.boot", "the hook loads the saved files: give save.ipv4 and/or save.ipv6")
    return Save(tuple(paths), scope, boot, sets)


# --- what is saved ---------------------------------------------------------------------------

def after(snapshot, plan):
    """The family's Ruleset once ``plan`` is applied to ``snapshot`` (its read)."""
    names = list(t.name for t in snapshot.tables)
    names.extend(tp.table for tp in plan.tables if tp.table not in names)
    return Ruleset(tuple(plan.table_after(snapshot.table(n)) for n in names), snapshot.header)


def canonical(ruleset):
    """The tables in a fixed order, built-in chains first and user chains by name: the same file
    whether the ruleset was read (iptables-save orders chains its own way, per backend) or
    simulated from a plan (new chains last), so a rerun never rewrites an unchanged file."""
    rank = dict((name, i) for i, name in enumerate(TABLES))
    out = []
    for table in sorted(ruleset.tables, key=lambda t: (rank.get(t.name, len(rank)), t.name)):
        builtins = BUILTIN_CHAINS.get(table.name, ())
        chains = sorted(table.chains, key=lambda c: (0, builtins.index(c.name), "") if c.name in builtins
                        else (1, 0, c.name))
        out.append(Table(table.name, tuple(chains)))
    return out


def render(ruleset, family, scope, policies, set_types=None):
    """(text, skipped): the file for one family, and the rule lines left out of it (with why).

    ``policies``: the built-in filter chains whose policy the task sets. ``set_types``: {set name:
    type} of the sets that exist, for the ``# ironwall-set:`` lines of the sets the rules match.
    """
    if scope == "all":
        lines = []
        for table in canonical(ruleset):
            lines.extend(render_table(table, counters=False))
        return _with_set_lines(lines, family, set_types), []
    lines = [HEADER % RESTORE[family]]
    skipped = []
    for table in canonical(ruleset):
        block = _owned_table(table, policies if table.name == "filter" else (), skipped)
        lines.extend(block)
    return _with_set_lines(lines, family, set_types, 1), skipped


def matched_sets(text):
    """The set names the rule lines of a rules file match, in order of first use."""
    out = []
    for line in text.split("\n"):
        if line.startswith("-A ") and "--match-set " in line:
            for name in _MATCH_SET_RE.findall(line):
                if name not in out:
                    out.append(name)
    return out


def _with_set_lines(lines, family, set_types, at=0):
    text = "\n".join(lines) + "\n"
    names = [n for n in matched_sets(text) if n in (set_types or {})]
    if not names:
        return text
    head = [SET_LINE % (n, set_types[n], INET[family]) for n in names]
    return "\n".join(lines[:at] + head + lines[at:]) + "\n"


def _owned_table(table, policies, skipped):
    user = set(c.name for c in table.chains if not c.builtin)
    owned = set(c.name for c in table.chains if not c.builtin and c.owner is not None)
    head = [c.header(counters=False) for c in table.chains
            if (c.builtin and c.name in policies) or c.name in owned]
    body = []
    for chain in table.chains:
        if chain.name in owned:
            body.extend(r.line for r in chain.rules)
            continue
        for rule in chain.rules:
            if rule.tag is None:
                continue
            if not chain.builtin:
                skipped.append(dict(rule=rule.line, reason="chain %s (table %s) belongs to other software: it does "
                                    "not exist yet when the hook loads the file" % (chain.name, table.name)))
            elif rule.target in user and rule.target not in owned:
                skipped.append(dict(rule=rule.line, reason="it jumps to chain %s (table %s), which belongs to other "
                                    "software and does not exist yet when the hook loads the file"
                                    % (rule.target, table.name)))
            else:
                body.append(rule.line)
    if not head and not body:
        return []
    return ["*" + table.name] + head + body + ["COMMIT"]


# --- the boot hook ---------------------------------------------------------------------------

_SCRIPT = """#!/bin/sh
# ironwall.iptables: load the saved firewall once per boot. Written by iptables_ruleset (save.boot);
# changes here are overwritten by its next run.
#
# ifupdown runs the scripts in if-pre-up.d before bringing up each interface; only the first
# run after boot restores (the flag lives in /run, a tmpfs), so a later `ifup` of another
# interface does not wipe the rules Docker or fail2ban added since boot. Each file is tested
# before it is loaded; failures go to syslog through logger. The script always exits 0: a
# failing pre-up script would keep the interface down.
#
# Scope {scope}: {how}

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
FLAG=/run/ironwall-iptables.restored
TAG=ironwall-iptables

log() {{
    logger -t "$TAG" -p "daemon.$1" -- "$2" 2>/dev/null || echo "$TAG: $2" >&2
}}

# The ipsets the rules match are loaded first (sets file $1; the rules files follow). Each rules
# file names them in "# ironwall-set: NAME TYPE FAMILY" lines. If the sets file is missing or does
# not load, those sets are created empty and registered: a port whitelisted through a set stays
# closed to everyone (its fallback drops), a blocklist blocks nobody until the next run, and the
# rest of the firewall loads. Fail closed, never open.
restore_sets() {{
    sets=$1
    shift
    needed=$(for f in "$@"; do [ -e "$f" ] && sed -n 's/^# ironwall-set: //p' "$f"; done)
    if [ -z "$sets" ] && [ -z "$needed" ]; then
        return 0
    fi
    if ! command -v ipset >/dev/null 2>&1; then
        log err "ipset not found: the sets are not restored; rules matching them are left out"
        return 0
    fi
    loaded=0
    if [ -n "$sets" ] && [ -e "$sets" ]; then
        if out=$(ipset -exist restore -f "$sets" 2>&1); then
            loaded=1
            log info "restored $sets"
        else
            log err "$sets failed ipset restore: $out; the sets the rules match are emptied (fail closed)"
        fi
    elif [ -n "$needed" ]; then
        log err "${{sets:-the sets file}} is missing; the sets the rules match are created empty (fail closed)"
    fi
    [ -z "$needed" ] && return 0
    ipset -exist create ironwall-sets list:set size 65536 2>/dev/null
    echo "$needed" | while read -r name type family; do
        [ -n "$name" ] || continue
        if ! ipset -n list "$name" >/dev/null 2>&1; then
            ipset -exist create "$name" "$type" family "$family" 2>/dev/null || log err "cannot create set $name"
        elif [ "$loaded" = 0 ]; then
            ipset flush "$name" 2>/dev/null
        fi
        ipset -exist add ironwall-sets "$name" 2>/dev/null
    done
}}

restore() {{
    tool=$1
    file=$2
    if [ ! -e "$file" ]; then
        return 0
    fi
    if ! command -v "$tool" >/dev/null 2>&1; then
        log err "$tool not found: $file not restored"
        return 0
    fi
    if ! out=$("$tool" --test{flags} "$file" 2>&1); then
        if grep -q -e '--match-set ' "$file" && sed '/--match-set /d' "$file" | "$tool" --test{flags} >/dev/null 2>&1; then
            # A set the rules match is missing (no ipset tool): load everything else. A whitelisted
            # port keeps its fallback and stays closed; a blocklist blocks nobody.
            log err "$file failed $tool --test ($out); restoring it without its set-matching rules (fail closed)"
            if ! out=$(sed '/--match-set /d' "$file" | "$tool" -w 10{flags} 2>&1); then
                log err "$tool $file failed: $out"
            fi
            return 0
        fi
        log err "$file failed $tool --test, not restored: $out"
        return 0
    fi
    if ! out=$("$tool" -w 10{flags} "$file" 2>&1); then
        log err "$tool $file failed: $out"
        return 0
    fi
    log info "restored $file"
}}

if [ -e "$FLAG" ]; then
    exit 0
fi
# Claim the boot before restoring: concurrent ifup runs must not both load the files.
if ! ( set -C; : > "$FLAG" ) 2>/dev/null; then
    exit 0
fi

{calls}
exit 0
"""

_UNIT = """# ironwall.iptables: load the saved firewall at boot. Written by iptables_ruleset (save.boot).
[Unit]
Description=ironwall.iptables: restore the saved firewall
DefaultDependencies=no
Before=network-pre.target
Wants=network-pre.target
After=local-fs.target

[Service]
Type=oneshot
ExecStart={script}
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
"""


def hook_script(save):
    """The boot script that loads ``save``'s files (the ifupdown hook, or the systemd unit's script)."""
    how = ("only what the collection owns, added with --noflush to the empty tables of a fresh boot; "
           "other software adds its own chains afterwards." if save.noflush else
           "the whole saved ruleset replaces the tables.")
    calls = "\n".join("restore %s %s" % (RESTORE[f], shlex.quote(p)) for f, p in save.paths)
    rules = " ".join(shlex.quote(p) for _f, p in save.paths)
    calls = "restore_sets %s %s\n%s" % (shlex.quote(save.sets or ""), rules, calls)
    return _SCRIPT.format(scope=save.scope, how=how, flags=" --noflush" if save.noflush else "", calls=calls)


def boot_method(wanted, root=""):
    """auto -> ifupdown (``/etc/network/interfaces`` and ``ifup``) or systemd; else ``wanted``."""
    if wanted != "auto":
        return wanted

    def exists(path):
        return os.path.exists(root + path)

    if exists("/etc/network/interfaces") and (exists("/sbin/ifup") or exists("/usr/sbin/ifup")):
        return "ifupdown"
    if exists("/usr/lib/systemd/systemd") or exists("/lib/systemd/systemd"):
        return "systemd"
    raise SpecError("save.boot", "auto found neither ifupdown (/etc/network/interfaces and ifup) nor systemd on "
                                 "this host; set save.boot to ifupdown, systemd or none")


def resolved(save, root=""):
    """``save`` with ``boot: auto`` decided for this host (before anything runs)."""
    if save.boot is None:
        return save
    return Save(save.paths, save.scope, boot_method(save.boot, root), save.sets)


def boot_files(method, save):
    """{path: (content, mode)} of the hook files for ``method`` (a symlink: content ('->', target))."""
    if method == "ifupdown":
        return {HOOK: (hook_script(save), 0o755)}
    if method == "systemd":
        return {SCRIPT: (hook_script(save), 0o755), UNIT: (_UNIT.format(script=SCRIPT), 0o644),
                UNIT_LINK: (("->", UNIT), None)}
    return {}


# --- files (no binary runs here) ---------------------------------------------------------------

def read_text(path):
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "surrogateescape")
    except (IOError, OSError):
        return None


def needs_write(path, content, mode):
    """Does ``path`` differ from ``content`` (text, or ('->', target) for a symlink) or ``mode``?"""
    if isinstance(content, tuple):
        return not os.path.islink(path) or os.readlink(path) != content[1]
    if os.path.islink(path) or read_text(path) != content:
        return True
    st = os.stat(path)
    return (st.st_mode & 0o7777) != mode or (os.geteuid() == 0 and (st.st_uid, st.st_gid) != (0, 0))


def write_file(path, content, mode):
    """Write atomically: a temporary file in the same directory, flushed, then renamed over ``path``."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".ironwall-", dir=directory)
    if isinstance(content, tuple):
        os.close(fd)
        os.unlink(tmp)
        os.symlink(content[1], tmp)  # fails, never follows, if another link took the name meanwhile
    else:
        try:
            data = memoryview(content.encode("utf-8", "surrogateescape"))
            while data:
                data = data[os.write(fd, data):]
            os.fchmod(fd, mode)
            if os.geteuid() == 0:
                os.fchown(fd, 0, 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
    os.rename(tmp, path)


def remove_file(path):
    """Remove ``path`` if it is there; True when it was."""
    if os.path.lexists(path):
        os.unlink(path)
        return True
    return False


def stage_name(path):
    """The name a staged copy of ``path`` gets in the rollback state directory."""
    return "stage-" + hashlib.sha1(path.encode("utf-8", "surrogateescape")).hexdigest()[:16]
