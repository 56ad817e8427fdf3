"""The store's tables: SQLAlchemy Core ``Table``s on one ``MetaData``.

Rule: this module is the schema as the code sees it; ``migrations/versions`` is how a
database gets there (a test checks the two agree). Other parts add their tables to the
same ``metadata`` in their own ``schema_<area>.py`` and their own migration revision.
Times are stored as UTC (:class:`UtcDateTime`); raw messages and ACKs as bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identities.
Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, aware UTC out, on both databases (SQLite has no zones:
    stored as naive UTC text, which also sorts correctly)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("naive datetime given to the store; use aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


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
)

# Background job leases (pruning, reconciliation): one node at a time.
job_locks = Table(
    "job_locks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("node", String(128), nullable=False),
    Column("lease_until", UtcDateTime(), nullable=False),
)

# --- workflow (issues 4 and 5) ------------------------------------------------------
# The canonical model as rows. Each entity keeps its full value in ``doc`` (JSON, see
# ``sql_workflow_codec``) and copies into plain, indexed columns only what is looked up
# or listed. Order numbers are unique where not empty (partial unique indexes).
# ``patient_blocks`` holds the identity matcher's blocking keys, written at save time, so
# ``candidates()`` is one indexed lookup at a million patients. ``worklist_log`` is
# appended in the transaction of every order change; worklist readers in any process poll
# it. ``schema_workflow`` re-exports these names.

ID_LEN = 64  # Accord ids ("P-<uuid hex>") and DICOM UIDs (PS3.5 §9.1: 64 characters)


def _s(name: str, length: int = 199) -> Column[str]:
    return Column(name, String(length), nullable=False, server_default="")


wf_patients = Table(
    "patients",
    metadata,
    Column("id", String(ID_LEN), primary_key=True),
    Column("merged_into", String(ID_LEN), nullable=True),
    _s("family", 199),  # casefolded PID-5.1, for listing and the console's search
    _s("birth_date", 8),  # YYYYMMDD
    Column("doc", Json, nullable=False),
    Index("ix_patients_merged_into", "merged_into"),
    Index("ix_patients_family", "family", "birth_date"),
)

# PID-3 identifiers (CX-1 value + CX-4 authority) → patient; tombstones keep theirs.
wf_patient_identifiers = Table(
    "patient_identifiers",
    metadata,
    Column("value", String(199), nullable=False),
    Column("authority", String(199), nullable=False),
    _s("type_code", 16),
    Column("patient_id", String(ID_LEN), nullable=False),
    Column("position", Integer(), nullable=False),
    Index("uq_patient_identifiers_key", "value", "authority", unique=True),
    Index("ix_patient_identifiers_patient", "patient_id"),
)

wf_patient_blocks = Table(
    "patient_blocks",
    metadata,
    Column("key", String(255), nullable=False),  # "<rule number>:<blocking key>"
    Column("patient_id", String(ID_LEN), nullable=False),
    Index("ix_patient_blocks_key", "key", "patient_id"),
    Index("ix_patient_blocks_patient", "patient_id"),
)

wf_visits = Table(
    "visits",
    metadata,
    Column("visit_number", String(199), primary_key=True),  # PV1-19
    Column("patient_id", String(ID_LEN), nullable=False),
    Column("doc", Json, nullable=False),
    Index("ix_visits_patient", "patient_id"),
)


def _unique_number(column: str) -> Index:
    return Index(
        f"uq_orders_{column}",
        column,
        unique=True,
        sqlite_where=text(f"{column} <> ''"),
        postgresql_where=text(f"{column} <> ''"),
    )


wf_orders = Table(
    "orders",
    metadata,
    Column("id", String(ID_LEN), primary_key=True),
    Column("patient_id", String(ID_LEN), nullable=False),
    Column("status", String(16), nullable=False),
    _s("accession", 199),
    _s("placer_number", 199),
    _s("filler_number", 199),
    _s("requested_procedure_id", 199),
    _s("study_instance_uid", ID_LEN),
    _s("source", 227),
    Column("held", Boolean(), nullable=False, server_default=text("false")),
    Column("updated_at", UtcDateTime(), nullable=True),
    Column("doc", Json, nullable=False),
    _unique_number("accession"),
    _unique_number("placer_number"),
    _unique_number("filler_number"),
    _unique_number("study_instance_uid"),
    Index("ix_orders_patient", "patient_id"),
    Index("ix_orders_status", "status", "updated_at"),
    Index("ix_orders_requested_procedure", "requested_procedure_id"),
)

# One row per scheduled procedure step and station AE title (a step for two stations
# has two rows; a step for none has one with station ""), for worklist queries.
wf_procedure_steps = Table(
    "procedure_steps",
    metadata,
    Column("order_id", String(ID_LEN), nullable=False),
    Column("sps_id", String(199), nullable=False),
    _s("station_ae", 16),
    _s("modality", 16),
    Column("start_at", UtcDateTime(), nullable=True),
    _s("start_date", 8),  # YYYYMMDD (UTC) for date queries
    Column("status", String(16), nullable=False),
    Index("ix_procedure_steps_order", "order_id"),
    Index("ix_procedure_steps_sps", "sps_id"),
    Index("ix_procedure_steps_station", "station_ae", "start_date"),
    Index("ix_procedure_steps_date", "start_date", "modality"),
    Index("ix_procedure_steps_modality", "modality", "start_date"),
)

wf_reports = Table(
    "reports",
    metadata,
    Column("id", String(ID_LEN), primary_key=True),
    _s("accession", 199),
    _s("placer_number", 199),
    _s("filler_number", 199),
    Column("order_id", String(ID_LEN), nullable=True),
    _s("patient_id", ID_LEN),
    Column("status", String(16), nullable=False),
    Column("doc", Json, nullable=False),
    Index("ix_reports_accession", "accession"),
    Index("ix_reports_placer", "placer_number"),
    Index("ix_reports_filler", "filler_number"),
    Index("ix_reports_order", "order_id"),
    Index("ix_reports_patient", "patient_id"),
)

wf_findings = Table(
    "findings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(1024), nullable=False),  # Finding.key: same key = same finding
    Column("kind", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    _s("accession", 199),
    _s("patient_id", ID_LEN),
    Column("first_seen", UtcDateTime(), nullable=False),
    Column("last_seen", UtcDateTime(), nullable=False),
    Column("count", Integer(), nullable=False),
    Column("resolution", String(16), nullable=False),
    Column("doc", Json, nullable=False),
    Index("uq_findings_key", "key", unique=True),
    Index("ix_findings_accession", "accession"),
    Index("ix_findings_patient", "patient_id"),
    Index("ix_findings_kind", "kind", "resolution", "last_seen"),
    Index("ix_findings_last_seen", "last_seen"),
)

wf_trace_events = Table(
    "trace_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    _s("order_id", ID_LEN),
    _s("accession", 199),
    _s("message", 512),  # SENDER/MSH-10, or "MPPS <uid>"
    Column("doc", Json, nullable=False),
    Index("ix_trace_events_order", "order_id", "id"),
    Index("ix_trace_events_accession", "accession", "id"),
)

# Field fill statistics per sender, message type and field (``field_drift``).
wf_field_stats = Table(
    "field_stats",
    metadata,
    Column("sender", String(227), primary_key=True),
    Column("message_type", String(64), primary_key=True),
    Column("path", String(64), primary_key=True),
    Column("seen", Integer(), nullable=False),
    Column("filled", Integer(), nullable=False),
    Column("streak", Integer(), nullable=False),
    Column("drifting", Boolean(), nullable=False),
)

# Procedure code tables, versioned: every version is kept with its time and author.
wf_procedure_versions = Table(
    "procedure_versions",
    metadata,
    Column("table_name", String(64), primary_key=True),
    Column("number", Integer(), primary_key=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("author", String(128), nullable=False),
    Column("note", Text(), nullable=False),
)

wf_procedure_codes = Table(
    "procedure_codes",
    metadata,
    Column("table_name", String(64), primary_key=True),
    Column("number", Integer(), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("doc", Json, nullable=False),
)

# MPPS instances (PS3.4 F.7): the dataset as last stored (DICOM file bytes) and status.
wf_mpps = Table(
    "mpps_instances",
    metadata,
    Column("sop_instance_uid", String(ID_LEN), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("dataset", LargeBinary(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# Orders whose worklist items may have changed, in commit order (polled by readers).
wf_worklist_log = Table(
    "worklist_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", String(ID_LEN), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
)

# Other areas' tables on the same metadata (imported last on purpose: they may use the
# tables above, e.g. the console's index on ``orders``).
from accord.store import schema_web as _web  # noqa: E402, F401  (console/API, issue 6)
