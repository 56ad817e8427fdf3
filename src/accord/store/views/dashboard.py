"""The figures an operator watches: the dashboard (per interface, per destination, open
findings by kind; also what the alert rules evaluate) and the workflow's whole-store
counts of ``/api/stats``.

Rules:
- The dashboard reads bounded, indexed ranges only: messages of the last window (the
  ``received_at`` index), outbox rows by status (``ix_outbox_status``) and their source
  message range (``ix_outbox_source``), open findings by kind (``ix_findings_kind``).
  It never counts whole tables, so it stays fast however much history the store holds.
- The interfaces' figures work from changes (:class:`InterfaceWindow`): what entered
  the window since the last look (messages by id, the primary key) is added and what
  left it (by ``received_at``) taken away, so a look every few seconds reads the
  messages of those seconds, not the hour's (at 800 msg/s, 2.9 million rows). The
  rows are read and counted here, not grouped in SQL: SQLite's planner answered a GROUP
  BY over the window by walking the sender index through every message ever stored.
- :meth:`DashboardView.counts` does count whole tables (patients, orders by status,
  open findings by kind): it answers ``/api/stats``, asked for now and then, not polled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, literal_column, select

from accord.store.db import Database
from accord.store.schema import messages, outbox
from accord.store.schema.workflow import wf_findings, wf_orders, wf_patients
from accord.workflow.findings import Resolution

ACTIVE = ("pending", "in_flight")


@dataclass(frozen=True, slots=True)
class InterfaceFigures:
    """One inbound interface (MSH-3^MSH-4) over the window."""

    sender: str
    received: int
    errored: int  # answered AE (error) or AR (rejected)
    last_at: datetime | None


@dataclass(frozen=True, slots=True)
class DestinationFigures:
    """One downstream destination: its queue now, and its deliveries in the window."""

    name: str
    queued: int
    errors: int  # outbound error queue
    delivered: int
    ack_ms_median: float | None  # enqueue → ACK received, recent deliveries
    ack_ms_p95: float | None
    state: str  # "up", "retrying", "idle"
    last_error: str


@dataclass(frozen=True, slots=True)
class Dashboard:
    since: datetime
    interfaces: tuple[InterfaceFigures, ...]
    destinations: tuple[DestinationFigures, ...]
    findings: tuple[tuple[str, int], ...]  # open findings by kind


def _pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


Sender = tuple[str, str]  # MSH-3, MSH-4
_WINDOW_ROWS = select(messages.c.id, messages.c.sending_app, messages.c.sending_facility,
                      messages.c.status, messages.c.received_at)
_GAP_SECONDS = 60.0  # a PostgreSQL id not committed yet is looked for this long
_MAX_GAP = 10_000  # a jump in ids larger than this is a restore, not a race
_BACKWARDS = timedelta(seconds=10)  # an earlier ``now`` than this is a clock set back


class InterfaceWindow:
    """Messages received in ``[now - window, now]`` per interface and status, kept from
    changes (module rules). Ids another transaction (PostgreSQL) took but had not
    committed when the window moved past them are looked for again, as the DICOM
    bridge's worklist does, for ``_GAP_SECONDS``. Not thread-safe: its owner locks."""

    def __init__(self, window: timedelta, monotonic: Callable[[], float] = time.monotonic
                 ) -> None:
        self.window = window
        self._monotonic = monotonic
        self._since: datetime | None = None
        self._last_id = 0
        self._gaps: dict[int, float] = {}
        self._counts: dict[tuple[str, str, str], int] = {}
        self._last_at: dict[Sender, datetime] = {}

    def figures(self, conn: Connection, now: datetime) -> list[InterfaceFigures]:
        """The figures as of ``now``. Asked for an earlier ``now`` than the last one
        (two callers' clocks read a moment apart), it answers as of the later one;
        much earlier (a clock set back), it reads the window afresh."""
        since = now - self.window
        if self._since is None or since < self._since - _BACKWARDS:
            self._start(conn, since)
        else:
            self._advance(conn, since)
        return self._figures()

    def _start(self, conn: Connection, since: datetime) -> None:
        self._counts, self._last_at, self._gaps = {}, {}, {}
        self._last_id = int(conn.scalar(select(func.max(messages.c.id))) or 0)
        for row in conn.execute(_WINDOW_ROWS.where(messages.c.received_at >= since)):
            if row.id <= self._last_id:
                self._add(row)
        self._since = since

    def _advance(self, conn: Connection, since: datetime) -> None:
        assert self._since is not None
        m = messages.c
        # The gaps apart: SQLite answers "id > ? OR id IN (...)" with a full scan.
        entered = list(conn.execute(_WINDOW_ROWS.where(m.id.in_(sorted(self._gaps)))
                                    .order_by(m.id))) if self._gaps else []
        entered += conn.execute(_WINDOW_ROWS.where(m.id > self._last_id).order_by(m.id))
        first_new = self._last_id + 1
        for row in entered:
            self._gaps.pop(row.id, None)
            if row.id > self._last_id:
                if row.id - first_new < _MAX_GAP:
                    seen_at = self._monotonic()
                    for gap in range(max(first_new, self._last_id + 1), row.id):
                        self._gaps.setdefault(gap, seen_at)
                self._last_id = row.id
            if _aware(row.received_at) >= self._since:
                self._add(row)
        limit = self._monotonic() - _GAP_SECONDS
        self._gaps = {g: t for g, t in self._gaps.items() if t >= limit}
        if since <= self._since:
            return
        for row in conn.execute(_WINDOW_ROWS.where(
                m.received_at >= self._since, m.received_at < since)):
            if row.id <= self._last_id and row.id not in self._gaps:
                self._take(row)
        self._since = since

    def _add(self, row: Any) -> None:
        key = (row.sending_app, row.sending_facility, row.status)
        self._counts[key] = self._counts.get(key, 0) + 1
        sender, at = (row.sending_app, row.sending_facility), _aware(row.received_at)
        last = self._last_at.get(sender)
        self._last_at[sender] = at if last is None or at > last else last

    def _take(self, row: Any) -> None:
        key = (row.sending_app, row.sending_facility, row.status)
        left = self._counts.get(key, 0) - 1
        if left > 0:
            self._counts[key] = left
            return
        self._counts.pop(key, None)
        sender = key[:2]
        if not any(k[:2] == sender for k in self._counts):
            self._last_at.pop(sender, None)  # its newest message left too

    def _figures(self) -> list[InterfaceFigures]:
        found: dict[str, list[Any]] = {}
        for (app, fac, status), n in self._counts.items():
            key = f"{app}^{fac}" if fac else (app or "(unparsed)")
            fig = found.setdefault(key, [0, 0, None])
            fig[0] += n
            if status in ("error", "rejected"):
                fig[1] += n
            last = self._last_at.get((app, fac))
            if last is not None and (fig[2] is None or last > fig[2]):
                fig[2] = last
        return [InterfaceFigures(k, v[0], v[1], v[2]) for k, v in sorted(found.items())]


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _destinations(
    conn: Connection, since: datetime, names: Sequence[str]
) -> list[DestinationFigures]:
    b = outbox.c
    queued: dict[str, int] = {}
    errors: dict[str, int] = {}
    for dest, status, n in conn.execute(
        select(b.destination, b.status, func.count())
        .where(b.status.in_((*ACTIVE, "error")))
        .group_by(b.destination, b.status)
    ):
        target = errors if status == "error" else queued
        target[dest] = target.get(dest, 0) + n
    # Deliveries of the window: delivered rows from the window's first outbox row on
    # (``ix_outbox_status`` is status then id: a range of the window's rows). The first
    # is found through the received_at and source indexes: a min(id) over a range, or a
    # source range beside status = 'delivered', walked every row ever delivered.
    delivered: dict[str, int] = {}
    first = _first_outbox_id(conn, since)
    if first is not None:
        for dest, n in conn.execute(
            select(b.destination, func.count())
            .where(b.status == "delivered", b.id >= first)
            .group_by(b.destination)
        ):
            delivered[dest] = n
    latency: dict[str, list[float]] = {}
    for dest, made, done in conn.execute(
        select(b.destination, b.created_at, b.delivered_at)
        .where(b.status == "delivered")
        .order_by(b.id.desc())
        .limit(500)
    ):
        if made is not None and done is not None:
            latency.setdefault(dest, []).append((done - made).total_seconds() * 1000)
    heads = _head_errors(conn, sorted(queued))
    out = []
    for name in sorted({*names, *queued, *errors, *delivered}):
        lat = latency.get(name, [])
        head = heads.get(name, "")
        state = "retrying" if head else ("up" if lat else "idle")
        out.append(
            DestinationFigures(
                name,
                queued.get(name, 0),
                errors.get(name, 0),
                delivered.get(name, 0),
                _pct(lat, 0.5),
                _pct(lat, 0.95),
                state,
                head,
            )
        )
    return out


def _first_outbox_id(conn: Connection, since: datetime) -> int | None:
    """The first outbox row of a message received since ``since`` (or None)."""
    first_message = conn.scalar(
        select(messages.c.id).where(messages.c.received_at >= since)
        .order_by(messages.c.received_at, messages.c.id).limit(1))
    if first_message is None:
        return None
    b = outbox.c
    found = conn.scalar(select(b.id).where(b.source_message_id >= first_message)
                        .order_by(b.source_message_id, b.id).limit(1))
    return int(found) if found is not None else None


def _head_errors(conn: Connection, destinations: Iterable[str]) -> dict[str, str]:
    """Destinations whose oldest unfinished row failed at least once: the link is down
    (or the receiver refuses); its last error. One head per destination, through the
    open rows' partial index (``ix_outbox_open``)."""
    b = outbox.c
    out = {}
    for name in destinations:
        head = conn.execute(
            select(b.last_error, b.attempts)
            .where(b.destination == name, _open_rows())
            .order_by(b.id).limit(1)).first()
        if head is not None and head.attempts > 0 and head.last_error:
            out[name] = head.last_error or "failed"
    return out


def _open_rows() -> ColumnElement[bool]:
    """``status IN ('pending', 'in_flight')`` with literal values: the partial index's
    own predicate, so both planners use it."""
    return outbox.c.status.in_([literal_column("'pending'"), literal_column("'in_flight'")])


def figures(conn: Connection, now: datetime, window: timedelta,
            destinations: Sequence[str] = (),
            interfaces: InterfaceWindow | None = None) -> Dashboard:
    """The dashboard's figures over ``[now - window, now]`` (queues: as of now);
    ``interfaces`` keeps the interfaces' figures between calls (else read whole)."""
    since = now - window
    f = wf_findings.c
    kinds = conn.execute(
        select(f.kind, func.count()).where(f.resolution == Resolution.OPEN.value)
        .group_by(f.kind).order_by(f.kind))
    found = (interfaces or InterfaceWindow(window)).figures(conn, now)
    return Dashboard(since, tuple(found), tuple(_destinations(conn, since, destinations)),
                     tuple((k, n) for k, n in kinds))


def counts(conn: Connection) -> dict[str, int]:
    """Whole-store counts of the workflow: ``patients`` (not merged away), ``orders``,
    ``orders_<status>``, ``findings_open``, ``findings_<kind>`` (open ones)."""
    f = wf_findings.c
    out: dict[str, int] = {"patients": 0, "orders": 0, "findings_open": 0}
    out["patients"] = int(conn.scalar(
        select(func.count()).select_from(wf_patients).where(wf_patients.c.merged_into.is_(None))
    ) or 0)
    for status, n in conn.execute(
            select(wf_orders.c.status, func.count()).group_by(wf_orders.c.status)):
        out["orders"] += n
        out[f"orders_{status}"] = n
    for kind, n in conn.execute(select(f.kind, func.count())
                                .where(f.resolution == Resolution.OPEN.value).group_by(f.kind)):
        out["findings_open"] += n
        out[f"findings_{kind}"] = n
    return out


class DashboardView:
    """The dashboard's figures and the workflow's counts on one database. The
    interfaces' figures of each window asked for are kept between calls (module rules)."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._lock = threading.Lock()  # the alert monitor's thread and web requests
        self._windows: dict[timedelta, InterfaceWindow] = {}

    def figures(self, now: datetime, window: timedelta,
                destinations: Sequence[str] = ()) -> Dashboard:
        with self._lock, self._db.read() as conn:
            kept = self._windows.get(window)
            if kept is None:
                kept = self._windows[window] = InterfaceWindow(window)
            try:
                return figures(conn, now, window, destinations, kept)
            except BaseException:
                del self._windows[window]  # half-advanced: start afresh next time
                raise

    def counts(self) -> dict[str, int]:
        with self._db.read() as conn:
            return counts(conn)
