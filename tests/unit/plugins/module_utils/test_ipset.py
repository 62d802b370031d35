# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_ipset: entries normalized as ipset prints them, validation naming the option, ownership, the plan."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.ironwall.iptables.plugins.module_utils import _ipset as i
from ansible_collections.ironwall.iptables.plugins.module_utils._ipset_apply import report
from ansible_collections.ironwall.iptables.plugins.module_utils._errors import SpecError

# What `ipset save` printed on ipset 7.17 for sets like ours (tests/integration checks the real tool).
SAVED = """create bl hash:net family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x539a9ec0
add bl 198.51.100.7
add bl 203.0.113.0/24
create bl_v6 hash:net family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval 0x479aaddf
add bl_v6 2001:db8::/64
create f2b hash:ip family inet hashsize 1024 maxelem 65536 timeout 600 bucketsize 12 initval 0x1
add f2b 203.0.113.200 timeout 512
create ironwall-sets list:set size 65536
add ironwall-sets bl
add ironwall-sets bl_v6
"""


def spec(**kw):
    base = dict(name="bl", entries=[], type="hash:net", ip_version="auto", state="present")
    base.update(kw)
    return i.validate(base)


@pytest.mark.parametrize("settype,value,family,canonical", [
    ("hash:net", "198.51.100.7", "ipv4", "198.51.100.7"),
    ("hash:net", "198.51.100.7/32", "ipv4", "198.51.100.7"),
    ("hash:net", "198.51.100.7/24", "ipv4", "198.51.100.0/24"),
    ("hash:net", " 2001:DB8:0:0::1/64 ", "ipv6", "2001:db8::/64"),
    ("hash:net", "2001:db8::1/128", "ipv6", "2001:db8::1"),
    ("hash:ip", "2001:0db8::0001", "ipv6", "2001:db8::1"),
    ("hash:ip", "198.51.100.9/32", "ipv4", "198.51.100.9"),
    ("hash:ip,port", "198.51.100.9,443", "ipv4", "198.51.100.9,tcp:443"),
    ("hash:ip,port", "2001:db8::9,UDP:53", "ipv6", "2001:db8::9,udp:53"),
    ("hash:net,port", "203.0.113.7/25,sctp:9", "ipv4", "203.0.113.0/25,sctp:9"),
])
def test_entries_are_written_as_ipset_prints_them(settype, value, family, canonical):
    assert i.parse_entry(value, settype) == (family, canonical)


@pytest.mark.parametrize("settype,value,words", [
    ("hash:ip", "198.51.100.0/24", "hash:ip set holds single addresses"),
    ("hash:net", "198.51.100.0/0", "/0"),
    ("hash:net", "198.51.100.0/33", "prefix length"),
    ("hash:net", "example.org", "not an IPv4 or IPv6 address"),
    ("hash:net", "198.51.100.1,80", "use type hash:net,port"),
    ("hash:ip,port", "198.51.100.1", "ADDRESS,PORT"),
    ("hash:ip,port", "198.51.100.1,tcp:1-3", "one number"),
    ("hash:ip,port", "198.51.100.1,icmp:8", "protocol"),
])
def test_bad_entries_name_the_option(settype, value, words):
    with pytest.raises(SpecError) as err:
        spec(type=settype, entries=["198.51.100.250" if settype == "hash:ip" else "198.51.100.250"
                                    + (",80" if settype.endswith("port") else ""), value])
    assert err.value.option == "entries[1]" and words in err.value.message


def test_bad_options_name_the_option():
    cases = [
        (dict(name="x" * 29), "name", "at most 28"),
        (dict(name="bad name"), "name", "A-Z"),
        (dict(name="ironwall-sets"), "name", "reserved"),
        (dict(name="iwtmp-x"), "name", "reserved"),
        (dict(ip_version="ipv4", entries=["2001:db8::1"]), "entries[0]", "IPv6 entry"),
        (dict(ip_version="ipv6", entries=["198.51.100.1"]), "entries[0]", "IPv4 entry"),
        (dict(maxelem=2, entries=["198.51.100.1", "198.51.100.2", "198.51.100.3"]), "maxelem", "smaller"),
        (dict(timeout=-1), "timeout", "whole number"),
        (dict(type="list:set"), "type", "must be one of"),
    ]
    for kw, option, words in cases:
        with pytest.raises(SpecError) as err:
            spec(**kw)
        assert err.value.option == option and words in err.value.message, (kw, err.value)


def test_names_per_family_and_sizes():
    s = spec(entries=["198.51.100.1", "2001:db8::1", "198.51.100.1/32"])
    assert [(w.name, w.family, w.entries) for w in s.sets] == [
        ("bl", "ipv4", ("198.51.100.1",)), ("bl_v6", "ipv6", ("2001:db8::1",))]
    assert s.sets[0].maxelem == 65536 and s.sets[0].hashsize == 1024
    big = spec(entries=["198.18.%d.%d" % (n // 256, n % 256) for n in range(40000)])
    assert big.sets[0].maxelem == 131072 and big.sets[0].hashsize == 32768
    assert len(i.tmp_name("x" * 31)) <= 31
    # auto: only the families with entries; the other one is emptied if it exists
    assert [w.family for w in spec(entries=["198.51.100.1"]).sets] == ["ipv4"]
    assert spec(entries=["198.51.100.1"]).empty == ("ipv6",)
    assert [w.family for w in spec(entries=[]).sets] == ["ipv4"]
    assert [w.family for w in spec(ip_version="both").sets] == ["ipv4", "ipv6"]
    assert spec(state="absent").absent == ("bl", "bl_v6")
    assert spec(state="absent", ip_version="ipv6").absent == ("bl_v6",)


def test_parse_save_and_ownership():
    sets = i.parse_save(SAVED)
    assert i.owned_names(sets) == {"bl", "bl_v6"}
    assert sets["bl"].entries == {"198.51.100.7", "203.0.113.0/24"}
    assert sets["f2b"].entries == {"203.0.113.200"} and sets["f2b"].header()[3] == 600
    assert sets["bl"].family == "ipv4" and sets["bl_v6"].family == "ipv6"
    only = i.parse_save(SAVED, ["bl"])
    assert only["f2b"].entries == set() and only["bl"].entries


def test_no_change_plans_nothing():
    p = i.plan(spec(entries=["203.0.113.9/24", "198.51.100.7", "2001:db8::5/64"]), i.parse_save(SAVED))
    assert not p.changed and p.script == ""
    assert [c.action for c in p.changes] == ["none", "none"]


def test_change_loads_a_temporary_set_and_swaps_it_in():
    p = i.plan(spec(entries=["198.51.100.7", "198.51.100.8", "2001:db8::5/64"]), i.parse_save(SAVED))
    tmp = i.tmp_name("bl")
    assert p.script.split("\n")[:-1] == [
        "create %s hash:net family inet hashsize 1024 maxelem 65536" % tmp,
        "add %s 198.51.100.7" % tmp,
        "add %s 198.51.100.8" % tmp,
        "swap %s bl" % tmp,
        "destroy %s" % tmp,
    ]
    c = p.change_of("ipv4")
    assert (c.action, c.added, c.removed, c.count) == ("swap", ("198.51.100.8",), ("203.0.113.0/24",), 2)
    assert p.change_of("ipv6").action == "none"
    assert i.tmp_names(p.script) == [tmp]


def test_new_set_is_registered_before_it_is_filled_by_swap():
    p = i.plan(spec(name="new", entries=["198.51.100.7"]), i.parse_save(""))
    tmp = i.tmp_name("new")
    assert p.script.split("\n")[:-1] == [
        "create ironwall-sets list:set size 65536",
        "create %s hash:net family inet hashsize 1024 maxelem 65536" % tmp,
        "add %s 198.51.100.7" % tmp,
        "create new hash:net family inet hashsize 1024 maxelem 65536",
        "add ironwall-sets new",
        "swap %s new" % tmp,
        "destroy %s" % tmp,
    ]
    assert i.plan(spec(name="new2", entries=["198.51.100.7"]), i.parse_save(SAVED)).script.count("ironwall-sets") == 1


def test_a_foreign_set_is_refused_and_never_touched():
    with pytest.raises(SpecError) as err:
        i.plan(spec(name="f2b", entries=["198.51.100.7"]), i.parse_save(SAVED))
    assert err.value.option == "name" and "does not own" in err.value.message
    with pytest.raises(SpecError):
        i.plan(spec(name="f2b", state="absent"), i.parse_save(SAVED))
    fake_registry = "create ironwall-sets hash:ip family inet\n"
    with pytest.raises(SpecError) as err:
        i.plan(spec(name="x", entries=["198.51.100.7"]), i.parse_save(fake_registry))
    assert "not the collection's registry" in err.value.message


def test_type_change_recreates_and_needs_the_set_unused():
    p = i.plan(spec(type="hash:ip", entries=["198.51.100.7"]), i.parse_save(SAVED))
    assert p.change_of("ipv4").action == "recreate" and p.need_unreferenced == ("bl",)
    assert "del ironwall-sets bl\ndestroy bl\n" in p.script


def test_header_change_swaps_and_stale_temporary_set_is_destroyed():
    saved = SAVED + "create %s hash:net family inet hashsize 1024 maxelem 65536\n" % i.tmp_name("bl")
    p = i.plan(spec(entries=["198.51.100.7", "203.0.113.0/24"], timeout=60, ip_version="ipv4"), i.parse_save(saved))
    assert p.change_of("ipv4").action == "swap"
    assert p.script.startswith("destroy %s\ncreate %s hash:net family inet hashsize 1024 maxelem 65536 timeout 60\n"
                               % (i.tmp_name("bl"), i.tmp_name("bl")))


def test_auto_empties_the_family_the_list_no_longer_has():
    p = i.plan(spec(entries=["198.51.100.7", "203.0.113.0/24"]), i.parse_save(SAVED))
    c = p.change_of("ipv6")
    assert (c.action, c.removed, c.count) == ("swap", ("2001:db8::/64",), 0)
    assert p.change_of("ipv4").action == "none"


def test_absent_destroys_owned_sets_only_after_proving_them_unused():
    p = i.plan(spec(state="absent"), i.parse_save(SAVED))
    assert p.script == "del ironwall-sets bl\ndestroy bl\ndel ironwall-sets bl_v6\ndestroy bl_v6\n"
    assert p.need_unreferenced == ("bl", "bl_v6")
    assert not i.plan(spec(name="gone", state="absent"), i.parse_save(SAVED)).changed


def test_rules_using_and_terse_and_owned_save():
    text = ("*filter\n-A INPUT -m set --match-set bl src -j DROP\n-A INPUT -m set --match-set bl_v6 src -j DROP\n"
            "-A INPUT -m set --match-set bl2 src -j DROP\nCOMMIT\n")
    assert i.rules_using(text, "bl") == ["-A INPUT -m set --match-set bl src -j DROP"]
    terse = i.parse_terse("Name: bl\nType: hash:net\nRevision: 7\nHeader: family inet hashsize 1024 maxelem 65536 "
                          "bucketsize 12 initval 0x1\nSize in memory: 1\nReferences: 2\nNumber of entries: 2\n\n"
                          "Name: f2b\nType: hash:ip\nHeader: family inet\nReferences: 0\nNumber of entries: 1\n")
    assert i.owned_info(terse, {"bl", "missing"}) == [dict(name="bl", type="hash:net", family="ipv4", entries=2,
                                                           maxelem=65536, references=1)]
    saved = i.owned_save(i.parse_save(SAVED))
    assert saved == ("create bl hash:net family inet hashsize 1024 maxelem 65536\nadd bl 198.51.100.7\n"
                     "add bl 203.0.113.0/24\ncreate bl_v6 hash:net family inet6 hashsize 1024 maxelem 65536\n"
                     "add bl_v6 2001:db8::/64\ncreate ironwall-sets list:set size 65536\nadd ironwall-sets bl\n"
                     "add ironwall-sets bl_v6\n")
    assert i.owned_save(i.parse_save("")) == ""


def test_report_counts_and_diff_lists_entries():
    p = i.plan(spec(entries=["198.51.100.7", "198.51.100.8", "2001:db8::5/64"]), i.parse_save(SAVED))
    out, diffs = report(p, diff=True)
    assert out["ipv4"] == dict(name="bl", action="swap", entries=2, added=1, removed=1)
    assert diffs == [dict(before_header="ipset bl (entries removed)", before="203.0.113.0/24\n",
                          after_header="ipset bl (entries added)", after="198.51.100.8\n")]
    assert report(p)[1] == []


def test_registry_members_as_ipset_list_prints_them():
    text = ("Name: ironwall-sets\nType: list:set\nRevision: 3\nHeader: size 65536\nSize in memory: 128\n"
            "References: 0\nNumber of entries: 2\nMembers:\nbl\nbl_v6\n")
    assert i.parse_members(text) == {"bl", "bl_v6"}
    assert i.parse_members("Name: x\n") == frozenset()


# --- large lists: the text form and the C-speed path ---------------------------------------------

def slow_validate(params, monkeypatch):
    """validate() with the C-speed IPv4 path switched off: every entry through parse_entry."""
    with monkeypatch.context() as m:
        m.setattr(i, "_fast_ipv4", lambda entries, settype: None)
        return i.validate(params)


def outcome(fn):
    """What validating and planning against a known set gives: the sets (canonical entries and
    sizes) or the error (option, message)."""
    try:
        s = fn()
    except SpecError as exc:
        return ("error", exc.option, exc.message)
    return ("ok", s.empty, tuple((w.name, w.family, w.resolved(frozenset(["198.51.100.0/24"])).entries,
                                  w.resolved(frozenset()).maxelem, w.resolved(frozenset()).hashsize)
                                 for w in s.sets))


ENTRY = st.one_of(
    st.builds("{}.{}.{}.{}".format, *[st.integers(0, 255)] * 4),
    st.builds("{}.{}.{}.{}/{}".format, *[st.integers(0, 255)] * 4, st.integers(0, 33)),
    st.sampled_from(["198.51.100.7", "198.51.100.7/32", "198.51.100.7/24", "198.51.100.0/24", "01.2.3.4",
                     "1.2.3", "1.2.3.4/", "1.2.3.4/032", "1.2.3.4/24/5", " 1.2.3.4", "1.2.3.4\n5.6.7.8",
                     "2001:db8::1", "2001:db8::/32", "1.2.3.4,80", "", "#", "1.2.3.4 # x", "1.2.3.4\x00",
                     "1.2.3.4\r", "256.1.1.1", "1.2.3.4/0"]))


@settings(max_examples=400, deadline=None)
@given(entries=st.lists(ENTRY, max_size=8), as_text=st.booleans(), settype=st.sampled_from(["hash:ip", "hash:net"]),
       ip_version=st.sampled_from(["auto", "ipv4", "ipv6", "both"]), maxelem=st.sampled_from([None, 1, 3]))
def test_the_fast_path_decides_exactly_as_parse_entry(entries, as_text, settype, ip_version, maxelem):
    """Whatever the entries - valid, host bits set, /32, /0, leading zeros, spaces, line breaks,
    IPv6, garbage - validating with the C-speed path gives the same sets (after canonicalizing
    against what ipset printed) or the same error as parsing every entry."""
    params = dict(name="bl", entries="\n".join(entries) if as_text else entries, type=settype,
                  ip_version=ip_version, maxelem=maxelem, state="present")
    with pytest.MonkeyPatch.context() as mp:
        slow = outcome(lambda: slow_validate(params, mp))
    assert outcome(lambda: i.validate(params)) == slow


def test_entries_as_text_one_per_line_with_comments():
    text = "# abuse feed, 2026-11-30\r\n198.51.100.7\n\n  203.0.113.9/24   # a network\n2001:db8::1\n198.51.100.7/32\n"
    s = spec(entries=text)
    assert [(w.name, w.entries) for w in s.sets] == [("bl", ("198.51.100.7", "203.0.113.0/24")),
                                                     ("bl_v6", ("2001:db8::1",))]
    with pytest.raises(SpecError) as err:
        spec(entries="198.51.100.7\n# fine\nexample.org\n")
    assert err.value.option == "entries line 3" and "example.org" in err.value.message
    with pytest.raises(SpecError) as err:
        spec(entries=["198.51.100.7", "198.51.100.8\n198.51.100.9"])
    assert err.value.option == "entries[1]"
    with pytest.raises(SpecError) as err:
        spec(entries={"198.51.100.7": 1})
    assert err.value.option == "entries" and "one entry per line" in err.value.message


def test_a_large_text_list_is_checked_and_compared_without_parsing_each_entry():
    hosts = ["198.18.%d.%d" % (n // 256, n % 256) for n in range(20000)]
    text = "".join(h + "/32\n" for h in hosts) + "198.19.0.1/24\n"
    s = spec(entries=text)
    want = s.sets[0]
    assert want.pending and want.entries[:2] == ("198.18.0.0", "198.18.0.1")  # /32 dropped in C
    saved = "create bl hash:net family inet hashsize 16384 maxelem 65536\n" + "".join(
        "add bl %s\n" % e for e in hosts + ["198.19.0.0/24"]) + "create ironwall-sets list:set size 65536\nadd ironwall-sets bl\n"
    p = i.plan(s, i.parse_save(saved))
    assert not p.changed and p.changes[0].count == 20001
    p = i.plan(spec(entries=text.replace("198.18.0.5/32\n", "")), i.parse_save(saved))
    assert p.changes[0].action == "swap" and p.changes[0].removed == ("198.18.0.5",) and not p.changes[0].added


def test_parse_save_refuses_lines_that_are_not_the_sets_entries():
    with pytest.raises(i.ParseError):
        i.parse_save("create bl hash:net family inet\nadd bl 198.51.100.7\nadd other 198.51.100.8\n")
    with pytest.raises(i.ParseError):
        i.parse_save("junk\ncreate bl hash:net family inet\n")
    with pytest.raises(i.ParseError):
        i.parse_save("create bl hash:net family inet\nadd bl 198.51.100.7\nflush bl\n")
    sets = i.parse_save("\ncreate bl hash:net family inet\n\nadd bl 198.51.100.7\n\nadd bl 198.51.100.9 timeout 5\n")
    assert sets["bl"].entries == {"198.51.100.7", "198.51.100.9"}
    assert i.parse_save("") == {}


@pytest.mark.parametrize("value", ["198.51.100.7\u2028", "198.51.100.7\xa0", "\u3000198.51.100.7", "198.51.100.7\x00",
                                   "198.51.100.7\x1b", "１９８.51.100.7", "198.51.100.0/２４"])
def test_only_ascii_blanks_are_stripped_around_an_entry(value):
    """A CRLF file and tabs are fine; a no-break space, a Unicode line separator, a control character
    or a non-ASCII digit is not an address, in a list or in a text."""
    assert spec(entries=" 198.51.100.9\t\r\n").sets[0].entries == ("198.51.100.9",)
    for entries, option in ((["198.51.100.9", value], "entries[1]"), ("198.51.100.9\n" + value + "\n", "entries line 2")):
        with pytest.raises(SpecError) as err:
            spec(entries=entries)
        assert err.value.option == option, (value, err.value)
