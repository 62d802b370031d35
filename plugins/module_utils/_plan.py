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
- *purge* removes untagged rules of a chain, except lines matching keep patterns;
- a *rule chain* (RuleChain, iptables_rule's ``chains``) is a user chain the collection creates
  with its ownership marker first, holding tagged groups like INPUT does (in priority order after
  the marker), never replaced whole; removing it removes the tagged rules in it and the tagged
  jumps to it in the same transaction, and is refused while a rule of other software is in it or
  jumps to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._errors import PlanError
from ._model import Chain, Rule, Table, owner_marker, render_table
from ._options import CONTINUING_TARGETS
from ._rulespec import BUILTIN_CHAIN_NAMES, TARGETS


@dataclass(frozen=True)
class TaggedGroup:
    """Rules of one identity (tag) in a chain the collection does not own."""

    table: str
    chain: str
    tag: object  # _model.Tag
    specs: tuple
    option: str = ""  # how errors name the group's options: "rules[2]." for an item of a list


@dataclass(frozen=True)
class OwnedChain:
    """A user chain the collection owns whole. With ``owner`` (kind, name), ``specs`` open with
    the ownership marker (_model.owner_marker), and an existing chain without that marker is
    someone else's: the plan refuses it, naming ``option``."""

    table: str
    name: str
    specs: tuple
    owner: tuple = None
    option: str = "name"


@dataclass(frozen=True)
class DropChain:
    """A user chain to flush and delete if present; refused like OwnedChain if it is not ours."""

    table: str
    name: str
    owner: tuple = None
    option: str = "name"


# The owner kind of a rule chain's marker: ``ironwall:chain:rule-chain:<name>``. Every task that
# declares the chain shares it (the owner is the chain, not one task).
RULE_CHAIN_KIND = "rule-chain"


@dataclass(frozen=True)
class RuleChain:
    """A user chain the collection creates for tagged rules (the ``chains`` option).

    ``present``: created with the ownership marker as its only rule when missing; tagged groups
    are placed in it like in a built-in chain (after the marker, by priority). An existing chain
    without this marker (other software's, or another resource of the collection) is refused,
    naming ``option``. ``absent``: flushed and deleted with the tagged jumps to it; refused while
    a rule without a tag is in it or jumps to it."""

    table: str
    name: str
    option: str = "chains"
    state: str = "present"

    @property
    def owner(self):
        return (RULE_CHAIN_KIND, self.name)

    @property
    def marker(self):
        return owner_marker(RULE_CHAIN_KIND, self.name)


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
    drop_chains: tuple = ()   # DropChain: flushed and deleted if present
    groups: tuple = ()        # TaggedGroup: placed or replaced
    absent: tuple = ()        # (table, kind, name): removed wherever they are in the table
    purges: tuple = ()        # Purge
    rule_chains: tuple = ()   # RuleChain: created (present) or removed (absent)

    def __add__(self, other):
        """Two resources' wants as one (one plan, one transaction for both)."""
        return Desired(*(getattr(self, f) + getattr(other, f) for f in
                         ("policies", "chains", "drop_chains", "groups", "absent", "purges", "rule_chains")))


class Resource(object):
    """What one task owns, validated (pure): ``desired`` per family, and what to report.

    A changing module hands its resources to _transaction.converge, which plans all of them
    as one transaction per family.
    """

    def desired(self, family, ruleset):
        """The Desired of this resource in one family, given the current Ruleset."""
        raise NotImplementedError

    def report(self, family, ruleset, plan):
        """{key: value} for this family (``ruleset`` as read, ``plan`` its Plan): result[key][family]."""
        return {}

    def summary(self):
        """{key: value} returned at the top level of the result."""
        return {}


# --- typed operations: the only things a plan does, rendered and simulated here only ---

@dataclass(frozen=True)
class Insert:
    """Insert ``spec`` at 1-based ``position`` of ``chain``."""

    chain: str
    position: int
    spec: str

    def lines(self):
        return ["-I %s %d %s" % (self.chain, self.position, self.spec)]

    def apply(self, chains):
        rules = list(chains[self.chain].rules)
        rules.insert(self.position - 1, Rule(self.chain, self.spec))
        chains[self.chain] = _with_rules(chains[self.chain], rules)


@dataclass(frozen=True)
class Delete:
    """Delete the first rule of ``chain`` equal to ``spec`` (by spec: a position could be stale)."""

    chain: str
    spec: str

    def lines(self):
        return ["-D %s %s" % (self.chain, self.spec)]

    def apply(self, chains):
        rules = list(chains[self.chain].rules)
        for i, r in enumerate(rules):
            if r.spec == self.spec:
                del rules[i]
                break
        chains[self.chain] = _with_rules(chains[self.chain], rules)


@dataclass(frozen=True)
class ReplaceChain:
    """Create the user chain ``chain``, or flush it, and fill it with ``specs``."""

    chain: str
    specs: tuple

    def header(self):
        return ":%s - [0:0]" % self.chain

    def lines(self):
        return ["-A %s %s" % (self.chain, s) for s in self.specs]

    def apply(self, chains):
        chains[self.chain] = Chain(self.chain, None, tuple(Rule(self.chain, s) for s in self.specs))


@dataclass(frozen=True)
class SetPolicy:
    chain: str
    policy: str

    def lines(self):
        return ["-P %s %s" % (self.chain, self.policy)]

    def apply(self, chains):
        cur = chains.get(self.chain) or Chain(self.chain, "ACCEPT")
        chains[self.chain] = Chain(cur.name, self.policy, cur.rules, cur.counters)


@dataclass(frozen=True)
class RemoveChain:
    """Flush and delete the user chain ``chain`` (after the jumps to it are gone)."""

    chain: str

    def lines(self):
        return ["-F %s" % self.chain, "-X %s" % self.chain]

    def apply(self, chains):
        chains.pop(self.chain, None)


def _with_rules(chain, rules):
    return Chain(chain.name, chain.policy, tuple(rules), chain.counters)


def apply_ops(table, ops):
    """``table`` (a _model.Table) as it is once ``ops`` ran: what iptables-restore --noflush does."""
    chains = dict((c.name, c) for c in table.chains)
    order = list(chains)
    for op in ops:
        op.apply(chains)
        if op.chain in chains and op.chain not in order:
            order.append(op.chain)
    return Table(table.name, tuple(chains[n] for n in order if n in chains))


@dataclass(frozen=True)
class TablePlan:
    table: str
    ops: tuple
    before: tuple   # Chain objects as they are (affected chains only)
    after: tuple    # Chain objects as they will be (a removed chain is not there)

    @property
    def chain_headers(self):
        return tuple(op.header() for op in self.ops if isinstance(op, ReplaceChain))

    @property
    def commands(self):
        return tuple(line for op in self.ops for line in op.lines())

    def deleted(self, chains=None):
        """Rules this plan deletes from existing chains, as ``-A CHAIN spec`` lines."""
        return ["-A %s %s" % (op.chain, op.spec) for op in self.ops
                if isinstance(op, Delete) and (chains is None or op.chain in chains)]


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
        for tp in self.tables:
            if tp.table == current_table.name:
                return apply_ops(current_table, tp.ops)
        return current_table


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


_CATCH_ALL_TARGETS = ("RETURN", "ACCEPT", "DROP", "REJECT")


def catch_all(spec):
    """Does this rule end every packet's way through the chain (no match, a terminal target)?
    Docker's ``-A DOCKER-USER -j RETURN`` is one: a rule placed after it is never reached."""
    parts = Rule("", spec).parts
    return (parts.target in _CATCH_ALL_TARGETS and not parts.head.options
            and all(m.module == "comment" for m in parts.matches))


def _sorted_insert(work, group_entries, sort_key):
    """Insert entries right before the first tagged entry with a greater sort key, else at the
    end; and before the untagged catch-all rules just above that place (never behind them)."""
    pos = len(work)
    for i, (_spec, tag, _origin) in enumerate(work):
        if tag is not None and tag.sort_key > sort_key:
            pos = i
            break
    while pos > 0 and work[pos - 1][1] is None and catch_all(work[pos - 1][0]):
        pos -= 1
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
        # a group of this run behind the untagged catch-alls that end the chain is never
        # reached: it is moved before them (_sorted_insert puts it there)
        untagged = [k for k, e in enumerate(work) if e[1] is None]
        start = None
        for k in reversed(untagged):
            if not catch_all(work[k][0]):
                break
            start = k
        if start is not None:
            misplaced.update(e[1].key for e in work[start:] if e[1] is not None and e[1].key in keep_in_place)
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


def _owned(table, chain, owner):
    """Is ``chain`` the collection's, for the resource ``owner`` (kind, name)? Its marker says so;
    a chain made before markers existed counts when a tagged rule of that resource jumps to it."""
    if chain.owner is not None:
        return chain.owner == owner
    for c in table.chains:
        for r in c.rules:
            tag = r.tag
            if tag is not None and tag.key == owner and r.target == chain.name:
                return True
    return False


def _chain_ops(name, current, work):
    """Deletions by spec (race-safe), then insertions by position, from current -> work."""
    kept = set(e[2] for e in work if e[2] is not None)
    ops = [Delete(name, r.spec) for i, r in enumerate(current) if i not in kept]
    for pos, (spec, _tag, origin) in enumerate(work, 1):
        if origin is None:
            ops.append(Insert(name, pos, spec))
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
                desired.purges, desired.rule_chains):
        for item in seq:
            t = item[0] if isinstance(item, tuple) else item.table
            if t not in names:
                names.append(t)
    return names


def _plan_table(table, desired, tname):
    chains = dict((c.name, c) for c in table.chains)
    owned = [c for c in desired.chains if c.table == tname]
    drop_specs = [d for d in desired.drop_chains if d.table == tname]
    drops = list(dict.fromkeys(d.name for d in drop_specs))  # two resources may drop one chain
    groups = [g for g in desired.groups if g.table == tname]
    absent = set((k, n) for (t, k, n) in desired.absent if t == tname)
    purges = dict((p.chain, p) for p in desired.purges if p.table == tname)
    policies = [(c, p) for (t, c, p) in desired.policies if t == tname]
    rc_present, rc_gone = _rule_chains(desired, tname)

    known = set(chains) | set(c.name for c in owned) | set(rc_present)
    handed_over = set((d.name, d.owner) for d in drop_specs)  # a chain this plan takes from one resource
    for oc in owned + drop_specs:
        if not oc.owner or oc.name not in chains or _owned(table, chains[oc.name], oc.owner):
            continue
        marker = chains[oc.name].owner
        if marker is not None and (oc.name, marker) in handed_over and isinstance(oc, OwnedChain):
            continue  # e.g. exclusive drops rate limit a while rate limit b takes its chain_name
        if marker is not None:
            raise PlanError(oc.option, "chain %r in table %s belongs to the collection's %s %r; remove that one "
                                       "first (state: absent) or choose another name" % ((oc.name, tname) + marker))
        raise PlanError(oc.option, "chain %r already exists in table %s and the collection did not create it "
                                   "(it has no ownership marker): it may be fail2ban's, Docker's or an admin's, "
                                   "and is left alone. Choose another name." % (oc.name, tname))
    owned_names = set(c.name for c in owned)
    for g in groups:
        if g.chain in owned_names:
            raise PlanError(g.option + "chain", "chain %r is owned by the collection and replaced whole on every run; "
                                                "a rule placed in it would be dropped. Use INPUT or another chain"
                                                % g.chain)
    # Rule chains: ours (marker), not another resource's chain; removed ones take the tagged jumps along.
    absent |= _check_rule_chains(table, chains, rc_present, rc_gone, owned, groups)
    # Every jump target must exist after the change.
    for g in groups:
        if g.chain not in known:
            raise PlanError(g.option + "chain", "chain %r does not exist in table %s; existing chains: %s"
                            % (g.chain, tname, ", ".join(sorted(chains)) or "none"))
        for spec in g.specs:
            target = Rule(g.chain, spec).target
            if target and target not in known and target not in TARGETS and target not in drops \
                    and target not in CONTINUING_TARGETS:
                raise PlanError(g.option + "jump", "rule %r jumps to chain %r, which does not exist in table %s"
                                % (g.tag.name, target, tname))
    for chain, _policy in policies:
        c = chains.get(chain)
        if c is not None and not c.builtin:
            raise PlanError("chain", "%r is a user chain of table %s; only built-in chains have a policy"
                            % (chain, tname))

    ops = []
    # Owned chains: replaced whole when their content differs.
    for oc in owned:
        cur = chains.get(oc.name)
        if cur is None or cur.specs != tuple(oc.specs):
            ops.append(ReplaceChain(oc.name, tuple(oc.specs)))
    by_chain = {}
    for g in groups:
        by_chain.setdefault(g.chain, []).append(g)
    # New rule chains: created with the marker, then their groups in priority order.
    new_chains = [name for name in rc_present if name not in chains]
    for name in new_chains:
        marker = Chain(name, None, (Rule(name, rc_present[name].marker),))
        work = _plan_chain(marker, by_chain.get(name, []), set(), None)
        ops.append(ReplaceChain(name, tuple(e[0] for e in work)))
    # Policies: only those that differ (a chain iptables-save did not print is ACCEPT).
    ops.extend(SetPolicy(c, p) for c, p in policies if (chains.get(c) or Chain(c, "ACCEPT")).policy != p)
    # Tagged groups and purges, chain by chain (every chain may hold groups to remove).
    managed_at = dict((g.tag.key, g.chain) for g in groups)
    touched = set(by_chain) | set(purges)
    skip = owned_names | set(new_chains) | set(rc_gone)  # replaced, created or removed whole
    for cname, chain in chains.items():
        if cname in touched or cname in skip:
            continue
        for r in chain.rules:
            tag = r.tag
            if tag is not None and (tag.key in absent or (tag.key in managed_at and managed_at[tag.key] != cname)):
                touched.add(cname)
                break
    for cname in sorted(touched - skip, key=lambda n: (n not in BUILTIN_CHAIN_NAMES, n)):
        chain = chains.get(cname)
        remove = set(absent) | set(k for k, c in managed_at.items() if c != cname)
        work = _plan_chain(chain, by_chain.get(cname, []), remove, purges.get(cname))
        current_rules = chain.rules if chain is not None else ()
        if [e[0] for e in work] != [r.spec for r in current_rules]:
            ops.extend(_chain_ops(cname, current_rules, work))
    # Dropped chains: after the jumps to them are gone; rule chains first (their tagged rules may jump
    # to a dropped whitelist chain), one jumping to another before that other.
    gone = _removal_order([n for n in rc_gone if n in chains and n not in drops], chains)
    gone += [name for name in drops if name not in owned_names and name in chains]
    ops.extend(RemoveChain(name) for name in gone)
    if not ops:
        return None
    affected = list(dict.fromkeys(op.chain for op in ops))
    after = dict((c.name, c) for c in apply_ops(table, ops).chains)
    before = [chains.get(n) or Chain(n, "ACCEPT" if n in BUILTIN_CHAIN_NAMES else None) for n in affected]
    return TablePlan(tname, tuple(ops), tuple(before), tuple(after[n] for n in affected if n in after))


def _removal_order(names, chains):
    """``names`` ordered so that a chain is flushed and deleted after every chain of ``names`` whose
    rules jump to it (-X refuses a chain still referenced; the kernel allows no jump loops)."""
    left = list(names)
    out = []
    while left:
        for name in left:
            if not any(r.target == name for other in left if other != name for r in chains[other].rules):
                break
        else:  # pragma: no cover - a loop of jumps: iptables refuses it, so a read ruleset has none
            name = left[0]
        left.remove(name)
        out.append(name)
    return out


def _rule_chains(desired, tname):
    """({name: RuleChain} to keep, {name: RuleChain} to remove) in table ``tname``; the first
    declaration of a name names the option in errors."""
    present = {}
    gone = {}
    for rc in desired.rule_chains:
        if rc.table == tname:
            (present if rc.state == "present" else gone).setdefault(rc.name, rc)
    for name, rc in gone.items():
        if name in present:
            raise PlanError(rc.option, "chain %r of table %s is removed here but kept by %s; declare it once"
                            % (name, tname, present[name].option))
    return present, gone


def _check_rule_chains(table, chains, present, gone, owned, groups):
    """Refuse what a rule chain cannot be (another's chain, a chain a removal would break) and
    return the tag keys of the tagged jumps a removal takes along."""
    tname = table.name
    for rc in list(present.values()) + list(gone.values()):
        cur = chains.get(rc.name)
        if cur is None or cur.owner == rc.owner:
            continue
        what = "declare another name" if rc.state == "present" else "remove it from %s" % rc.option
        if cur.owner is not None:
            raise PlanError(rc.option, "chain %r in table %s belongs to the collection's %s %r, not to the rule "
                                       "chains; %s (or remove that %s first, state: absent)"
                            % ((rc.name, tname) + cur.owner + (what, cur.owner[0])))
        raise PlanError(rc.option, "chain %r already exists in table %s and the collection did not create it (it has "
                                   "no ownership marker): it may be fail2ban's, Docker's or an admin's, and is left "
                                   "alone, never adopted nor flushed; %s" % (rc.name, tname, what))
    for oc in owned:
        if oc.name in present:
            raise PlanError(present[oc.name].option, "chain %r of table %s is also owned whole by %s (replaced on "
                                                     "every run); choose another name" % (oc.name, tname, oc.option))
    takes = set()
    for name, rc in gone.items():
        for g in groups:
            if g.chain == name or any(Rule(g.chain, s).target == name for s in g.specs):
                raise PlanError(rc.option, "chain %r of table %s is removed, but rule %r of this run is %s it; remove "
                                           "that rule too, or keep the chain"
                                % (name, tname, g.tag.name, "placed in" if g.chain == name else "jumping to"))
        cur = chains.get(name)
        if cur is None:
            continue
        foreign = [r.line for r in cur.rules[1:] if r.tag is None]
        if foreign:
            raise PlanError(rc.option, "cannot remove chain %r of table %s: it holds %d rule(s) the collection did not "
                                       "place (%s); remove them first. Nothing was changed."
                            % (name, tname, len(foreign), foreign[0]))
        for chain in table.chains:
            if chain.name == name:
                continue
            for r in chain.rules:
                if r.target != name:
                    continue
                if r.tag is None:
                    raise PlanError(rc.option, "cannot remove chain %r of table %s: a rule the collection did not "
                                               "place still jumps to it (%s); remove that rule first. Nothing was "
                                               "changed." % (name, tname, r.line))
                if chain.name not in gone:
                    takes.add(r.tag.key)
    return takes - set(g.tag.key for g in groups)  # a group of this run is replaced, not removed


def undo_ops(table, ops):
    """The operations that take ``apply_ops(table, ops)`` back to ``table``, touching only what
    ``ops`` changed (a rule others added meanwhile stays). A deleted rule goes back to its old
    position; a removed chain comes back with its old rules."""
    chains = dict((c.name, c) for c in table.chains)
    undo = []
    for op in ops:
        old = chains.get(op.chain)
        if isinstance(op, Insert):
            undo.append(Delete(op.chain, op.spec))
        elif isinstance(op, Delete):
            specs = old.specs if old is not None else ()
            undo.append(Insert(op.chain, specs.index(op.spec) + 1 if op.spec in specs else len(specs) + 1, op.spec))
        elif isinstance(op, SetPolicy):
            undo.append(SetPolicy(op.chain, old.policy if old is not None else "ACCEPT"))
        elif old is None:  # a new chain
            undo.append(RemoveChain(op.chain))
        else:  # ReplaceChain of an existing chain, RemoveChain
            undo.append(ReplaceChain(op.chain, old.specs))
        op.apply(chains)
    return tuple(reversed(undo))


def undo_script(ruleset, plan):
    """iptables-restore --noflush text that undoes ``plan`` on the ruleset it was planned from."""
    tables = tuple(TablePlan(tp.table, undo_ops(ruleset.table(tp.table), tp.ops), (), ()) for tp in plan.tables)
    return render_restore_script(Plan(plan.family, tables))
