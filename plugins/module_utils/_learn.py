# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The kernel's own form of the lines of ``raw`` rules, learned in a private network namespace.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.

A ``raw`` rule carries words the option table does not know, so the collection cannot render
them in iptables-save's canonical form (``--u32 "0>>22&0x3C@12>>26&0x3F=0x10"`` is printed
``--u32 "0x0>>0x16&0x3c@0xc>>0x1a&0x3f=0x10"``). Instead of guessing, every rendered line of
such rules is loaded into its chain and table in a new, empty network namespace
(``unshare --net``) with the host's own iptables-restore, read back there with its
iptables-save, and the printed line replaces the rendered one: the plan compares exact
strings, so a rerun changes nothing. The host's ruleset is never read or written here, in
check mode neither.

One process for the whole task, counted as ``calls["learn"]`` (``Netfilter.run``): unshare
runs a fixed Python helper (``HELPER``; no user text in any argument, no shell) that reads
the scripts from stdin as JSON, runs iptables-restore and iptables-save of each family in the
namespace and prints JSON. When a family's script is refused, the helper loads its lines one
by one to find the line iptables refuses: a SpecError naming that rule's ``raw`` option
(``rules[1].raw``), quoting the line and iptables' message.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field, replace

from ._errors import IronwallError, SpecError
from ._model import BUILTIN_CHAINS, ParseError, parse_rule, parse_save
from ._rulespec import TARGETS

KEY = "raw"
# Targets that take no option: a bare ``-j NAME`` of anything else is a user chain, declared in
# the scratch table so the line loads (it is the host's to have; the apply says so if not).
OPTIONLESS_TARGETS = frozenset(TARGETS) | frozenset((
    "ACCEPT", "DROP", "RETURN", "QUEUE", "NFQUEUE", "NOTRACK", "TRACE", "MASQUERADE", "REDIRECT", "NFLOG",
    "LOG", "REJECT", "CT", "SYNPROXY", "ULOG", "CONNSECMARK", "SECMARK"))
_CHAIN_NAME_RE = re.compile(r"^[^\s!\-][^\s]{0,27}\Z")
_NOISE_RE = re.compile(r"^(Error occurred at line: \d+|Try `.*for more information\.)$")
_PROGRAM_RE = re.compile(r"^\S*tables-restore(?: v[0-9.]+(?: \([^)]*\))?)?:\s*")

# Runs inside the namespace: ``python -I -c HELPER``, JSON on stdin, JSON on stdout. Every
# argument iptables gets comes from the collection (binary paths, -w); rules go on stdin only.
HELPER = r"""
import json, subprocess, sys


def run(argv, text):
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    data = None if text is None else text.encode("utf-8", "surrogateescape")
    out, err = proc.communicate(data)
    return proc.returncode, out.decode("utf-8", "surrogateescape"), err.decode("utf-8", "surrogateescape")


results = []
for job in json.loads(sys.stdin.read()):
    rc, out, err = run(job["restore"], job["script"])
    result = {"rc": rc, "stderr": err or out, "line": None}
    if rc == 0:
        rc, out, err = run(job["save"], None)
        result.update(save_rc=rc, save=out, save_stderr=err)
    else:
        for i, single in enumerate(job["singles"]):
            rc1, out1, err1 = run(job["restore"], single)
            if rc1 != 0:
                result.update(line=i, stderr=err1 or out1)
                break
    results.append(result)
sys.stdout.write(json.dumps(results))
"""


@dataclass(frozen=True)
class Line:
    """One rendered line to learn: where it goes, and the option that errors name."""

    family: str
    table: str
    chain: str
    spec: str
    option: str  # "rules[1].raw"
    both: bool = field(default=False, compare=False)  # the rule has lines in both families

    @property
    def text(self):
        return "-A %s %s" % (self.chain, self.spec)


def has_raw(rule):
    """Does a (present) rule carry raw words?"""
    return rule.state == "present" and bool(rule.values.get(KEY))


def lines_of(rules, render):
    """The Lines of every rule with raw words, per family in rule order; ``render(rule, family)``
    gives a rule's rendered specs (_rules.render_specs)."""
    out = []
    for rule in rules:
        if not has_raw(rule):
            continue
        for family in rule.families:
            for spec in render(rule, family):
                out.append(Line(family, rule.table, rule.chain, spec, rule.option + KEY, len(rule.families) > 1))
    return out


def user_chains(lines):
    """The user chains a table's lines need declared: their chains and the chains they jump or
    go to (sorted)."""
    names = set()
    for line in lines:
        builtin = BUILTIN_CHAINS.get(line.table, ())
        if line.chain not in builtin:
            names.add(line.chain)
        parts = parse_rule(line.spec)
        target = parts.target
        if target is None or target in builtin or not _CHAIN_NAME_RE.match(target):
            continue
        if parts.goto or (not parts.target_options and target not in OPTIONLESS_TARGETS):
            names.add(target)
    return sorted(names)


def _check_line(line):
    for bad, what in (("\n", "a line break"), ("\r", "a carriage return"), ("\0", "a NUL character")):
        if bad in line.spec:
            raise SpecError(line.option, "must be one line of iptables words; it renders %s: %r" % (what, line.text))


def _tables(lines):
    """[(table, [its lines])] in the order the tables first appear."""
    order = []
    by_table = {}
    for line in lines:
        if line.table not in by_table:
            order.append(line.table)
            by_table[line.table] = []
        by_table[line.table].append(line)
    return [(t, by_table[t]) for t in order]


def _block(table, chains, lines):
    return (["*" + table] + [":%s - [0:0]" % c for c in chains] + [line.text for line in lines] + ["COMMIT"])


def scratch(lines):
    """(script, singles) of one family: every line in its table and chain, and each line alone
    (loaded one by one to find the one iptables refuses)."""
    script = []
    singles = []
    for table, tlines in _tables(lines):
        chains = user_chains(tlines)
        script += _block(table, chains, tlines)
        singles.extend("\n".join(_block(table, chains, [line])) + "\n" for line in tlines)
    return "\n".join(script) + "\n", singles


def read_back(lines, save_text, binary="iptables-save"):
    """The specs iptables-save printed in the namespace for ``lines`` (one family), in their order."""
    try:
        ruleset = parse_save(save_text)
    except ParseError as exc:
        raise IronwallError("%s: could not read what %s printed in the private namespace: %s"
                            % (lines[0].option, binary, exc))
    out = [None] * len(lines)
    for table, _tlines in _tables(lines):
        printed = dict((c.name, list(c.rules)) for c in ruleset.table(table).chains)
        for i, line in enumerate(lines):
            if line.table != table:
                continue
            rules = printed.get(line.chain) or []
            if not rules:
                raise IronwallError("%s: %s printed fewer rules than were loaded in the private namespace "
                                    "(chain %s of table %s); cannot learn %r"
                                    % (line.option, binary, line.chain, table, line.text))
            out[i] = rules.pop(0).spec
        extra = [c for c, rules in printed.items() if rules]
        if extra:
            raise IronwallError("%s: %s printed more rules than were loaded in the private namespace (chain %s "
                                "of table %s)" % (lines[0].option, binary, extra[0], table))
    return out


def reason(stderr):
    """iptables' message without its line numbers of the scratch script and usage hints."""
    keep = []
    for text in (stderr or "").splitlines():
        text = _PROGRAM_RE.sub("", text.strip())
        if text and not _NOISE_RE.match(text):
            keep.append(text)
    text = " ".join(keep)
    text = re.sub(r"\bline \d+: ", "", text)
    if re.search(r"\bline \d+ failed\s*\Z", text):
        text = re.sub(r"\bline \d+ failed\s*\Z", "the kernel refused it (the kernel log may say why)", text)
    return text or "no message"


def learn(nf, lines):
    """The kernel's spec of each Line (same order): one ``unshare --net`` process for all
    families. A refused line is a SpecError naming its option; nothing on the host changes."""
    if not lines:
        return []
    for line in lines:
        _check_line(line)
    unshare = nf.module.get_bin_path("unshare")
    if not unshare:
        raise IronwallError("%s: unshare not found on the target: learning the kernel's form of a raw line needs it "
                            "(util-linux)" % lines[0].option)
    fams = []
    jobs = []
    for family in ("ipv4", "ipv6"):
        flines = [line for line in lines if line.family == family]
        if not flines:
            continue
        script, singles = scratch(flines)
        fams.append((family, flines))
        jobs.append(dict(restore=[nf.binary(family, "restore"), "-w", str(nf.wait)],
                         save=[nf.binary(family, "save")], script=script, singles=singles))
    argv = [unshare, "--net", "--", sys.executable, "-I", "-c", HELPER]
    rc, out, err = nf.run("learn", argv, data=json.dumps(jobs))
    try:
        results = json.loads(out) if rc == 0 else None
    except ValueError:
        results = None
    if not isinstance(results, list) or len(results) != len(jobs):
        raise IronwallError(
            "%s: could not load the raw lines into a private network namespace (unshare --net, which needs root "
            "or CAP_SYS_ADMIN) to learn how the kernel prints them; nothing was changed: %s"
            % (lines[0].option, (err or out or "rc=%s" % rc).strip()[-2000:]), cmd=argv[:4], rc=rc)
    learned = {}
    for (family, flines), job, result in zip(fams, jobs, results):
        restore = job["restore"][0].rsplit("/", 1)[-1]
        save = job["save"][0].rsplit("/", 1)[-1]
        if result.get("rc") != 0:
            index = result.get("line")
            line = flines[index] if isinstance(index, int) and 0 <= index < len(flines) else None
            if line is None:
                raise SpecError(flines[0].option, "%s refused the raw lines of %s together (%s): %s. Nothing was "
                                "changed." % (restore, family, "; ".join(repr(f.text) for f in flines),
                                              reason(result.get("stderr"))))
            hint = ""
            if line.both:
                hint = (" If these words are for %s only, give the rule ip_version: %s."
                        % (("IPv4", "ipv4") if family == "ipv6" else ("IPv6", "ipv6")))
            raise SpecError(line.option, "%s refused the line %r: %s. Nothing was changed.%s"
                            % (restore, line.text, reason(result.get("stderr")), hint))
        if result.get("save_rc") != 0:
            raise IronwallError("%s: %s failed in the private network namespace: %s"
                                % (flines[0].option, save, (result.get("save_stderr") or "").strip()))
        for line, spec in zip(flines, read_back(flines, result.get("save") or "", save)):
            learned[line] = spec
    return [learned[line] for line in lines]


def learn_rules(nf, rules, render):
    """``rules`` (RuleOptions) with ``learned`` set on those with raw words: ((family, specs), ...)
    as the kernel prints them. No rule with raw words: ``rules`` itself, and no process."""
    lines = lines_of(rules, render)
    if not lines:
        return rules
    specs = dict(zip(lines, learn(nf, lines)))
    out = []
    for rule in rules:
        if has_raw(rule):
            learned = tuple((family, tuple(specs[Line(family, rule.table, rule.chain, spec, rule.option + KEY)]
                                           for spec in render(rule, family)))
                            for family in rule.families)
            rule = replace(rule, learned=learned)
        out.append(rule)
    return tuple(out)
