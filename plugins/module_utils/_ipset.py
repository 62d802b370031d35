# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""iptables_ipset options -> validated IpsetSpec; ``ipset save`` text -> Live sets; the plan.

PRIVATE to the ironwall.iptables collection: not a public API, may change at any time.
Pure code: no Ansible imports, no processes (the ipset binary runs in _netfilter).

Naming. One task manages one set per address family, since an ipset holds one family: the
IPv4 set is named ``name``, the IPv6 set ``name`` + ``_v6`` (as iptables_ratelimit names its
IPv6 recent list). ``name`` is therefore at most 28 characters (ipset's limit is 31).

Ownership. ipset has no per-set comment, so the collection keeps a registry: the set
``ironwall-sets`` (type ``list:set``) lists every set the collection owns. A set of the
requested name that is not in the registry belongs to someone else: it is never filled,
swapped or destroyed, and the task fails naming ``name``. Being a member of the registry
also makes a set impossible to destroy by accident (ipset refuses while a list:set holds it),
and the registry is what iptables_info and the saved sets file read.

Atomic change. The new content is loaded into a temporary set (``iwtmp-`` and a hash of the
set's name) and swapped in with ``ipset swap``, all in one ``ipset restore``: rules that
match the set see the old list or the new one, never a half-loaded one. A set that does not
exist yet is created empty and registered before the swap, so a failure while loading leaves
only the temporary set behind (destroyed by the runner, or by the next run).
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections import deque
from dataclasses import dataclass, replace
from itertools import repeat

from ._errors import SpecError

REGISTRY = "ironwall-sets"
REGISTRY_SIZE = 65536
TMP_PREFIX = "iwtmp-"
V6_SUFFIX = "_v6"
NAME_MAX = 31 - len(V6_SUFFIX)
TYPES = ("hash:ip", "hash:net", "hash:ip,port", "hash:net,port")
DEFAULT_TYPE = "hash:net"
IP_VERSIONS = ("auto", "ipv4", "ipv6", "both")
FAMILIES = ("ipv4", "ipv6")
INET = {"ipv4": "inet", "ipv6": "inet6"}
FAMILY_OF_INET = {"inet": "ipv4", "inet6": "ipv6"}
PORT_PROTOCOLS = ("tcp", "udp", "sctp", "udplite")
STATES = ("present", "absent")
DEFAULT_MAXELEM = 65536
MIN_HASHSIZE = 1024
MAX_TIMEOUT = 2147483
_AF = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}
_BITS = {"ipv4": 32, "ipv6": 128}
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+\Z")
# Header options ipset prints that are the kernel's business (it grows the hash itself).
_HEADER_IGNORED = ("hashsize", "bucketsize", "initval")
_HEADER_VALUED = ("family", "hashsize", "maxelem", "timeout", "bucketsize", "initval", "netmask", "markmask", "size")


def set_name(name, family):
    """The ipset name of one family's set: ``name`` (IPv4), ``name_v6`` (IPv6)."""
    return name if family == "ipv4" else name + V6_SUFFIX


def tmp_name(setname):
    """The temporary set a change of ``setname`` is loaded into (at most 31 characters)."""
    return TMP_PREFIX + hashlib.sha1(setname.encode("utf-8")).hexdigest()[:16]


def _pow2_at_least(n):
    p = 1
    while p < n:
        p <<= 1
    return p


def auto_maxelem(count):
    """maxelem when the task does not give one: 65536, or twice the entries rounded up to a power
    of two (room to grow without changing the set's header on every run)."""
    return max(DEFAULT_MAXELEM, _pow2_at_least(2 * count))


def auto_hashsize(count):
    """The initial hash size: the entries over 2, rounded up to a power of two, at least 1024
    (the kernel grows it by itself; sizing it up front saves the resizes while loading)."""
    return max(MIN_HASHSIZE, _pow2_at_least(max(1, count // 2)))


# --- entries, as ipset prints them -----------------------------------------------------------

def _address(text, family_hint=None):
    """(family, canonical text) of one address (inet_ntop: what ipset prints), or None."""
    fams = (family_hint,) if family_hint else (("ipv6",) if ":" in text else ("ipv4",))
    for family in fams:
        try:
            packed = socket.inet_pton(_AF[family], text)
        except (OSError, ValueError):
            return None
        return family, packed
    return None


def _ntop(family, packed):
    return socket.inet_ntop(_AF[family], packed)


def _masked(family, packed, prefix):
    bits = _BITS[family]
    value = int.from_bytes(packed, "big")
    mask = ((1 << bits) - 1) ^ ((1 << (bits - prefix)) - 1)
    return (value & mask).to_bytes(bits // 8, "big")


def _parse_net(text, option, allow_prefix):
    """(family, canonical) of an address or network; host bits masked, a full prefix printed bare."""
    addr, slash, prefix = text.partition("/")
    got = _address(addr)
    if got is None:
        raise SpecError(option, "%r is not an IPv4 or IPv6 address%s" % (text, " or network" if allow_prefix else ""))
    family, packed = got
    bits = _BITS[family]
    if not slash:
        return family, _ntop(family, packed)
    if not prefix.isdigit() or not prefix.isascii() or not 0 <= int(prefix) <= bits:
        raise SpecError(option, "%r: the prefix length must be 1-%d" % (text, bits))
    n = int(prefix)
    if n == bits:
        return family, _ntop(family, packed)
    if not allow_prefix:
        raise SpecError(option, "%r is a network, and a hash:ip set holds single addresses (ipset would add every "
                                "address of it); use type hash:net for networks" % text)
    if n == 0:
        raise SpecError(option, "%r: ipset cannot store a /0 network; use two halves (/1) if you mean everything" % text)
    return family, "%s/%d" % (_ntop(family, _masked(family, packed, n)), n)


def _parse_port(text, option, whole):
    """'tcp:80' (or '80': tcp) -> 'tcp:80'."""
    proto, colon, port = text.rpartition(":") if ":" in text else ("tcp", ":", text)
    proto = proto.lower()
    if proto not in PORT_PROTOCOLS:
        raise SpecError(option, "%r: the protocol before the port must be one of %s" % (whole, ", ".join(PORT_PROTOCOLS)))
    if not port.isdigit() or not port.isascii() or not 0 <= int(port) <= 65535:
        raise SpecError(option, "%r: the port must be one number 0-65535 (ranges and service names are not "
                                "accepted: ipset would store one entry per port)" % whole)
    return "%s:%d" % (proto, int(port))


# What is stripped around an entry: ASCII blanks only (a CRLF file, tabs). Anything else - a
# no-break space, a Unicode line separator - stays and makes the entry fail naming it.
_SPACE = " \t\r\x0b\x0c"
_PTON = socket.inet_pton
_NTOP = socket.inet_ntop
_V4 = socket.AF_INET


def _fast_v4(text, allow_prefix):
    """The canonical form of an IPv4 host (or, for hash:net, a host or network) in C calls only, or
    None when the full parser must decide (and name the error)."""
    addr, slash, prefix = text.partition("/")
    try:
        packed = _PTON(_V4, addr)
    except (OSError, ValueError):
        return None
    if not slash or prefix == "32":
        return _NTOP(_V4, packed)
    if not allow_prefix or not prefix.isdigit() or not 0 < int(prefix) < 32 or not prefix.isascii():
        return None
    n = int(prefix)
    value = int.from_bytes(packed, "big") & (0xFFFFFFFF ^ ((1 << (32 - n)) - 1))
    return "%s/%d" % (_NTOP(_V4, value.to_bytes(4, "big")), n)


def parse_entry(value, settype, option="entries"):
    """(family, canonical entry) of one entry of a set of ``settype``, as ``ipset save`` prints it."""
    if isinstance(value, str) and ":" not in value and "," not in value and not settype.endswith(",port"):
        fast = _fast_v4(value.strip(_SPACE), settype == "hash:net")
        if fast is not None:
            return "ipv4", fast
    if not isinstance(value, str):
        raise SpecError(option, "%r is not a string" % (value,))
    text = value.strip(_SPACE)
    if not text:
        raise SpecError(option, "an entry is empty")
    allow_prefix = settype.startswith("hash:net")
    if settype.endswith(",port"):
        addr, comma, port = text.rpartition(",")
        if not comma:
            raise SpecError(option, "%r: a %s entry is ADDRESS,PORT or ADDRESS,PROTOCOL:PORT, e.g. "
                                    "198.51.100.7,tcp:443" % (text, settype))
        family, canonical = _parse_net(addr.strip(_SPACE), option, allow_prefix)
        return family, "%s,%s" % (canonical, _parse_port(port.strip(_SPACE), option, text))
    if "," in text:
        raise SpecError(option, "%r has a port, and a %s set holds addresses only; use type %s,port" % (
            text, settype, settype))
    return _parse_net(text, option, allow_prefix)


def entry_family(entry):
    return "ipv6" if ":" in entry.split(",")[0] else "ipv4"


# --- validation -------------------------------------------------------------------------------

@dataclass(frozen=True)
class WantedSet:
    """One family's set as the task wants it."""

    name: str          # the ipset name
    family: str        # ipv4 / ipv6
    type: str
    entries: tuple     # canonical, in the task's order, no duplicates
    maxelem: int
    hashsize: int
    hashsize_given: bool = False
    timeout: int = None
    maxelem_given: bool = False
    # True when ``entries`` are valid but not yet canonical (networks given with host bits or as
    # /32); resolved() canonicalizes them against what ipset printed.
    pending: bool = False

    def resolved(self, known):
        """This set with canonical entries: an entry ``ipset save`` printed (in ``known``) is canonical
        already; only the others are parsed. A no-change rerun of a large list parses nothing."""
        if not self.pending:
            return self
        entries = self.entries
        unknown = () if known.issuperset(entries) else set(entries).difference(known)
        if unknown:
            canonical = dict((e, parse_entry(e, self.type)[1]) for e in unknown)
            entries = tuple(dict.fromkeys(canonical.get(e, e) for e in entries))
        count = len(entries)
        return replace(self, entries=entries, pending=False,
                       maxelem=self.maxelem if self.maxelem_given else auto_maxelem(count),
                       hashsize=self.hashsize if self.hashsize_given else auto_hashsize(count))

    def header(self):
        """(type, family, maxelem, timeout): what must match for the set to be as wanted."""
        return (self.type, INET[self.family], self.maxelem, self.timeout)

    def create_line(self, name=None):
        line = "create %s %s family %s hashsize %d maxelem %d" % (
            name or self.name, self.type, INET[self.family], self.hashsize, self.maxelem)
        if self.timeout is not None:
            line += " timeout %d" % self.timeout
        return line


@dataclass(frozen=True)
class IpsetSpec:
    """One validated task: ``sets`` the families it manages (WantedSet each), ``empty`` the families
    whose set is emptied if it exists (ip_version auto), ``absent`` the set names to destroy."""

    name: str
    state: str = "present"
    type: str = DEFAULT_TYPE
    sets: tuple = ()
    empty: tuple = ()
    absent: tuple = ()
    option: str = ""


def entry_items(entries, option="entries"):
    """(label, text) of each entry of ``entries``: a list (labels ``entries[i]``), or one text with an
    entry per line (labels ``entries line N``), where blank lines and what follows a ``#`` are
    ignored - a blocklist file as it is usually published, read with ``lookup('file', ...)``. Text
    keeps a large list one string on its way through Ansible, which templates, checks and copies a
    list item by item."""
    if entries is None:
        return []
    if isinstance(entries, str):
        out = []
        for n, line in enumerate(entries.split("\n"), 1):
            if "#" in line:
                line = line.partition("#")[0]
            line = line.strip(_SPACE)
            if line:
                out.append(("%s line %d" % (option, n), line))
        return out
    if not isinstance(entries, (list, tuple)):
        raise SpecError(option, "must be a list of entries or a text with one entry per line, got %r" % (entries,))
    return [("%s[%d]" % (option, i), value) for i, value in enumerate(entries)]


_IPV4_NET_PREFIXES = frozenset("/%d" % n for n in range(1, 32))
_PREFIX_RE = re.compile(r"/[^\n]*")
_BLANKS = "#" + _SPACE


def _fast_ipv4(entries, settype):
    """(unique entries, pending) when ``entries`` (a list, or a text with an entry per line and nothing
    to strip) are all IPv4 entries valid for ``settype`` (hash:ip or hash:net), checked in C calls
    only: inet_pton accepts exactly the dotted quads inet_ntop prints, and the prefixes are checked
    once per distinct prefix. A /32 is dropped here (ipset prints a
    host bare); ``pending`` when a network remains (its host bits are masked later, see
    WantedSet.resolved). None when anything else must be decided by parse_entry, which names the
    entry."""
    if settype not in ("hash:ip", "hash:net"):
        return None
    if isinstance(entries, str):
        text = entries[:-1] if entries.endswith("\n") else entries
        if not text or "\n\n" in text or text.startswith("\n") or any(c in text for c in _BLANKS):
            return None   # blank lines, comments or spaces: entry_items strips them line by line
        values = None
    elif isinstance(entries, (list, tuple)):
        values = entries
        if not values:
            return (), False
        if not set(map(type, values)) <= {str}:
            return None
        text = "\n".join(values)
        if text.count("\n") != len(values) - 1:
            return None   # an entry holds a line break: parse_entry names it
    else:
        return None
    prefixes = ()
    addresses = values
    if "/" in text:
        text = (text + "\n").replace("/32\n", "\n")[:-1]
        values = text.split("\n")
        prefixes = set(_PREFIX_RE.findall(text))
        if not prefixes <= (_IPV4_NET_PREFIXES if settype == "hash:net" else frozenset()):
            return None
        addresses = _PREFIX_RE.sub("", text).split("\n") if prefixes else values
    elif values is None:
        values = addresses = text.split("\n")
    try:
        deque(map(_PTON, repeat(_V4), addresses), maxlen=0)
    except (OSError, ValueError):
        return None
    return tuple(dict.fromkeys(values)), bool(prefixes)


def check_set_name(name, option="name"):
    if not isinstance(name, str) or not name:
        raise SpecError(option, "give the set's name, e.g. blocklist")
    if len(name) > NAME_MAX:
        raise SpecError(option, "%r is %d characters; at most %d, because the IPv6 set is named %r and ipset names "
                                "are at most 31 characters" % (name, len(name), NAME_MAX, name + V6_SUFFIX))
    if not _NAME_RE.match(name) or not name.isascii():
        raise SpecError(option, "%r: use only A-Z a-z 0-9 _ . -" % name)
    if name == REGISTRY or name.startswith(TMP_PREFIX) or name + V6_SUFFIX == REGISTRY:
        raise SpecError(option, "%r is reserved: %s is the collection's registry of its sets and %s* its temporary "
                                "sets" % (name, REGISTRY, TMP_PREFIX))
    return name


def _int_option(params, key, low, high):
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SpecError(key, "must be a whole number %d-%d, got %r" % (low, high, value))
    return value


def validate(params):
    """The module's params -> IpsetSpec; SpecError names the offending option. Nothing runs."""
    get = params.get
    name = check_set_name(get("name"))
    state = get("state") or "present"
    if state not in STATES:
        raise SpecError("state", "must be present or absent, got %r" % (state,))
    ip_version = get("ip_version") or "auto"
    if ip_version not in IP_VERSIONS:
        raise SpecError("ip_version", "must be one of %s, got %r" % (", ".join(IP_VERSIONS), ip_version))
    if state == "absent":
        fams = FAMILIES if ip_version in ("auto", "both") else (ip_version,)
        return IpsetSpec(name=name, state=state, absent=tuple(set_name(name, f) for f in fams))
    settype = get("type") or DEFAULT_TYPE
    if settype not in TYPES:
        raise SpecError("type", "must be one of %s, got %r" % (", ".join(TYPES), settype))
    timeout = _int_option(params, "timeout", 0, MAX_TIMEOUT)
    maxelem = _int_option(params, "maxelem", 1, 2 ** 32 - 1)
    hashsize = _int_option(params, "hashsize", 64, 2 ** 31)
    allowed = FAMILIES if ip_version in ("auto", "both") else (ip_version,)
    split = dict((f, []) for f in FAMILIES)
    fast = _fast_ipv4(get("entries"), settype) if "ipv4" in allowed else None
    if fast is not None and (maxelem is None or maxelem >= len(fast[0])):
        split["ipv4"], pending = fast
    else:
        pending = False
        seen = set()
        for label, value in entry_items(get("entries")):
            family, canonical = parse_entry(value, settype, label)
            if family not in allowed:
                raise SpecError(label, "%r is an %s entry, and ip_version is %s; remove it or set ip_version "
                                       "to auto or both" % (value, family.replace("ip", "IP"), ip_version))
            if canonical not in seen:
                seen.add(canonical)
                split[family].append(canonical)
    if ip_version == "both":
        managed = FAMILIES
    elif ip_version == "auto":
        managed = tuple(f for f in FAMILIES if split[f]) or ("ipv4",)
    else:
        managed = (ip_version,)
    sets = []
    for family in managed:
        count = len(split[family])
        if maxelem is not None and maxelem < count:
            raise SpecError("maxelem", "%d is smaller than the %d %s entries; raise it or leave it out (it is then "
                                       "sized from the entries)" % (maxelem, count, family.replace("ip", "IP")))
        sets.append(WantedSet(
            name=set_name(name, family), family=family, type=settype, entries=tuple(split[family]),
            maxelem=maxelem if maxelem is not None else auto_maxelem(count),
            hashsize=_pow2_at_least(hashsize) if hashsize is not None else auto_hashsize(count),
            hashsize_given=hashsize is not None, timeout=timeout, maxelem_given=maxelem is not None,
            pending=pending and family == "ipv4"))
    empty = tuple(f for f in FAMILIES if ip_version == "auto" and f not in managed)
    return IpsetSpec(name=name, state=state, type=settype, sets=tuple(sets), empty=empty)


# --- what is there: ipset save ----------------------------------------------------------------

@dataclass
class Live:
    """One set as ``ipset save`` prints it; ``entries`` only for the sets asked for."""

    name: str
    type: str
    options: dict
    flags: tuple
    entries: set = None
    annotated: bool = False   # an entry had words after it (timeout, nomatch, counters, comment)

    @property
    def family(self):
        return FAMILY_OF_INET.get(self.options.get("family"))

    def header(self):
        timeout = self.options.get("timeout")
        return (self.type, self.options.get("family"), int(self.options.get("maxelem", DEFAULT_MAXELEM)),
                None if timeout is None else int(timeout))


class ParseError(ValueError):
    pass


def _header(words):
    options = {}
    flags = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in _HEADER_VALUED and i + 1 < len(words):
            options[word] = words[i + 1]
            i += 2
        else:
            flags.append(word)
            i += 1
    return options, tuple(flags)


def parse_save(text, wanted=None):
    """{name: Live} of ``ipset save`` output. Entries are collected for the names in ``wanted``
    (all when None), each entry as its first word (the element; timeouts, counters and comments
    after it are the kernel's). The registry's members are entries of REGISTRY. ipset prints each
    set's entries right after its create line. A set's entries are cut out of the text with string
    operations, not line by line: a set of 100,000 entries is read in milliseconds."""
    sets = {}
    keep = None if wanted is None else set(wanted) | {REGISTRY}
    blocks = ("\n" + text).split("\ncreate ")
    _check_lines(blocks[0], "add ", 0)
    for block in blocks[1:]:
        header, _nl, body = block.partition("\n")
        words = header.split()
        if len(words) < 2:
            raise ParseError("%r is not an ipset create line" % ("create " + header))
        options, flags = _header(words[2:])
        live = Live(words[0], words[1], options, flags, set())
        sets[live.name] = live
        prefix = "add %s " % live.name
        _check_lines(body, prefix, live.name)
        if keep is not None and live.name not in keep:
            continue
        entries = ("\n" + body).replace("\n" + prefix, "\n")
        if " " in entries:
            live.annotated = True
            live.entries = set(line.split(" ", 1)[0] for line in entries.split("\n") if line)
        else:
            live.entries = set(entries.split("\n"))
            live.entries.discard("")
    return sets


def _check_lines(body, prefix, name):
    """Every line of ``body`` (the lines after a create line) must start with ``prefix`` (``add NAME ``);
    counted in C, the lines that do against the lines, and only a mismatch is read line by line
    (blank lines are allowed)."""
    lines = body.count("\n") + (not body.endswith("\n"))
    if ("\n" + body).count("\n" + prefix) == lines:
        return
    for line in body.split("\n"):
        if line and not line.startswith(prefix):
            raise ParseError("%r is not %s" % (line, "an entry of set %s, whose entries it follows" % name if name
                                               else "ipset save format"))


def guard_contents(sets):
    """{name: (type, entries)} of the owned sets whose entries say exactly what matches: the lockout
    guard looks addresses up in them. A set with a timeout or annotated entries (``nomatch``, an
    entry that may expire) is left out, so the guard treats a match on it as unknown."""
    owned = owned_names(sets)
    return dict((name, (live.type, frozenset(live.entries))) for name, live in sets.items()
                if name in owned and live.entries is not None and not live.annotated
                and "timeout" not in live.options)


def owned_names(sets):
    """The names the registry lists (empty when there is no registry)."""
    reg = sets.get(REGISTRY)
    if reg is None or reg.type != "list:set":
        return frozenset()
    return frozenset(reg.entries)


def parse_terse(text):
    """{name: {type, family, entries, references}} of ``ipset list -t`` output."""
    out = {}
    current = None
    for line in text.split("\n"):
        key, _sep, value = line.partition(": ")
        if key == "Name":
            current = out.setdefault(value.strip(), {})
        elif current is None:
            continue
        elif key == "Type":
            current["type"] = value.strip()
        elif key == "Header":
            options, _flags = _header(value.split())
            current["family"] = FAMILY_OF_INET.get(options.get("family"))
            current["maxelem"] = int(options["maxelem"]) if "maxelem" in options else None
            if "timeout" in options:
                current["timeout"] = int(options["timeout"])
        elif key == "References":
            current["references"] = int(value)
        elif key == "Number of entries":
            current["entries"] = int(value)
    return out


# --- the plan ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SetChange:
    """What happens to one family's set: ``action`` none, create, swap, recreate (type or family
    changed: destroyed and created, only when no rule uses it), destroy."""

    family: str
    name: str
    action: str
    added: tuple = ()
    removed: tuple = ()
    count: int = 0

    @property
    def changed(self):
        return self.action != "none"


@dataclass(frozen=True)
class SetPlan:
    changes: tuple = ()
    script: str = ""
    need_unreferenced: tuple = ()   # set names that must not be used by any rule for the plan to run

    @property
    def changed(self):
        return any(c.changed for c in self.changes)

    def change_of(self, family):
        for c in self.changes:
            if c.family == family:
                return c
        return None


def _foreign(name, option):
    return SpecError(option, "a set named %s exists and the collection does not own it (it is not listed in the "
                             "registry set %s): it is left alone. Choose another name." % (name, REGISTRY))


def plan(spec, sets):
    """IpsetSpec + parse_save result -> SetPlan (one ``ipset restore`` script for every family)."""
    owned = owned_names(sets)
    reg = sets.get(REGISTRY)
    if reg is not None and reg.type != "list:set":
        raise SpecError("name", "a set named %s exists and is not the collection's registry (type %s, not list:set); "
                                "nothing can be owned while it is there" % (REGISTRY, reg.type))
    option = spec.option + "name"
    lines = []
    changes = []
    unreferenced = []
    registry_needed = False
    if spec.state == "absent":
        for setname in spec.absent:
            live = sets.get(setname)
            family = "ipv6" if setname.endswith(V6_SUFFIX) and setname != spec.name else "ipv4"
            if live is None:
                changes.append(SetChange(family, setname, "none"))
                continue
            if setname not in owned:
                raise _foreign(setname, option)
            lines += ["del %s %s" % (REGISTRY, setname), "destroy %s" % setname]
            unreferenced.append(setname)
            changes.append(SetChange(family, setname, "destroy", removed=tuple(sorted(live.entries)),
                                     count=0))
        return SetPlan(tuple(changes), _script(lines), tuple(unreferenced))
    wanted = list(spec.sets)
    for family in spec.empty:
        live = sets.get(set_name(spec.name, family))
        if live is not None:
            if live.name not in owned:
                raise _foreign(live.name, option)
            first = spec.sets[0]
            wanted.append(WantedSet(live.name, family, live.type if live.type in TYPES else first.type, (),
                                    int(live.options.get("maxelem", DEFAULT_MAXELEM)), MIN_HASHSIZE,
                                    timeout=first.timeout))
    for want in wanted:
        live = sets.get(want.name)
        want = want.resolved(live.entries if live is not None else frozenset())
        tmp = tmp_name(want.name)
        if tmp in sets:
            lines.append("destroy %s" % tmp)  # left by a run that failed half-way
        if live is None:
            action = "create"
            added, removed = want.entries, ()
        else:
            if want.name not in owned:
                raise _foreign(want.name, option)
            current = live.entries
            added = () if current.issuperset(want.entries) else tuple(e for e in want.entries if e not in current)
            same = not added and len(current) == len(want.entries)  # the entries are unique
            removed = () if same else tuple(sorted(current.difference(want.entries)))
            if live.type != want.type or live.family != want.family:
                action = "recreate"
            elif (added or removed or live.header() != want.header() or live.flags
                  or (want.hashsize_given and int(live.options.get("hashsize", 0)) < want.hashsize)):
                action = "swap"
            else:
                action = "none"
        changes.append(SetChange(want.family, want.name, action, added, removed, len(want.entries)))
        if action == "none":
            continue
        lines.append(want.create_line(tmp))
        lines.extend("add %s %s" % (tmp, e) for e in want.entries)
        if action == "recreate":
            unreferenced.append(want.name)
            lines += ["del %s %s" % (REGISTRY, want.name), "destroy %s" % want.name]
        if action in ("create", "recreate"):
            registry_needed = True
            lines += [want.create_line(), "add %s %s" % (REGISTRY, want.name)]
        lines += ["swap %s %s" % (tmp, want.name), "destroy %s" % tmp]
    if registry_needed and reg is None:
        lines.insert(0, "create %s list:set size %d" % (REGISTRY, REGISTRY_SIZE))
    return SetPlan(tuple(changes), _script(lines), tuple(unreferenced))


def _script(lines):
    return "\n".join(lines) + "\n" if lines else ""


def join_scripts(scripts):
    """Several plans' scripts as one ``ipset restore``: the registry created at most once, first."""
    registry = "create %s list:set size %d\n" % (REGISTRY, REGISTRY_SIZE)
    texts = list(scripts)
    body = "".join(t[len(registry):] if t.startswith(registry) else t for t in texts)
    return (registry if any(t.startswith(registry) for t in texts) else "") + body


def tmp_names(script):
    """The temporary sets a script creates (the runner destroys them when the restore fails)."""
    return [line.split()[1] for line in script.split("\n") if line.startswith("create " + TMP_PREFIX)]


def rules_using(save_text, setname):
    """The rule lines of an ``iptables-save`` text that match or change ``setname``."""
    pattern = re.compile(r"(--match-set|--add-set|--del-set|--map-set) %s( |$)" % re.escape(setname))
    return [line for line in save_text.split("\n") if line.startswith("-A ") and pattern.search(line)]


# --- what the collection owns, for persistence and iptables_info -------------------------------

def owned_save(sets, text_order=None):
    """An ``ipset restore`` file of the owned sets (from parse_save with every entry): each set's
    create line and entries, sorted, then the registry with its members, so loading it into a
    fresh boot (``ipset restore -exist``) creates the members before the list that holds them."""
    owned = sorted(owned_names(sets))
    lines = []
    for name in owned:
        live = sets.get(name)
        if live is None:
            continue
        words = ["create", name, live.type]
        for key in ("family", "hashsize", "maxelem", "timeout", "netmask"):
            if key in live.options:
                words += [key, live.options[key]]
        lines.append(" ".join(words + list(live.flags)))
        lines.extend("add %s %s" % (name, e) for e in sorted(live.entries, key=_entry_key))
    if owned:
        lines.append("create %s list:set size %d" % (REGISTRY, REGISTRY_SIZE))
        lines.extend("add %s %s" % (REGISTRY, name) for name in owned if name in sets)
    return _script(lines)


def _entry_key(entry):
    return (":" in entry.split(",")[0], entry)


def parse_members(text):
    """The members of a list:set as ``ipset list NAME`` prints them (the lines after ``Members:``)."""
    head, sep, body = text.partition("Members:\n")
    return frozenset(line.strip() for line in body.split("\n") if line.strip()) if sep else frozenset()


def owned_info(terse, members):
    """[{name, type, family, entries, references}] of the owned sets (``ipset list -t`` parsed);
    ``references`` counts rules and other users, not the registry."""
    out = []
    for name in sorted(members):
        info = terse.get(name)
        if info is None:
            continue
        out.append(dict(name=name, type=info.get("type"), family=info.get("family"),
                        entries=info.get("entries", 0), maxelem=info.get("maxelem"),
                        references=max(0, info.get("references", 1) - 1)))
    return out
