"""The gateway's queues as an operator sees them: the error queue, whole-store counts,
and the outbox depth per destination.

The error queue merges two sources (inbound messages answered AE, outbox rows failed for
good) newest first; its cursor is ``"<at ISO>|<source>|<id>"`` of the last entry.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select

from accord.store.db.paging import clamp
from accord.store.gateway import messages as msgs
from accord.store.gateway import outbox as box
from accord.store.records import ErrorEntry, Page
from accord.store.schema import messages, outbox

# Ties on time are broken by source rank, then id (all descending).
_RANK = {"message": 1, "outbox": 0}


def _parse(cursor: str | None) -> tuple[datetime, int, int] | None:
    if not cursor:
        return None
    try:
        at, source, ident = cursor.split("|")
        return datetime.fromisoformat(at), _RANK[source], int(ident)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc


def _after(
    at_col: Any, id_col: Any, rank: int, cursor: tuple[datetime, int, int] | None
) -> list[ColumnElement[bool]]:
    """Keyset condition: strictly after ``cursor`` in (at, rank, id) descending order."""
    if cursor is None:
        return []
    c_at, c_rank, c_id = cursor
    if rank < c_rank:
        return [at_col <= c_at]
    if rank > c_rank:
        return [at_col < c_at]
    return [or_(at_col < c_at, and_(at_col == c_at, id_col < c_id))]


def error_queue(conn: Connection, cursor: str | None, limit: int) -> Page[ErrorEntry]:
    limit = clamp(limit)
    after = _parse(cursor)
    m_rows = conn.execute(
        select(messages)
        .where(msgs.in_error_queue(), *_after(messages.c.received_at, messages.c.id, 1, after))
        .order_by(messages.c.received_at.desc(), messages.c.id.desc())
        .limit(limit + 1)
    ).all()
    o_rows = conn.execute(
        select(outbox)
        .where(box.in_error_queue(), *_after(outbox.c.created_at, outbox.c.id, 0, after))
        .order_by(outbox.c.created_at.desc(), outbox.c.id.desc())
        .limit(limit + 1)
    ).all()
    found = msgs.load_messages(conn, m_rows)
    entries = [ErrorEntry("message", m.received_at, message=m) for m in found]
    entries += [ErrorEntry("outbox", o.created_at, outbox=o) for o in map(box.to_row, o_rows)]
    entries.sort(key=_sort_key, reverse=True)
    page = entries[:limit]
    next_cursor = None
    if len(entries) > limit:
        last = page[-1]
        next_cursor = f"{last.at.isoformat()}|{last.source}|{_sort_key(last)[2]}"
    return Page(tuple(page), next_cursor)


def _sort_key(entry: ErrorEntry) -> tuple[datetime, int, int]:
    record = entry.message if entry.message is not None else entry.outbox
    assert record is not None
    return entry.at, _RANK[entry.source], record.id


def stats(conn: Connection) -> dict[str, int]:
    counts = {
        "messages": 0,
        "processed": 0,
        "errors": 0,
        "rejected": 0,
        "duplicates": 0,
        "outbox_pending": 0,
        "outbox_in_flight": 0,
        "outbox_delivered": 0,
        "outbox_error": 0,
        "outbox_cancelled": 0,
    }
    names = {"processed": "processed", "rejected": "rejected", "duplicate": "duplicates"}
    for status, n in conn.execute(
        select(messages.c.status, func.count()).group_by(messages.c.status)
    ):
        counts["messages"] += n
        if status in names:
            counts[names[status]] += n
    in_queue = select(func.count()).select_from(messages).where(msgs.in_error_queue())
    counts["errors"] = conn.scalar(in_queue) or 0
    for status, n in conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)):
        if status != "error":
            counts[f"outbox_{status}"] = n
    in_queue = select(func.count()).select_from(outbox).where(box.in_error_queue())
    counts["outbox_error"] = conn.scalar(in_queue) or 0
    return counts


def depth(conn: Connection) -> dict[tuple[str, str], int]:
    """Outbox rows waiting (``pending``, ``in_flight``) and in the error queue, per
    ``(destination, status)``: one GROUP BY over the status index (metrics scrapes)."""
    c = outbox.c
    stmt = (select(c.destination, c.status, func.count())
            .where(c.status.in_(("pending", "in_flight", "error")), c.superseded_by.is_(None))
            .group_by(c.destination, c.status))
    return {(d, s): int(n) for d, s, n in conn.execute(stmt)}
