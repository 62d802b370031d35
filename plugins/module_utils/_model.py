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
in iptables-save's canonical form (see _rulespec).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
# iptables-save prints it double-quoted (it contains ':'), so the match allows a quote.
_TAG_RE = re.compile(r'--comment "?' + TAG_WORD + r":(\d{3}):([a-z][a-z0-9-]*):([A-Za-z0-9_.@-]+)")
_COUNTERS_RE = re.compile(r"^\[(\d+):(\d+)\]$")

# Characters iptables-save leaves unquoted (xtables_save_string); anything else is
# double-quoted with ", \ and ' escaped by a backslash.
_PLAIN_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPE_RE = re.compile(r"([\"\\'])")


class ParseError(ValueError):
    """iptables-save text that this parser does not understand."""

    def __init__(self, lineno, line, reason):
        super(ParseError, self).__init__("line %d: %s: %r" % (lineno, reason, line))
        self.lineno = lineno
        self.line = line


def quote(value):
    """Quote a string argument the way iptables-save prints it."""
    if _PLAIN_RE.match(value):
        return value
    return '"' + _ESCAPE_RE.sub(r"\\\1", value) + '"'


def tokenize(spec):
    """Split a rule spec printed by iptables-save into its arguments (quotes removed)."""
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
            tokens.append("".join(buf))
        else:
            j = spec.find(" ", i)
            if j < 0:
                j = n
            tokens.append(spec[i:j])
            i = j
    return tokens


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
    def tag(self):
        if TAG_WORD not in self.spec:
            return None
        m = _TAG_RE.search(self.spec)
        if not m:
            return None
        return Tag(int(m.group(1)), m.group(2), m.group(3))

    @property
    def tokens(self):
        return tokenize(self.spec)

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
    for lineno, line in enumerate(text.splitlines(), 1):
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
