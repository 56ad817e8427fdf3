"""Tests for accord.mllp.admission: the allow-list, the shedding order, the peer table."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from accord.mllp.admission import (
    AllowList,
    OncePerInterval,
    PeerTable,
    choose_victim,
    parse_networks,
)


def test_allow_list_matches_networks_and_mapped_ipv4() -> None:
    allow = AllowList(parse_networks(["10.0.0.0/8", "192.168.1.20", "fd00::/8"]))
    assert allow.allows("10.20.30.40") and allow.allows("192.168.1.20")
    assert allow.allows("::ffff:10.1.2.3")  # IPv4 on a dual-stack listener
    assert allow.allows("fd12::1")
    assert not allow.allows("192.168.1.21") and not allow.allows("11.0.0.1")
    assert not allow.allows("") and not allow.allows("not-an-address")


def test_empty_allow_list_allows_everyone() -> None:
    assert not AllowList() and AllowList().allows("203.0.113.9")


def test_parse_networks_names_the_bad_entry() -> None:
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/33'")):
        parse_networks(["10.0.0.0/8", "10.0.0.0/33"])


@dataclass
class Conn:
    name: str
    host: str
    spoke: bool
    idle_since: float
    sheddable: bool = True


def test_never_spoke_goes_first_idle_longest() -> None:
    conns = [Conn("old-established", "a", True, 1.0), Conn("silent-new", "b", False, 9.0),
             Conn("silent-old", "c", False, 5.0)]
    victim = choose_victim(conns, {"a": 1, "b": 1, "c": 1})
    assert victim is not None and victim.name == "silent-old"


def test_then_the_most_over_represented_address_idle_longest() -> None:
    conns = [Conn("a-oldest", "a", True, 1.0), Conn("b-1", "b", True, 3.0),
             Conn("b-2", "b", True, 2.0), Conn("b-busy", "b", True, 0.5, sheddable=False)]
    victim = choose_victim(conns, {"a": 1, "b": 3})
    assert victim is not None and victim.name == "b-2"


def test_no_victim_when_all_are_busy() -> None:
    assert choose_victim([Conn("x", "a", False, 0.0, sheddable=False)], {"a": 1}) is None
    assert choose_victim([], {}) is None


def test_peer_table_forgets_idle_addresses_beyond_capacity() -> None:
    table = PeerTable(capacity=3)
    table.seen("busy", 0.0).open = 1
    for n in range(10):
        table.seen(f"scan-{n}", float(n)).denied += 1
    addresses = [c.address for c in table.snapshot()]
    assert len(addresses) == 3 and "busy" in addresses and "scan-9" in addresses
    snap = table.snapshot()[0]
    snap.denied += 100  # a copy: the table is not changed through it
    assert table[snap.address].denied != snap.denied


def test_once_per_interval() -> None:
    once = OncePerInterval(interval=60.0)
    assert once("denied", "a", 0.0)
    assert not once("denied", "a", 59.0)
    assert once("junk", "a", 59.0) and once("denied", "b", 59.0)
    assert once("denied", "a", 60.0)
