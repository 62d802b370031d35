# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The only place that runs iptables binaries: save, restore --test, restore --noflush, rollback.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
Processes run through ``module.run_command``; nothing else in module_utils runs any.
"""

from __future__ import annotations

import os
import re
import time

from ._model import parse_save, render_table

BINARIES = {
    "ipv4": {"save": "iptables-save", "restore": "iptables-restore", "main": "iptables"},
    "ipv6": {"save": "ip6tables-save", "restore": "ip6tables-restore", "main": "ip6tables"},
}
_FAILED_LINE_RE = re.compile(r"line:? (\d+) failed|Error occurred at line: (\d+)")
STATE_DIR = "/run/ironwall-iptables"
# The rollback watchdog (like iptables-apply): detached, it sleeps, then restores the
# snapshot unless iptables_confirm removed the pending token (or a newer arm replaced it).
_WATCHDOG = """exec >/dev/null 2>&1 </dev/null
dir=$1; token=$2; timeout=$3
sleep "$timeout"
[ "$(cat "$dir/pending" 2>/dev/null)" = "$token" ] || exit 0
ok=yes
if [ -s "$dir/ipv4.save" ]; then "$4" -w 10 < "$dir/ipv4.save" || ok=no; fi
if [ -s "$dir/ipv6.save" ]; then "$5" -w 10 < "$dir/ipv6.save" || ok=no; fi
date +%s > "$dir/rolled-back"
rm -f "$dir/pending" "$dir/ipv4.save" "$dir/ipv6.save"
logger -t ironwall-iptables "no confirmation within $timeout s: restored the ruleset from before the change (ok=$ok)" || true
"""
_LOCK_RE = re.compile(r"xtables lock|Another app is currently holding", re.I)


class NetfilterError(Exception):
    """A binary failed; carries what fail_json needs."""

    def __init__(self, msg, cmd=None, rc=None, stdout="", stderr=""):
        super(NetfilterError, self).__init__(msg)
        self.msg = msg
        self.cmd = cmd
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    def as_dict(self):
        out = {"msg": self.msg}
        if self.cmd is not None:
            out.update(cmd=self.cmd, rc=self.rc, stdout=self.stdout, stderr=self.stderr)
        return out


class Netfilter(object):
    """Reads and writes one host's rulesets through iptables-save / iptables-restore."""

    def __init__(self, module, wait=5):
        self.module = module
        self.wait = wait
        self.calls = {"save": 0, "restore": 0}
        self._bins = {}

    def binary(self, family, kind):
        name = BINARIES[family][kind]
        if name not in self._bins:
            path = self.module.get_bin_path(name)
            if not path:
                raise NetfilterError(
                    "%s not found on the target (needed for ip_version %s): install the iptables package, "
                    "or set ip_version to the families this host has" % (name, family))
            self._bins[name] = path
        return self._bins[name]

    def _run(self, argv, data=None):
        rc, out, err = self.module.run_command(argv, data=data, binary_data=data is not None)
        return rc, out, err

    def save(self, family, counters=False):
        """iptables-save text of the family (one call)."""
        argv = [self.binary(family, "save")]
        if counters:
            argv.append("-c")
        self.calls["save"] += 1
        rc, out, err = self._run(argv)
        if rc != 0:
            raise NetfilterError("%s failed: %s" % (argv[0], (err or out).strip()), argv, rc, out, err)
        return out

    def read(self, family):
        return parse_save(self.save(family))

    def backend(self, family, ruleset=None):
        """'nft' or 'legacy': from the save header when present, else from ``iptables -V``."""
        if ruleset is not None and ruleset.backend:
            return ruleset.backend
        argv = [self.binary(family, "main"), "-V"]
        rc, out, err = self._run(argv)
        if rc != 0:
            raise NetfilterError("%s -V failed" % argv[0], argv, rc, out, err)
        return "nft" if "nf_tables" in out else "legacy"

    def restore(self, family, script, test=False, noflush=True):
        argv = [self.binary(family, "restore"), "-w", str(self.wait)]
        if noflush:
            argv.append("--noflush")
        if test:
            argv.append("--test")
        self.calls["restore"] += 1
        rc, out, err = self._run(argv, data=script)
        if rc != 0:
            raise NetfilterError(_explain(argv, script, err or out, self.wait), argv, rc, out, err)

    def apply(self, plans, snapshots):
        """Apply the changed families' scripts in order; roll back on a later failure.

        ``plans``: ordered [(family, Plan)]; ``snapshots``: {family: Ruleset read before planning}.
        Every script is tested with ``--test`` before anything is applied, except the first
        one when it is ``atomic`` (Plan.atomic): applying it is its own test. A failed script
        is undone only if it may have committed part of itself; families already applied
        are always undone.
        """
        todo = [(f, p) for f, p in plans if p.changed]
        for i, (family, plan) in enumerate(todo):
            if i > 0 or not plan.atomic:
                self.restore(family, plan.script, test=True)
        done = []
        for family, plan in todo:
            try:
                self.restore(family, plan.script)
            except NetfilterError as exc:
                undo = ([] if plan.atomic else [(family, plan)]) + done[::-1]
                failed = []
                for prev_family, prev_plan in undo:
                    try:
                        self.rollback(prev_family, prev_plan, snapshots[prev_family])
                    except NetfilterError as again:
                        failed.append("%s: %s" % (prev_family, again.msg))
                if done:
                    exc.msg += " (the %s change was rolled back, so both families stay as they were)" % (
                        " and ".join(f for f, _p in done))
                if failed:
                    exc.msg += " ROLLBACK FAILED, check the ruleset by hand: " + "; ".join(failed)
                raise
            done.append((family, plan))

    def rollback(self, family, plan, snapshot):
        """Put the tables a plan changed back as they were in ``snapshot``."""
        lines = []
        for tp in plan.tables:
            lines.extend(render_table(snapshot.table(tp.table), counters=False))
        self.restore(family, "\n".join(lines) + "\n", noflush=False)


def state_dir():
    """Where rollback snapshots and tokens live (IRONWALL_STATE_DIR overrides, for tests)."""
    return os.environ.get("IRONWALL_STATE_DIR") or STATE_DIR


def _write_private(path, text):
    tmp = "%s.tmp-%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.rename(tmp, path)


def _read(path):
    try:
        with open(path) as fh:
            return fh.read()
    except (IOError, OSError):
        return None


def arm_rollback(nf, plans, snapshots, timeout):
    """Snapshot the tables about to change and start the watchdog (once per unconfirmed series).

    Returns what the module reports under ``rollback``.
    """
    base = state_dir()
    if not os.path.isdir(base):
        os.makedirs(base, 0o700)
    pending = os.path.join(base, "pending")
    token = (_read(pending) or "").strip()
    for family, plan in plans:
        if not plan.changed:
            continue
        path = os.path.join(base, family + ".save")
        existing = parse_save(_read(path) or "") if token else None
        have = set(t.name for t in existing.tables) if existing is not None else set()
        names = [t.name for t in snapshots[family].tables] + [tp.table for tp in plan.tables]
        lines = []
        if existing is not None:
            for t in existing.tables:
                lines.extend(render_table(t, counters=False))
        for name in dict.fromkeys(names):
            if name not in have:
                lines.extend(render_table(snapshots[family].table(name), counters=False))
        _write_private(path, "\n".join(lines) + "\n")
    if token:
        return dict(armed=True, joined=True, timeout=timeout, token=token)
    token = "%d-%d" % (os.getpid(), int(time.time() * 1000))
    try:
        os.unlink(os.path.join(base, "rolled-back"))
    except OSError:
        pass
    _write_private(pending, token + "\n")
    setsid = nf.module.get_bin_path("setsid")
    if not setsid:
        raise NetfilterError("rollback_timeout needs setsid (util-linux) on the target")
    argv = [setsid, "-f", "/bin/sh", "-c", _WATCHDOG, "ironwall-rollback", base, token, str(int(timeout)),
            _restore_or_true(nf, "ipv4"), _restore_or_true(nf, "ipv6")]
    rc, out, err = nf.module.run_command(argv)
    if rc != 0:
        os.unlink(pending)
        raise NetfilterError("could not start the rollback watchdog", argv, rc, out, err)
    return dict(armed=True, joined=False, timeout=timeout, token=token)


def _restore_or_true(nf, family):
    """A later change in the same series may touch the other family: pass both binaries."""
    try:
        return nf.binary(family, "restore")
    except NetfilterError:
        return "true"


def confirm_rollback():
    """Disarm a pending rollback. Returns 'confirmed', 'nothing' or 'rolled-back'."""
    base = state_dir()
    pending = os.path.join(base, "pending")
    if os.path.exists(pending):
        for name in ("pending", "ipv4.save", "ipv6.save"):
            try:
                os.unlink(os.path.join(base, name))
            except OSError:
                pass
        return "confirmed", None
    when = _read(os.path.join(base, "rolled-back"))
    if when:
        return "rolled-back", when.strip()
    return "nothing", None


def _explain(argv, script, stderr, wait):
    """A message that quotes the rejected line and says what to do."""
    text = stderr.strip()
    if _LOCK_RE.search(text):
        return ("%s could not take the xtables lock within wait=%s seconds; another program is changing "
                "the firewall. Retry later or raise the wait option. (%s)" % (argv[0], wait, text))
    m = _FAILED_LINE_RE.search(text)
    if m:
        n = int(m.group(1) or m.group(2))
        lines = script.splitlines()
        if 1 <= n <= len(lines):
            return ("%s rejected line %d: %r. Check the rule options that produced it (a match or target the "
                    "kernel lacks, or a jump to a missing chain). Nothing was changed. (%s)"
                    % (argv[0], n, lines[n - 1], text))
    return "%s failed; nothing was changed: %s" % (argv[0], text)
