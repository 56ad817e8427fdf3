"""Worklist and MPPS reads and writes for the DICOM bridge (``accord.dicom.bridge``).

Rules:
- Reads are short, indexed and on their own connection: the worklist log after a
  position (plus the gaps a PostgreSQL sequence may leave while an older transaction is
  still to commit), orders with their patients by id or by DICOM reference keys, and
  MPPS instances by SOP Instance UID.
- The MPPS row is written with :func:`save_mpps` on the caller's transaction, the same
  one that applies the status change and enqueues the status messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    bindparam,
    delete,
    literal_column,
    or_,
    select,
)

from accord.store import Tx
from accord.store.db import Database
from accord.store.db.upsert import upsert
from accord.store.gateway.store import connection_of
from accord.store.schema.workflow import (
    wf_mpps,
    wf_orders,
    wf_patient_identifiers,
    wf_patients,
    wf_procedure_steps,
    wf_worklist_log,
)
from accord.store.workflow import codec
from accord.store.workflow.repository import patients_by_id
from accord.workflow.model import Order, Patient
from accord.workflow.status import ON_WORKLIST

OrderWithPatient = tuple[Order, Patient]


class SqlWorklistReader:
    """What the bridge reads from the SQL store (``accord.dicom.bridge.WorklistReader``)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def log_position(self) -> int:
        """The newest worklist-log id (0 when empty)."""
        with self._db.read() as conn:
            row = conn.execute(
                select(wf_worklist_log.c.id).order_by(wf_worklist_log.c.id.desc()).limit(1)
            ).first()
        return int(row.id) if row else 0

    def changes(self, after: int, gaps: Iterable[int] = ()) -> list[tuple[int, str]]:
        """Log rows (id, order id) after ``after``, and those among ``gaps`` now visible."""
        log = wf_worklist_log.c
        gap_list = sorted(gaps)
        with self._db.read() as conn:
            # Two range reads: SQLite answers "id > ? OR id IN (...)" with a full scan.
            rows = list(conn.execute(select(log.id, log.order_id).where(
                log.id.in_(gap_list)))) if gap_list else []
            rows += conn.execute(select(log.id, log.order_id).where(log.id > after))
            return sorted((int(r.id), str(r.order_id)) for r in rows)

    def orders(self, order_ids: Sequence[str]) -> list[OrderWithPatient]:
        """These orders (those that exist) with their patients."""
        if not order_ids:
            return []
        with self._db.read() as conn:
            return _with_patients(
                conn,
                conn.execute(
                    select(wf_orders.c.doc).where(wf_orders.c.id.in_(sorted(set(order_ids))))
                ),
            )

    def on_worklist(self) -> list[OrderWithPatient]:
        """Every order in a status the worklist serves (scheduled, arrived), not held."""
        statuses = [s.value for s in ON_WORKLIST]
        with self._db.read() as conn:
            return _with_patients(
                conn,
                conn.execute(
                    select(wf_orders.c.doc).where(
                        wf_orders.c.status.in_(statuses), wf_orders.c.held.is_(False)
                    )
                ),
            )

    def referenced(
        self,
        *,
        study_uids: Iterable[str] = (),
        accessions: Iterable[str] = (),
        sps_ids: Iterable[str] = (),
    ) -> list[OrderWithPatient]:
        """Orders (any status) with one of these Study Instance UIDs, accessions, SPS IDs."""
        values = {"uids": [u for u in study_uids if u], "accessions": [a for a in accessions if a],
                  "sps": [s for s in sps_ids if s]}
        shape = tuple(bool(v) for v in values.values())
        if not any(shape):
            return []
        with self._db.read() as conn:
            rows = conn.execute(_referenced(shape), {k: v for k, v in values.items() if v})
            return _with_patients(conn, rows)

    def patients(self, *, patient_id: str = "", family: str = "", limit: int = 50) -> list[Patient]:
        """Live patients with this identifier value (any authority), or whose family name
        starts like ``family`` (first three letters, casefolded)."""
        p = wf_patients.c
        terms: list[ColumnElement[bool]] = []
        if patient_id:
            terms.append(
                p.id.in_(
                    select(wf_patient_identifiers.c.patient_id)
                    .where(wf_patient_identifiers.c.value == patient_id)
                    .scalar_subquery()
                )
            )
        prefix = family.strip().casefold()[:3]
        if prefix:
            terms.append(p.family.startswith(prefix, autoescape=True))
        if not terms:
            return []
        with self._db.read() as conn:
            rows = conn.execute(
                select(p.doc).where(or_(*terms), p.merged_into.is_(None)).limit(limit)
            )
            return [codec.decode_patient(r.doc) for r in rows]

    def mpps(self, sop_instance_uid: str) -> tuple[str, bytes] | None:
        """(status, stored dataset) of an MPPS instance, or None."""
        with self._db.read() as conn:
            row = conn.execute(
                select(wf_mpps.c.status, wf_mpps.c.dataset).where(
                    wf_mpps.c.sop_instance_uid == sop_instance_uid
                )
            ).first()
        return (str(row.status), bytes(row.dataset)) if row else None

    def completed_between(
        self, start: datetime, end: datetime, limit: int = 1000
    ) -> list[tuple[Order, datetime]]:
        """Orders that became ``completed`` (last change) between ``start`` and ``end``."""
        o = wf_orders.c
        with self._db.read() as conn:
            rows = conn.execute(
                select(o.doc, o.updated_at)
                .where(o.status == "completed", o.updated_at >= start, o.updated_at < end)
                .order_by(o.updated_at)
                .limit(limit)
            )
            return [(codec.decode_order(r.doc), r.updated_at) for r in rows]

    def known_studies(
        self, study_uids: Sequence[str], accessions: Sequence[str]
    ) -> tuple[set[str], set[str]]:
        """Which of these Study Instance UIDs and accessions some order has."""
        o = wf_orders.c
        uids: set[str] = set()
        accs: set[str] = set()
        with self._db.read() as conn:
            if study_uids:
                uids = {
                    r[0]
                    for r in conn.execute(
                        select(o.study_instance_uid).where(
                            o.study_instance_uid.in_(sorted(set(study_uids))),
                            o.study_instance_uid != literal_column("''"),
                        )
                    )
                }
            if accessions:
                accs = {
                    r[0]
                    for r in conn.execute(
                        select(o.accession).where(
                            o.accession.in_(sorted(set(accessions))),
                            o.accession != literal_column("''"),
                        )
                    )
                }
        return uids, accs


@cache
def _referenced(shape: tuple[bool, ...]) -> Select[tuple[str]]:
    """The orders an MPPS references, by which of (study UIDs, accessions, SPS IDs) it
    gives: built once per shape (an MPPS request spent as much on building it as on
    running it)."""
    o = wf_orders.c
    # The unique indexes on these are partial (``<> ''``): SQLite uses one only when
    # the query states that condition literally; else every MPPS scanned all orders.
    terms: list[ColumnElement[bool]] = []
    by_uid, by_accession, by_sps = shape
    if by_uid:
        terms.append(o.study_instance_uid.in_(bindparam("uids", expanding=True))
                     & (o.study_instance_uid != literal_column("''")))
    if by_accession:
        terms.append(o.accession.in_(bindparam("accessions", expanding=True))
                     & (o.accession != literal_column("''")))
    if by_sps:
        steps = wf_procedure_steps.c
        terms.append(o.id.in_(
            select(steps.order_id)
            .where(steps.sps_id.in_(bindparam("sps", expanding=True)))
            .scalar_subquery()))
    return select(o.doc).where(or_(*terms))


def _with_patients(conn: Connection, rows: Iterable[object]) -> list[OrderWithPatient]:
    orders = [codec.decode_order(r.doc) for r in rows]  # type: ignore[attr-defined]
    patients = patients_by_id(conn, (o.patient_id for o in orders))
    return [(o, patients[o.patient_id]) for o in orders if o.patient_id in patients]


def save_mpps(tx: Tx, sop_instance_uid: str, status: str, dataset: bytes, now: datetime) -> None:
    """Insert or replace an MPPS instance on ``tx`` (the status change's transaction)."""
    upsert(
        connection_of(tx),
        wf_mpps,
        [
            {
                "sop_instance_uid": sop_instance_uid,
                "status": status,
                "dataset": dataset,
                "updated_at": now,
            }
        ],
        ["sop_instance_uid"],
    )


def prune_worklist_log(database: Database, before: datetime) -> int:
    """Delete worklist-log rows written before ``before`` (readers poll every few seconds
    and a starting reader loads the worklist whole, so old rows serve no one).

    The log is written in time order, so its old rows are its first ones: they are
    deleted up to the first row written since ``before``, found by walking the log from
    its start (``at`` has no index; a filter on it scanned the whole day's log)."""
    log = wf_worklist_log.c
    with database.write() as conn:
        first_kept = conn.scalar(select(log.id).where(log.at >= before).order_by(log.id)
                                 .limit(1))
        stale = log.id < first_kept if first_kept is not None else log.at < before
        result = conn.execute(delete(wf_worklist_log).where(stale))
    return int(result.rowcount or 0)
