"""The outbox: enqueue, claim under a lease, delivery outcomes, rotate, reprocess.

Rules (the order promise):
- FIFO per destination: a row is handed out only when it is the oldest unfinished row
  (``pending`` or ``in_flight``) of its destination, or, in per-patient mode, of its
  destination and ``patient_key``. So one queue (or one patient) never has two rows in
  flight, and a retried row keeps its place at the head.
- Every outcome is conditional on the claim: ``claimed_by = node`` and ``in_flight``. A
  node whose lease was taken over learns it (False) and changes nothing.
- ``error`` and ``cancelled`` rows are finished: the queue moves on without them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    and_,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.sql.expression import FromClause

from accord.store.db.paging import clamp, cut, id_cursor
from accord.store.db.sanitize import clean_text
from accord.store.records import OutboxItem, OutboxRow, Page
from accord.store.schema import outbox

UNFINISHED = ("pending", "in_flight")
PATIENT_KEY_LENGTH = 255
ACCESSION_LENGTH = 199
_INSERT_ROWS = insert(outbox).returning(outbox.c.id, sort_by_parameter_order=True)
Locker = Callable[[Select[Any]], Select[Any]]


def enqueue(conn: Connection, items: Sequence[OutboxItem], now: datetime) -> list[int]:
    if not items:
        return []
    params = [
        {
            "destination": item.destination,
            "kind": item.kind,
            "patient_key": clean_text(item.patient_key)[:PATIENT_KEY_LENGTH],
            "control_id": clean_text(item.control_id),
            "payload": item.payload,
            "source_message_id": item.source_message_id,
            "accession": clean_text(item.accession)[:ACCESSION_LENGTH],
            "status": "pending",
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        }
        for item in items
    ]
    result = conn.execute(_INSERT_ROWS, params)
    return [int(row.id) for row in result]


def to_row(row: Row[Any]) -> OutboxRow:
    return _from_mapping(row._mapping)


_COLUMNS = tuple(c.name for c in outbox.c)


def from_values(values: Sequence[Any]) -> OutboxRow:
    """A row read as plain values in the table's column order (``select(outbox)`` run
    by a ``Runner``)."""
    return _from_mapping(dict(zip(_COLUMNS, values, strict=True)))


def _from_mapping(m: Mapping[Any, Any]) -> OutboxRow:
    return OutboxRow(
        id=m["id"],
        destination=m["destination"],
        kind=m["kind"],
        patient_key=m["patient_key"],
        control_id=m["control_id"],
        payload=bytes(m["payload"]),
        source_message_id=m["source_message_id"],
        accession=m["accession"],
        status=m["status"],
        attempts=m["attempts"],
        created_at=m["created_at"],
        next_attempt_at=m["next_attempt_at"],
        claimed_by=m["claimed_by"],
        lease_until=m["lease_until"],
        last_error=m["last_error"],
        last_ack=None if m["last_ack"] is None else bytes(m["last_ack"]),
        delivered_at=m["delivered_at"],
        reprocess_of=m["reprocess_of"],
        rotated_from=m["rotated_from"],
        superseded_by=m["superseded_by"],
    )


def get_row(conn: Connection, row_id: int) -> OutboxRow | None:
    row = conn.execute(select(outbox).where(outbox.c.id == row_id)).first()
    return None if row is None else to_row(row)


def unfinished(table: FromClause) -> ColumnElement[bool]:
    """``status IN ('pending', 'in_flight')`` with literal values, exactly the predicate of
    the partial indexes, so both planners can use them. With bound values SQLite cannot
    tell that a query stays inside a partial index: it reads every unfinished row of
    every destination through the status index and sorts them, so one destination's
    backlog would slow every other destination's claims."""
    return table.c.status.in_([literal_column("'pending'"), literal_column("'in_flight'")])


def _claimable_ids(destination: str, per_patient: bool, now: datetime) -> Select[Any]:
    """Ids of queue heads that may be handed out now (due, or lease expired), oldest
    first. A head is the oldest open row of its queue (the destination, or the
    destination and patient key)."""
    c = outbox.c
    due = or_(
        and_(c.status == "pending", c.next_attempt_at <= now),
        and_(c.status == "in_flight", c.lease_until < now),
    )
    if per_patient:
        # A correlated min() (never turned into a join) probes ix_outbox_open_patient
        # once per candidate, whatever the planner's statistics say.
        older = outbox.alias("older")
        key_head = (
            select(func.min(older.c.id))
            .where(
                older.c.destination == destination,
                older.c.patient_key == c.patient_key,
                unfinished(older),
            )
            .scalar_subquery()
        )
        return select(c.id).where(
            c.destination == destination, unfinished(outbox), due, c.id == key_head
        )
    head = (
        select(c.id)
        .where(c.destination == destination, unfinished(outbox))
        .order_by(c.id)
        .limit(1)
        .scalar_subquery()
    )
    return select(c.id).where(c.id == head, due)


def claim(
    conn: Connection,
    destination: str,
    node: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    per_patient: bool,
    lock: Locker | None,
) -> list[OutboxRow]:
    stmt = _claimable_ids(destination, per_patient, now)
    stmt = stmt.order_by(outbox.c.id).limit(max(1, limit) if per_patient else 1)
    if lock is not None:
        stmt = lock(stmt)
    ids = list(conn.scalars(stmt))
    if not ids:
        return []
    rows = conn.execute(
        update(outbox)
        .where(outbox.c.id.in_(ids))
        .values(
            status="in_flight",
            claimed_by=node,
            lease_until=now + lease,
            attempts=outbox.c.attempts + 1,
        )
        .returning(*outbox.c)
    )
    return sorted((to_row(row) for row in rows), key=lambda r: r.id)


def _held_by(row_id: int, node: str) -> ColumnElement[bool]:
    return and_(outbox.c.id == row_id, outbox.c.status == "in_flight", outbox.c.claimed_by == node)


def finish(conn: Connection, row_id: int, node: str, values: dict[str, Any]) -> bool:
    """Apply a delivery outcome if ``node`` still holds the row."""
    result = conn.execute(update(outbox).where(_held_by(row_id, node)).values(values))
    return result.rowcount == 1


def requeue_copy(conn: Connection, original: OutboxRow, now: datetime, link: dict[str, int]) -> int:
    """A new pending row at the tail with the original's payload and MSH-10."""
    values = {
        "destination": original.destination,
        "kind": original.kind,
        "patient_key": original.patient_key,
        "control_id": original.control_id,
        "payload": original.payload,
        "source_message_id": original.source_message_id,
        "accession": original.accession,
        "status": "pending",
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
        **link,
    }
    return int(conn.execute(insert(outbox).values(values).returning(outbox.c.id)).scalar_one())


def rotate(conn: Connection, row_id: int, node: str, error: str, now: datetime) -> int | None:
    row = conn.execute(select(outbox).where(_held_by(row_id, node))).first()
    if row is None:
        return None
    original = to_row(row)
    new_id = requeue_copy(conn, original, now, {"rotated_from": row_id})
    conn.execute(
        update(outbox)
        .where(outbox.c.id == row_id)
        .values(
            status="cancelled",
            lease_until=None,
            superseded_by=new_id,
            last_error=clean_text(f"rotated behind the queue as #{new_id}: {error}"),
        )
    )
    return new_id


def reprocess(conn: Connection, original: OutboxRow, now: datetime) -> int:
    new_id = requeue_copy(conn, original, now, {"reprocess_of": original.id})
    conn.execute(update(outbox).where(outbox.c.id == original.id).values(superseded_by=new_id))
    return new_id


def outbox_filters(
    *,
    destination: str | None,
    status: str | Sequence[str] | None,
    source_message_id: int | None,
    control_id: str | None,
    accession: str | None = None,
    delivered_since: datetime | None = None,
    delivered_until: datetime | None = None,
    current: bool = False,
) -> list[ColumnElement[bool]]:
    """The WHERE clauses of an outbox list (every given filter must hold); ``status``
    may name several; ``delivered_since`` (inclusive) and ``delivered_until`` (exclusive)
    bound the delivery time, as the dashboard counts deliveries; ``current`` leaves out
    rows superseded by a resend (what the error queue and the dashboard count)."""
    c = outbox.c
    where: list[ColumnElement[bool]] = []
    if destination is not None:
        where.append(c.destination == destination)
    if isinstance(status, str):
        where.append(c.status == status)
    elif status is not None:
        where.append(c.status.in_(sorted(status)))
    if accession is not None:
        where.append(c.accession == accession)
    if delivered_since is not None:
        where.append(c.delivered_at >= delivered_since)
    if delivered_until is not None:
        where.append(c.delivered_at < delivered_until)
    if current:
        where.append(c.superseded_by.is_(None))
    if source_message_id is not None:
        where.append(c.source_message_id == source_message_id)
    if control_id is not None:
        where.append(c.control_id == control_id)
    return where


def list_rows(
    conn: Connection,
    where: list[ColumnElement[bool]],
    oldest_first: bool,
    cursor: str | None,
    limit: int,
) -> Page[OutboxRow]:
    limit = clamp(limit)
    after = id_cursor(cursor)
    if after is not None:
        where = [*where, outbox.c.id > after if oldest_first else outbox.c.id < after]
    order = outbox.c.id.asc() if oldest_first else outbox.c.id.desc()
    rows = conn.execute(select(outbox).where(*where).order_by(order).limit(limit + 1)).all()
    page, next_cursor = cut(rows, limit, lambda r: str(r.id))
    return Page(tuple(to_row(row) for row in page), next_cursor)


def in_error_queue() -> ColumnElement[bool]:
    return and_(outbox.c.status == "error", outbox.c.superseded_by.is_(None))


def prune_orphans_block(conn: Connection, older_than: datetime, block_size: int) -> int:
    """One block of finished rows with no source message (e.g. MPPS status updates, or
    rows whose message was pruned) created before ``older_than``."""
    c = outbox.c
    finished = or_(
        c.status.in_(("delivered", "cancelled")),
        and_(c.status == "error", c.superseded_by.is_not(None)),
    )
    ids = list(
        conn.scalars(
            select(c.id)
            .where(c.source_message_id.is_(None), c.created_at < older_than, finished)
            .order_by(c.id)
            .limit(block_size)
        )
    )
    if ids:
        conn.execute(delete(outbox).where(c.id.in_(ids)))
    return len(ids)
