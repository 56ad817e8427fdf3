"""Prometheus metrics (``GET /metrics``): per interface (MLLP listener) and destination.

Rules:
- Counters and histograms live in one :class:`Metrics` object per runtime, on its own
  registry (no global registry: two runtimes in one process never mix their counts).
- The engine is told nothing about Prometheus: the runtime wraps the MLLP handler
  (:meth:`Metrics.wrap_handler`: ACK latency and the MSA-1 of each answer) and passes
  :meth:`Metrics.observe_delivery` to the Deliverer; duplicates come from
  ``Ingestor.stats``. Queue depth per destination is read from the store at scrape
  time (one GROUP BY over the outbox queue index), so every node reports the same.
- Labels never carry message content: interface and destination names, and the client
  addresses of the listeners' admission counters (a table bounded per listener, see
  ``accord.mllp.admission``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from accord.store import Store

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)


def ack_code(ack: bytes) -> str:
    """MSA-1 of an ACK (``""`` when there is none); HL7 v2.5.1 §2.14.8. MSA is found at a
    segment's start: an MSH-10 may hold the letters MSA."""
    at = ack.find(b"\rMSA")
    if at < 0:
        at = ack.find(b"\nMSA")  # a sender that ends segments with LF
    if at < 0 or len(ack) < at + 5:
        return ""
    at += 1
    sep = ack[at + 3:at + 4]
    return ack[at + 4:at + 6].decode("ascii", "replace") if sep else ""


class _StoreCollector(Collector):
    """Queue depth per destination and status, read at scrape time."""

    def __init__(self, store: Store, destinations: tuple[str, ...],
                 duplicates: Callable[[], dict[str, int]]) -> None:
        self._store = store
        self._destinations = destinations
        self._duplicates = duplicates

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("accord_queue_depth",
                                  "Outbox rows waiting (pending or in flight) per destination",
                                  labels=["destination"])
        errors = GaugeMetricFamily("accord_queue_errors",
                                   "Outbox rows in the error queue per destination",
                                   labels=["destination"])
        counts = self._store.queue_depth()
        for name in sorted(set(self._destinations) | {d for d, _ in counts}):
            depth.add_metric([name], counts.get((name, "pending"), 0)
                             + counts.get((name, "in_flight"), 0))
            errors.add_metric([name], counts.get((name, "error"), 0))
        yield depth
        yield errors
        dup = CounterMetricFamily("accord_messages_duplicate",
                                  "Resends answered with their first ACK, per interface",
                                  labels=["interface"])
        for interface, n in sorted(self._duplicates().items()):
            dup.add_metric([interface], n)
        yield dup


class _SizeCollector(Collector):
    """The store's size on disk, measured at scrape time."""

    def __init__(self, measure: Callable[[], int]) -> None:
        self._measure = measure

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("accord_store_bytes", "Size of the store on disk, in bytes",
                                value=self._measure())


class _BacklogCollector(Collector):
    """The inbox: messages stored (answered on store) and not yet applied, the age of
    the oldest, and how many this node applied; read at scrape time."""

    def __init__(self, backlog: Callable[[], tuple[int, datetime | None]],
                 now: Callable[[], datetime], applied: Callable[[], int]) -> None:
        self._backlog = backlog
        self._now = now
        self._applied = applied

    def collect(self) -> Iterator[Metric]:
        count, oldest = self._backlog()
        age = 0.0 if oldest is None else max(0.0, (self._now() - oldest).total_seconds())
        yield GaugeMetricFamily("accord_apply_backlog",
                                "Messages stored and acknowledged, not yet applied",
                                value=count)
        yield GaugeMetricFamily("accord_apply_backlog_oldest_seconds",
                                "Age of the oldest message not yet applied (0: none)",
                                value=age)
        yield CounterMetricFamily("accord_messages_applied",
                                  "Messages applied from the inbox by this node",
                                  value=self._applied())


PEER_EVENTS = ("messages", "denied", "refused", "shed", "junk", "silent", "tls_failed")


class _PeerCollector(Collector):
    """The listeners' per-address admission counters, read at scrape time."""

    def __init__(self, peers: Callable[[], list[dict[str, Any]]]) -> None:
        self._peers = peers

    def collect(self) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "accord_peer_events", "What each client address did on a listener (messages, "
            "or refused by the admission rules), on this node", labels=["listener", "peer",
                                                                        "event"])
        open_ = GaugeMetricFamily("accord_peer_connections",
                                  "Connections (DICOM: associations) open per client address",
                                  labels=["listener", "peer"])
        for row in self._peers():
            for event in PEER_EVENTS:
                events.add_metric([row["listener"], row["address"], event], row[event])
            open_.add_metric([row["listener"], row["address"]], row["open"])
        yield events
        yield open_


class Metrics:
    """The engine's counters and histograms (see the module rules)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter("accord_messages_received", "Messages received and answered",
                                ["interface"], registry=r)
        self.accepted = Counter("accord_messages_accepted", "Messages answered AA",
                                ["interface"], registry=r)
        self.errored = Counter("accord_messages_errored",
                               "Messages answered AE (stored, not applied)",
                               ["interface"], registry=r)
        self.rejected = Counter("accord_messages_rejected", "Messages answered AR",
                                ["interface"], registry=r)
        self.unanswered = Counter("accord_messages_unanswered",
                                  "Messages not answered (the store commit failed)",
                                  ["interface"], registry=r)
        self.ack_latency = Histogram("accord_ack_latency_seconds",
                                     "From a message's arrival to its ACK (store committed)",
                                     ["interface"], buckets=LATENCY_BUCKETS, registry=r)
        self.delivered = Counter("accord_delivered", "Messages delivered (AA/CA)",
                                 ["destination"], registry=r)
        self.delivery_failures = Counter(
            "accord_delivery_failures", "Deliveries answered AE/AR/CE/CR, or outages",
            ["destination", "reason"], registry=r)
        self.delivery_latency = Histogram("accord_delivery_latency_seconds",
                                          "From sending a message downstream to its ACK",
                                          ["destination"], buckets=LATENCY_BUCKETS,
                                          registry=r)
        self._children: dict[str, tuple[Any, ...]] = {}  # per interface, see observe_ack
        self.http_latency = Histogram("accord_http_request_seconds",
                                      "Console and API request latency per route",
                                      ["route"], buckets=LATENCY_BUCKETS, registry=r)

    def watch_store(self, store: Store, destinations: tuple[str, ...],
                    duplicates: Callable[[], dict[str, int]] | None = None) -> None:
        """Report queue depth per destination (and duplicates) at scrape time."""
        self.registry.register(_StoreCollector(store, destinations,
                                               duplicates or (lambda: {})))

    def watch_size(self, measure: Callable[[], int]) -> None:
        """Report the store's size (``accord_store_bytes``) at scrape time."""
        self.registry.register(_SizeCollector(measure))

    def watch_backlog(self, backlog: Callable[[], tuple[int, datetime | None]],
                      now: Callable[[], datetime], applied: Callable[[], int]) -> None:
        """Report the inbox backlog (``accord_apply_backlog``, the age of its oldest
        message) and the messages applied from it, at scrape time."""
        self.registry.register(_BacklogCollector(backlog, now, applied))

    def watch_peers(self, peers: Callable[[], list[dict[str, Any]]]) -> None:
        """Report the listeners' per-address admission counters at scrape time."""
        self.registry.register(_PeerCollector(peers))

    def observe_ack(self, interface: str, ack: bytes, seconds: float) -> None:
        received, latency, accepted, errored, rejected = self._ack_children(interface)
        received.inc()
        latency.observe(seconds)
        code = ack_code(ack)
        if code in ("AE", "CE"):
            errored.inc()
        elif code in ("AR", "CR"):
            rejected.inc()
        else:
            accepted.inc()

    def _ack_children(self, interface: str) -> tuple[Any, ...]:
        # ``labels()`` takes a lock and builds a key per call; once per message per
        # counter it was a tenth of the MLLP loop's time on a one-message round trip.
        found = self._children.get(interface)
        if found is None:
            found = self._children[interface] = tuple(
                m.labels(interface) for m in (self.received, self.ack_latency,
                                              self.accepted, self.errored, self.rejected))
        return found

    def wrap_handler(self, handler: Callable[..., Awaitable[bytes]],
                     interface: str) -> Callable[..., Awaitable[bytes]]:
        """An MLLP callback that answers with an ACK (the handler, or the refusals of an
        oversize or empty block), timed and counted by the ACK's MSA-1."""

        async def metered(*args: Any) -> bytes:
            started = time.perf_counter()
            try:
                ack = await handler(*args)
            except Exception:
                self.received.labels(interface).inc()
                self.unanswered.labels(interface).inc()
                raise
            self.observe_ack(interface, ack, time.perf_counter() - started)
            return ack

        return metered

    def observe_delivery(self, destination: str, code: str, seconds: float) -> None:
        """One send to ``destination``: its MSA-1 ``code`` (or ``"outage"``)."""
        if code in ("AA", "CA"):
            self.delivered.labels(destination).inc()
            self.delivery_latency.labels(destination).observe(seconds)
        else:
            self.delivery_failures.labels(destination, code.lower() or "none").inc()
