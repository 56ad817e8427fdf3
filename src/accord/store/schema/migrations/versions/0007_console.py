"""The console's reads: outbound rows carry their order's accession; forgiving search keys
of accessions and identifiers; the DICOM log; token expiry; the patients of an audit
record as rows of their own; indexes for the message search's ACK filter and the
dashboard's deliveries.

The backfills run here, block by block, in Python (SQLite has no ``reverse()``): search
keys from the numbers, each outbox row's accession from its payload (OBR-18, or IPC-1
of an OMI), and the audit's patient rows from each record's ``patient_id``.

Revision ID: 0007_console
Revises: 0008_operations
Create Date: 2026-12-07
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007_console"
down_revision = "0004_step_hold"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
BLOCK = 1000


def _text(name: str, length: int) -> sa.Column[str]:
    return sa.Column(name, sa.String(length), nullable=False, server_default="")


def _key(value: str) -> str:
    """``accord.store.db.search.search_key`` as it is today (a migration never changes)."""
    return value.strip().casefold()[::-1][:199]


def _accession_of(payload: bytes) -> str:
    """OBR-18 of an outbound ORM/ORU, or IPC-1 of an OMI: read off the ER7 text."""
    text = bytes(payload).decode("utf-8", "replace").replace("\n", "\r")
    if not text.startswith("MSH") or len(text) < 5:
        return ""
    field, component = text[3], text[4]
    segments = {seg[:3]: seg.split(field) for seg in text.split("\r") if len(seg) > 3}
    for segment, index in (("IPC", 1), ("OBR", 18)):
        found = segments.get(segment)
        if found is not None and len(found) > index and found[index]:
            return found[index].split(component)[0][:199]
    return ""


def _orders(conn: Any) -> None:
    last = ""
    while rows := conn.execute(sa.text(
            "SELECT id, accession FROM orders WHERE id > :last ORDER BY id LIMIT :n"),
            {"last": last, "n": BLOCK}).all():
        params = [{"id": r[0], "k": _key(r[1])} for r in rows if r[1]]
        if params:
            conn.execute(sa.text("UPDATE orders SET accession_rev = :k WHERE id = :id"), params)
        last = rows[-1][0]


def _identifiers(conn: Any) -> None:
    value, authority = "", ""
    while rows := conn.execute(sa.text(
            "SELECT value, authority FROM patient_identifiers "
            "WHERE value > :v OR (value = :v AND authority > :a) "
            "ORDER BY value, authority LIMIT :n"), {"v": value, "a": authority, "n": BLOCK}
            ).all():
        conn.execute(sa.text("UPDATE patient_identifiers SET value_rev = :k "
                             "WHERE value = :v AND authority = :a"),
                     [{"v": r[0], "a": r[1], "k": _key(r[0])} for r in rows])
        value, authority = rows[-1][0], rows[-1][1]


def _outbox(conn: Any) -> None:
    last = 0
    while rows := conn.execute(sa.text(
            "SELECT id, payload FROM outbox WHERE id > :last AND kind <> 'adt' "
            "ORDER BY id LIMIT :n"), {"last": last, "n": BLOCK}).all():
        params = [{"id": r[0], "acc": acc} for r in rows if (acc := _accession_of(r[1]))]
        if params:
            conn.execute(sa.text("UPDATE outbox SET accession = :acc WHERE id = :id"), params)
        last = rows[-1][0]


def upgrade() -> None:
    op.add_column("outbox", _text("accession", 199))
    op.create_index("ix_outbox_accession", "outbox", ["accession", "id"])
    op.create_index("ix_outbox_delivered_at", "outbox", ["delivered_at", "destination"])
    op.create_index("ix_messages_ack", "messages", ["ack_code", "id"])
    op.add_column("orders", _text("accession_rev", 199))
    op.create_index("ix_orders_accession_rev", "orders", ["accession_rev"])
    op.add_column("patient_identifiers", _text("value_rev", 199))
    op.create_index("ix_patient_identifiers_rev", "patient_identifiers", ["value_rev"])
    op.add_column("api_tokens", sa.Column("expires_at", TS, nullable=True))
    op.create_table(
        "audit_patients",
        sa.Column("audit_id", ID, nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("audit_id", "patient_id", name="pk_audit_patients"),
    )
    op.create_index("ix_audit_patients_patient", "audit_patients", ["patient_id", "audit_id"])
    op.create_table(
        "dicom_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        _text("station", 16),
        _text("peer", 64),
        _text("status", 16),
        sa.Column("matches", sa.Integer(), nullable=False, server_default="0"),
        _text("accession", 199),
        _text("sop_instance_uid", 64),
        _text("summary", 255),
        sa.PrimaryKeyConstraint("id", name="pk_dicom_events"),
    )
    op.create_index("ix_dicom_events_at", "dicom_events", ["at", "station", "kind"])
    op.create_index("ix_dicom_events_station", "dicom_events", ["station", "id"])
    op.create_index("ix_dicom_events_kind", "dicom_events", ["kind", "id"])
    conn = op.get_bind()
    _orders(conn)
    _identifiers(conn)
    _outbox(conn)
    op.execute("INSERT INTO audit_patients (audit_id, patient_id) "
               "SELECT id, patient_id FROM audit_log WHERE patient_id <> ''")


def downgrade() -> None:
    op.drop_table("dicom_events")
    op.drop_table("audit_patients")
    op.drop_index("ix_messages_ack", table_name="messages")
    for table, index in (("outbox", "ix_outbox_accession"), ("outbox", "ix_outbox_delivered_at"),
                         ("orders", "ix_orders_accession_rev"),
                         ("patient_identifiers", "ix_patient_identifiers_rev")):
        op.drop_index(index, table_name=table)
    for table, column in (("outbox", "accession"), ("orders", "accession_rev"),
                          ("patient_identifiers", "value_rev"), ("api_tokens", "expires_at")):
        with op.batch_alter_table(table) as batch:  # SQLite rebuilds the table
            batch.drop_column(column)
