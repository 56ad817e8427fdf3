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
from functools import cache
from typing import Any

from sqlalchemy import Connection, and_, bindparam, select, update

from accord.store.db.compiled import Runner
from accord.store.gateway.outbox import from_values, unfinished
from accord.store.records import OutboxRow
from accord.store.schema import outbox

# The statements of a claim are built once and run by a ``Runner`` (SQLite: straight on
# the DB-API cursor, ``accord.store.db.compiled``): a claim per delivery run (often one
# row long) spent more on SQLAlchemy's building and execution layers than on SQLite.
_HEAD = (
    select(outbox.c.id, outbox.c.status, outbox.c.next_attempt_at, outbox.c.lease_until)
    .where(outbox.c.destination == bindparam("destination"), unfinished(outbox))
    .order_by(outbox.c.id)
    .limit(bindparam("limit"))
)
"""The head of a destination's queue, read through ``ix_outbox_open`` (``unfinished``
says why the literal predicate)."""
_HEAD_LOCKED = _HEAD.with_for_update()  # PostgreSQL: another node waits, then sees it


def _ids(n: int) -> list[Any]:
    return [bindparam(f"k{i}", type_=outbox.c.id.type) for i in range(n)]


@cache
def _claim(n: int) -> Any:
    """Mark ``n`` rows (``k0`` … ``k<n-1>``) in flight: one plain parameter per row, where
    an expanding ``IN`` is rendered again on every execution and a ``Runner`` cannot take
    it. At most ``MAX_RUN`` (``accord.engine.deliver``) shapes."""
    return (update(outbox).where(outbox.c.id.in_(_ids(n)))
            .values(status="in_flight", claimed_by=bindparam("node"),
                    lease_until=bindparam("lease_until"), attempts=outbox.c.attempts + 1))


@cache
def _claimed(n: int) -> Any:
    """The ``n`` rows just claimed, whole, in id order."""
    return select(outbox).where(outbox.c.id.in_(_ids(n))).order_by(outbox.c.id)


def claim_run(
    conn: Connection, destination: str, node: str, now: datetime, lease: timedelta, limit: int
) -> list[OutboxRow]:
    """The first ``limit`` rows of the queue that are claimable now, stopping at the first
    that is not (in flight under a live lease, or not yet due), marked ``in_flight``."""
    run = Runner(conn)
    head = _HEAD_LOCKED if conn.dialect.name == "postgresql" else _HEAD
    ids: list[int] = []
    for row_id, status, next_attempt_at, lease_until in run.rows(
            head, {"destination": destination, "limit": max(1, limit)}):
        due = (status == "pending" and next_attempt_at <= now) or (
            status == "in_flight" and lease_until is not None and lease_until < now
        )
        if not due:
            break
        ids.append(int(row_id))
    if not ids:
        return []
    keys = {f"k{i}": row_id for i, row_id in enumerate(ids)}
    run.run(_claim(len(ids)), [{**keys, "node": node, "lease_until": now + lease}])
    return [from_values(values) for values in run.rows(_claimed(len(ids)), keys)]


_DELIVERED = (
    update(outbox)
    .where(and_(outbox.c.id == bindparam("rid"), outbox.c.status == "in_flight",
                outbox.c.claimed_by == bindparam("node")))
    .values(status="delivered", last_ack=bindparam("ack"), delivered_at=bindparam("now"),
            lease_until=None)
)


def mark_delivered_many(
    conn: Connection, acks: Sequence[tuple[int, bytes]], node: str, now: datetime
) -> int:
    """``delivered`` for each (row id, ACK) that ``node`` still holds; returns how many."""
    if not acks:
        return 0
    return Runner(conn).run(_DELIVERED, [{"rid": rid, "ack": ack, "node": node, "now": now}
                                         for rid, ack in acks])


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
