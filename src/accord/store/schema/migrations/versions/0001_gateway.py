"""Gateway tables: messages, search keys, dedupe, outbox, job leases.

Revision ID: 0001_gateway
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001_gateway"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def _text(name: str, length: int) -> sa.Column[str]:
    return sa.Column(name, sa.String(length), nullable=False, server_default="")


def upgrade() -> None:
    _messages()
    _keys_and_dedupe()
    _outbox()
    op.create_table(
        "job_locks",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("lease_until", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_job_locks"),
    )


def _messages() -> None:
    op.create_table(
        "messages",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("received_at", TS, nullable=False),
        _text("peer", 255),
        _text("listener", 64),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        _text("charset", 32),
        _text("sending_app", 227),
        _text("sending_facility", 227),
        _text("receiving_app", 227),
        _text("receiving_facility", 227),
        _text("message_type", 64),
        _text("control_id", 199),
        _text("version", 16),
        sa.Column("parse_error", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        _text("ack_code", 2),
        sa.Column("ack", sa.LargeBinary(), nullable=False),
        sa.Column("outcome", JSON, nullable=False),
        sa.Column("duplicate_of", ID, nullable=True),
        sa.Column("reprocess_of", ID, nullable=True),
        sa.Column("superseded_by", ID, nullable=True),
        sa.CheckConstraint(
            "status IN ('processed', 'error', 'rejected', 'duplicate')",
            name="ck_messages_status",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
    )
    op.create_index("ix_messages_received_at", "messages", ["received_at"])
    op.create_index("ix_messages_control_id", "messages", ["control_id"])
    op.create_index("ix_messages_type", "messages", ["message_type"])
    op.create_index("ix_messages_sender", "messages", ["sending_app", "sending_facility"])
    op.create_index("ix_messages_status", "messages", ["status", "id"])


def _keys_and_dedupe() -> None:
    op.create_table(
        "message_keys",
        sa.Column("message_id", ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.CheckConstraint("kind IN ('patient', 'accession')", name="ck_message_keys_kind"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            ondelete="CASCADE",
            name="fk_message_keys_message_id_messages",
        ),
    )
    op.create_index("ix_message_keys_lookup", "message_keys", ["kind", "value", "message_id"])
    op.create_index("ix_message_keys_message", "message_keys", ["message_id"])

    op.create_table(
        "dedupe",
        sa.Column("sending_app", sa.String(227), nullable=False),
        sa.Column("sending_facility", sa.String(227), nullable=False),
        sa.Column("control_id", sa.String(199), nullable=False),
        sa.Column("message_id", ID, nullable=False),
        sa.UniqueConstraint("sending_app", "sending_facility", "control_id", name="uq_dedupe_key"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            ondelete="CASCADE",
            name="fk_dedupe_message_id_messages",
        ),
    )
    op.create_index("ix_dedupe_message", "dedupe", ["message_id"])


def _outbox() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("destination", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        _text("patient_key", 255),
        sa.Column("control_id", sa.String(199), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("source_message_id", ID, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_ack", sa.LargeBinary(), nullable=True),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("reprocess_of", ID, nullable=True),
        sa.Column("rotated_from", ID, nullable=True),
        sa.Column("superseded_by", ID, nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'in_flight', 'delivered', 'error', 'cancelled')",
            name="ck_outbox_status",
        ),
        sa.ForeignKeyConstraint(
            ["source_message_id"],
            ["messages.id"],
            ondelete="SET NULL",
            name="fk_outbox_source_message_id_messages",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    open_rows = sa.text("status IN ('pending', 'in_flight')")
    for name, columns in (
        ("ix_outbox_open", ["destination", "id"]),
        ("ix_outbox_open_patient", ["destination", "patient_key", "id"]),
    ):
        op.create_index(name, "outbox", columns, sqlite_where=open_rows, postgresql_where=open_rows)
    op.create_index("ix_outbox_status", "outbox", ["status", "id"])
    op.create_index("ix_outbox_source", "outbox", ["source_message_id"])
    op.create_index("ix_outbox_control_id", "outbox", ["control_id"])


def downgrade() -> None:
    for table in ("job_locks", "outbox", "dedupe", "message_keys", "messages"):
        op.drop_table(table)
