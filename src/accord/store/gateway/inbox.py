"""The inbox: messages stored and acknowledged on store, waiting to be applied.

Functions over one open :class:`Connection`; the caller owns the transaction.

Rules:
- Arrival order is message id order: ingest adds the row in the transaction that stores
  the message, and the applier takes the oldest rows first.
- Exactly once: the applier deletes a message's row in the SAME transaction as the
  message's workflow changes (:func:`remove` says whether it was still there; on
  PostgreSQL a second applier's delete waits for the first one's commit, then finds
  nothing). The message's status and outcome are rewritten by :func:`record_outcome`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from accord.store.db.sanitize import clean_json
from accord.store.gateway.messages import load_messages
from accord.store.records import JsonDict, MessageStatus, StoredMessage
from accord.store.schema import inbox, messages

_INSERT = insert(inbox)


def add(conn: Connection, waiting: Sequence[tuple[int, datetime]]) -> None:
    """Put stored messages, ``(message id, received at)``, in the inbox (their ids are
    their arrival order)."""
    if waiting:
        conn.execute(_INSERT, [{"message_id": i, "received_at": at} for i, at in waiting])


def oldest(conn: Connection, limit: int) -> list[StoredMessage]:
    """The ``limit`` oldest messages waiting, in arrival order (index on the key)."""
    ids = select(inbox.c.message_id).order_by(inbox.c.message_id).limit(limit)
    rows = conn.execute(
        select(messages).where(messages.c.id.in_(ids.scalar_subquery()))
        .order_by(messages.c.id)
    ).all()
    return load_messages(conn, rows)


def remove(conn: Connection, message_id: int) -> bool:
    """Take a message out of the inbox; False when it was no longer there (applied)."""
    return conn.execute(delete(inbox).where(inbox.c.message_id == message_id)).rowcount == 1


def record_outcome(conn: Connection, message_id: int, status: MessageStatus,
                   outcome: JsonDict) -> None:
    """What applying a stored message did (its ACK stays the one it was answered)."""
    conn.execute(update(messages).where(messages.c.id == message_id)
                 .values(status=status, outcome=clean_json(outcome)))


def backlog(conn: Connection) -> tuple[int, datetime | None]:
    """How many messages wait, and when the oldest was received. The count reads the
    inbox only, which holds what is not applied yet (small unless the applier lags)."""
    count = int(conn.scalar(select(func.count()).select_from(inbox)) or 0)
    first: Any = conn.scalar(select(inbox.c.received_at).order_by(inbox.c.message_id)
                             .limit(1))
    return count, first
