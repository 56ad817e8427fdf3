"""Who may hold a connection to a listener, and who gives way when it is full.

Rules (the listener, :mod:`accord.mllp.server`, applies them; this module only decides,
so it takes the time as an argument and touches no socket):

- **Allow-list.** An optional list of networks (CIDR, IPv4 or IPv6); an empty list allows
  every address. An IPv4 address seen as IPv4-mapped IPv6 (``::ffff:10.1.2.3``, on a
  dual-stack listener) is checked as the IPv4 address it is.
- **Making room.** A listener at ``max_connections``, or an address at ``max_per_peer``,
  does not refuse the newcomer: it sheds one idle connection (no answer being made, no
  block in progress), chosen in this order:

  1. a connection that never delivered a message (a port scan, a half-open socket, a
     client that speaks something else), the one idle longest;
  2. else an established one from the address holding the most connections, the one
     idle longest (an address at its own ``max_per_peer`` sheds only its own).

  Only when every candidate is busy is the newcomer refused. Established MLLP senders
  keep connections open for days; that is normal, and only a full listener ever ends
  one.
- **Counting.** Each address seen has its counters (:class:`PeerCounters`); addresses
  with no open connection are forgotten, least recently seen first, beyond
  :data:`MAX_PEERS`, so a scan from many addresses cannot grow the table without bound.
- **Telling.** Warnings about one address and one reason are logged at most once a
  minute (:class:`OncePerInterval`); the counters count every case.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_PEERS = 1024
LOG_INTERVAL = 60.0


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """CIDR strings (``10.0.0.0/8``, ``192.168.1.20``, ``fd00::/8``) as networks; a bare
    address is a /32 (/128). Raises ValueError naming the entry that is not one."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an address or network (CIDR)") from None
    return tuple(networks)


class AllowList:
    """Client addresses allowed to connect; empty: all of them (module rules)."""

    def __init__(self, networks: Iterable[Network] = ()) -> None:
        self.networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def allows(self, host: str) -> bool:
        if not self.networks:
            return True
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


@dataclass(slots=True)
class PeerCounters:
    """What one client address did on a listener (only ever increased, but ``open``).

    ``denied``: connections refused by the allow-list; ``refused``: refused because the
    listener (or the address) was full of busy connections; ``shed``: its connections
    closed to make room for another; ``junk``: connections that sent bytes outside MLLP
    blocks; ``silent``: connections closed for sending no message within the grace;
    ``tls_failed``: TLS handshakes that failed (wrong certificate, old protocol);
    ``messages``: messages received."""

    address: str
    open: int = 0
    messages: int = 0
    denied: int = 0
    refused: int = 0
    shed: int = 0
    junk: int = 0
    silent: int = 0
    tls_failed: int = 0
    last_seen: float = 0.0


class PeerTable:
    """The counters of every address seen lately (module rules: bounded)."""

    def __init__(self, capacity: int = MAX_PEERS) -> None:
        self.capacity = capacity
        self._peers: OrderedDict[str, PeerCounters] = OrderedDict()

    def __getitem__(self, host: str) -> PeerCounters:
        """The counters of ``host`` (created on first sight)."""
        found = self._peers.get(host)
        if found is None:
            found = self._peers[host] = PeerCounters(host)
            self._evict()
        return found

    def seen(self, host: str, now: float) -> PeerCounters:
        """The counters of ``host``, marked as seen at ``now`` (most recent last)."""
        counters = self[host]
        counters.last_seen = now
        self._peers.move_to_end(host)
        return counters

    def snapshot(self) -> list[PeerCounters]:
        """Copies of every address's counters, by address."""
        return [replace(c) for _, c in sorted(self._peers.items())]

    def _evict(self) -> None:
        if len(self._peers) <= self.capacity:
            return
        for host in [h for h, c in self._peers.items() if c.open == 0]:
            if len(self._peers) <= self.capacity:
                return
            del self._peers[host]


class Candidate(Protocol):
    """A connection as the shedding choice sees it."""

    @property
    def host(self) -> str: ...

    @property
    def spoke(self) -> bool:
        """It has delivered at least one message."""
        ...

    @property
    def idle_since(self) -> float:
        """When it last received bytes or sent an answer."""
        ...

    @property
    def sheddable(self) -> bool:
        """Idle: no answer being made, no block in progress, not already going."""
        ...


C = TypeVar("C", bound=Candidate)


def choose_victim(connections: Iterable[C], per_host: Mapping[str, int]) -> C | None:
    """The connection to shed (module rules, "Making room"), or None when all are busy."""

    def order(c: C) -> tuple[int, int, float]:
        if not c.spoke:
            return (0, 0, c.idle_since)
        return (1, -per_host.get(c.host, 0), c.idle_since)

    candidates = [c for c in connections if c.sheddable]
    return min(candidates, key=order) if candidates else None


class OncePerInterval:
    """Says yes to a key at most once per ``interval`` seconds (rate-limited warnings)."""

    def __init__(self, interval: float = LOG_INTERVAL, capacity: int = 4 * MAX_PEERS) -> None:
        self.interval = interval
        self.capacity = capacity
        self._last: dict[tuple[str, str], float] = {}

    def __call__(self, kind: str, host: str, now: float) -> bool:
        key = (kind, host)
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        if len(self._last) >= self.capacity:
            self._last = {k: t for k, t in self._last.items() if now - t < self.interval}
        self._last[key] = now
        return True
