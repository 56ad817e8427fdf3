"""Delivery runs: FIFO delivery of several rows per claim, with their outcomes in bulk.

A FIFO destination has one row in flight at a time on the wire (MLLP), but nothing
requires one *transaction* per row: a worker may claim the first rows of its queue as a
run, send them one after the other, and record the AAs together. The order promise of
:mod:`accord.store.gateway.outbox` holds: a run always starts at the head of the queue and is
a prefix of it (rows in id order, each claimable), so no row is handed out before an
older unfinished one. A node that dies mid-run leaves the run leased; when the lease ends
the rows are handed out again, in order, and resent with their own MSH-10 (at least once
on the wire, once after the receiver's MSH-10 dedupe).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, bindparam, select, update

from accord.store.gateway.outbox import UNFINISHED, to_row
from accord.store.records import OutboxRow
from accord.store.schema import outbox


def claim_run(
    conn: Connection, destination: str, node: str, now: datetime, lease: timedelta, limit: int
) -> list[OutboxRow]:
    """The first ``limit`` rows of the queue that are claimable now, stopping at the first
    that is not (in flight under a live lease, or not yet due), marked ``in_flight``."""
    c = outbox.c
    stmt = (
        select(c.id, c.status, c.next_attempt_at, c.lease_until)
        .where(c.destination == destination, c.status.in_(UNFINISHED))
        .order_by(c.id)
        .limit(max(1, limit))
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()  # another node waits, then sees the run in flight
    ids: list[int] = []
    for row in conn.execute(stmt):
        due = (row.status == "pending" and row.next_attempt_at <= now) or (
            row.status == "in_flight" and row.lease_until is not None and row.lease_until < now
        )
        if not due:
            break
        ids.append(int(row.id))
    if not ids:
        return []
    conn.execute(
        update(outbox)
        .where(c.id.in_(ids))
        .values(
            status="in_flight", claimed_by=node, lease_until=now + lease, attempts=c.attempts + 1
        )
    )
    rows = conn.execute(select(outbox).where(c.id.in_(ids)).order_by(c.id))
    return [to_row(r) for r in rows]


def mark_delivered_many(
    conn: Connection, acks: Sequence[tuple[int, bytes]], node: str, now: datetime
) -> int:
    """``delivered`` for each (row id, ACK) that ``node`` still holds; returns how many."""
    if not acks:
        return 0
    c = outbox.c
    stmt = (
        update(outbox)
        .where(and_(c.id == bindparam("rid"), c.status == "in_flight", c.claimed_by == node))
        .values(status="delivered", last_ack=bindparam("ack"), delivered_at=now, lease_until=None)
    )
    result = conn.execute(stmt, [{"rid": rid, "ack": ack} for rid, ack in acks])
    return int(result.rowcount)


def release_many(conn: Connection, row_ids: Sequence[int], node: str) -> int:
    """Give rows of a run back unsent (``pending``, due at once, the claim not counted as
    an attempt); only rows ``node`` still holds. Returns how many."""
    if not row_ids:
        return 0
    c = outbox.c
    result = conn.execute(
        update(outbox)
        .where(c.id.in_(list(row_ids)), c.status == "in_flight", c.claimed_by == node)
        .values(status="pending", claimed_by=None, lease_until=None, attempts=c.attempts - 1)
    )
    return int(result.rowcount)
