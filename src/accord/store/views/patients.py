"""Patients as the console and the JSON API show them: search, lookups by identifier,
and the patient page (visits, orders, open duplicate findings, merge history).

Rules:
- Every lookup is indexed: by id (primary key), by PID-3 value (the identifier index,
  optionally with its CX-4 authority), by family-name prefix (casefolded, the family
  index as a range).
- Lists are keyset-paginated: by (family, id) for a name search, by id otherwise.
- Patients are read by id in one place (``store.workflow.repository.patients_by_id``)
  for every page that shows them beside orders.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, or_, select

from accord.store.db import Database
from accord.store.db.paging import MAX_LIMIT, SEP, clamp, cut, split_cursor
from accord.store.records import Page
from accord.store.schema.workflow import wf_patient_identifiers, wf_patients, wf_visits
from accord.store.views.findings import StoredFinding, finding_rows
from accord.store.views.orders import OrderQuery, order_rows, starts_with
from accord.store.workflow import codec
from accord.store.workflow.repository import patients_by_id
from accord.workflow.findings import FindingKind, Resolution
from accord.workflow.model import Order, Patient, Visit

# What the patient page shows at most of each list (a patient with more is rare).
ORDERS_SHOWN = 200
VISITS_SHOWN = 200
MERGED_SHOWN = 100
DUPLICATES_SHOWN = 50


@dataclass(frozen=True, slots=True)
class PatientDetail:
    """Everything the patient page (and ``GET /api/patients/{id}``) shows."""

    patient: Patient
    visits: tuple[Visit, ...]
    orders: tuple[Order, ...]  # most recently changed first
    duplicates: tuple[StoredFinding, ...]  # open potential_duplicate_patient findings
    merged_from: tuple[Patient, ...]  # patients merged into this one


def _holders(conn: Connection, values: Iterable[str], authority: str | None = None
             ) -> list[str]:
    i = wf_patient_identifiers.c
    wanted = sorted({v for v in values if v})
    if not wanted:
        return []
    stmt = select(i.patient_id).where(i.value.in_(wanted))
    if authority is not None:
        stmt = stmt.where(i.authority == authority)
    return sorted({r.patient_id for r in conn.execute(stmt.limit(MAX_LIMIT))})


class PatientViews:
    """Patients of one database (see the module rules)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def get(self, patient_id: str) -> Patient | None:
        return self.by_id([patient_id]).get(patient_id)

    def by_id(self, ids: Iterable[str]) -> dict[str, Patient]:
        with self._db.read() as conn:
            return patients_by_id(conn, ids)

    def ids_by_identifier(self, value: str, authority: str | None = None) -> list[str]:
        """Patients holding PID-3 ``value`` (with CX-4 ``authority`` when given)."""
        with self._db.read() as conn:
            return _holders(conn, [value], authority)

    def ids_naming(self, values: Iterable[str]) -> list[str]:
        """Patients holding any of these PID-3 values, any authority (the patients a
        message names)."""
        with self._db.read() as conn:
            return _holders(conn, values)

    def search(self, *, identifier: str | None = None, authority: str | None = None,
               family: str | None = None, cursor: str | None = None,
               limit: int = 100) -> Page[Patient]:
        """Patients by identifier, by family-name prefix (casefolded), or all (by id)."""
        limit = clamp(limit)
        p = wf_patients.c
        where: list[ColumnElement[bool]] = []
        with self._db.read() as conn:
            if identifier:
                where.append(p.id.in_(_holders(conn, [identifier], authority)))
            if family:
                where.append(starts_with(p.family, family.casefold()))
                after = split_cursor(cursor, 2)
                if after:
                    where.append(or_(p.family > after[0],
                                     and_(p.family == after[0], p.id > after[1])))
                order: list[Any] = [p.family, p.id]
            else:
                after = split_cursor(cursor, 1)
                if after:
                    where.append(p.id > after[0])
                order = [p.id]
            rows = conn.execute(select(p.family, p.id, p.doc).where(*where)
                                .order_by(*order).limit(limit + 1)).all()
        page, nxt = cut(rows, limit, (lambda r: f"{r.family}{SEP}{r.id}") if family
                        else (lambda r: str(r.id)))
        return Page(tuple(codec.decode_patient(r.doc) for r in page), nxt)

    def detail(self, patient_id: str) -> PatientDetail | None:
        """The patient page's data, or None when there is no such patient."""
        with self._db.read() as conn:
            patient = patients_by_id(conn, [patient_id]).get(patient_id)
            if patient is None:
                return None
            visits = conn.execute(
                select(wf_visits.c.doc).where(wf_visits.c.patient_id == patient.id)
                .order_by(wf_visits.c.visit_number).limit(VISITS_SHOWN))
            orders = order_rows(conn, OrderQuery(patient_ids=(patient.id,)),
                                limit=ORDERS_SHOWN)
            duplicates = finding_rows(
                conn, kind=FindingKind.POTENTIAL_DUPLICATE_PATIENT.value,
                resolution=Resolution.OPEN.value, patient_id=patient.id,
                limit=DUPLICATES_SHOWN)
            merged = conn.execute(
                select(wf_patients.c.doc).where(wf_patients.c.merged_into == patient.id)
                .order_by(wf_patients.c.id).limit(MERGED_SHOWN))
            return PatientDetail(
                patient, tuple(codec.decode_visit(r.doc) for r in visits),
                tuple(r.order for r in orders.items), duplicates.items,
                tuple(codec.decode_patient(r.doc) for r in merged))
