"""The workflow Repository over SQLAlchemy Core (``accord.workflow.repository.Repository``).

Rules:
- One :class:`SqlRepository` per message (or MPPS event), on the connection of the
  ingest transaction: every write lands in that transaction, inside ingest's savepoint.
  It keeps nothing after it is dropped, so a rolled-back savepoint can leave no stale
  state behind: a new message gets a new repository.
- Few, indexed statements: an entity is written as one upsert of its row (key columns
  plus its ``doc``) and, for patients and orders, one delete + one insert of its child
  rows (identifiers, blocking keys, steps). A patient or order the repository has not
  read in this message is new (ids are fresh), so its deletes are skipped. An order
  whose steps are those it was read with gets one UPDATE of its step rows' status and
  hold instead (nothing when neither moved): the step rows' indexes stay untouched.
  Likewise an order read here is saved by an UPDATE of the columns that moved (with
  ``updated_at`` and ``doc``), not an upsert of all of them. Trace events
  are buffered and written in one statement by :meth:`flush`.
- ``candidates`` is one indexed lookup on ``patient_blocks`` (the identity matcher's
  blocking keys, written at save time), so it stays fast at a million patients.
- Every order change appends to ``worklist_log`` (read by ``accord.dicom.bridge``).
  Given a sink for its changes (``changes.py``), the repository also notes each row
  with the order it saved and its patient, for the sink once the transaction commits.
- Field fill statistics are kept per write transaction and written once, before it
  commits (``stats.py``).
- Patients and orders read inside a write transaction are locked for update on
  PostgreSQL (nodes sharing the database never update one order from the same old
  value); ``reading()`` (reports, ``accord trace``) does not lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from accord.store import Tx
from accord.store.db import Database
from accord.store.db.compiled import Runner
from accord.store.db.search import search_key
from accord.store.db.upsert import upsert
from accord.store.gateway.store import SqlTx, connection_of
from accord.store.schema import (
    wf_field_stats,
    wf_findings,
    wf_identity_features,
    wf_orders,
    wf_patient_identifiers,
    wf_patients,
    wf_reports,
    wf_visits,
)
from accord.store.workflow import codec
from accord.store.workflow import identity as idx
from accord.store.workflow import statements as Q
from accord.store.workflow import stats as stats_batch
from accord.store.workflow.changes import ChangeLog, CommittedChanges
from accord.workflow.findings import FieldStat, FieldStats, Finding
from accord.workflow.identity.compare import Features, features
from accord.workflow.identity.frequencies import count_changes
from accord.workflow.identity.index import lookup_keys, stored_keys
from accord.workflow.identity.matcher import Candidates
from accord.workflow.model import Demographics, Identifier, Order, Patient, Report, Visit
from accord.workflow.trace import TraceEvent

ORDER_KEYS = Q.ORDER_KEYS
REPORT_KEYS = Q.REPORT_KEYS


def _write_stats(conn: Connection, rows: Sequence[Mapping[str, Any]], runner: Runner) -> None:
    upsert(conn, wf_field_stats, rows, ["sender", "message_type", "path"], runner)


def block_keys(demographics: Demographics) -> list[str]:
    """The stored blocking keys of a patient: ``"<rule>:<key>"`` per non-empty key."""
    return list(stored_keys(features(demographics)))


def step_rows(order: Order) -> list[dict[str, Any]]:
    """The ``procedure_steps`` rows of an order: one per step and station AE title."""
    rows = []
    for step in order.steps:
        for station in step.station_ae_titles or ("",):
            rows.append(
                {
                    "order_id": order.id,
                    "sps_id": step.sps_id,
                    "station_ae": station[:16],
                    "modality": (step.modality or order.modality)[:16],
                    "start_at": step.start,
                    "start_date": step.start.strftime("%Y%m%d") if step.start else "",
                    "status": order.status.value,
                    "held": bool(order.hold_reason),
                }
            )
    return rows


def _order_row(order: Order) -> dict[str, Any]:
    """The ``orders`` columns of an order besides its id, ``updated_at`` and ``doc``."""
    row: dict[str, Any] = {k: getattr(order, k) for k in ORDER_KEYS}
    row.update(patient_id=order.patient_id, status=order.status.value,
               source=order.source[:227], held=bool(order.hold_reason),
               accession_rev=search_key(order.accession))
    return row


def _same_steps(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> bool:
    """Whether two orders' step rows differ at most in the order's status and hold."""
    return len(old) == len(new) and all(
        a["sps_id"] == b["sps_id"] and a["station_ae"] == b["station_ae"]
        and a["modality"] == b["modality"] and a["start_at"] == b["start_at"]
        for a, b in zip(old, new, strict=True))


def _has_number(order: Order, key: str, value: str) -> bool:
    if key == "sps_id":
        return any(step.sps_id == value for step in order.steps)
    return bool(getattr(order, key) == value)


class SqlRepository:
    """The Repository on one connection (see the module rules)."""

    def __init__(self, conn: Connection, now: datetime, *, lock: bool = True,
                 changes: ChangeLog | None = None) -> None:
        self._c = conn
        self._x = Runner(conn)  # the hot statements skip SQLAlchemy's execution layer
        self._now = now
        self._lock = lock  # lock the rows read for update (module rules)
        self._stats: dict[str, FieldStats] = {}  # as read, to write back only changes
        self._known: set[tuple[str, str]] = set()  # (kind, id) read or written here
        self._trace: list[TraceEvent] = []
        self._message_type = ""  # set by focus(): field statistics of this type only
        # Patients as read in this message, by id and by (value, authority): the engine
        # asks again for what it just read (find, then check each identifier's owner).
        # Emptied by every patient save, the only write that changes these answers.
        self._by_id: dict[str, Patient | None] = {}
        self._by_ident: dict[tuple[str, str], Patient | None] = {}
        self._changes = changes  # worklist-log rows noted for after the commit
        # Each patient as first read or last saved here: a save changes the identity
        # counts by the difference of its counted keys (computed only then).
        self._counted: dict[str, Patient] = {}
        # Each order as its rows stand now (last read or saved here): a save that keeps
        # its steps rewrites only their status and hold, not every step row.
        self._stored: dict[str, Order] = {}
        # The identity features of each demographics value met here, by identity: a new
        # patient's are needed for its candidates, blocking keys, packed row and counts.
        self._features: dict[int, tuple[Demographics, Features]] = {}

    def focus(self, message_type: str) -> None:
        """This repository serves one message of ``message_type`` (MSH-9, as the engine
        names it): :meth:`field_stats` reads only that type's rows — the only ones the
        engine updates — and :meth:`save_field_stats` writes only those."""
        self._message_type = message_type

    def flush(self) -> None:
        """Write the buffered trace events (call before the transaction ends)."""
        if self._trace:
            self._x.run(Q.INSERT_TRACE, [
                {"at": e.at, "order_id": e.order_id, "accession": e.accession[:199],
                 "message": e.message[:512], "doc": codec.encode_trace(e)}
                for e in self._trace])
            self._trace.clear()

    def _rows(self, stmt: Any, **params: Any) -> list[Any]:
        if self._lock:
            stmt = Q.LOCKED.get(stmt, stmt)
        return [r[0] for r in self._x.rows(stmt, params)]

    # --- patients -----------------------------------------------------------------------
    def _patients(self, docs: Iterable[Any]) -> list[Patient]:
        found = [codec.decode_patient(doc) for doc in docs]
        self._known.update(("patient", p.id) for p in found)
        for p in found:
            self._counted.setdefault(p.id, p)
        if self._changes is not None and self._lock:
            for p in found:
                self._changes.saw(p)
        return found

    def patient(self, patient_id: str) -> Patient | None:
        if patient_id not in self._by_id:
            found = self._patients(self._rows(Q.PATIENT, id=patient_id))
            self._by_id[patient_id] = found[0] if found else None
        return self._by_id[patient_id]

    def patient_by_identifier(self, identifier: Identifier) -> Patient | None:
        key = (identifier.value, identifier.authority)
        if key not in self._by_ident:
            found = self._patients(self._rows(Q.PATIENT_BY_IDENTIFIER, value=key[0],
                                              authority=key[1]))
            self._by_ident[key] = found[0] if found else None
            if found:  # the same row as read by its id (the order's patient, next)
                self._by_id.setdefault(found[0].id, found[0])
        return self._by_ident[key]

    def _features_of(self, demographics: Demographics) -> Features:
        kept = self._features.get(id(demographics))
        if kept is None or kept[0] is not demographics:
            kept = self._features[id(demographics)] = (demographics, features(demographics))
        return kept[1]

    def candidates(self, demographics: Demographics, limit: int = 100) -> Sequence[Patient]:
        keys = list(lookup_keys(self._features_of(demographics)))
        if not keys:
            return []
        found = self._patients(self._rows(Q.CANDIDATES, keys=keys, limit=limit))
        return [p for p in found if p.merged_into is None]

    def identity_candidates(self, demographics: Demographics, *, exclude: str = "",
                            limit: int = 100) -> Candidates:
        return idx.candidates(self._c, self._x, self._features_of(demographics), exclude=exclude,
                              limit=limit)

    def count_matched(self, changes: Mapping[str, int]) -> None:
        idx.add_counts(self._c, changes, self._x)

    def save_patient(self, patient: Patient) -> None:
        self._by_id.clear()
        self._by_ident.clear()
        d = patient.demographics
        upsert(self._c, wf_patients, [{
            "id": patient.id, "merged_into": patient.merged_into,
            "family": d.name.family.casefold()[:199],
            "birth_date": d.birth_date.strftime("%Y%m%d") if d.birth_date else "",
            "doc": codec.encode_patient(patient)}], ["id"], self._x)
        if self._changes is not None:
            self._changes.saw(patient)
        known = ("patient", patient.id) in self._known
        if known:
            self._c.execute(Q.DELETE_IDENTIFIERS, {"pid": patient.id})
            self._c.execute(Q.DELETE_BLOCKS, {"pid": patient.id})
            if patient.merged_into is not None:
                self._x.run(idx.DELETE_FEATURES, [{"pid": patient.id}])
            # Worklist items show the patient: their orders' items must be re-rendered.
            self._log_patient_orders(patient.id)
        self._known.add(("patient", patient.id))
        # The last save wins an identifier, as in the in-memory repository.
        upsert(self._c, wf_patient_identifiers, [
            {"value": i.value, "authority": i.authority, "type_code": i.type_code[:16],
             "patient_id": patient.id, "position": n, "value_rev": search_key(i.value)}
            for n, i in enumerate(patient.identifiers)], ["value", "authority"], self._x)
        f = self._features_of(d)
        if patient.merged_into is None:
            blocks = [{"key": k[:255], "patient_id": patient.id} for k in stored_keys(f)]
            if blocks:
                self._x.run(Q.INSERT_BLOCKS, blocks)
        row = idx.features_row(patient, f)
        if row is not None:
            upsert(self._c, wf_identity_features, [row], ["patient_id"], self._x)
        before = self._counted.get(patient.id)
        idx.add_counts(self._c, count_changes(
            idx.identity_keys(before, self._features_of(before.demographics))
            if before is not None and before.merged_into is None else (),
            idx.identity_keys(patient, f)), self._x)
        self._counted[patient.id] = patient

    # --- visits -------------------------------------------------------------------------
    def visit(self, visit_number: str) -> Visit | None:
        docs = self._rows(Q.VISIT, number=visit_number)
        return codec.decode_visit(docs[0]) if docs else None

    def visits_of(self, patient_id: str) -> Sequence[Visit]:
        return [codec.decode_visit(doc) for doc in self._rows(Q.VISITS_OF, pid=patient_id)]

    def save_visit(self, visit: Visit) -> None:
        upsert(self._c, wf_visits, [{"visit_number": visit.visit_number,
                                     "patient_id": visit.patient_id,
                                     "doc": codec.encode_visit(visit)}], ["visit_number"],
               self._x)

    # --- orders -------------------------------------------------------------------------
    def _orders(self, docs: Iterable[Any]) -> list[Order]:
        found = [codec.decode_order(doc) for doc in docs]
        self._known.update(("order", o.id) for o in found)
        self._stored.update((o.id, o) for o in found)
        return found

    def order(self, order_id: str) -> Order | None:
        found = self._orders(self._rows(Q.ORDER, id=order_id))
        return found[0] if found else None

    def orders_by(self, key: str, value: str) -> Sequence[Order]:
        stmt = Q.ORDERS_BY.get(key)
        if not value or stmt is None:
            return []
        return self._orders(self._rows(stmt, value=value))

    def order_by_numbers(self, numbers: Sequence[tuple[str, str]]) -> Order | None:
        wanted = [(k, v) for k, v in numbers if v and k in Q.ORDERS_BY]
        if len(wanted) <= 1:
            found = self.orders_by(*wanted[0]) if wanted else []
            return found[0] if found else None
        stmt = Q.orders_by_any(tuple(k for k, _ in wanted), lock=self._lock)
        orders = self._orders(r[0] for r in self._x.rows(
            stmt, {f"v_{k}": v for k, v in wanted}))
        for key, value in wanted:  # the most specific number that names one wins
            for order in orders:
                if _has_number(order, key, value):
                    return order
        return None

    def orders_of(self, patient_id: str) -> Sequence[Order]:
        return self._orders(self._rows(Q.ORDERS_OF, pid=patient_id))

    def save_order(self, order: Order) -> None:
        row = _order_row(order)
        before = self._stored.get(order.id)
        if before is None:  # new here (a fresh id), or a resend racing its first save
            row.update(id=order.id, updated_at=self._now, doc=codec.encode_order(order))
            upsert(self._c, wf_orders, [row], ["id"], self._x)
        else:  # as read: only the columns that moved (the indexes of the others stay)
            old = _order_row(before)
            moved = tuple(k for k, v in row.items() if old[k] != v)
            self._x.run(Q.update_order(moved), [{
                **{f"to_{k}": row[k] for k in moved}, "oid": order.id,
                "to_updated_at": self._now, "to_doc": codec.encode_order(order)}])
        self._save_steps(order)
        self._known.add(("order", order.id))
        self._stored[order.id] = order
        self._log_order(order)

    def _save_steps(self, order: Order) -> None:
        """The order's ``procedure_steps`` rows: one UPDATE of status and hold when only
        those moved (most saves: a status change), else deleted and written anew."""
        rows = step_rows(order)
        before = self._stored.get(order.id)
        if before is not None and _same_steps(step_rows(before), rows):
            if (before.status, bool(before.hold_reason)) != (order.status,
                                                               bool(order.hold_reason)):
                self._x.run(Q.UPDATE_STEPS, [{"oid": order.id, "to_status": order.status.value,
                                              "to_held": bool(order.hold_reason)}])
            return
        if ("order", order.id) in self._known:
            self._x.run(Q.DELETE_STEPS, [{"oid": order.id}])
        self._x.run(Q.INSERT_STEPS, rows)

    def _log_order(self, order: Order) -> None:
        row = {"order_id": order.id, "at": self._now}
        if self._changes is None:
            self._x.run(Q.INSERT_LOG, [row])
            return
        ids = self._x.insert_ids(Q.INSERT_LOG, [row])
        log_id = ids[0] if ids else int(self._c.execute(Q.INSERT_LOG_RETURNING, row).scalar_one())
        self._changes.order(log_id, order)

    def _log_patient_orders(self, patient_id: str) -> None:
        params = {"pid": patient_id, "at": self._now}
        if self._changes is None:
            self._c.execute(Q.LOG_PATIENT_ORDERS, params)
            return
        rows = self._c.execute(Q.LOG_PATIENT_ORDERS_RETURNING, params)
        self._changes.patient_orders([(int(r.id), str(r.order_id)) for r in rows], patient_id)

    # --- reports ------------------------------------------------------------------------
    def reports_by(self, key: str, value: str) -> Sequence[Report]:
        stmt = Q.REPORTS_BY.get(key)
        if not value or stmt is None:
            return []
        return [codec.decode_report(doc) for doc in self._rows(stmt, value=value)]

    def reports_by_numbers(self, numbers: Sequence[tuple[str, str]]) -> Sequence[Report]:
        wanted = [(k, v) for k, v in numbers if v and k in Q.REPORTS_BY]
        if not wanted:
            return []
        rows = self._x.rows(Q.reports_by_any(tuple(k for k, _ in wanted)),
                            {f"v_{k}": v for k, v in wanted})
        reports = [codec.decode_report(r[0]) for r in rows]
        found = {r.id: r for key, value in wanted for r in reports
                 if getattr(r, key) == value}
        return list(found.values())

    def reports_of(self, patient_id: str) -> Sequence[Report]:
        return [codec.decode_report(doc) for doc in self._rows(Q.REPORTS_OF, pid=patient_id)]

    def save_report(self, report: Report) -> None:
        upsert(self._c, wf_reports, [{
            "id": report.id, "accession": report.accession,
            "placer_number": report.placer_number, "filler_number": report.filler_number,
            "order_id": report.order_id, "patient_id": report.patient_id,
            "status": report.status.value, "doc": codec.encode_report(report)}], ["id"],
            self._x)

    # --- findings, statistics, trace -----------------------------------------------------
    def finding(self, key: str) -> Finding | None:
        docs = self._rows(Q.FINDING, key=key)
        return codec.decode_finding(docs[0]) if docs else None

    def findings_about(self, accession: str = "", patient_id: str = "") -> Sequence[Finding]:
        found: dict[str, Finding] = {}
        for stmt, value in ((Q.FINDINGS_BY_ACCESSION, accession),
                            (Q.FINDINGS_BY_PATIENT, patient_id)):
            if value:
                for doc in self._rows(stmt, value=value):
                    f = codec.decode_finding(doc)
                    found[f.key] = f
        return list(found.values())

    def save_finding(self, finding: Finding) -> None:
        upsert(self._c, wf_findings, [{
            "key": finding.key, "kind": finding.kind.value,
            "severity": finding.severity.value if finding.severity else "warning",
            "accession": finding.accession[:199], "patient_id": finding.patient_id,
            "first_seen": finding.first_seen,
            "last_seen": finding.last_seen or finding.first_seen, "count": finding.count,
            "resolution": finding.resolution.value, "doc": codec.encode_finding(finding)}],
            ["key"], self._x)

    def field_stats(self, sender: str) -> FieldStats:
        batch = self._batch()
        kept = batch.kept.get((sender, self._message_type)) if batch is not None else None
        if kept is not None:
            return kept
        rows = (self._x.rows(Q.FIELD_STATS_OF_TYPE,
                             {"sender": sender, "type": self._message_type})
                if self._message_type else self._x.rows(Q.FIELD_STATS, {"sender": sender}))
        stats = FieldStats(sender, {
            (mt, path): FieldStat(seen, filled, streak, bool(drifting))
            for mt, path, seen, filled, streak, drifting in rows})
        if batch is not None:
            batch.kept[(sender, self._message_type)] = stats
        self._stats[sender] = stats
        return stats

    def save_field_stats(self, stats: FieldStats) -> None:
        batch = self._batch()
        if batch is not None:  # written once, before the transaction commits
            batch.save((stats.sender, self._message_type), stats)
            return
        before = self._stats.get(stats.sender, FieldStats(stats.sender)).fields
        _write_stats(self._c, [
            {"sender": stats.sender, "message_type": mt, "path": path, "seen": s.seen,
             "filled": s.filled, "streak": s.streak, "drifting": s.drifting}
            for (mt, path), s in stats.fields.items()
            if before.get((mt, path)) != s and mt == (self._message_type or mt)], self._x)
        self._stats[stats.sender] = stats

    def _batch(self) -> stats_batch.Batch | None:
        """This transaction's field statistics (``stats.py``): for a message
        of one type (``focus``) in a write transaction, outside savepoints."""
        if not self._lock:
            return None
        if not self._message_type:  # every type at once: straight to the database
            stats_batch.write_pending(self._c)
            return None
        return stats_batch.batch_of(self._c, _write_stats)

    def add_trace(self, event: TraceEvent) -> None:
        self._trace.append(event)

    def trace(self, order_id: str = "", accession: str = "") -> Sequence[TraceEvent]:
        self.flush()
        found: dict[int, TraceEvent] = {}
        for stmt, value in ((Q.TRACE_BY_ORDER, order_id), (Q.TRACE_BY_ACCESSION, accession)):
            if value:
                rows = self._c.execute(stmt, {"value": value})
                found.update((r.id, codec.decode_trace(r.doc)) for r in rows)
        return [found[k] for k in sorted(found, key=lambda k: (found[k].at, k))]


_CHUNK = 500  # ids per IN list: well under every driver's parameter limit


def patients_by_id(conn: Connection, ids: Iterable[str]) -> dict[str, Patient]:
    """Patients (merged ones too) by id: the one bulk read of patients, for whatever
    shows a patient beside its orders (console pages, the JSON API, the DICOM worklist).
    Read in chunks of ids, each one primary-key lookup per id."""
    wanted = sorted({i for i in ids if i})
    found: dict[str, Patient] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        for row in conn.execute(select(wf_patients.c.doc).where(wf_patients.c.id.in_(chunk))):
            patient = codec.decode_patient(row.doc)
            found[patient.id] = patient
    return found


def repository_for(tx: Tx, now: datetime, *,
                   changes: CommittedChanges | None = None) -> SqlRepository:
    """The workflow repository on an ingest (or MPPS) transaction of the SQL store;
    ``changes`` is told the worklist-log rows it wrote once the transaction commits."""
    conn = connection_of(tx)
    if changes is None:
        return SqlRepository(conn, now)
    assert isinstance(tx, SqlTx)
    return SqlRepository(conn, now, changes=ChangeLog(tx.after_commit, changes))


@contextmanager
def reading(database: Database, now: datetime) -> Iterator[SqlRepository]:
    """A repository for reads (``accord trace``) on its own connection; nothing it
    might write is committed."""
    with database.read() as conn:
        yield SqlRepository(conn, now, lock=False)
