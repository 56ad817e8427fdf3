"""Read queries for the console's pages: order search, worklist, order and patient pages.

Rules:
- Every query is driven by an index of ``schema_workflow`` (accession, PID-3 value,
  family name, status + time, station/date of the procedure step); nothing scans the
  orders table, so a page answers in milliseconds at a million orders.
- Lists are keyset-paginated (never OFFSET): the cursor is the sort key of the last row,
  as text. Bad cursors raise ValueError (the console answers 400).
- Rows come back as the workflow's frozen values (decoded from ``doc``), wrapped in small
  view records; nothing here renders or knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, or_, select

from accord.store.schema import messages, outbox
from accord.store.schema.workflow import (
    wf_findings,
    wf_orders,
    wf_patient_identifiers,
    wf_patients,
    wf_procedure_steps,
    wf_reports,
    wf_trace_events,
    wf_visits,
)
from accord.store.workflow import codec
from accord.workflow.findings import Finding
from accord.workflow.model import Order, Patient, Report, Visit
from accord.workflow.trace import TraceEvent

MAX_LIMIT = 200
SEP = "|"


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One order as listed: the order and its patient (None if the patient is unknown)."""

    order: Order
    patient: Patient | None
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class MessageRef:
    """A stored message as listed on an order or patient page (no raw text)."""

    id: int
    received_at: datetime
    message_type: str
    sending_app: str
    control_id: str
    status: str
    ack_code: str


@dataclass(frozen=True, slots=True)
class OrderDetail:
    """Everything the order page shows."""

    order: Order
    patient: Patient | None
    trace: tuple[tuple[TraceEvent, int | None], ...]  # event, message id it came from
    reports: tuple[Report, ...]
    findings: tuple[tuple[int, Finding], ...]
    messages: tuple[MessageRef, ...]


@dataclass(frozen=True, slots=True)
class PatientDetail:
    """Everything the patient page shows."""

    patient: Patient
    visits: tuple[Visit, ...]
    orders: tuple[Order, ...]
    duplicates: tuple[tuple[int, Finding], ...]  # open potential_duplicate_patient
    merged_from: tuple[Patient, ...]  # tombstones merged into this patient


@dataclass(frozen=True, slots=True)
class OrderQuery:
    """Order search filters (all optional; combined with AND)."""

    accession: str = ""
    mrn: str = ""  # a PID-3 value, any authority
    name: str = ""  # family name prefix, optionally "family^given" / "family, given"
    study_uid: str = ""
    status: str = ""
    date: str = ""  # YYYYMMDD of a scheduled procedure step

    def empty(self) -> bool:
        return not any(
            (self.accession, self.mrn, self.name, self.study_uid, self.status, self.date)
        )


def clamp(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))


def _prefix_range(column: Any, prefix: str) -> Any:
    """``column LIKE prefix%`` as a range both databases answer from a B-tree index."""
    return and_(column >= prefix, column < prefix + "\U0010ffff")


def _split_name(name: str) -> tuple[str, str]:
    for sep in ("^", ","):
        if sep in name:
            family, given = name.split(sep, 1)
            return family.strip().casefold(), given.strip().casefold()
    return name.strip().casefold(), ""


def patients_by_id(conn: Connection, ids: Sequence[str]) -> dict[str, Patient]:
    if not ids:
        return {}
    rows = conn.execute(select(wf_patients.c.doc).where(wf_patients.c.id.in_(set(ids))))
    found = (codec.decode_patient(r.doc) for r in rows)
    return {p.id: p for p in found}


def _order_filters(q: OrderQuery) -> list[Any]:
    o = wf_orders.c
    where: list[Any] = []
    # The unique indexes on these numbers are partial (``<> ''``): SQLite uses one only
    # when the query repeats that condition.
    if q.accession:
        where += [o.accession == q.accession.strip(), o.accession != ""]
    if q.study_uid:
        where += [o.study_instance_uid == q.study_uid.strip(), o.study_instance_uid != ""]
    if q.status:
        where.append(o.status == q.status)
    if q.mrn:
        ids = select(wf_patient_identifiers.c.patient_id).where(
            wf_patient_identifiers.c.value == q.mrn.strip()
        )
        where.append(o.patient_id.in_(ids.scalar_subquery()))
    if q.date:
        ids = select(wf_procedure_steps.c.order_id).where(
            wf_procedure_steps.c.start_date == q.date.replace("-", "")
        )
        where.append(o.id.in_(ids.scalar_subquery()))
    if q.name:
        family, _ = _split_name(q.name)
        ids = select(wf_patients.c.id).where(_prefix_range(wf_patients.c.family, family))
        where.append(o.patient_id.in_(ids.scalar_subquery()))
    return where


def _time_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    at, sep, ident = cursor.partition(SEP)
    if not sep:
        raise ValueError("invalid cursor")
    return datetime.fromisoformat(at), ident


def search_orders(
    conn: Connection, q: OrderQuery, cursor: str | None = None, limit: int = 50
) -> tuple[list[OrderRow], str | None]:
    """Orders matching ``q``, most recently changed first; ``(rows, next_cursor)``.
    The given-name part of ``q.name`` is checked on the decoded patient (after the
    indexed family-name prefix)."""
    limit = clamp(limit)
    o = wf_orders.c
    stmt: Select[Any] = select(o.doc, o.updated_at, o.id).where(*_order_filters(q))
    after = _time_cursor(cursor)
    if after is not None:
        at, ident = after
        stmt = stmt.where(or_(o.updated_at < at, and_(o.updated_at == at, o.id < ident)))
    stmt = stmt.order_by(o.updated_at.desc(), o.id.desc())
    _, given = _split_name(q.name)
    rows: list[OrderRow] = []
    batch = limit + 1 if not given else (limit + 1) * 20
    raw = conn.execute(stmt.limit(batch)).all()
    people = patients_by_id(conn, [r.doc["patient_id"] for r in raw])
    for r in raw:
        order = codec.decode_order(r.doc)
        patient = people.get(order.patient_id)
        if given and (
            patient is None or not patient.demographics.name.given.casefold().startswith(given)
        ):
            continue
        rows.append(OrderRow(order, patient, r.updated_at))
    page = rows[:limit]
    more = len(rows) > limit
    last = page[-1] if page else None
    nxt = (
        f"{last.updated_at.isoformat()}{SEP}{last.order.id}"
        if more and last is not None and last.updated_at
        else None
    )
    return page, nxt


def recent_orders(conn: Connection, limit: int = 50) -> list[OrderRow]:
    """The orders most recently touched (by the trace's newest events; the PK index)."""
    limit = clamp(limit)
    ids: list[str] = []
    t = wf_trace_events.c
    rows = conn.execute(
        select(t.order_id).where(t.order_id != "").order_by(t.id.desc()).limit(limit * 10)
    )
    for r in rows:
        if r.order_id not in ids:
            ids.append(r.order_id)
        if len(ids) == limit:
            break
    return [o for i in ids for o in _orders_by_id(conn, [i])]


def _orders_by_id(conn: Connection, ids: Sequence[str]) -> list[OrderRow]:
    o = wf_orders.c
    raw = conn.execute(select(o.doc, o.updated_at).where(o.id.in_(set(ids)))).all()
    orders = [(codec.decode_order(r.doc), r.updated_at) for r in raw]
    people = patients_by_id(conn, [x.patient_id for x, _ in orders])
    return [OrderRow(x, people.get(x.patient_id), at) for x, at in orders]


def order_id_for(conn: Connection, key: str) -> str | None:
    """An order's id from its id or accession number."""
    o = wf_orders.c
    row = conn.execute(select(o.id).where(o.id == key)).first()
    if row is None:
        row = conn.execute(select(o.id).where(o.accession == key, o.accession != "")).first()
    return str(row.id) if row else None


def _message_refs(conn: Connection, ids: Sequence[int]) -> list[MessageRef]:
    if not ids:
        return []
    m = messages.c
    rows = conn.execute(
        select(
            m.id, m.received_at, m.message_type, m.sending_app, m.control_id, m.status, m.ack_code
        )
        .where(m.id.in_(set(ids)))
        .order_by(m.id)
    )
    return [
        MessageRef(
            r.id, r.received_at, r.message_type, r.sending_app, r.control_id, r.status, r.ack_code
        )
        for r in rows
    ]


def messages_for(
    conn: Connection, kind: str, values: Sequence[str], limit: int = 200
) -> list[MessageRef]:
    """Messages whose search keys (``patient`` PID-3 values or ``accession``) match."""
    from accord.store.schema import message_keys

    k = message_keys.c
    vals = [v for v in values if v]
    if not vals:
        return []
    rows = conn.execute(
        select(k.message_id)
        .where(k.kind == kind, k.value.in_(vals))
        .order_by(k.message_id.desc())
        .limit(limit)
    )
    return _message_refs(conn, sorted({r.message_id for r in rows}))


def _trace_message_ids(conn: Connection, events: Sequence[TraceEvent]) -> list[int | None]:
    """The stored message each trace event came from (``SENDER/MSH-10`` refs)."""
    found: list[int | None] = []
    m = messages.c
    for e in events:
        sender, sep, control_id = e.message.rpartition("/")
        ident = None
        if sep and control_id:
            row = conn.execute(
                select(m.id, m.sending_app, m.sending_facility)
                .where(m.control_id == control_id, m.status != "duplicate")
                .order_by(m.id.desc())
                .limit(20)
            ).all()
            for r in row:
                if sender in (r.sending_app, f"{r.sending_app}^{r.sending_facility}"):
                    ident = int(r.id)
                    break
        found.append(ident)
    return found


def order_detail(conn: Connection, order_id: str) -> OrderDetail | None:
    """The order page's data, or None when there is no such order."""
    o = wf_orders.c
    row = conn.execute(select(o.doc).where(o.id == order_id)).first()
    if row is None:
        return None
    order = codec.decode_order(row.doc)
    patient = patients_by_id(conn, [order.patient_id]).get(order.patient_id)
    t = wf_trace_events.c
    conds = [t.order_id == order.id] + ([t.accession == order.accession] if order.accession else [])
    ev_rows = conn.execute(select(t.id, t.doc).where(or_(*conds)).order_by(t.id)).all()
    events = [codec.decode_trace(r.doc) for r in ev_rows]
    events.sort(key=lambda e: e.at)
    trace = tuple(zip(events, _trace_message_ids(conn, events), strict=True))
    rep = conn.execute(select(wf_reports.c.doc).where(wf_reports.c.order_id == order.id))
    f = wf_findings.c
    fnd = (
        conn.execute(select(f.id, f.doc).where(f.accession == order.accession).order_by(f.id)).all()
        if order.accession
        else []
    )
    return OrderDetail(
        order,
        patient,
        trace,
        tuple(codec.decode_report(r.doc) for r in rep),
        tuple((r.id, codec.decode_finding(r.doc)) for r in fnd),
        tuple(messages_for(conn, "accession", [order.accession])),
    )


def patient_detail(conn: Connection, patient_id: str) -> PatientDetail | None:
    """The patient page's data, or None when there is no such patient."""
    row = conn.execute(select(wf_patients.c.doc).where(wf_patients.c.id == patient_id)).first()
    if row is None:
        return None
    patient = codec.decode_patient(row.doc)
    visits = conn.execute(
        select(wf_visits.c.doc)
        .where(wf_visits.c.patient_id == patient.id)
        .order_by(wf_visits.c.visit_number)
    )
    orders = conn.execute(
        select(wf_orders.c.doc)
        .where(wf_orders.c.patient_id == patient.id)
        .order_by(wf_orders.c.updated_at.desc())
        .limit(500)
    )
    f = wf_findings.c
    dups = conn.execute(
        select(f.id, f.doc)
        .where(
            f.patient_id == patient.id,
            f.kind == "potential_duplicate_patient",
            f.resolution == "open",
        )
        .order_by(f.id)
    )
    tomb = conn.execute(select(wf_patients.c.doc).where(wf_patients.c.merged_into == patient.id))
    return PatientDetail(
        patient,
        tuple(codec.decode_visit(r.doc) for r in visits),
        tuple(codec.decode_order(r.doc) for r in orders),
        tuple((r.id, codec.decode_finding(r.doc)) for r in dups),
        tuple(codec.decode_patient(r.doc) for r in tomb),
    )


def patient_messages(conn: Connection, patient: Patient) -> list[MessageRef]:
    """Messages that named any of the patient's PID-3 identifiers."""
    return messages_for(conn, "patient", [i.value for i in patient.identifiers])


def deliveries_of(conn: Connection, message_id: int) -> list[dict[str, Any]]:
    """Outbox rows a message produced (destination, status, attempts, MSH-10)."""
    b = outbox.c
    rows = conn.execute(
        select(
            b.id,
            b.destination,
            b.kind,
            b.status,
            b.attempts,
            b.control_id,
            b.delivered_at,
            b.last_error,
        )
        .where(b.source_message_id == message_id)
        .order_by(b.id)
    )
    return [dict(r._mapping) for r in rows]
