# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Current Ruleset + desired ownership -> minimal iptables-restore script and a diff.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
Pure code: no Ansible imports, no processes.

Ownership (DESIGN §2):
- an *owned chain* is replaced as a whole when its ordered content differs;
- *tagged groups* (rules carrying ``ironwall:<prio>:<kind>:<name>`` comments) placed in
  chains the collection does not own are kept in ascending (priority, name) order among
  the tagged rules of that chain; untagged rules never move;
- *purge* removes untagged rules of a chain, except lines matching keep patterns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._model import Chain, Rule, Table, render_table, tokenize
from ._rulespec import BUILTIN_CHAIN_NAMES, TARGETS


class PlanError(ValueError):
    """The desired state cannot be reached from the current ruleset (names the option)."""

    def __init__(self, option, message):
        super(PlanError, self).__init__("%s: %s" % (option, message))
        self.option = option


@dataclass(frozen=True)
class TaggedGroup:
    """Rules of one identity (tag) in a chain the collection does not own."""

    table: str
    chain: str
    tag: object  # _model.Tag
    specs: tuple


@dataclass(frozen=True)
class OwnedChain:
    table: str
    name: str
    specs: tuple


@dataclass(frozen=True)
class Purge:
    table: str
    chain: str
    keep: tuple = ()  # compiled regular expressions, searched in the '-A CHAIN spec' line


@dataclass(frozen=True)
class Desired:
    """What one module run wants; everything not named here is left alone."""

    policies: tuple = ()      # (table, chain, policy)
    chains: tuple = ()        # OwnedChain: created or replaced
    drop_chains: tuple = ()   # (table, name): flushed and deleted if present
    groups: tuple = ()        # TaggedGroup: placed or replaced
    absent: tuple = ()        # (table, kind, name): removed wherever they are in the table
    purges: tuple = ()        # Purge


@dataclass(frozen=True)
class TablePlan:
    table: str
    commands: tuple
    chain_headers: tuple
    before: tuple   # Chain objects as they are (affected chains only)
    after: tuple    # Chain objects as they will be


@dataclass(frozen=True)
class Plan:
    family: str
    tables: tuple = field(default_factory=tuple)

    @property
    def changed(self):
        return bool(self.tables)

    @property
    def atomic(self):
        """One iptables-restore commits the script whole or not at all: it changes one table
        (a script of several tables is committed table by table, on both backends)."""
        return len(self.tables) == 1

    @property
    def script(self):
        return render_restore_script(self)

    def diff(self):
        """(before, after) in iptables-save form, affected chains only."""
        return (_render_chains(self.tables, "before"), _render_chains(self.tables, "after"))

    def table_after(self, current_table):
        """``current_table`` (a _model.Table) as it will be once this plan is applied."""
        tp = None
        for candidate in self.tables:
            if candidate.table == current_table.name:
                tp = candidate
        if tp is None:
            return current_table
        after = dict((c.name, c) for c in tp.after)
        dropped = set(cmd[3:] for cmd in tp.commands if cmd.startswith("-X "))
        chains = [after.get(c.name, c) for c in current_table.chains if c.name not in dropped]
        known = set(c.name for c in chains)
        chains.extend(c for c in tp.after if c.name not in known)
        return Table(current_table.name, tuple(chains))


def _render_chains(tables, which):
    lines = []
    for tp in tables:
        lines.extend(render_table(Table(tp.table, getattr(tp, which)), counters=False))
    return "\n".join(lines) + "\n" if lines else ""


def render_restore_script(plan):
    """One ``*table ... COMMIT`` block per changed table, for iptables-restore --noflush."""
    lines = []
    for tp in plan.tables:
        lines.append("*" + tp.table)
        lines.extend(tp.chain_headers)
        lines.extend(tp.commands)
        lines.append("COMMIT")
    return "\n".join(lines) + "\n" if lines else ""


def _sorted_insert(work, group_entries, sort_key):
    """Insert entries right before the first tagged entry with a greater sort key, else at the end."""
    pos = len(work)
    for i, (_spec, tag, _origin) in enumerate(work):
        if tag is not None and tag.sort_key > sort_key:
            pos = i
            break
    work[pos:pos] = group_entries


def _plan_chain(chain, groups, remove_keys, purge):
    """Target entry list for one chain: list of (spec, tag, origin index or None)."""
    managed = dict((g.tag.key, g) for g in groups)
    current = chain.rules if chain is not None else ()
    # Group the current managed rules by key, keeping their indices.
    positions = {}
    for i, r in enumerate(current):
        tag = r.tag
        if tag is not None and tag.key in managed:
            positions.setdefault(tag.key, []).append(i)
    keep_in_place = set()
    for key, idx in positions.items():
        g = managed[key]
        if (tuple(current[i].spec for i in idx) == g.specs
                and idx[-1] - idx[0] == len(idx) - 1
                and current[idx[0]].tag.priority == g.tag.priority):
            keep_in_place.add(key)
    work = []
    for i, r in enumerate(current):
        tag = r.tag
        if tag is not None:
            if tag.key in remove_keys or (tag.key in managed and tag.key not in keep_in_place):
                continue
        elif purge is not None and not any(p.search(r.line) for p in purge.keep):
            continue
        work.append((r.spec, tag, i))
    # An unchanged group that sits out of priority order among tagged rules is moved.
    tagged = [(k, e[1]) for k, e in enumerate(work) if e[1] is not None]
    if tagged:
        n = len(tagged)
        prefix_max = [None] * n
        suffix_min = [None] * n
        best = None
        for j in range(n):
            prefix_max[j] = best
            sk = tagged[j][1].sort_key
            best = sk if best is None or sk > best else best
        best = None
        for j in range(n - 1, -1, -1):
            suffix_min[j] = best
            sk = tagged[j][1].sort_key
            best = sk if best is None or sk < best else best
        misplaced = set()
        for j, (_k, tag) in enumerate(tagged):
            if tag.key in keep_in_place:
                sk = tag.sort_key
                if (prefix_max[j] is not None and prefix_max[j] > sk) or (
                        suffix_min[j] is not None and suffix_min[j] < sk):
                    misplaced.add(tag.key)
        if misplaced:
            work = [e for e in work if e[1] is None or e[1].key not in misplaced]
            keep_in_place -= misplaced
    for g in sorted(groups, key=lambda g: g.tag.sort_key):
        if g.tag.key in keep_in_place:
            continue
        _sorted_insert(work, [(s, g.tag, None) for s in g.specs], g.tag.sort_key)
    return work


def _chain_ops(name, current, work):
    """Deletions by spec (race-safe), then insertions by position, from current -> work."""
    kept = set(e[2] for e in work if e[2] is not None)
    ops = ["-D %s %s" % (name, r.spec) for i, r in enumerate(current) if i not in kept]
    for pos, (spec, _tag, origin) in enumerate(work, 1):
        if origin is None:
            ops.append("-I %s %d %s" % (name, pos, spec))
    return ops


def plan_changes(current, desired, family="ipv4"):
    """Plan the restore commands that turn ``current`` (a Ruleset) into ``desired``.

    Raises PlanError when the desired state refers to something that does not exist.
    """
    tables = []
    for tname in _tables_of(desired):
        table = current.table(tname)
        tp = _plan_table(table, desired, tname)
        if tp is not None:
            tables.append(tp)
    return Plan(family, tuple(tables))


def _tables_of(desired):
    names = []
    for seq in (desired.policies, desired.chains, desired.drop_chains, desired.groups, desired.absent,
                desired.purges):
        for item in seq:
            t = item[0] if isinstance(item, tuple) else item.table
            if t not in names:
                names.append(t)
    return names


def _plan_table(table, desired, tname):
    chains = dict((c.name, c) for c in table.chains)
    owned = [c for c in desired.chains if c.table == tname]
    drops = [n for (t, n) in desired.drop_chains if t == tname]
    groups = [g for g in desired.groups if g.table == tname]
    absent = set((k, n) for (t, k, n) in desired.absent if t == tname)
    purges = dict((p.chain, p) for p in desired.purges if p.table == tname)
    policies = [(c, p) for (t, c, p) in desired.policies if t == tname]

    known = set(chains) | set(c.name for c in owned)
    # Every jump target must exist after the change.
    for g in groups:
        if g.chain not in known:
            raise PlanError("chain", "chain %r does not exist in table %s; existing chains: %s"
                            % (g.chain, tname, ", ".join(sorted(chains)) or "none"))
        for spec in g.specs:
            target = _jump_target(spec)
            if target and target not in known and target not in TARGETS and target not in drops:
                raise PlanError("jump", "rule %r jumps to chain %r, which does not exist in table %s"
                                % (g.tag.name, target, tname))
    for chain, _policy in policies:
        c = chains.get(chain)
        if c is not None and not c.builtin:
            raise PlanError("chain", "%r is a user chain of table %s; only built-in chains have a policy"
                            % (chain, tname))

    headers = []
    commands = []
    before = []
    after = []
    # Owned chains: replaced whole when their content differs.
    for oc in owned:
        cur = chains.get(oc.name)
        if cur is None or cur.specs != tuple(oc.specs):
            headers.append(":%s - [0:0]" % oc.name)
            commands.extend("-A %s %s" % (oc.name, s) for s in oc.specs)
            before.append(cur if cur is not None else Chain(oc.name))
            after.append(Chain(oc.name, None, tuple(Rule(oc.name, s) for s in oc.specs)))
    # Policies: only those that differ (a chain iptables-save did not print is ACCEPT).
    new_policies = dict((c, p) for c, p in policies if (chains.get(c) or Chain(c, "ACCEPT")).policy != p)
    commands.extend("-P %s %s" % (c, p) for c, p in new_policies.items())
    # Tagged groups and purges, chain by chain (every chain may hold groups to remove).
    by_chain = {}
    for g in groups:
        by_chain.setdefault(g.chain, []).append(g)
    managed_at = dict((g.tag.key, g.chain) for g in groups)
    owned_names = set(c.name for c in owned)
    touched = set(by_chain) | set(purges) | set(c for c, _p in policies)
    for cname, chain in chains.items():
        if cname in touched or cname in owned_names:
            continue
        for r in chain.rules:
            tag = r.tag
            if tag is not None and (tag.key in absent or (tag.key in managed_at and managed_at[tag.key] != cname)):
                touched.add(cname)
                break
    chain_changes = {}
    for cname in sorted(touched - owned_names, key=lambda n: (n not in BUILTIN_CHAIN_NAMES, n)):
        chain = chains.get(cname)
        local = by_chain.get(cname, [])
        remove = set(absent) | set(k for k, c in managed_at.items() if c != cname)
        work = _plan_chain(chain, local, remove, purges.get(cname))
        current_rules = chain.rules if chain is not None else ()
        if [e[0] for e in work] != [r.spec for r in current_rules]:
            commands.extend(_chain_ops(cname, current_rules, work))
            chain_changes[cname] = work
    # Policy changes and chain changes both show in the diff.
    for cname in sorted(set(chain_changes) | set(new_policies), key=lambda n: (n not in BUILTIN_CHAIN_NAMES, n)):
        cur = chains.get(cname) or Chain(cname, "ACCEPT" if cname in BUILTIN_CHAIN_NAMES else None)
        new_policy = new_policies.get(cname, cur.policy)
        rules = tuple(Rule(cname, e[0]) for e in chain_changes[cname]) if cname in chain_changes else cur.rules
        before.append(cur)
        after.append(Chain(cname, new_policy, rules))
    # Dropped chains: after the jumps to them are gone.
    for name in drops:
        cur = chains.get(name)
        if cur is not None:
            commands.extend(["-F %s" % name, "-X %s" % name])
            before.append(cur)
    if not headers and not commands:
        return None
    return TablePlan(tname, tuple(commands), tuple(headers), tuple(before), tuple(after))


def _jump_target(spec):
    """The target of ``-j``/``-g``, from the tokens: a quoted comment or LOG prefix that
    contains ' -j X' is one token and is not mistaken for the target."""
    if " -j " not in spec and " -g " not in spec and not spec.startswith(("-j ", "-g ")):
        return None
    tokens = tokenize(spec)
    for i in range(len(tokens) - 2, -1, -1):
        if tokens[i] in ("-j", "-g"):
            return tokens[i + 1]
    return None
