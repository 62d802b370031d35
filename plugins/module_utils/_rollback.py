# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rollback deadline: a detached watchdog undoes a change unless iptables_confirm comes first.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.

State lives in a directory per network namespace (``/run/ironwall-iptables/net-<inode>``),
so a run in one namespace never joins or restores another's. A series of changes made
before one confirmation is one rollback: each run adds its undo script
(``undo-<family>-<seq>.restore``, from _plan.undo_script: only what the collection changed,
so a fail2ban ban added meanwhile survives), and the first run's snapshot of the tables it
touched (``<family>.save``) is the fallback when an undo script no longer applies. The
watchdog is started through Netfilter.run (counted like every binary) and writes its pid,
so a later run can tell a dead watchdog from a live one and start a new one.
"""

from __future__ import annotations

import os
import time

from ._errors import IronwallError
from ._lock import Locked as _Locked, state_dir
from ._model import parse_save, render_table
from ._netfilter import NetfilterError
from ._persist import FILE_MODE, read_text, stage_name, write_file
from ._plan import undo_script

_WATCHDOG = """exec >/dev/null 2>&1 </dev/null
dir=$1; token=$2; timeout=$3
echo $$ > "$dir/watchdog.pid"
sleep "$timeout"
# A run of the collection still applying holds run.lock: undo its whole result, not half of it
# (its read-back would put the undone half back, and it would save files nobody confirmed).
if command -v flock >/dev/null 2>&1; then exec 9>>"$dir/run.lock"; flock 9; fi
if [ "$(cat "$dir/pending" 2>/dev/null)" != "$token" ]; then
  [ "$(cat "$dir/watchdog.pid" 2>/dev/null)" = "$$" ] && rm -f "$dir/watchdog.pid"
  exit 0
fi
how=undo
for fam in ipv4 ipv6; do
  if [ "$fam" = ipv4 ]; then bin=$4; else bin=$5; fi
  failed=
  for f in $(ls -r "$dir"/undo-$fam-*.restore 2>/dev/null); do
    "$bin" -w 10 --noflush < "$f" || { failed=yes; break; }
  done
  if [ -n "$failed" ] && [ -s "$dir/$fam.save" ]; then
    "$bin" -w 10 < "$dir/$fam.save" || how=failed
    [ "$how" = failed ] || how=snapshot
  fi
done
echo "$(date +%s) $how" > "$dir/rolled-back"
rm -f "$dir/pending" "$dir"/undo-*.restore "$dir/ipv4.save" "$dir/ipv6.save" "$dir"/stage-* "$dir/watchdog.pid"
logger -t ironwall-iptables "no confirmation within $timeout s: undid the change ($how)" || true
"""


class RollbackError(IronwallError):
    """The rollback state could not be written; nothing was changed."""


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def watchdog_alive(base):
    """Is the watchdog that wrote ``watchdog.pid`` still running?"""
    pid = (read_text(os.path.join(base, "watchdog.pid")) or "").strip()
    if not pid.isdigit():
        return False
    cmdline = read_text("/proc/%s/cmdline" % pid) or ""
    return "ironwall-rollback" in cmdline


def arm(nf, plans, snapshots, timeout):
    """Write the undo state of ``plans`` and make sure a watchdog guards it.

    Returns (report, disarm): what the module reports under ``rollback``, and a function
    that takes this run's part back out when the change then failed.
    """
    base = state_dir()
    try:
        if not os.path.isdir(base):
            os.makedirs(base, 0o700)
        with _Locked(base):
            return _arm(nf, base, plans, snapshots, timeout)
    except (IOError, OSError) as exc:
        raise RollbackError("rollback_timeout: cannot keep the rollback state in %s (%s); nothing was changed. "
                            "Make the directory writable for the remote user, or run without rollback_timeout."
                            % (base, exc.strerror or exc))


def _arm(nf, base, plans, snapshots, timeout):
    pending = os.path.join(base, "pending")
    token = (read_text(pending) or "").strip()
    joined = bool(token)
    if not joined:
        for name in os.listdir(base):
            if name.startswith(("undo-", "stage-")) or name.endswith(".save"):
                _unlink(os.path.join(base, name))
    seq = "%06d" % (len([n for n in os.listdir(base) if n.startswith("undo-")]) + 1)
    written = []
    snapshots_before = {}
    for family, plan in plans:
        if not plan.changed:
            continue
        path = os.path.join(base, "undo-%s-%s.restore" % (family, seq))
        write_file(path, undo_script(snapshots[family], plan), FILE_MODE)
        written.append(path)
        snapshots_before[family] = read_text(os.path.join(base, family + ".save"))
        _snapshot(base, family, plan, snapshots[family])
    restarted = joined and not watchdog_alive(base)
    if joined and not restarted:
        report = dict(armed=True, joined=True, timeout=timeout, token=token)
    else:
        token = "%d-%d" % (os.getpid(), int(time.time() * 1000))
        _unlink(os.path.join(base, "rolled-back"))
        write_file(pending, token + "\n", FILE_MODE)
        _start_watchdog(nf, base, token, timeout)
        report = dict(armed=True, joined=joined, timeout=timeout, token=token)
        if restarted:
            report["restarted"] = True  # the earlier watchdog was gone; this one guards the whole series
    report["undoes"] = "only the changes of this series; rules others add meanwhile stay"

    def disarm():
        """Take this run's part back out: its undo scripts and the tables it added to the snapshots."""
        for path in written:
            _unlink(path)
        for family, text in snapshots_before.items():
            path = os.path.join(base, family + ".save")
            if text is None:
                _unlink(path)
            else:
                write_file(path, text, FILE_MODE)
        if not joined:
            _unlink(pending)

    return report, disarm


def _snapshot(base, family, plan, snapshot):
    """Keep the first snapshot of every table the series touches (the fallback of the undo)."""
    path = os.path.join(base, family + ".save")
    existing = parse_save(read_text(path) or "")
    have = set(t.name for t in existing.tables)
    lines = []
    for t in existing.tables:
        lines.extend(render_table(t, counters=False))
    for tp in plan.tables:
        if tp.table not in have:
            lines.extend(render_table(snapshot.table(tp.table), counters=False))
    write_file(path, "\n".join(lines) + "\n", FILE_MODE)


def _start_watchdog(nf, base, token, timeout):
    setsid = nf.module.get_bin_path("setsid")
    if not setsid:
        _unlink(os.path.join(base, "pending"))
        raise NetfilterError("rollback_timeout needs setsid (util-linux) on the target; nothing was changed")
    argv = [setsid, "-f", "/bin/sh", "-c", _WATCHDOG, "ironwall-rollback", base, token, str(int(timeout)),
            _restore_or_true(nf, "ipv4"), _restore_or_true(nf, "ipv6")]
    rc, out, err = nf.run("watchdog", argv)
    if rc != 0:
        _unlink(os.path.join(base, "pending"))
        raise NetfilterError("could not start the rollback watchdog; nothing was changed", argv, rc, out, err)


def _restore_or_true(nf, family):
    """A later change in the same series may touch the other family: pass both binaries."""
    try:
        return nf.binary(family, "restore")
    except NetfilterError:
        return "true"


def pending():
    return os.path.exists(os.path.join(state_dir(), "pending"))


def stage(path, text):
    """Keep ``text`` for the file ``path`` until the series is confirmed (iptables_confirm writes
    it then); a rollback drops it. A later stage of the same path replaces it."""
    base = state_dir()
    name = os.path.join(base, stage_name(path))
    write_file(name, text, FILE_MODE)
    write_file(name + ".dest", path, FILE_MODE)


def staged():
    """{path: text} staged in this namespace and not yet confirmed."""
    base = state_dir()
    out = {}
    if os.path.isdir(base):
        for name in sorted(os.listdir(base)):
            if name.startswith("stage-") and name.endswith(".dest"):
                dest = read_text(os.path.join(base, name))
                text = read_text(os.path.join(base, name[:-len(".dest")]))
                if dest and text is not None:
                    out[dest] = text
    return out


def armed_seconds(token, now=None):
    """Seconds since the series of ``token`` ("<pid>-<epoch ms>", written when it was armed), or None."""
    try:
        armed_ms = int(token.strip().rsplit("-", 1)[1])
    except (AttributeError, IndexError, ValueError):
        return None
    return round(max(0.0, (time.time() if now is None else now) - armed_ms / 1000.0), 3)


def confirm():
    """Keep the change. Returns ('confirmed' | 'nothing' | 'rolled-back', when or None, [saved files],
    seconds the confirmed series waited since it was armed or None).

    Files the series staged (iptables_ruleset's ``save``) are written in place now.
    A rollback is reported to the first confirm after it, once: the next series starts clean.
    """
    base = state_dir()
    if not os.path.isdir(base):
        return "nothing", None, [], None
    with _Locked(base):
        if os.path.exists(os.path.join(base, "pending")):
            waited = armed_seconds(read_text(os.path.join(base, "pending")))
            saved = []
            for dest, text in staged().items():
                write_file(dest, text, FILE_MODE)
                saved.append(dest)
            for name in os.listdir(base):
                if name == "pending" or name.startswith(("undo-", "stage-")) or name.endswith(".save"):
                    _unlink(os.path.join(base, name))
            return "confirmed", None, saved, waited
        when = read_text(os.path.join(base, "rolled-back"))
        if when:
            _unlink(os.path.join(base, "rolled-back"))
            return "rolled-back", when.strip(), [], None
    return "nothing", None, [], None
