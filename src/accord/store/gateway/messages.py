"""Inbound messages: save with search keys, dedupe by MSH-3 + MSH-4 + MSH-10, search,
reprocess, retention. Functions over one open :class:`Connection`; the caller owns the
transaction.

Rule: the dedupe decision is the UNIQUE constraint ``uq_dedupe_key``, never a read
followed by a write, so two nodes receiving the same resend cannot both apply it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    and_,
    delete,
    exists,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from accord.store.db.paging import clamp, cut, id_cursor
from accord.store.db.sanitize import clean_json, clean_text
from accord.store.records import InboundMessage, Page, StoredMessage
from accord.store.schema import dedupe, inbox, message_keys, messages, outbox

# Built once: executing a prebuilt statement with a parameter dict skips the per-call
# coercion of ``.values(...)`` (measured: most of the CPU of a small ingest transaction).
_INSERT_MESSAGE = insert(messages).returning(messages.c.id)
_INSERT_KEY = insert(message_keys)
_INSERT_CLAIM = insert(dedupe)
KEY_LENGTH = 255
# Column lengths looked up once: per value, the column lookup cost more than the cut.
_LENGTHS: dict[str, int | None] = {
    c.key: getattr(c.type, "length", None) for c in messages.columns}
UNFINISHED = ("pending", "in_flight")


def fit(column: str, value: str) -> str:
    """A wire value as its column stores it: cleaned (see ``db/sanitize.py``) and cut to the
    column's length (PostgreSQL enforces lengths, SQLite does not), so an over-long or
    odd MSH field is stored, searched and deduped the same way on both."""
    length = _LENGTHS[column]
    value = clean_text(value)
    return value[:length] if length else value


HEADER_FIELDS = (
    "peer",
    "listener",
    "charset",
    "sending_app",
    "sending_facility",
    "receiving_app",
    "receiving_facility",
    "message_type",
    "control_id",
    "version",
    "ack_code",
)


def message_row(msg: InboundMessage) -> dict[str, Any]:
    """The ``messages`` row of a record (without ``reprocess_of``), text cleaned."""
    values: dict[str, Any] = {name: fit(name, getattr(msg, name)) for name in HEADER_FIELDS}
    values.update(
        received_at=msg.received_at,
        raw=msg.raw,
        parse_error=None if msg.parse_error is None else clean_text(msg.parse_error),
        status=msg.status,
        ack=msg.ack,
        outcome=clean_json(msg.outcome),
        duplicate_of=msg.duplicate_of,
    )
    return values


def save_inbound(conn: Connection, msg: InboundMessage) -> int:
    values = message_row(msg)
    values["reprocess_of"] = msg.reprocess_of
    message_id = int(conn.execute(_INSERT_MESSAGE, values).scalar_one())
    keys = key_rows(message_id, msg.patient_ids, msg.accessions)
    if keys:
        conn.execute(_INSERT_KEY, keys)
    if msg.reprocess_of is not None:
        conn.execute(
            update(messages)
            .where(messages.c.id == msg.reprocess_of)
            .values(superseded_by=message_id)
        )
    return message_id


def key_rows(
    message_id: int, patient_ids: Iterable[str], accessions: Iterable[str]
) -> list[dict[str, Any]]:
    seen: set[tuple[str, str]] = set()
    for kind, values in (("patient", patient_ids), ("accession", accessions)):
        for value in values:
            if value:
                seen.add((kind, clean_text(value)[:KEY_LENGTH]))
    return [{"message_id": message_id, "kind": k, "value": v} for k, v in sorted(seen)]


def find_first(conn: Connection, app: str, facility: str, control_id: str) -> StoredMessage | None:
    app, facility = fit("sending_app", app), fit("sending_facility", facility)
    control_id = fit("control_id", control_id)
    row = conn.execute(
        select(messages)
        .join(dedupe, dedupe.c.message_id == messages.c.id)
        .where(
            dedupe.c.sending_app == app,
            dedupe.c.sending_facility == facility,
            dedupe.c.control_id == control_id,
        )
    ).first()
    return None if row is None else load_messages(conn, [row])[0]


def claim_control_id(
    conn: Connection,
    key: tuple[str, str, str],
    message_id: int,
    takeover_from: int | None,
) -> bool:
    app, facility = fit("sending_app", key[0]), fit("sending_facility", key[1])
    control_id = fit("control_id", key[2])
    match = and_(
        dedupe.c.sending_app == app,
        dedupe.c.sending_facility == facility,
        dedupe.c.control_id == control_id,
    )
    if takeover_from is not None:
        moved = conn.execute(
            update(dedupe)
            .where(match, dedupe.c.message_id == takeover_from)
            .values(message_id=message_id)
        )
        if moved.rowcount == 1:
            return True
    try:
        with conn.begin_nested():  # a lost race must not abort the caller's transaction
            conn.execute(
                _INSERT_CLAIM,
                {
                    "sending_app": app,
                    "sending_facility": facility,
                    "control_id": control_id,
                    "message_id": message_id,
                },
            )
    except IntegrityError:
        return False
    return True


def load_messages(conn: Connection, rows: Sequence[Row[Any]]) -> list[StoredMessage]:
    """Rows of ``messages`` to records, with their search keys (one extra query)."""
    ids = [row.id for row in rows]
    keys: dict[int, dict[str, list[str]]] = {i: {"patient": [], "accession": []} for i in ids}
    if ids:
        for key in conn.execute(
            select(message_keys)
            .where(message_keys.c.message_id.in_(ids))
            .order_by(message_keys.c.message_id, message_keys.c.kind, message_keys.c.value)
        ):
            keys[key.message_id][key.kind].append(key.value)
    return [_to_record(row, keys[row.id]) for row in rows]


def _to_record(row: Row[Any], keys: dict[str, list[str]]) -> StoredMessage:
    m = row._mapping
    return StoredMessage(
        id=m["id"],
        received_at=m["received_at"],
        peer=m["peer"],
        listener=m["listener"],
        raw=bytes(m["raw"]),
        charset=m["charset"],
        sending_app=m["sending_app"],
        sending_facility=m["sending_facility"],
        receiving_app=m["receiving_app"],
        receiving_facility=m["receiving_facility"],
        message_type=m["message_type"],
        control_id=m["control_id"],
        version=m["version"],
        parse_error=m["parse_error"],
        status=m["status"],
        ack_code=m["ack_code"],
        ack=bytes(m["ack"]),
        outcome=dict(m["outcome"] or {}),
        patient_ids=tuple(keys["patient"]),
        accessions=tuple(keys["accession"]),
        duplicate_of=m["duplicate_of"],
        reprocess_of=m["reprocess_of"],
        superseded_by=m["superseded_by"],
    )


def get_message(conn: Connection, message_id: int) -> StoredMessage | None:
    row = conn.execute(select(messages).where(messages.c.id == message_id)).first()
    return None if row is None else load_messages(conn, [row])[0]


NO_SENDER = "-"  # the ``sender`` of input without an MSH-3 (unparseable, mostly)


def message_filters(
    *,
    control_id: str | None,
    message_type: str | None,
    sender: str | None,
    patient_id: str | None,
    accession: str | None,
    status: str | Sequence[str] | None,
    since: datetime | None,
    until: datetime | None,
    ack_code: str | None = None,
) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a message search (every given filter must hold). ``sender``
    :data:`NO_SENDER` finds messages without an MSH-3; ``status`` may name several."""
    c = messages.c
    where: list[ColumnElement[bool]] = []
    if control_id is not None:
        where.append(c.control_id == fit("control_id", control_id))
    if ack_code is not None:
        where.append(c.ack_code == ack_code.upper()[:2])
    if message_type is not None:
        where.append(
            c.message_type == message_type
            if "^" in message_type
            else or_(c.message_type == message_type, c.message_type.like(f"{message_type}^%"))
        )
    if sender == NO_SENDER:
        where.append(c.sending_app == "")
    elif sender is not None:
        app, _, facility = sender.partition("^")
        where.append(c.sending_app == fit("sending_app", app))
        if facility:
            where.append(c.sending_facility == fit("sending_facility", facility))
    for kind, value in (("patient", patient_id), ("accession", accession)):
        if value is not None:
            where.append(_has_key(kind, value))
    if isinstance(status, str):
        where.append(c.status == status)
    elif status is not None:
        where.append(c.status.in_(sorted(status)))
    if since is not None:
        where.append(c.received_at >= since)
    if until is not None:
        where.append(c.received_at < until)
    return where


def _has_key(kind: str, value: str) -> ColumnElement[bool]:
    """The message has this search key (indexed side table ``message_keys``)."""
    return messages.c.id.in_(
        select(message_keys.c.message_id).where(
            message_keys.c.kind == kind,
            message_keys.c.value == clean_text(value)[:KEY_LENGTH],
        )
    )


def search(
    conn: Connection, where: list[ColumnElement[bool]], cursor: str | None, limit: int
) -> Page[StoredMessage]:
    limit = clamp(limit)
    after = id_cursor(cursor)
    if after is not None:
        where = [*where, messages.c.id < after]
    rows = conn.execute(
        select(messages).where(*where).order_by(messages.c.id.desc()).limit(limit + 1)
    ).all()
    page, next_cursor = cut(rows, limit, lambda r: str(r.id))
    return Page(tuple(load_messages(conn, page)), next_cursor)


def in_error_queue() -> ColumnElement[bool]:
    return and_(messages.c.status == "error", messages.c.superseded_by.is_(None))


def _still_needed() -> ColumnElement[bool]:
    """An outbox row that keeps its message: queued, in flight, or in the error queue."""
    return or_(
        outbox.c.status.in_(UNFINISHED),
        and_(outbox.c.status == "error", outbox.c.superseded_by.is_(None)),
    )


def prune_block(conn: Connection, older_than: datetime, block_size: int) -> int:
    """Delete one block of expired messages that nothing still needs; returns how many."""
    held = exists().where(outbox.c.source_message_id == messages.c.id, _still_needed())
    waiting = exists().where(inbox.c.message_id == messages.c.id)  # not applied yet
    ids = list(
        conn.scalars(
            select(messages.c.id)
            .where(messages.c.received_at < older_than, ~in_error_queue(), ~held, ~waiting)
            .order_by(messages.c.id)
            .limit(block_size)
        )
    )
    if not ids:
        return 0
    # Only finished rows go; a row queued meanwhile (an operator resending a cancelled
    # row) survives with its message link cleared (ON DELETE SET NULL).
    conn.execute(delete(outbox).where(outbox.c.source_message_id.in_(ids), ~_still_needed()))
    conn.execute(delete(message_keys).where(message_keys.c.message_id.in_(ids)))
    conn.execute(delete(dedupe).where(dedupe.c.message_id.in_(ids)))
    conn.execute(delete(messages).where(messages.c.id.in_(ids)))
    return len(ids)
