"""The figures an operator watches: the dashboard (per interface, per destination, open
findings by kind; also what the alert rules evaluate) and the workflow's whole-store
counts of ``/api/stats``.

Rules:
- The dashboard reads bounded, indexed ranges only: messages of the last window (the
  ``received_at`` index), outbox rows by status (``ix_outbox_status``) and their source
  message range (``ix_outbox_source``), open findings by kind (``ix_findings_kind``).
  It never counts whole tables, so it stays fast however much history the store holds.
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


def _interfaces(conn: Connection, since: datetime) -> list[InterfaceFigures]:
    m = messages.c
    rows = conn.execute(
        select(m.sending_app, m.sending_facility, m.status, func.count(), func.max(m.received_at))
        .where(m.received_at >= since)
        .group_by(m.sending_app, m.sending_facility, m.status)
    )
    found: dict[str, list[Any]] = {}
    for app, fac, status, n, last in rows:
        key = f"{app}^{fac}" if fac else (app or "(unparsed)")
        fig = found.setdefault(key, [0, 0, None])
        fig[0] += n
        if status in ("error", "rejected"):
            fig[1] += n
        if last is not None:
            last = _aware(last)
            fig[2] = last if fig[2] is None or last > fig[2] else fig[2]
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
    first = conn.scalar(select(func.min(messages.c.id)).where(messages.c.received_at >= since))
    delivered: dict[str, int] = {}
    if first is not None:
        for dest, n in conn.execute(
            select(b.destination, func.count())
            .where(b.source_message_id >= first, b.status == "delivered")
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
    heads = _head_errors(conn)
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


def figures(conn: Connection, now: datetime, window: timedelta,
            destinations: Sequence[str] = ()) -> Dashboard:
    """The dashboard's figures over ``[now - window, now]`` (queues: as of now)."""
    since = now - window
    f = wf_findings.c
    kinds = conn.execute(
        select(f.kind, func.count()).where(f.resolution == Resolution.OPEN.value)
        .group_by(f.kind).order_by(f.kind))
    return Dashboard(since, tuple(_interfaces(conn, since)),
                     tuple(_destinations(conn, since, destinations)),
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
    """The dashboard's figures and the workflow's counts on one database."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def figures(self, now: datetime, window: timedelta,
                destinations: Sequence[str] = ()) -> Dashboard:
        with self._db.read() as conn:
            return figures(conn, now, window, destinations)

    def counts(self) -> dict[str, int]:
        with self._db.read() as conn:
            return counts(conn)
