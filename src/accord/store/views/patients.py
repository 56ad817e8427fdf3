"""Patients as the console and the JSON API show them: search, lookups by identifier,
and the patient page (visits, orders, open duplicate findings, merge history).

Rules:
- Every lookup is indexed: by id (primary key), by PID-3 value (the identifier index,
  optionally with its CX-4 authority; forgiving as the order search is: any case, a
  suffix, a fragment naming one value), by name (the readings of
  ``orders.name_readings``: family-name prefixes, casefolded, as ranges of the family
  index; a given name checked on the decoded patient, reading on until the page is full).
- Lists are keyset-paginated: by (family, id) for a name search, by id otherwise.
- Patients are read by id in one place (``store.workflow.repository.patients_by_id``)
  for every page that shows them beside orders.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, or_, select

from accord.store.db import Database
from accord.store.db.paging import MAX_LIMIT, SEP, clamp, cut, split_cursor
from accord.store.records import Page
from accord.store.schema.workflow import wf_patient_identifiers, wf_patients, wf_visits
from accord.store.views.findings import StoredFinding, finding_rows
from accord.store.views.orders import (
    OrderQuery,
    family_filter,
    holders,
    name_readings,
    named,
    order_rows,
)
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
        """Patients by identifier (forgiving), by name (``family``: any way people write
        one, see the module rules), or all (by id); both filters combine."""
        limit = clamp(limit)
        p = wf_patients.c
        where: list[ColumnElement[bool]] = []
        readings = name_readings(family or "")
        with self._db.read() as conn:
            if identifier:
                typed = f"{identifier}^^^{authority}" if authority else identifier
                where.append(p.id.in_(holders(conn, typed).scalar_subquery()))
            if readings:
                where.append(family_filter(p.family, readings))
            after = split_cursor(cursor, 2 if readings else 1)
            return self._read(conn, where, after, readings, limit)

    @staticmethod
    def _read(conn: Connection, where: list[ColumnElement[bool]], after: list[str] | None,
              readings: Sequence[tuple[str, str]], limit: int) -> Page[Patient]:
        """Read on until the page is full (a given name is checked here, see the rules):
        by (family, id) for a name search, else by id."""
        p = wf_patients.c
        order: list[Any] = [p.family, p.id] if readings else [p.id]
        checked = any(given for _, given in readings)
        found: list[tuple[Any, Patient]] = []
        while True:
            cond = list(where)
            if after is not None and len(after) == 2:
                cond.append(or_(p.family > after[0], and_(p.family == after[0],
                                                          p.id > after[1])))
            elif after is not None:
                cond.append(p.id > after[0])
            rows = conn.execute(select(p.family, p.id, p.doc).where(*cond)
                                .order_by(*order).limit(limit + 1)).all()
            for r in rows:
                patient = codec.decode_patient(r.doc)
                if not checked or named(patient, readings):
                    found.append((r, patient))
            if len(found) > limit or len(rows) <= limit:
                break
            last = rows[-1]
            after = [last.family, last.id] if len(order) == 2 else [last.id]
        page, nxt = cut(found, limit, lambda pair: f"{pair[0].family}{SEP}{pair[0].id}"
                        if readings else str(pair[0].id))
        return Page(tuple(patient for _, patient in page), nxt)

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
