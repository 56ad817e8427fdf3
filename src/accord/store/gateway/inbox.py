"""The inbox: messages stored and acknowledged on store, waiting to be applied.

Functions over one open :class:`Connection`; the caller owns the transaction.

Rules:
- Arrival order is message id order: ingest adds the row in the transaction that stores
  the message, and the applier takes the oldest rows first.
- Exactly once: the applier deletes a message's row in the SAME transaction as the
  message's workflow changes (:func:`remove` says whether it was still there; on
  PostgreSQL a second applier's delete waits for the first one's commit, then finds
  nothing). The message's status and outcome are rewritten by :func:`record_outcome`, or
  with the header and search keys ingest left to the applier by :func:`record_applied`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from accord.store.db.compiled import Runner
from accord.store.db.sanitize import clean_json
from accord.store.gateway.messages import HEADER_FIELDS, fit, key_rows, load_messages
from accord.store.records import InboundMessage, JsonDict, MessageStatus, StoredMessage
from accord.store.schema import inbox, message_keys, messages

_INSERT = insert(inbox)
# What applying writes of a message stored first: the header keys it was stored without,
# its status and outcome. Not its peer, listener or ACK: those are custody's.
_APPLIED_HEADER = tuple(f for f in HEADER_FIELDS if f not in ("peer", "listener", "ack_code"))
_APPLIED = (update(messages).where(messages.c.id == bindparam("b_id"))
            .values({name: bindparam(f"b_{name}")
                     for name in (*_APPLIED_HEADER, "status", "outcome")}))
_INSERT_KEYS = insert(message_keys)


def add(conn: Connection, waiting: Sequence[tuple[int, datetime]]) -> None:
    """Put stored messages, ``(message id, received at)``, in the inbox (their ids are
    their arrival order)."""
    Runner(conn).run(_INSERT, [{"message_id": i, "received_at": at} for i, at in waiting])


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


def take(conn: Connection, message_ids: Sequence[int]) -> bool:
    """Take messages out of the inbox at once; False when any was no longer there (then
    the caller rolls back and takes them one at a time with :func:`remove`)."""
    if not message_ids:
        return True
    gone = conn.execute(delete(inbox).where(inbox.c.message_id.in_(message_ids)))
    return gone.rowcount == len(set(message_ids))


def record_applied(conn: Connection, applied: Sequence[tuple[int, InboundMessage]]) -> None:
    """What applying stored messages found, ``(message id, record)``: each record's
    header keys, status and outcome are written over the stored row (its ACK stays the
    one it was answered) and its search keys added, in one statement per table."""
    if not applied:
        return
    rows = []
    for message_id, record in applied:
        row: dict[str, object] = {f"b_{name}": fit(name, getattr(record, name))
                                  for name in _APPLIED_HEADER}
        row.update(b_id=message_id, b_status=record.status,
                   b_outcome=clean_json(record.outcome))
        rows.append(row)
    runner = Runner(conn)  # SQLite: prebuilt on the DB-API cursor (``db/compiled.py``)
    runner.run(_APPLIED, rows)
    runner.run(_INSERT_KEYS, [k for message_id, record in applied
                              for k in key_rows(message_id, record.patient_ids,
                                                record.accessions)])


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
