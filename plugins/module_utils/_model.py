# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Immutable model of iptables-save text: parse it, render it back.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
Pure code: no Ansible imports, no processes.

The model keeps every rule exactly as iptables-save printed it (``spec`` is the text
after ``-A CHAIN``), so rendering a parsed dump gives the dump back, and comparing a
desired rule with a live one is a string comparison once the desired rule is rendered
in iptables-save's canonical form (see _options). What a rule means is read once, here:
``Rule.parts`` is its structure (head, matches, target, target options) and ``Rule.tag``
its owner tag, read from the comment match itself. Nothing else slices rule strings.

Text is split into lines at line feeds only: iptables keeps a carriage return, vertical
tab, NEL or U+2028 inside a quoted comment, and ``str.splitlines()`` would cut the rule there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._errors import IronwallError

try:
    from functools import cached_property
except ImportError:  # pragma: no cover - Python < 3.8 is not a target
    cached_property = property

BUILTIN_CHAINS = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "raw": ("PREROUTING", "OUTPUT"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}
TABLES = tuple(BUILTIN_CHAINS)

TAG_WORD = "ironwall"
# The identity tag the collection writes into its rules' comments:
#   ironwall:<priority 000-999>:<kind>:<name>[ <free text>]
# It is read from the argument of a ``-m comment --comment`` match only (never from a LOG
# prefix or a string match that happens to contain the same text).
_TAG_RE = re.compile(TAG_WORD + r":(\d{3}):([a-z][a-z0-9-]*):([A-Za-z0-9_.@-]+)(?: |\Z)")
# The ownership marker: the first rule of a chain the collection created, a comment-only
# rule (no target: it matches and does nothing) ``ironwall:chain:<kind>:<name>``.
_OWNER_RE = re.compile(TAG_WORD + r":chain:([a-z][a-z0-9-]*):([A-Za-z0-9_.@-]+)\Z")
_COUNTERS_RE = re.compile(r"^\[(\d+):(\d+)\]$")

# Characters iptables-save leaves unquoted (xtables_save_string); anything else is
# double-quoted with ", \ and ' escaped by a backslash.
_PLAIN_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPE_RE = re.compile(r"([\"\\'])")


class ParseError(IronwallError, ValueError):
    """iptables-save text that this parser does not understand."""

    def __init__(self, lineno, line, reason):
        super(ParseError, self).__init__("line %d: %s: %r" % (lineno, reason, line))
        self.lineno = lineno
        self.line = line
        self.reason = reason


# Options whose one argument is free text: it is taken whatever it looks like (an
# unquoted ``--comment -x`` is a comment, not an option).
TEXT_OPTIONS = ("--comment", "--log-prefix", "--nflog-prefix", "--name", "--string", "--hex-string", "--u32")


def quote(value):
    """Quote a string argument the way iptables-save prints it."""
    if _PLAIN_RE.match(value):
        return value
    return '"' + _ESCAPE_RE.sub(r"\\\1", value) + '"'


def tokenize(spec):
    """Split a rule spec printed by iptables-save into its arguments (quotes removed)."""
    return [text for text, _quoted in _words(spec)]


def _words(spec):
    """(text, was quoted) for each argument of a rule spec."""
    tokens = []
    i = 0
    n = len(spec)
    while i < n:
        c = spec[i]
        if c == " ":
            i += 1
        elif c == '"':
            buf = []
            i += 1
            while i < n and spec[i] != '"':
                if spec[i] == "\\" and i + 1 < n:
                    buf.append(spec[i + 1])
                    i += 2
                else:
                    buf.append(spec[i])
                    i += 1
            i += 1
            tokens.append(("".join(buf), True))
        else:
            j = spec.find(" ", i)
            if j < 0:
                j = n
            tokens.append((spec[i:j], False))
            i = j
    return tokens


@dataclass(frozen=True)
class Arg:
    """One option of a match or target as iptables-save printed it: ``! --dport 22``."""

    flag: str
    args: tuple = ()
    negated: bool = False

    @property
    def value(self):
        return self.args[0] if self.args else None


@dataclass(frozen=True)
class Match:
    """``-m module`` and its options; the head (``-s -d -i -o -p -f``) is the match named ''."""

    module: str
    options: tuple = ()

    def get(self, flag):
        for a in self.options:
            if a.flag == flag:
                return a
        return None


@dataclass(frozen=True)
class RuleParts:
    """A rule's structure: head, matches, target (None: counts only), goto, target options."""

    head: Match
    matches: tuple
    target: str | None
    goto: bool
    target_options: tuple

    def match(self, module):
        for m in self.matches:
            if m.module == module:
                return m
        return None

    def target_option(self, flag):
        return Match("", self.target_options).get(flag)


def parse_rule(spec):
    """A spec printed by iptables-save -> RuleParts (pure, never fails: unknown words are options)."""
    words = _words(spec)
    head = []
    matches = []
    current = head
    module = None
    target = None
    goto = False
    target_options = []
    i = 0
    n = len(words)
    while i < n:
        text, quoted = words[i]
        negated = False
        if text == "!" and not quoted and i + 1 < n:
            negated = True
            i += 1
            text, quoted = words[i]
        if not quoted and text == "-m" and i + 1 < n:
            if module is not None or current is not head:
                matches.append(Match(module, tuple(current)))
            module = words[i + 1][0]
            current = []
            i += 2
            continue
        if not quoted and text in ("-j", "-g") and i + 1 < n and target is None:
            if module is not None:
                matches.append(Match(module, tuple(current)))
                module = None
            target = words[i + 1][0]
            goto = text == "-g"
            current = target_options
            i += 2
            continue
        i += 1
        args = []
        if text in TEXT_OPTIONS and i < n:
            args.append(words[i][0])
            i += 1
        else:
            while i < n and (words[i][1] or not (words[i][0].startswith("-") or words[i][0] == "!")):
                args.append(words[i][0])
                i += 1
        current.append(Arg(text, tuple(args), negated))
    if module is not None:
        matches.append(Match(module, tuple(current)))
    return RuleParts(Match("", tuple(head)), tuple(matches), target, goto, tuple(target_options))


def owner_marker(kind, name):
    """The spec of the marker rule that says the collection owns a chain (see _OWNER_RE)."""
    return "-m comment --comment " + quote("%s:chain:%s:%s" % (TAG_WORD, kind, name))


def read_owner(parts):
    """(kind, name) of an ownership marker rule, or None."""
    if parts.target is not None or parts.head.options or len(parts.matches) != 1:
        return None
    arg = parts.matches[0].get("--comment") if parts.matches[0].module == "comment" else None
    found = _OWNER_RE.match(arg.value or "") if arg is not None else None
    return (found.group(1), found.group(2)) if found else None


def read_tag(parts):
    """The owner Tag from the rule's ``-m comment --comment`` argument, or None."""
    for m in parts.matches:
        if m.module == "comment":
            arg = m.get("--comment")
            found = _TAG_RE.match(arg.value or "") if arg is not None else None
            if found:
                return Tag(int(found.group(1)), found.group(2), found.group(3))
    return None


@dataclass(frozen=True)
class Tag:
    """The owner tag of a rule placed by the collection."""

    priority: int
    kind: str
    name: str

    @property
    def key(self):
        """Identity of a rule group: kind and name (priority may change)."""
        return (self.kind, self.name)

    @property
    def sort_key(self):
        return (self.priority, self.name, self.kind)

    def comment(self, text=None):
        """The comment text carrying this tag (and optional free text)."""
        tag = "%s:%03d:%s:%s" % (TAG_WORD, self.priority, self.kind, self.name)
        return tag + " " + text if text else tag

    def as_dict(self):
        return {"priority": self.priority, "kind": self.kind, "name": self.name}


@dataclass(frozen=True)
class Rule:
    """One ``-A CHAIN spec`` line. ``spec`` is kept exactly as printed."""

    chain: str
    spec: str
    counters: str = ""

    @property
    def line(self):
        return "-A %s %s" % (self.chain, self.spec) if self.spec else "-A %s" % self.chain

    @cached_property
    def parts(self):
        return parse_rule(self.spec)

    @cached_property
    def tag(self):
        if TAG_WORD + ":" not in self.spec:
            return None
        return read_tag(self.parts)

    @property
    def target(self):
        return self.parts.target

    def packets_bytes(self):
        return _counters(self.counters)


@dataclass(frozen=True)
class Chain:
    """A chain: built-in ones have a policy, user chains have ``policy`` None."""

    name: str
    policy: str | None = None
    rules: tuple = ()
    counters: str = "[0:0]"

    @property
    def builtin(self):
        return self.policy is not None

    @property
    def specs(self):
        return tuple(r.spec for r in self.rules)

    @property
    def owner(self):
        """(kind, name) from the ownership marker that opens a chain the collection created, or None."""
        if not self.rules or TAG_WORD + ":chain:" not in self.rules[0].spec:
            return None
        return read_owner(self.rules[0].parts)

    def header(self, counters=True):
        return ":%s %s %s" % (self.name, self.policy or "-", self.counters if counters else "[0:0]")

    def packets_bytes(self):
        return _counters(self.counters)


@dataclass(frozen=True)
class Table:
    name: str
    chains: tuple = ()

    def chain(self, name):
        for c in self.chains:
            if c.name == name:
                return c
        return None

    @property
    def chain_names(self):
        return tuple(c.name for c in self.chains)


@dataclass(frozen=True)
class Ruleset:
    """All tables of one family, in the order iptables-save printed them."""

    tables: tuple = ()
    header: str = ""

    def table(self, name):
        """The named table; a table iptables-save did not print is empty, with ACCEPT policies."""
        for t in self.tables:
            if t.name == name:
                return t
        return empty_table(name)

    @property
    def backend(self):
        """'nft' or 'legacy' from the '# Generated by' line, or None when there was none."""
        if not self.header:
            return None
        return "nft" if "(nf_tables)" in self.header else "legacy"


def empty_table(name):
    return Table(name, tuple(Chain(c, "ACCEPT") for c in BUILTIN_CHAINS.get(name, ())))


def _counters(text):
    m = _COUNTERS_RE.match(text or "")
    if not m:
        return (0, 0)
    return (int(m.group(1)), int(m.group(2)))


def parse_save(text):
    """Parse iptables-save / ip6tables-save output (with or without -c) into a Ruleset."""
    tables = []
    header = ""
    name = None
    chain_order = []
    heads = {}
    rules = {}
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        c = line[0]
        if c == "#":
            if not header and line.startswith("# Generated by"):
                header = line
            continue
        if c == "[" or c == "-":
            counters = ""
            if c == "[":
                counters, _sep, line = line.partition(" ")
            if not line.startswith("-A "):
                raise ParseError(lineno, line, "expected '-A CHAIN ...'")
            parts = line.split(" ", 2)
            chain = parts[1]
            if chain not in rules:
                raise ParseError(lineno, line, "rule for a chain that was not declared")
            rules[chain].append(Rule(chain, parts[2] if len(parts) > 2 else "", counters))
        elif c == ":":
            parts = line[1:].split(" ")
            if name is None or len(parts) < 2:
                raise ParseError(lineno, line, "chain line outside a table")
            chain = parts[0]
            chain_order.append(chain)
            heads[chain] = (None if parts[1] == "-" else parts[1], parts[2] if len(parts) > 2 else "[0:0]")
            rules[chain] = []
        elif c == "*":
            name = line[1:].strip()
            chain_order, heads, rules = [], {}, {}
        elif line == "COMMIT":
            if name is None:
                raise ParseError(lineno, line, "COMMIT outside a table")
            tables.append(
                Table(name, tuple(Chain(ch, heads[ch][0], tuple(rules[ch]), heads[ch][1]) for ch in chain_order))
            )
            name = None
        else:
            raise ParseError(lineno, line, "unexpected line")
    if name is not None:
        raise ParseError(0, name, "table without COMMIT")
    return Ruleset(tuple(tables), header)


def render_table(table, counters=True):
    lines = ["*" + table.name]
    lines.extend(c.header(counters) for c in table.chains)
    for chain in table.chains:
        for r in chain.rules:
            if counters and r.counters:
                lines.append(r.counters + " " + r.line)
            else:
                lines.append(r.line)
    lines.append("COMMIT")
    return lines


def render_save(ruleset, counters=True):
    """Render a Ruleset as iptables-save text (without the timestamp comment lines).

    ``counters=False`` zeroes chain counters and drops rule counters: the normalized form
    used for persistence and comparison.
    """
    lines = []
    for table in ruleset.tables:
        lines.extend(render_table(table, counters))
    return "\n".join(lines) + "\n" if lines else ""


def normalize_save(text):
    """iptables-save text without timestamps or counters."""
    return render_save(parse_save(text), counters=False)
