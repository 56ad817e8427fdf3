"""The figures an operator watches: the dashboard (both sides of the loop: HL7 in per
interface and out per destination, DICOM per station, today's orders by modality and
status, open findings by kind; also what the alert rules evaluate) and the workflow's
whole-store counts of ``/api/stats``.

Rules:
- The dashboard reads bounded, indexed ranges only: messages of the window (the
  ``received_at`` index), outbox rows by status (``ix_outbox_status``) and deliveries of
  the window (``ix_outbox_delivered_at``), DICOM requests of the window
  (``ix_dicom_events_at``), today's procedure steps (``ix_procedure_steps_date``), open
  findings by kind (``ix_findings_kind``). It never counts whole tables, so it stays fast
  however much history the store holds.
- Every figure counts rows whatever made them: a delivery is counted when it was
  delivered in the window, whether a received message, an MPPS, a person at the console
  or a job queued it; an order by its step's day, whoever placed or moved it.
- Each figure is the size of a list the console and the API can show with the same
  filters (:class:`Window` gives the bounds), so a figure links to the rows behind it.
- :meth:`DashboardView.counts` does count whole tables (patients, orders by status,
  open findings by kind): it answers ``/api/stats``, asked for now and then, not polled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, select

from accord.store.db import Database
from accord.store.gateway import inbox
from accord.store.schema import messages, outbox
from accord.store.schema.workflow import (
    wf_dicom_events,
    wf_findings,
    wf_orders,
    wf_patients,
    wf_procedure_steps,
)
from accord.workflow.findings import Resolution

ACTIVE = ("pending", "in_flight")
FAILED = ("error", "rejected")  # answered AE (error) or AR (rejected)
NO_SENDER = "-"  # the interface of input without an MSH-3 (unparseable, mostly)


@dataclass(frozen=True, slots=True)
class InterfaceFigures:
    """One inbound interface (MSH-3^MSH-4, or :data:`NO_SENDER`) over the window."""

    sender: str
    received: int
    errored: int  # answered AE (error) or AR (rejected)
    last_at: datetime | None
    rejected: int = 0  # of ``errored``, answered AR


@dataclass(frozen=True, slots=True)
class DestinationFigures:
    """One downstream destination: its queue now, and its deliveries in the window."""

    name: str
    queued: int
    errors: int  # outbound error queue
    delivered: int  # delivered in the window, whatever queued the row
    ack_ms_median: float | None  # enqueue → ACK received, recent deliveries
    ack_ms_p95: float | None
    state: str  # "up", "retrying", "idle"
    last_error: str
    last_delivered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StationFigures:
    """One modality (calling AE title): worklist queries and MPPS in the window."""

    station: str
    queries: int
    mpps: int
    last_query_at: datetime | None
    last_mpps_at: datetime | None
    known: bool = True  # a station the procedure code table or rules schedule on


@dataclass(frozen=True, slots=True)
class Dashboard:
    since: datetime
    interfaces: tuple[InterfaceFigures, ...]
    destinations: tuple[DestinationFigures, ...]
    findings: tuple[tuple[str, int], ...]  # open findings by kind
    until: datetime | None = None
    stations: tuple[StationFigures, ...] = ()
    day: str = ""  # YYYYMMDD (UTC) of ``orders_today``
    # Orders with a step on ``day``: (modality, status, count).
    orders_today: tuple[tuple[str, str, int], ...] = ()
    # The inbox as of now: messages answered on store, not yet applied, and when the
    # oldest of them was received (None: nothing waits).
    backlog: int = 0
    backlog_oldest: datetime | None = None


def _pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def sender_key(app: str, facility: str) -> str:
    """An interface's name as the dashboard and the message search's ``sender`` filter
    write it: ``MSH-3^MSH-4``, ``MSH-3``, or :data:`NO_SENDER`."""
    if not app:
        return NO_SENDER
    return f"{app}^{facility}" if facility else app


def _interfaces(conn: Connection, since: datetime, until: datetime) -> list[InterfaceFigures]:
    m = messages.c
    rows = conn.execute(
        select(m.sending_app, m.sending_facility, m.status, func.count(), func.max(m.received_at))
        .where(m.received_at >= since, m.received_at < until)
        .group_by(m.sending_app, m.sending_facility, m.status)
    )
    found: dict[str, list[Any]] = {}
    for app, fac, status, n, last in rows:
        fig = found.setdefault(sender_key(app, fac), [0, 0, None, 0])
        fig[0] += n
        if status in FAILED:
            fig[1] += n
        if status == "rejected":
            fig[3] += n
        if last is not None:
            last = _aware(last)
            fig[2] = last if fig[2] is None or last > fig[2] else fig[2]
    return [InterfaceFigures(k, v[0], v[1], v[2], v[3]) for k, v in sorted(found.items())]


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _destinations(
    conn: Connection, since: datetime, until: datetime, names: Sequence[str]
) -> list[DestinationFigures]:
    b = outbox.c
    queued: dict[str, int] = {}
    errors: dict[str, int] = {}
    for dest, status, n in conn.execute(
        select(b.destination, b.status, func.count())
        .where(b.status.in_((*ACTIVE, "error")), b.superseded_by.is_(None))
        .group_by(b.destination, b.status)
    ):
        target = errors if status == "error" else queued
        target[dest] = target.get(dest, 0) + n
    delivered: dict[str, tuple[int, datetime | None]] = {
        dest: (n, _aware(last) if last is not None else None)
        for dest, n, last in conn.execute(
            select(b.destination, func.count(), func.max(b.delivered_at))
            .where(b.delivered_at >= since, b.delivered_at < until)
            .group_by(b.destination))}
    latency: dict[str, list[float]] = {}
    for dest, made, done in conn.execute(
        select(b.destination, b.created_at, b.delivered_at)
        .where(b.status == "delivered")
        .order_by(b.id.desc())
        .limit(500)
    ):
        if made is not None and done is not None:
            latency.setdefault(dest, []).append((done - made).total_seconds() * 1000)
    heads = _head_errors(conn)
    out = []
    for name in sorted({*names, *queued, *errors, *delivered}):
        lat = latency.get(name, [])
        head = heads.get(name, "")
        state = "retrying" if head else ("up" if lat else "idle")
        count, last = delivered.get(name, (0, None))
        out.append(DestinationFigures(
            name, queued.get(name, 0), errors.get(name, 0), count, _pct(lat, 0.5),
            _pct(lat, 0.95), state, head, last))
    return out


def _head_errors(conn: Connection) -> dict[str, str]:
    """Destinations whose oldest unfinished row failed at least once: the link is down
    (or the receiver refuses); its last error."""
    b = outbox.c
    heads = (
        select(b.destination, func.min(b.id).label("head"))
        .where(b.status.in_(ACTIVE))
        .group_by(b.destination)
        .subquery()
    )
    rows = conn.execute(
        select(b.destination, b.last_error, b.attempts).join(heads, and_(heads.c.head == b.id))
    )
    return {
        r.destination: (r.last_error or "failed") for r in rows if r.attempts > 0 and r.last_error
    }


def _stations(conn: Connection, since: datetime, until: datetime, day: str,
              configured: Sequence[str]) -> list[StationFigures]:
    """Every station that asked or sent something in the window, and every station
    that should have: those the code table names and those with steps today."""
    s = wf_procedure_steps.c
    busy = conn.scalars(select(s.station_ae).where(s.start_date == day, s.station_ae != "")
                        .distinct().limit(500))
    known = {*configured, *busy}
    e = wf_dicom_events.c
    seen: dict[str, dict[str, tuple[int, datetime | None]]] = {}
    for station, kind, n, last in conn.execute(
            select(e.station, e.kind, func.count(), func.max(e.at))
            .where(e.at >= since, e.at < until).group_by(e.station, e.kind)):
        seen.setdefault(station, {})[kind] = (n, _aware(last) if last is not None else None)
    out = []
    for station in sorted({*known, *seen}):
        figures = seen.get(station, {})
        queries, last_query = figures.get("find", (0, None))
        mpps, last_mpps = figures.get("mpps", (0, None))
        out.append(StationFigures(station, queries, mpps, last_query, last_mpps,
                                  station in known))
    return out


def _orders_today(conn: Connection, day: str) -> list[tuple[str, str, int]]:
    s = wf_procedure_steps.c
    rows = conn.execute(
        select(s.modality, s.status, func.count(func.distinct(s.order_id)))
        .where(s.start_date == day).group_by(s.modality, s.status)
        .order_by(s.modality, s.status))
    return [(modality, status, int(n)) for modality, status, n in rows]


def figures(conn: Connection, now: datetime, window: timedelta,
            destinations: Sequence[str] = (), stations: Sequence[str] = ()) -> Dashboard:
    """The dashboard's figures over ``[now - window, now)`` (queues: as of now; orders:
    those with a step on today's date, UTC)."""
    since = now - window
    f = wf_findings.c
    kinds = conn.execute(
        select(f.kind, func.count()).where(f.resolution == Resolution.OPEN.value)
        .group_by(f.kind).order_by(f.kind))
    day = now.astimezone(UTC).strftime("%Y%m%d")
    waiting, oldest = inbox.backlog(conn)
    return Dashboard(since, tuple(_interfaces(conn, since, now)),
                     tuple(_destinations(conn, since, now, destinations)),
                     tuple((k, n) for k, n in kinds), until=now,
                     stations=tuple(_stations(conn, since, now, day, stations)), day=day,
                     orders_today=tuple(_orders_today(conn, day)),
                     backlog=waiting, backlog_oldest=oldest)


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
    """The dashboard's figures and the workflow's counts on one database."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def figures(self, now: datetime, window: timedelta, destinations: Sequence[str] = (),
                stations: Sequence[str] = ()) -> Dashboard:
        """The figures of the window ending ``now`` (``destinations`` and ``stations``:
        the configured ones, shown even when idle)."""
        with self._db.read() as conn:
            return figures(conn, now, window, destinations, stations)

    def counts(self) -> dict[str, int]:
        with self._db.read() as conn:
            return counts(conn)
