"""Orders as the console and the JSON API show them: the order search, one order with
its patient, and an order's trace.

Rules:
- Every filter is driven by an index (accession, Study Instance UID, status, a PID-3
  value, a family-name prefix, the procedure step's date and modality); nothing scans
  the orders table, so a page answers in milliseconds at a million orders.
- Accession and MRN are forgiving (``accord.store.db.search``): the value as typed, else
  in any case, else a suffix, else a fragment that names one value only.
- A name is read every way people write one (:func:`name_readings`): "Dietz", "Dietz,
  Ines", "dietz^ines", "Ines Dietz" (given name first) or "Dietz Ines". The family
  names narrow the search on their index; a given name is checked on the decoded
  patient, and the search reads on until the page is full, so a page is never short
  while more orders match.
- Lists are most recently changed first, keyset-paginated on (updated_at, id): every
  save of an order sets ``updated_at``.
- Rows come back as the workflow's frozen values (decoded from ``doc``) with their
  patient; nothing here renders or knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, literal_column, or_, select

from accord.store.db import Database
from accord.store.db.paging import MAX_LIMIT, SEP, clamp, cursor_time, cut, split_cursor
from accord.store.db.search import forgiving
from accord.store.gateway.outbox import list_rows, outbox_filters
from accord.store.records import OutboxRow, Page
from accord.store.schema import messages
from accord.store.schema.workflow import (
    wf_orders,
    wf_patient_identifiers,
    wf_patients,
    wf_procedure_steps,
    wf_reports,
    wf_trace_events,
)
from accord.store.views.findings import StoredFinding, finding_rows
from accord.store.workflow import codec
from accord.store.workflow.repository import patients_by_id
from accord.workflow.model import Order, Patient, Report
from accord.workflow.trace import TraceEvent

TRACE_LIMIT = 5000  # events of one order: years of changes, still one page
DELIVERIES_SHOWN = 1000  # outbound messages of one order on its page


@dataclass(frozen=True, slots=True)
class OrderQuery:
    """Order search filters, all optional and combined with AND."""

    accession: str = ""
    study_uid: str = ""
    status: str = ""
    mrn: str = ""  # a PID-3 value, any authority
    name: str = ""  # a patient's name as people write it (:func:`name_readings`)
    date: str = ""  # YYYYMMDD (or YYYY-MM-DD) of a scheduled procedure step
    patient_ids: tuple[str, ...] | None = None  # Accord patient ids
    modality: str = ""  # of a procedure step (with ``date``: of a step that day)

    def empty(self) -> bool:
        """No filter at all: every order, most recently changed first."""
        return self.patient_ids is None and not any(
            (self.accession, self.study_uid, self.status, self.mrn, self.name, self.date,
             self.modality))


@dataclass(frozen=True, slots=True)
class OrderRow:
    """An order as listed: the order, its patient (None if unknown), its last change."""

    order: Order
    patient: Patient | None
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class OrderDetail:
    """Everything the order page shows besides the order's messages (the gateway's)."""

    order: Order
    patient: Patient | None
    trace: tuple[tuple[TraceEvent, int | None], ...]  # event, the message it came from
    reports: tuple[Report, ...]
    findings: tuple[StoredFinding, ...]
    deliveries: tuple[OutboxRow, ...] = ()  # what went out about the order, oldest first


def starts_with(column: Any, prefix: str) -> ColumnElement[bool]:
    """``column LIKE 'prefix%'`` as a range, which both databases answer from a B-tree
    index (LIKE uses one only under conditions that differ between them)."""
    return and_(column >= prefix, column < prefix + "\U0010ffff")


def split_name(name: str) -> tuple[str, str]:
    """Family and given name of a search, casefolded (``"family^given"``, ``"f, g"``)."""
    for sep in ("^", ","):
        if sep in name:
            family, given = name.split(sep, 1)
            return family.strip().casefold(), given.strip().casefold()
    return name.strip().casefold(), ""


def name_readings(name: str) -> tuple[tuple[str, str], ...]:
    """Every (family prefix, given prefix) a typed name may mean, casefolded:
    ``"Dietz^Ines"`` and ``"Dietz, Ines"`` say which is which; ``"Ines Dietz"`` may be
    given-then-family or family-then-given (or one family name with a space)."""
    text = " ".join(name.split())
    if not text:
        return ()
    if "^" in text or "," in text:
        family, given = split_name(text)
        return ((family, given),) if family else ()
    words = text.casefold().split(" ")
    readings = [(" ".join(words), "")]
    for k in range(1, len(words)):
        readings.append((" ".join(words[k:]), " ".join(words[:k])))  # Ines Dietz
        readings.append((" ".join(words[:k]), " ".join(words[k:])))  # Dietz Ines
    return tuple(dict.fromkeys(readings))


def named(patient: Patient | None, readings: Sequence[tuple[str, str]]) -> bool:
    """Whether ``patient``'s name is one of ``readings`` (prefixes, casefolded)."""
    if patient is None:
        return False
    n = patient.demographics.name
    family, given = n.family.casefold(), n.given.casefold()
    return any(family.startswith(f) and given.startswith(g) for f, g in readings)


def family_filter(column: Any, readings: Sequence[tuple[str, str]]) -> ColumnElement[bool]:
    """The family-name ranges of ``readings`` on an indexed, casefolded column."""
    return or_(*(starts_with(column, family) for family in sorted({f for f, _ in readings})))


def parse_identifier(text: str) -> tuple[str, str | None]:
    """A typed identifier: ``ID``, ``ID^^^AUTH`` (CX-1 and CX-4, as in PID-3) or
    ``ID · AUTH`` (as the console shows one)."""
    text = text.strip()
    for sep in ("^^^", " · "):
        if sep in text:
            value, _, rest = text.partition(sep)
            return value.strip(), rest.split("^")[0].strip() or None
    return text, None


def holders(conn: Connection, typed: str) -> Select[Any]:
    """The ids of patients holding the PID-3 value ``typed`` names, as a subquery: the
    value as typed, else forgiving; of the authority ``typed`` names, if any."""
    i = wf_patient_identifiers.c
    value, authority = parse_identifier(typed)
    of = [i.authority == authority] if authority else []
    if conn.scalar(select(i.value).where(i.value == value, *of).limit(1)) is not None:
        return select(i.patient_id).where(i.value == value, *of)
    keys = forgiving(conn, i.value_rev, value)
    return select(i.patient_id).where(i.value_rev.in_(keys), *of)


def _accessions(conn: Connection, typed: str) -> list[ColumnElement[bool]]:
    """The accession filter: as typed (the unique index), else forgiving on the keys."""
    o = wf_orders.c
    if conn.scalar(select(o.id).where(*_numbered(o.accession, typed)).limit(1)) is not None:
        return _numbered(o.accession, typed)
    return [o.accession_rev.in_(forgiving(conn, o.accession_rev, typed))]


def _numbered(column: Any, value: str) -> list[ColumnElement[bool]]:
    # The unique indexes on order numbers are partial (``<> ''``): SQLite uses one only
    # when the query repeats that condition.
    return [column == value, column != literal_column("''")]


def _filters(conn: Connection, q: OrderQuery) -> list[ColumnElement[bool]]:
    o, s = wf_orders.c, wf_procedure_steps.c
    where: list[ColumnElement[bool]] = []
    if q.accession:
        where += _accessions(conn, q.accession.strip())
    if q.study_uid:
        where += _numbered(o.study_instance_uid, q.study_uid)
    if q.status:
        where.append(o.status == q.status)
    if q.patient_ids is not None:
        where.append(o.patient_id.in_(list(q.patient_ids)))
    if q.mrn:
        where.append(o.patient_id.in_(holders(conn, q.mrn).scalar_subquery()))
    step: list[ColumnElement[bool]] = []
    if q.date:
        step.append(s.start_date == q.date.replace("-", ""))
    if q.modality:
        step.append(s.modality == q.modality)
    if step:
        where.append(o.id.in_(select(s.order_id).where(*step).scalar_subquery()))
    readings = name_readings(q.name)
    if q.name:
        people = select(wf_patients.c.id).where(family_filter(wf_patients.c.family, readings))
        where.append(o.patient_id.in_(people.scalar_subquery()))
    return where


def _after(cursor: str | None) -> ColumnElement[bool] | None:
    after = split_cursor(cursor, 2)
    if not after:
        return None
    o = wf_orders.c
    at = cursor_time(after[0])
    return or_(o.updated_at < at, and_(o.updated_at == at, o.id < after[1]))


def _key(row: OrderRow) -> str:
    at = row.updated_at.isoformat() if row.updated_at is not None else ""
    return f"{at}{SEP}{row.order.id}"


def order_rows(conn: Connection, q: OrderQuery, cursor: str | None = None,
               limit: int = 100) -> Page[OrderRow]:
    """Orders matching ``q``, most recently changed first (see the module rules)."""
    limit = clamp(limit)
    o = wf_orders.c
    base: Select[Any] = select(o.updated_at, o.id, o.doc).where(*_filters(conn, q))
    readings = name_readings(q.name)
    checked = any(given for _, given in readings)
    batch = limit + 1 if not checked else 4 * (limit + 1)
    after = _after(cursor)
    rows: list[OrderRow] = []
    while True:
        stmt = base.where(after) if after is not None else base
        raw = conn.execute(stmt.order_by(o.updated_at.desc(), o.id.desc()).limit(batch)).all()
        people = patients_by_id(conn, (r.doc["patient_id"] for r in raw))
        for r in raw:
            order = codec.decode_order(r.doc)
            patient = people.get(order.patient_id)
            if checked and not named(patient, readings):
                continue
            rows.append(OrderRow(order, patient, r.updated_at))
        if len(rows) > limit or len(raw) < batch or raw[-1].updated_at is None:
            break
        last = raw[-1]
        after = or_(o.updated_at < last.updated_at,
                    and_(o.updated_at == last.updated_at, o.id < last.id))
    page, nxt = cut(rows, limit, _key)
    if nxt is not None and page[-1].updated_at is None:
        nxt = None  # an order never saved through the repository cannot be paged past
    return Page(tuple(page), nxt)


def _order(conn: Connection, order_id: str) -> OrderRow | None:
    o = wf_orders.c
    row = conn.execute(select(o.doc, o.updated_at).where(o.id == order_id)).first()
    if row is None:
        return None
    order = codec.decode_order(row.doc)
    patient = patients_by_id(conn, [order.patient_id]).get(order.patient_id)
    return OrderRow(order, patient, row.updated_at)


def _trace(conn: Connection, order: Order) -> list[tuple[int, TraceEvent]]:
    """The order's trace events (by order id, and by accession for events that came
    before the order was known), oldest first: (row id, event)."""
    t = wf_trace_events.c
    cond = t.order_id == order.id
    if order.accession:
        cond = or_(cond, t.accession == order.accession)
    rows = conn.execute(select(t.id, t.doc).where(cond).order_by(t.id).limit(TRACE_LIMIT))
    events = [(int(r.id), codec.decode_trace(r.doc)) for r in rows]
    events.sort(key=lambda e: (e[1].at, e[0]))
    return events


def _message_ids(conn: Connection, events: Sequence[TraceEvent]) -> list[int | None]:
    """The stored message each trace event came from (its ``SENDER/MSH-10`` ref)."""
    found: list[int | None] = []
    m = messages.c
    for e in events:
        sender, sep, control_id = e.message.rpartition("/")
        ident = None
        if sep and control_id:
            candidates = conn.execute(
                select(m.id, m.sending_app, m.sending_facility)
                .where(m.control_id == control_id, m.status != "duplicate")
                .order_by(m.id.desc()).limit(20)
            ).all()
            ident = next((int(r.id) for r in candidates
                          if sender in (r.sending_app, f"{r.sending_app}^{r.sending_facility}")),
                         None)
        found.append(ident)
    return found


class OrderViews:
    """Orders of one database (see the module rules)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def search(self, q: OrderQuery, cursor: str | None = None,
               limit: int = 100) -> Page[OrderRow]:
        """Orders matching ``q``, most recently changed first; a bad cursor raises
        ValueError."""
        with self._db.read() as conn:
            return order_rows(conn, q, cursor, limit)

    def get(self, order_id: str) -> OrderRow | None:
        """One order by its Accord id, with its patient."""
        with self._db.read() as conn:
            return _order(conn, order_id)

    def trace(self, order: Order) -> list[TraceEvent]:
        """The order's trace, oldest first."""
        with self._db.read() as conn:
            return [e for _, e in _trace(conn, order)]

    def detail(self, key: str) -> OrderDetail | None:
        """The order page's data for an order id or an accession number (None when no
        order has it)."""
        o = wf_orders.c
        with self._db.read() as conn:
            found = conn.execute(select(o.id).where(o.id == key)).first() or conn.execute(
                select(o.id).where(*_numbered(o.accession, key))).first()
            row = _order(conn, str(found.id)) if found is not None else None
            if row is None:
                return None
            order = row.order
            events = [e for _, e in _trace(conn, order)]
            reports = conn.execute(select(wf_reports.c.doc)
                                   .where(wf_reports.c.order_id == order.id)
                                   .order_by(wf_reports.c.id))
            findings = (finding_rows(conn, accession=order.accession).items
                        if order.accession else ())
            return OrderDetail(
                order, row.patient,
                tuple(zip(events, _message_ids(conn, events), strict=True)),
                tuple(codec.decode_report(r.doc) for r in reports), tuple(findings),
                _deliveries(conn, order.accession))

    def by_id(self, order_ids: Iterable[str]) -> dict[str, OrderRow]:
        """The orders with these Accord ids, with their patients."""
        wanted = sorted({i for i in order_ids if i})[:MAX_LIMIT]
        if not wanted:
            return {}
        o = wf_orders.c
        with self._db.read() as conn:
            rows = conn.execute(select(o.updated_at, o.doc).where(o.id.in_(wanted))).all()
            orders = [(codec.decode_order(r.doc), r.updated_at) for r in rows]
            people = patients_by_id(conn, (order.patient_id for order, _ in orders))
        return {order.id: OrderRow(order, people.get(order.patient_id), at)
                for order, at in orders}

    def by_accession(self, accessions: Iterable[str]) -> dict[str, OrderRow]:
        """The orders with these accessions (exactly), with their patients."""
        wanted = sorted({a for a in accessions if a})[:MAX_LIMIT]
        if not wanted:
            return {}
        o = wf_orders.c
        with self._db.read() as conn:
            rows = conn.execute(select(o.updated_at, o.doc).where(
                o.accession.in_(wanted), o.accession != literal_column("''"))).all()
            orders = [(codec.decode_order(r.doc), r.updated_at) for r in rows]
            people = patients_by_id(conn, (order.patient_id for order, _ in orders))
        return {order.accession: OrderRow(order, people.get(order.patient_id), at)
                for order, at in orders}


def _deliveries(conn: Connection, accession: str) -> tuple[OutboxRow, ...]:
    """What went out about the order (``outbox.accession``), oldest first."""
    if not accession:
        return ()
    found = list_rows(conn, outbox_filters(destination=None, status=None,
                                           source_message_id=None, control_id=None,
                                           accession=accession), True, None, DELIVERIES_SHOWN)
    return found.items
