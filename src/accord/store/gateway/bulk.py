"""Bulk writes for ingest's group commit: one statement per table per batch; and a
store's history in bulk (:func:`save_history`).

Ingest's fast path saves every message of a batch with one ``executemany`` per table
instead of one savepoint and several statements per message; profiling showed the
per-statement cost, not the fsync, bounding throughput. Same rows, same constraints as
:mod:`accord.store.gateway.messages`: the dedupe claim is still decided by the UNIQUE
constraint, all or nothing for the batch (the caller falls back to one message at a time).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.exc import IntegrityError

from accord.store.db.compiled import Runner
from accord.store.db.sanitize import clean_json, clean_text
from accord.store.gateway.messages import fit, key_rows, message_row
from accord.store.gateway.outbox import PATIENT_KEY_LENGTH
from accord.store.records import InboundMessage, OutboxItem
from accord.store.schema import dedupe, inbox, message_keys, messages, outbox


def save_inbound_many(conn: Connection, records: Sequence[InboundMessage]) -> list[int]:
    """Insert messages and their search keys; returns their ids in order. Records that
    reprocess an earlier message are not accepted here (they update the original)."""
    if not records:
        return []
    if any(r.reprocess_of is not None for r in records):
        raise ValueError("save_inbound_many does not take reprocess attempts")
    rows: list[dict[str, Any]] = []
    for r in records:
        values = message_row(r)
        values["reprocess_of"] = None
        rows.append(values)
    runner = Runner(conn)  # SQLite: prebuilt on the DB-API cursor (``db/compiled.py``)
    ids = runner.insert_ids(_INSERT, rows)
    if ids is None:
        ids = [int(row.id) for row in conn.execute(_INSERT_RETURNING, rows)]
    runner.run(_INSERT_KEYS, [
        k
        for mid, r in zip(ids, records, strict=True)
        for k in key_rows(mid, r.patient_ids, r.accessions)
    ])
    return ids


def save_custody_many(conn: Connection, records: Sequence[InboundMessage]) -> list[int] | None:
    """Messages answered on store (ACK on store): their custody rows, their dedupe
    claims and their inbox rows, one statement per table; returns their ids in order,
    or None when any MSH-3 + MSH-4 + MSH-10 is claimed already (or appears twice), with
    some rows possibly written: the caller rolls the transaction back.

    Only what custody holds is written of each message (received at, peer, listener,
    raw bytes, MSH-3/4/10, status, ACK and its code, outcome); its other header keys
    and its search keys keep their defaults until the applier completes the record
    (:func:`accord.store.gateway.inbox.record_applied`). Fewer columns bound, cleaned and
    converted per message than :func:`save_inbound_many`: the answer waits on this."""
    if not records:
        return []
    rows: list[dict[str, Any]] = []
    keys: list[tuple[str, str, str]] = []
    for r in records:
        if r.reprocess_of is not None or r.patient_ids or r.accessions:
            raise ValueError("save_custody_many takes custody records only")
        app, fac, cid = (fit("sending_app", r.sending_app),
                         fit("sending_facility", r.sending_facility),
                         fit("control_id", r.control_id))
        keys.append((app, fac, cid))
        rows.append({"received_at": r.received_at, "peer": fit("peer", r.peer),
                     "listener": fit("listener", r.listener), "raw": r.raw,
                     "sending_app": app, "sending_facility": fac, "control_id": cid,
                     "status": r.status, "ack_code": r.ack_code, "ack": r.ack,
                     "outcome": clean_json(r.outcome)})
    if len(set(keys)) < len(keys):
        return None
    runner = Runner(conn)
    ids = runner.insert_ids(_INSERT, rows)
    if ids is None:
        ids = [int(row.id) for row in conn.execute(_INSERT_RETURNING, rows)]
    try:
        # Sorted by key: see claim_control_ids (no deadlock between nodes).
        runner.run(_INSERT_DEDUPE, sorted(
            ({"sending_app": a, "sending_facility": f, "control_id": c, "message_id": m}
             for (a, f, c), m in zip(keys, ids, strict=True)),
            key=lambda row: (row["sending_app"], row["sending_facility"],
                             row["control_id"])))
    except IntegrityError:
        return None
    runner.run(_INSERT_INBOX, [{"message_id": mid, "received_at": r.received_at}
                               for mid, r in zip(ids, records, strict=True)])
    return ids


_INSERT = insert(messages)
_INSERT_RETURNING = insert(messages).returning(messages.c.id, sort_by_parameter_order=True)
_INSERT_KEYS = insert(message_keys)


def claim_control_ids(conn: Connection, claims: Sequence[tuple[str, str, str, int]], *,
                      keep_usable: bool = True) -> bool:
    """Claim every (MSH-3, MSH-4, MSH-10, message id) or none: False when any is held
    already (or appears twice), with nothing claimed and the transaction still usable.

    ``keep_usable=False``: the caller rolls the whole transaction back on False (ingest's
    fast path does), so no savepoint is spent on it: SAVEPOINT + RELEASE were a fifth of
    a one-message transaction's CPU (measured). Some claims may then be written when
    False is returned; only a rollback clears them."""
    if not claims:
        return True
    rows = [
        {
            "sending_app": fit("sending_app", app),
            "sending_facility": fit("sending_facility", fac),
            "control_id": fit("control_id", cid),
            "message_id": mid,
        }
        # Sorted by key: nodes claiming overlapping batches lock in the same order
        # (PostgreSQL), so a resend sent to two nodes at once cannot deadlock them.
        for app, fac, cid, mid in sorted(claims)
    ]
    try:
        if keep_usable:
            with conn.begin_nested():
                conn.execute(_INSERT_DEDUPE, rows)
        else:
            Runner(conn).run(_INSERT_DEDUPE, rows)
    except IntegrityError:
        return False
    return True


_INSERT_DEDUPE = insert(dedupe)
_INSERT_INBOX = insert(inbox)


_INSERT_DELIVERED = insert(outbox)


def save_history(conn: Connection, records: Sequence[InboundMessage],
                 routed: Sequence[Sequence[OutboxItem]], delivered_at: datetime) -> list[int]:
    """Messages as ingest stored them, with their dedupe claims and their outbox rows
    (``routed[i]`` for ``records[i]``) already delivered: a store's past, loaded in bulk
    for the at-age benchmark and the growth test (``accord.store.workflow.bulk``).
    Returns the messages' ids."""
    ids = save_inbound_many(conn, records)
    claims = [(r.sending_app, r.sending_facility, r.control_id, mid)
              for r, mid in zip(records, ids, strict=True) if r.status != "duplicate"]
    if not claim_control_ids(conn, claims, keep_usable=False):
        raise ValueError("save_history: an MSH-3 + MSH-4 + MSH-10 is already claimed")
    rows = [
        {"destination": item.destination, "kind": item.kind,
         "patient_key": clean_text(item.patient_key)[:PATIENT_KEY_LENGTH],
         "control_id": clean_text(item.control_id), "payload": item.payload,
         "source_message_id": mid, "status": "delivered", "attempts": 1,
         "created_at": record.received_at, "next_attempt_at": record.received_at,
         "delivered_at": delivered_at}
        for record, mid, items in zip(records, ids, routed, strict=True) for item in items]
    Runner(conn).run(_INSERT_DELIVERED, rows)
    return ids
