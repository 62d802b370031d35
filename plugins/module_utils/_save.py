# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``save`` step of iptables_ruleset: after the apply, under the same run lock.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.

Each family's file is rendered from the ruleset as the plan leaves it (_persist.render), and
written only when it differs: tested with ``iptables-restore --test`` into empty tables (as at
boot), then written atomically, mode 0600. While a rollback is pending the file is staged
instead (_rollback.stage) and iptables_confirm writes it, so an unconfirmed firewall is never
persisted. Then the boot hook of ``save.boot`` is installed, and the other method's removed.

When the rules match ipsets, one ``ipset save`` gives their types for the rules files' set lines
(_persist), and with ``save.sets`` the owned sets are written to that file the same way: only
when the content differs, checked by reading it back, atomically, mode 0600, staged while a
rollback is pending.
"""

from __future__ import annotations

import os

from . import _ipset
from ._errors import IronwallError
from ._netfilter import NetfilterError
from ._persist import (
    BOOT_FILES, FILE_MODE, RESTORE, after, boot_files, matched_sets, needs_write, read_text, remove_file,
    render, write_file)
from ._rollback import pending, stage, staged


class SaveError(IronwallError):
    """A file could not be written; the firewall change itself was applied."""


def finisher(module, save, policies):
    """A _transaction.converge ``finish`` step that saves per ``save`` (a _persist.Save)."""

    def finish(nf, snapshots, plans, result):
        try:
            _finish(module, nf, save, policies, snapshots, plans, result)
        except (IOError, OSError) as exc:
            raise SaveError("save: the firewall change was applied, but writing %s failed: %s. Fix the cause "
                            "and run the task again to save it." % (exc.filename or "a file", exc.strerror or exc),
                            changed=result["changed"], commands=result["commands"])
        result["calls"] = dict(nf.calls)

    return finish


def _finish(module, nf, save, policies, snapshots, plans, result):
    check = module.check_mode
    plan_of = dict(plans)
    waiting = pending() and not check
    earlier = staged() if waiting else {}
    saved = {}
    rendered = [(family, path, after(snapshots[family], plan_of[family])) for family, path in save.paths]
    live_sets = None
    if save.sets or any(matched_sets(render(r, f, save.scope, policies)[0]) for f, _p, r in rendered):
        live_sets = _ipset.parse_save(nf.ipset_save())
    set_types = dict((n, live.type) for n, live in (live_sets or {}).items())
    for family, path, ruleset in rendered:
        text, skipped = render(ruleset, family, save.scope, policies, set_types)
        current, changed = _compare(path, text, earlier)
        entry = dict(path=path, scope=save.scope, changed=changed)
        if skipped:
            entry["skipped"] = skipped
            module.warn("save.%s: %d tagged rule(s) left out of %s: %s" % (
                family, len(skipped), path, "; ".join("%s (%s)" % (s["rule"], s["reason"]) for s in skipped)))
        if changed:
            try:
                nf.restore(family, text, test=True, noflush=False)
            except NetfilterError as exc:
                if not (check and "doesn't exist" in (exc.extra.get("stderr") or "") and "--match-set " in text):
                    raise SaveError("save.%s: the firewall change was applied, but the file to save fails %s "
                                    "--test, so %s was not written: %s" % (family, RESTORE[family], path, exc.msg),
                                    changed=result["changed"], commands=result["commands"])
                module.warn("check mode: %s was not tested with %s --test: a set its rules match does not exist yet "
                            "(in a real run this task's sets, or an iptables_ipset task before it, create it)"
                            % (path, RESTORE[family]))
            _put(module, path, current, text, waiting, entry, result)
        saved[family] = entry
    if save.sets:
        saved["sets"] = _save_sets(module, save.sets, live_sets, earlier, waiting, result)
    result["saved"] = saved
    if save.boot is not None:
        result["boot"] = _boot(save, check)
    result["changed"] = bool(result["changed"] or any(e["changed"] for e in saved.values())
                             or result.get("boot", {}).get("changed"))


def _save_sets(module, path, live_sets, earlier, waiting, result):
    """Write the owned sets (_ipset.owned_save) to ``path`` when it differs; the entry for ``saved``."""
    text = _ipset.owned_save(live_sets)
    current, changed = _compare(path, text, earlier)
    owned = _ipset.owned_names(live_sets)
    entry = dict(path=path, changed=changed, sets=sorted(n for n in owned if n in live_sets))
    if changed:
        back = _ipset.parse_save(text)
        if any(back.get(n) is None or back[n].entries != live_sets[n].entries for n in entry["sets"]):
            raise SaveError("save.sets: the firewall change was applied, but the sets file did not read back as the "
                            "live sets, so %s was not written" % path,
                            changed=result["changed"], commands=result["commands"])
        _put(module, path, current, text, waiting, entry, result)
    return entry


def _compare(path, text, earlier):
    """(current text, does ``path`` need ``text``): a file staged earlier in this rollback series
    counts as what it holds, since that is what a confirmation writes."""
    if path in earlier:
        return earlier[path], earlier[path] != text
    return read_text(path), needs_write(path, text, FILE_MODE)


def _put(module, path, current, text, waiting, entry, result):
    """A changed file: shown in diff mode, staged while a rollback is pending, else written (not in
    check mode)."""
    if module._diff:
        result.setdefault("diff", []).append(dict(before_header=path, before=current or "",
                                                  after_header=path, after=text))
    if waiting:
        stage(path, text)
        entry["staged"] = True
    elif not module.check_mode:
        write_file(path, text, FILE_MODE)


def _boot(save, check):
    """Install the hook of the chosen method, remove the others'; what changed."""
    method = save.boot
    wanted = boot_files(method, save)
    written = [p for p, (content, mode) in sorted(wanted.items()) if needs_write(p, content, mode)]
    removed = [p for m, paths in sorted(BOOT_FILES.items()) if m != method for p in paths
               if os.path.lexists(p)]
    if not check:
        for path in written:
            content, mode = wanted[path]
            write_file(path, content, mode)
        for path in removed:
            remove_file(path)
    return dict(method=method, changed=bool(written or removed), written=written, removed=removed)
