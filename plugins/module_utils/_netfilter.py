# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The only place that runs binaries: save, restore --test, restore --noflush, undo.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
Every process runs through ``Netfilter.run`` (``module.run_command``), which counts it in
``calls``; nothing else in module_utils runs any (_rollback starts its watchdog here too).
"""

from __future__ import annotations

import os
import re

from ._errors import IronwallError

# The rule engine (_model, _plan, _rulespec, _ratelimit) is imported by the functions that use it,
# not here: iptables_ipset runs ipset alone, and a no-change run of a large set is mostly
# interpreter start and imports.

BINARIES = {
    "ipv4": {"save": "iptables-save", "restore": "iptables-restore", "main": "iptables"},
    "ipv6": {"save": "ip6tables-save", "restore": "ip6tables-restore", "main": "ip6tables"},
}
_FAILED_LINE_RE = re.compile(r"line:? (\d+) failed|Error occurred at line: (\d+)")
_LOCK_RE = re.compile(r"xtables lock|Another app is currently holding", re.I)


class NetfilterError(IronwallError):
    """A binary failed (or is missing); carries what fail_json needs."""

    def __init__(self, msg, cmd=None, rc=None, stdout="", stderr="", line=None):
        self.line = line  # the script line iptables-restore rejected, when it said which
        if cmd is not None:
            super(NetfilterError, self).__init__(msg, cmd=cmd, rc=rc, stdout=stdout, stderr=stderr)
        else:
            super(NetfilterError, self).__init__(msg)


class Netfilter(object):
    """Reads and writes one host's rulesets through iptables-save / iptables-restore."""

    def __init__(self, module, wait=5):
        self.module = module
        self.wait = wait
        self.calls = {"save": 0, "restore": 0}
        self._bins = {}
        # The text of the last ``ipset save`` of this run, until an ``ipset restore`` or destroy changes
        # the sets: the resources of one task (its sets, its ipset whitelists, exclusive, the save step)
        # share one read.
        self._ipset_text = None

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

    def run(self, kind, argv, data=None):
        """Run one process, counted in ``calls[kind]``: (rc, stdout, stderr)."""
        self.calls[kind] = self.calls.get(kind, 0) + 1
        return self.module.run_command(argv, data=data, binary_data=data is not None)

    def save(self, family, counters=False, table=None):
        """iptables-save text of the family, or of one of its tables (one call)."""
        argv = [self.binary(family, "save")]
        if counters:
            argv.append("-c")
        if table is not None:
            argv += ["-t", table]
        rc, out, err = self.run("save", argv)
        if rc != 0:
            raise NetfilterError("%s failed: %s" % (argv[0], (err or out).strip()), argv, rc, out, err)
        return out

    def read(self, family, counters=False, table=None):
        """The family's Ruleset (or one table of it); text the parser cannot read is a NetfilterError
        quoting the line."""
        from ._model import ParseError, parse_save  # pylint: disable=import-outside-toplevel
        text = self.save(family, counters, table)
        try:
            return parse_save(text)
        except ParseError as exc:
            raise NetfilterError(
                "could not read the output of %s: line %d is not iptables-save format (%s): %r. Nothing was "
                "changed." % (BINARIES[family]["save"], exc.lineno, exc.reason, exc.line))

    def backend(self, family, ruleset=None):
        """'nft' or 'legacy': from the save header when present, else from ``iptables -V``."""
        if ruleset is not None and ruleset.backend:
            return ruleset.backend
        argv = [self.binary(family, "main"), "-V"]
        rc, out, err = self.run("version", argv)
        if rc != 0:
            raise NetfilterError("%s -V failed" % argv[0], argv, rc, out, err)
        return "nft" if "nf_tables" in out else "legacy"

    def restore(self, family, script, test=False, noflush=True):
        argv = [self.binary(family, "restore"), "-w", str(self.wait)]
        if noflush:
            argv.append("--noflush")
        if test:
            argv.append("--test")
        rc, out, err = self.run("restore", argv, data=script)
        if rc != 0:
            number, line = _rejected_line(script, err or out)
            raise NetfilterError(_explain(argv, err or out, self.wait, number, line), argv, rc, out, err, line)

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
                        failed.append("%s: %s" % (prev_family, _changed_after_all(again.msg)))
                if failed:
                    exc.msg = _changed_after_all(exc.msg)
                    exc.msg += " ROLLBACK FAILED, check the ruleset by hand: " + "; ".join(failed)
                elif done:
                    exc.msg += " (the %s change was rolled back, so both families stay as they were)" % (
                        " and ".join(f for f, _p in done))
                raise
            done.append((family, plan))

    def rollback(self, family, plan, snapshot):
        """Undo what a plan changed (_plan.undo_script: rules others added meanwhile stay); if that
        no longer applies, put the tables it changed back as they were in ``snapshot``."""
        from ._model import render_table  # pylint: disable=import-outside-toplevel
        from ._plan import undo_script  # pylint: disable=import-outside-toplevel
        try:
            self.restore(family, undo_script(snapshot, plan))
            return
        except NetfilterError:
            pass
        lines = []
        for tp in plan.tables:
            lines.extend(render_table(snapshot.table(tp.table), counters=False))
        self.restore(family, "\n".join(lines) + "\n", noflush=False)

    # --- ipset (iptables_ipset, the whitelist's ipset backend, the saved sets file) ---

    def ipset(self, kind, args, data=None):
        """Run ``ipset ARGS`` (counted in ``calls[kind]``): (rc, stdout, stderr). Anything but a read
        forgets the kept ``ipset save`` text."""
        if kind not in ("ipset_save", "ipset_list"):
            self._ipset_text = None
        if "ipset" not in self._bins:
            path = self.module.get_bin_path("ipset")
            if not path:
                raise NetfilterError("ipset not found on the target: install the ipset package")
            self._bins["ipset"] = path
        return self.run(kind, [self._bins["ipset"]] + list(args), data=data)

    def may_have_sets(self):
        """Can any ipset exist here? Not without the ipset tool, nor while the kernel has no ip_set
        module (/sys/module/ip_set; a built-in one is listed too, by its parameters)."""
        if "ipset" not in self._bins and not self.module.get_bin_path("ipset"):
            return False
        return os.path.exists("/sys/module/ip_set")

    def ipset_save(self):
        """``ipset save`` of every set (one call per run while no set changes: the text is kept until
        this runner's next ``ipset restore`` or destroy)."""
        if self._ipset_text is not None:
            return self._ipset_text
        rc, out, err = self.ipset("ipset_save", ["save"])
        if rc != 0:
            raise NetfilterError("ipset save failed: %s" % (err or out).strip(), ["ipset", "save"], rc, out, err)
        self._ipset_text = out
        return out

    def ipset_terse(self, name=None):
        """``ipset list -t`` (headers, entry counts and references; no entries) of one set or all."""
        argv = ["list", "-t"] + ([name] if name else [])
        rc, out, err = self.ipset("ipset_list", argv)
        if rc != 0:
            raise NetfilterError("ipset %s failed: %s" % (" ".join(argv), (err or out).strip()), argv, rc, out, err)
        return out

    def ipset_restore(self, script, cleanup=()):
        """One ``ipset restore`` of ``script``; on failure the sets named in ``cleanup`` (temporary
        sets the script created) are destroyed, and the error quotes the rejected line."""
        rc, out, err = self.ipset("ipset_restore", ["restore"], data=script)
        if rc == 0:
            return
        text = (err or out).strip()
        m = re.search(r"Error in line (\d+)", text)
        lines = script.split("\n")
        line = lines[int(m.group(1)) - 1] if m and 0 < int(m.group(1)) <= len(lines) else None
        for name in cleanup:
            self.ipset("ipset_destroy", ["destroy", name])
        raise NetfilterError("ipset restore failed%s: %s. The sets the rules use were not changed (a new list is "
                             "swapped in only once it is complete)." % (
                                 " at %r" % line if line else "", text), ["ipset", "restore"], rc, out, err, line)


def _changed_after_all(msg):
    """A message without its 'nothing was changed': when a rollback failed, something was."""
    return msg.replace(" Nothing was changed.", "").replace("; nothing was changed", "")


def _rejected_line(script, stderr):
    """(number, text) of the script line iptables-restore names in ``stderr``, or (None, None)."""
    m = _FAILED_LINE_RE.search(stderr)
    if m:
        n = int(m.group(1) or m.group(2))
        lines = script.split("\n")
        if 1 <= n <= len(lines):
            return n, lines[n - 1]
    return None, None


def stale_position(exc):
    """Did a restore fail because the ruleset moved under the plan (another writer inserted or
    removed rules since it was read)? Our inserts and deletions name positions and rules of
    that read."""
    line = exc.line or ""
    return line.startswith(("-I ", "-D ")) or "Index of insertion too big" in (exc.extra.get("stderr") or "")


def _explain(argv, stderr, wait, number, line):
    """A message that quotes the rejected line (``number``, ``line``) and says what to do."""
    text = stderr.strip()
    if _LOCK_RE.search(text):
        return ("%s could not take the xtables lock within wait=%s seconds; another program is changing "
                "the firewall. Retry later or raise the wait option. (%s)" % (argv[0], wait, text))
    if line is not None:
        return ("%s rejected line %d: %r. Check the rule options that produced it (a match or target the "
                "kernel lacks, or a jump to a missing chain). Nothing was changed. (%s)"
                % (argv[0], number, line, text))
    return "%s failed; nothing was changed: %s" % (argv[0], text)


def host_protocols(path="/etc/protocols"):
    """The target's protocol names, as its iptables reads and prints them (_rulespec.Protocols)."""
    from ._rulespec import Protocols, parse_etc_protocols  # pylint: disable=import-outside-toplevel
    try:
        with open(path) as fh:
            return Protocols(parse_etc_protocols(fh.read()))
    except (IOError, OSError):
        return Protocols({})


def host_recent_ceiling(path=None):
    """The highest hitcount the target's xt_recent honours (_ratelimit.hitcount_ceiling of its
    ``ip_pkt_list_tot``; the default when xt_recent is not loaded)."""
    from . import _ratelimit  # pylint: disable=import-outside-toplevel
    try:
        with open(path or _ratelimit.IP_PKT_LIST_TOT) as fh:
            return _ratelimit.hitcount_ceiling(_ratelimit.parse_ip_pkt_list_tot(fh.read()))
    except (IOError, OSError):
        return _ratelimit.hitcount_ceiling(None)
