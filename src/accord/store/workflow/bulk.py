"""Bulk loading of the workflow tables: patients (with identifiers and blocking keys),
visits, orders (with procedure steps), reports, findings and trace events, tens of
thousands of rows per statement, bypassing the per-message engine.

Why: the costs that grow with the store only show on a store at age (a year of a
mid-size hospital: 500,000 patients, 1,000,000 orders). Built message by message through
MLLP that takes hours; the at-age benchmark (``bench/aging.py``) and the growth test
(``tests/store/test_growth.py``) load their stores here instead.

Rules:
- The rows are exactly those the repository (``repository.py``) writes when it saves
  the same values for the first time: same columns, same cuts, same JSON documents
  (``tests/store/workflow/test_bulk.py`` checks it against values applied through the
  engine). The patient's rows are made in one function, :func:`patient_rows`: what
  identity matching files for a patient is added there.
- New values only: plain inserts, one ``executemany`` per table per call; a value
  already stored fails the call (an IntegrityError, as a StoreError at the transaction).
- No worklist-log rows: a DICOM bridge that starts loads the worklist whole, and the
  log only carries changes from then on. The messages that brought the values (with
  their search keys, dedupe claims and delivered outbox rows) are loaded by
  :meth:`BulkLoader.history`, the gateway's bulk path.
- :func:`bulk_load` gives a loader on a write connection of its own; the caller
  commits every batch of some tens of thousands of values (memory stays flat, commits
  are few).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, insert

from accord.store.db import Database
from accord.store.db.compiled import Runner
from accord.store.db.errors import db_errors
from accord.store.db.search import search_key
from accord.store.db.sqlite import WRITE_OPTION
from accord.store.gateway.bulk import save_history
from accord.store.records import InboundMessage, OutboxItem
from accord.store.schema import (
    wf_findings,
    wf_identity_features,
    wf_orders,
    wf_patient_blocks,
    wf_patient_identifiers,
    wf_patients,
    wf_procedure_steps,
    wf_reports,
    wf_trace_events,
    wf_visits,
)
from accord.store.workflow import codec
from accord.store.workflow.identity import add_counts, features_row, identity_keys
from accord.store.workflow.repository import ORDER_KEYS, block_keys, step_rows
from accord.workflow.findings import Finding
from accord.workflow.identity.frequencies import POPULATION
from accord.workflow.model import Order, Patient, Report, Visit
from accord.workflow.trace import TraceEvent

Row = dict[str, Any]

# Built once per table: the compiled form is kept by statement identity (``compiled.py``).
_INSERT: dict[str, Any] = {}

# Page cache of the loading connection (SQLite, KiB when negative): the indexes of a
# million rows are written in random key order, and the default 2 MB cache makes most
# of those inserts read a page back from disk.
_LOAD_CACHE_KIB = 256 * 1024


def _insert(table: Table) -> Any:
    stmt = _INSERT.get(table.name)
    if stmt is None:
        stmt = _INSERT[table.name] = insert(table)
    return stmt


@dataclass(slots=True)
class PatientRows:
    """A patient's rows in every table that holds it."""

    patient: Row
    identifiers: list[Row] = field(default_factory=list)
    blocks: list[Row] = field(default_factory=list)
    features: list[Row] = field(default_factory=list)
    counted: tuple[str, ...] = ()  # the identity counts' keys it adds one to


def patient_rows(patient: Patient) -> PatientRows:
    """The rows ``SqlRepository.save_patient`` writes for a new patient: the patient
    (key columns and document), its PID-3 identifiers and, for a live patient, the
    identity matcher's blocking keys, packed features and counted keys."""
    d = patient.demographics
    rows = PatientRows({
        "id": patient.id, "merged_into": patient.merged_into,
        "family": d.name.family.casefold()[:199],
        "birth_date": d.birth_date.strftime("%Y%m%d") if d.birth_date else "",
        "doc": codec.encode_patient(patient)})
    rows.identifiers = [
        {"value": i.value, "authority": i.authority, "type_code": i.type_code[:16],
         "patient_id": patient.id, "position": n, "value_rev": search_key(i.value)}
        for n, i in enumerate(patient.identifiers)]
    if patient.merged_into is None:
        rows.blocks = [{"key": k[:255], "patient_id": patient.id} for k in block_keys(d)]
    made = features_row(patient)
    rows.features = [made] if made is not None else []
    rows.counted = identity_keys(patient)
    return rows


def order_row(order: Order, at: datetime) -> Row:
    """The ``orders`` row ``SqlRepository.save_order`` writes, as saved at ``at``."""
    row: Row = {k: getattr(order, k) for k in ORDER_KEYS}
    row.update(id=order.id, patient_id=order.patient_id, status=order.status.value,
               source=order.source[:227], held=bool(order.hold_reason), updated_at=at,
               doc=codec.encode_order(order), accession_rev=search_key(order.accession))
    return row


def visit_row(visit: Visit) -> Row:
    return {"visit_number": visit.visit_number, "patient_id": visit.patient_id,
            "doc": codec.encode_visit(visit)}


def report_row(report: Report) -> Row:
    return {"id": report.id, "accession": report.accession,
            "placer_number": report.placer_number, "filler_number": report.filler_number,
            "order_id": report.order_id, "patient_id": report.patient_id,
            "status": report.status.value, "doc": codec.encode_report(report)}


def finding_row(finding: Finding) -> Row:
    return {"key": finding.key, "kind": finding.kind.value,
            "severity": finding.severity.value if finding.severity else "warning",
            "accession": finding.accession[:199], "patient_id": finding.patient_id,
            "first_seen": finding.first_seen,
            "last_seen": finding.last_seen or finding.first_seen, "count": finding.count,
            "resolution": finding.resolution.value, "doc": codec.encode_finding(finding)}


def trace_row(event: TraceEvent) -> Row:
    return {"at": event.at, "order_id": event.order_id, "accession": event.accession[:199],
            "message": event.message[:512], "doc": codec.encode_trace(event)}


class BulkLoader:
    """Inserts new workflow values on one connection, one statement per table per call
    (module rules); each call returns how many values it wrote. :meth:`commit` ends the
    transaction so far and begins the next."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._x = Runner(conn)  # SQLite: executemany on the DB-API cursor
        self._tx = conn.begin()

    def _write(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
        self._x.run(_insert(table), rows)
        return len(rows)

    def patients(self, patients: Iterable[Patient]) -> int:
        made = [patient_rows(p) for p in patients]
        self._write(wf_patients, [r.patient for r in made])
        self._write(wf_patient_identifiers, [i for r in made for i in r.identifiers])
        self._write(wf_patient_blocks, [b for r in made for b in r.blocks])
        self._write(wf_identity_features, [f for r in made for f in r.features])
        counts = Counter(k for r in made for k in r.counted)
        counts[POPULATION] += sum(1 for r in made if r.counted)
        add_counts(self._conn, counts, self._x)
        return len(made)

    def visits(self, visits: Iterable[Visit]) -> int:
        return self._write(wf_visits, [visit_row(v) for v in visits])

    def orders(self, orders: Iterable[tuple[Order, datetime]]) -> int:
        """Orders, each with the time it was last saved (``updated_at``)."""
        pairs = list(orders)
        self._write(wf_procedure_steps, [s for order, _ in pairs for s in step_rows(order)])
        return self._write(wf_orders, [order_row(order, at) for order, at in pairs])

    def reports(self, reports: Iterable[Report]) -> int:
        return self._write(wf_reports, [report_row(r) for r in reports])

    def findings(self, findings: Iterable[Finding]) -> int:
        return self._write(wf_findings, [finding_row(f) for f in findings])

    def trace(self, events: Iterable[TraceEvent]) -> int:
        return self._write(wf_trace_events, [trace_row(e) for e in events])

    def history(self, records: Sequence[InboundMessage],
                routed: Sequence[Sequence[OutboxItem]], delivered_at: datetime) -> int:
        """The messages that brought these values, as ingest stored them, with their
        outbox rows already delivered (``accord.store.gateway.bulk.save_history``)."""
        return len(save_history(self._conn, records, routed, delivered_at))

    def commit(self) -> None:
        """Commit what was written so far; later calls write in a new transaction."""
        self._tx.commit()
        self._tx = self._conn.begin()

    def _end(self, ok: bool) -> None:
        if ok:
            self._tx.commit()
        else:
            self._tx.rollback()


@contextmanager
def bulk_load(database: Database) -> Iterator[BulkLoader]:
    """A loader on a write connection of its own: what it wrote is committed when the
    block exits (and at each :meth:`BulkLoader.commit`), what follows the last commit
    is rolled back if the block raises. On SQLite the connection's page cache is
    enlarged for the load and put back after."""
    with db_errors(), database.engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})  # SQLite: BEGIN IMMEDIATE
        raw = conn.connection.dbapi_connection if database.dialect == "sqlite" else None
        before = None
        if raw is not None:
            before = raw.execute("PRAGMA cache_size").fetchone()[0]
            raw.execute(f"PRAGMA cache_size=-{_LOAD_CACHE_KIB}")
        try:
            loader = BulkLoader(conn)
            try:
                yield loader
            except BaseException:
                loader._end(ok=False)
                raise
            loader._end(ok=True)
        finally:
            if raw is not None:
                raw.execute(f"PRAGMA cache_size={before}")
