"""The message gateway's tables: received messages, their search keys, the dedupe claims,
the outbox, and background job leases.

Times are stored as UTC (:class:`~accord.store.schema.base.UtcDateTime`); raw messages
and ACKs as bytes, exactly as received or sent.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from accord.store.schema.base import Id, Json, UtcDateTime, metadata

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("peer", String(255), nullable=False, server_default=""),
    Column("listener", String(64), nullable=False, server_default=""),
    Column("raw", LargeBinary(), nullable=False),
    Column("charset", String(32), nullable=False, server_default=""),
    Column("sending_app", String(227), nullable=False, server_default=""),
    Column("sending_facility", String(227), nullable=False, server_default=""),
    Column("receiving_app", String(227), nullable=False, server_default=""),
    Column("receiving_facility", String(227), nullable=False, server_default=""),
    Column("message_type", String(64), nullable=False, server_default=""),
    Column("control_id", String(199), nullable=False, server_default=""),
    Column("version", String(16), nullable=False, server_default=""),
    Column("parse_error", Text(), nullable=True),
    Column("status", String(16), nullable=False),
    Column("ack_code", String(2), nullable=False, server_default=""),
    Column("ack", LargeBinary(), nullable=False),
    Column("outcome", Json, nullable=False),
    # Links between messages are plain ids, not foreign keys: they may outlive the
    # message they name (retention), and FK checks would scan on every pruned row.
    Column("duplicate_of", Id, nullable=True),
    Column("reprocess_of", Id, nullable=True),
    Column("superseded_by", Id, nullable=True),
    CheckConstraint("status IN ('processed', 'error', 'rejected', 'duplicate')", name="status"),
    Index("ix_messages_received_at", "received_at"),
    Index("ix_messages_control_id", "control_id"),
    Index("ix_messages_type", "message_type"),
    Index("ix_messages_sender", "sending_app", "sending_facility"),
    Index("ix_messages_status", "status", "id"),
    # The message search's ACK code filter (AR and AE are rare: found without a scan).
    Index("ix_messages_ack", "ack_code", "id"),
)

# Search keys: one row per PID-3 identifier or accession of a message (kind, value).
message_keys = Table(
    "message_keys",
    metadata,
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("value", String(255), nullable=False),
    CheckConstraint("kind IN ('patient', 'accession')", name="kind"),
    Index("ix_message_keys_lookup", "kind", "value", "message_id"),
    Index("ix_message_keys_message", "message_id"),
)

# Dedupe by MSH-3 + MSH-4 + MSH-10: the UNIQUE constraint decides races between nodes.
dedupe = Table(
    "dedupe",
    metadata,
    Column("sending_app", String(227), nullable=False),
    Column("sending_facility", String(227), nullable=False),
    Column("control_id", String(199), nullable=False),
    Column("message_id", Id, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    UniqueConstraint("sending_app", "sending_facility", "control_id", name="uq_dedupe_key"),
    Index("ix_dedupe_message", "message_id"),
)

OUTBOX_OPEN = "status IN ('pending', 'in_flight')"
OPEN = text(OUTBOX_OPEN)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("destination", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("patient_key", String(255), nullable=False, server_default=""),
    Column("control_id", String(199), nullable=False),
    Column("payload", LargeBinary(), nullable=False),
    Column("source_message_id", Id, ForeignKey("messages.id", ondelete="SET NULL")),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer(), nullable=False, server_default="0"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("claimed_by", String(128), nullable=True),
    Column("lease_until", UtcDateTime(), nullable=True),
    Column("last_error", Text(), nullable=True),
    Column("last_ack", LargeBinary(), nullable=True),
    Column("delivered_at", UtcDateTime(), nullable=True),
    Column("reprocess_of", Id, nullable=True),  # plain ids, as in messages
    Column("rotated_from", Id, nullable=True),
    Column("superseded_by", Id, nullable=True),
    # The order a row is about (its accession; "" for patient updates): the order page
    # and ``accord trace`` list what went out for an order, whatever caused it.
    Column("accession", String(199), nullable=False, server_default=""),
    CheckConstraint(
        "status IN ('pending', 'in_flight', 'delivered', 'error', 'cancelled')", name="status"
    ),
    # The claim queries read only unfinished rows, in id order: partial indexes keep them
    # O(rows handed out) however long the backlog (SQLite and PostgreSQL both use them
    # when the query repeats OUTBOX_OPEN literally).
    Index("ix_outbox_open", "destination", "id", sqlite_where=OPEN, postgresql_where=OPEN),
    Index(
        "ix_outbox_open_patient",
        "destination",
        "patient_key",
        "id",
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    ),
    Index("ix_outbox_status", "status", "id"),
    Index("ix_outbox_source", "source_message_id"),
    Index("ix_outbox_control_id", "control_id"),
    Index("ix_outbox_accession", "accession", "id"),
    # Deliveries in a time window, per destination (the dashboard), from the index alone.
    Index("ix_outbox_delivered_at", "delivered_at", "destination"),
)

# Background job leases (pruning, reconciliation): one node at a time.
job_locks = Table(
    "job_locks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("node", String(128), nullable=False),
    Column("lease_until", UtcDateTime(), nullable=False),
)

# Stored but not yet applied (ACK on store): one narrow row per message, drained in
# message id order by the applier, which deletes the row in the transaction that applies
# the message. Retention never deletes a message that still has one.
inbox = Table(
    "inbox",
    metadata,
    Column("message_id", Id, ForeignKey("messages.id"), primary_key=True, autoincrement=False),
    Column("received_at", UtcDateTime(), nullable=False),
)
