"""Read queries for the console and the JSON API over the workflow tables (issue 6).

Rules:
- Every list is keyset-paginated (``cursor`` is the sort key of the last item, opaque to
  callers) and filtered on indexed columns; nothing counts a whole table per page.
- Values come back as the workflow's own frozen dataclasses (decoded from ``doc``), so
  the API and the console render one model.
- The only write here is :meth:`WebQueries.resolve_finding` (a person's decision).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal_column, or_, select

from accord.store import Page
from accord.store.schema.workflow import (
    wf_findings,
    wf_orders,
    wf_patient_identifiers,
    wf_patients,
    wf_procedure_steps,
    wf_trace_events,
    wf_visits,
)
from accord.store.sql_area import (
    MAX_LIMIT,
    clamp,
    cursor_time,
    id_cursor,
    split_cursor,
)
from accord.store.sql_web_findings import DuplicatePair, FindingQueries, StoredFinding
from accord.store.workflow import codec
from accord.workflow.findings import Resolution
from accord.workflow.model import Order, Patient, ProcedureStep, Visit
from accord.workflow.status import ON_WORKLIST
from accord.workflow.trace import TraceEvent


@dataclass(frozen=True, slots=True)
class WorklistRow:
    """One scheduled procedure step with its order and patient, as the MWL serves it."""

    order: Order
    patient: Patient | None
    step: ProcedureStep


class WebQueries(FindingQueries):
    """The console's and API's queries (see the module rules)."""

    # -- counts -----------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Whole-store counts for ``/api/stats``: ``patients`` (live), ``orders``,
        ``orders_<status>``, ``findings_open``, ``findings_<kind>`` (open ones)."""
        f = wf_findings.c
        out: dict[str, int] = {"patients": 0, "orders": 0, "findings_open": 0}
        with self.read() as conn:
            out["patients"] = int(
                conn.scalar(
                    select(func.count())
                    .select_from(wf_patients)
                    .where(wf_patients.c.merged_into.is_(None))
                )
                or 0
            )
            for status, n in conn.execute(
                select(wf_orders.c.status, func.count()).group_by(wf_orders.c.status)
            ):
                out["orders"] += n
                out[f"orders_{status}"] = n
            for kind, n in conn.execute(
                select(f.kind, func.count())
                .where(f.resolution == Resolution.OPEN.value)
                .group_by(f.kind)
            ):
                out["findings_open"] += n
                out[f"findings_{kind}"] = n
        return out

    # -- patients ---------------------------------------------------------------------
    def patients_by_id(self, ids: Iterable[str]) -> dict[str, Patient]:
        wanted = sorted(set(i for i in ids if i))
        found: dict[str, Patient] = {}
        with self.read() as conn:
            for start in range(0, len(wanted), 500):
                rows = conn.execute(
                    select(wf_patients.c.doc).where(
                        wf_patients.c.id.in_(wanted[start : start + 500])
                    )
                )
                for r in rows:
                    p = codec.decode_patient(r.doc)
                    found[p.id] = p
        return found

    def patient(self, patient_id: str) -> Patient | None:
        return self.patients_by_id([patient_id]).get(patient_id)

    def patient_ids_by_identifier(self, value: str, authority: str | None = None) -> list[str]:
        """Patients holding PID-3 ``value`` (with CX-4 ``authority`` when given)."""
        i = wf_patient_identifiers.c
        stmt = select(i.patient_id).where(i.value == value)
        if authority is not None:
            stmt = stmt.where(i.authority == authority)
        with self.read() as conn:
            return sorted({r.patient_id for r in conn.execute(stmt.limit(MAX_LIMIT))})

    def patients(
        self,
        *,
        identifier: str | None = None,
        authority: str | None = None,
        family: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page[Patient]:
        """Patients by identifier, by family-name prefix (casefolded), or all (by id)."""
        limit = clamp(limit)
        p = wf_patients.c
        where: list[ColumnElement[bool]] = []
        if identifier:
            ids = self.patient_ids_by_identifier(identifier, authority)
            where.append(p.id.in_(ids))
        if family:
            prefix = family.casefold()
            where.append(and_(p.family >= prefix, p.family < prefix + "\U0010ffff"))
            after = split_cursor(cursor, 2)
            if after:
                where.append(or_(p.family > after[0], and_(p.family == after[0], p.id > after[1])))
            order: list[Any] = [p.family, p.id]
        else:
            after = split_cursor(cursor, 1)
            if after:
                where.append(p.id > after[0])
            order = [p.id]
        with self.read() as conn:
            rows = conn.execute(
                select(p.family, p.id, p.doc).where(*where).order_by(*order).limit(limit + 1)
            ).all()
        items = tuple(codec.decode_patient(r.doc) for r in rows[:limit])
        nxt = None
        if len(rows) > limit:
            last = rows[limit - 1]
            nxt = f"{last.family}|{last.id}" if family else str(last.id)
        return Page(items, nxt)

    def visits_of(self, patient_id: str, limit: int = 200) -> list[Visit]:
        with self.read() as conn:
            rows = conn.execute(
                select(wf_visits.c.doc)
                .where(wf_visits.c.patient_id == patient_id)
                .order_by(wf_visits.c.visit_number)
                .limit(limit)
            )
            return [codec.decode_visit(r.doc) for r in rows]

    def merged_into(self, patient_id: str, limit: int = 100) -> list[Patient]:
        """Tombstones merged into this patient (its merge history)."""
        with self.read() as conn:
            rows = conn.execute(
                select(wf_patients.c.doc)
                .where(wf_patients.c.merged_into == patient_id)
                .order_by(wf_patients.c.id)
                .limit(limit)
            )
            return [codec.decode_patient(r.doc) for r in rows]

    # -- orders -----------------------------------------------------------------------
    def order(self, order_id: str) -> Order | None:
        with self.read() as conn:
            row = conn.execute(select(wf_orders.c.doc).where(wf_orders.c.id == order_id)).first()
        return codec.decode_order(row.doc) if row else None

    def orders(
        self,
        *,
        accession: str | None = None,
        patient_ids: Sequence[str] | None = None,
        status: str | None = None,
        study_instance_uid: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page[Order]:
        """Orders matching every filter, most recently changed first."""
        limit = clamp(limit)
        o = wf_orders.c
        where: list[ColumnElement[bool]] = []
        if status:
            where.append(o.status == status)
        for col, value in ((o.accession, accession), (o.study_instance_uid, study_instance_uid)):
            if value:
                # Repeat the partial index's own condition, or SQLite cannot use it.
                where.extend((col == value, col != literal_column("''")))
        if patient_ids is not None:
            where.append(o.patient_id.in_(list(patient_ids)))
        after = split_cursor(cursor, 2)
        if after:  # updated_at is set on every save of an order
            at = cursor_time(after[0])
            where.append(or_(o.updated_at < at, and_(o.updated_at == at, o.id < after[1])))
        stmt = (
            select(o.updated_at, o.id, o.doc)
            .where(*where)
            .order_by(o.updated_at.desc(), o.id.desc())
            .limit(limit + 1)
        )
        with self.read() as conn:
            rows = conn.execute(stmt).all()
        items = tuple(codec.decode_order(r.doc) for r in rows[:limit])
        nxt = None
        if len(rows) > limit:
            last = rows[limit - 1]
            nxt = f"{last.updated_at.isoformat()}|{last.id}"
        return Page(items, nxt)

    def trace(self, order_id: str, accession: str = "", limit: int = 5000) -> list[TraceEvent]:
        """The order's trace events (by order id and by accession), oldest first."""
        t = wf_trace_events.c
        cond = t.order_id == order_id
        if accession:
            cond = or_(cond, t.accession == accession)
        with self.read() as conn:
            rows = conn.execute(select(t.id, t.doc).where(cond).order_by(t.id).limit(limit))
            events = [(r.id, codec.decode_trace(r.doc)) for r in rows]
        events.sort(key=lambda e: (e[1].at, e[0]))
        return [e for _, e in events]

    # -- worklist ---------------------------------------------------------------------
    def worklist(
        self,
        *,
        station: str | None = None,
        modality: str | None = None,
        date: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page[WorklistRow]:
        """Scheduled procedure steps the MWL serves (order scheduled or arrived, not
        held), by station AE, modality and SPS start date (YYYYMMDD), in start order."""
        limit = clamp(limit)
        s = wf_procedure_steps.c
        where: list[ColumnElement[bool]] = [s.status.in_(sorted(v.value for v in ON_WORKLIST))]
        for col, value in ((s.station_ae, station), (s.modality, modality), (s.start_date, date)):
            if value:
                where.append(col == value)
        after = split_cursor(cursor, 4)
        if after:
            where.append(_after_step(after))
        stmt = (
            select(s.start_date, s.start_at, s.order_id, s.sps_id, wf_orders.c.doc)
            .join(wf_orders, wf_orders.c.id == s.order_id)
            .where(*where, wf_orders.c.held.is_(False))
            .order_by(s.start_date, s.start_at, s.order_id, s.sps_id)
            .limit(limit + 1)
        )
        with self.read() as conn:
            rows = conn.execute(stmt).all()
        items = self._worklist_rows(rows[:limit])
        nxt = None
        if len(rows) > limit:
            last = rows[limit - 1]
            at = last.start_at.isoformat() if last.start_at is not None else ""
            nxt = f"{last.start_date}|{at}|{last.order_id}|{last.sps_id}"
        return Page(tuple(items), nxt)

    def _worklist_rows(self, rows: Sequence[Any]) -> list[WorklistRow]:
        orders = [(r, codec.decode_order(r.doc)) for r in rows]
        patients = self.patients_by_id(o.patient_id for _, o in orders)
        items = []
        for r, order in orders:
            step = next((st for st in order.steps if st.sps_id == r.sps_id), None)
            if step is not None:
                items.append(WorklistRow(order, patients.get(order.patient_id), step))
        return items

def _after_step(after: list[str]) -> ColumnElement[bool]:
    """Keyset condition after (start date, start time, order id, SPS ID). Steps without
    a start time have start date "" (they come first, all with a NULL start time)."""
    s = wf_procedure_steps.c
    date, at, order_id, sps_id = after
    same_step = or_(s.order_id > order_id, and_(s.order_id == order_id, s.sps_id > sps_id))
    if not date:
        return or_(s.start_date > "", and_(s.start_date == "", same_step))
    when = cursor_time(at)
    return or_(s.start_date > date, and_(s.start_date == date, or_(
        s.start_at > when, and_(s.start_at == when, same_step))))


__all__ = ["DuplicatePair", "StoredFinding", "WebQueries", "WorklistRow", "clamp", "id_cursor"]
