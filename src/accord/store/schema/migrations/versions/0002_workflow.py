"""Workflow tables: patients, identifiers, blocking keys, visits, orders, procedure steps,
reports, findings, trace, field statistics, procedure code versions, MPPS, worklist log.

Revision ID: 0002_workflow
Revises: 0001_gateway
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002_workflow"
down_revision = "0001_gateway"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(JSONB(), "postgresql")
ACCORD_ID = 64


def _text(name: str, length: int) -> sa.Column[str]:
    return sa.Column(name, sa.String(length), nullable=False, server_default="")


def _unique_number(column: str) -> None:
    where = sa.text(f"{column} <> ''")
    op.create_index(
        f"uq_orders_{column}",
        "orders",
        [column],
        unique=True,
        sqlite_where=where,
        postgresql_where=where,
    )


def _patients() -> None:
    op.create_table(
        "patients",
        sa.Column("id", sa.String(ACCORD_ID), nullable=False),
        sa.Column("merged_into", sa.String(ACCORD_ID), nullable=True),
        _text("family", 199),
        _text("birth_date", 8),
        sa.Column("doc", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_patients"),
    )
    op.create_index("ix_patients_merged_into", "patients", ["merged_into"])
    op.create_index("ix_patients_family", "patients", ["family", "birth_date"])
    op.create_table(
        "patient_identifiers",
        sa.Column("value", sa.String(199), nullable=False),
        sa.Column("authority", sa.String(199), nullable=False),
        _text("type_code", 16),
        sa.Column("patient_id", sa.String(ACCORD_ID), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
    )
    op.create_index(
        "uq_patient_identifiers_key", "patient_identifiers", ["value", "authority"], unique=True
    )
    op.create_index("ix_patient_identifiers_patient", "patient_identifiers", ["patient_id"])
    op.create_table(
        "patient_blocks",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("patient_id", sa.String(ACCORD_ID), nullable=False),
    )
    op.create_index("ix_patient_blocks_key", "patient_blocks", ["key", "patient_id"])
    op.create_index("ix_patient_blocks_patient", "patient_blocks", ["patient_id"])
    op.create_table(
        "visits",
        sa.Column("visit_number", sa.String(199), nullable=False),
        sa.Column("patient_id", sa.String(ACCORD_ID), nullable=False),
        sa.Column("doc", JSON, nullable=False),
        sa.PrimaryKeyConstraint("visit_number", name="pk_visits"),
    )
    op.create_index("ix_visits_patient", "visits", ["patient_id"])


def _orders() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.String(ACCORD_ID), nullable=False),
        sa.Column("patient_id", sa.String(ACCORD_ID), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _text("accession", 199),
        _text("placer_number", 199),
        _text("filler_number", 199),
        _text("requested_procedure_id", 199),
        _text("study_instance_uid", ACCORD_ID),
        _text("source", 227),
        sa.Column("held", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("updated_at", TS, nullable=True),
        sa.Column("doc", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
    )
    for column in ("accession", "placer_number", "filler_number", "study_instance_uid"):
        _unique_number(column)
    op.create_index("ix_orders_patient", "orders", ["patient_id"])
    op.create_index("ix_orders_status", "orders", ["status", "updated_at"])
    op.create_index("ix_orders_requested_procedure", "orders", ["requested_procedure_id"])
    op.create_table(
        "procedure_steps",
        sa.Column("order_id", sa.String(ACCORD_ID), nullable=False),
        sa.Column("sps_id", sa.String(199), nullable=False),
        _text("station_ae", 16),
        _text("modality", 16),
        sa.Column("start_at", TS, nullable=True),
        _text("start_date", 8),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_index("ix_procedure_steps_order", "procedure_steps", ["order_id"])
    op.create_index("ix_procedure_steps_sps", "procedure_steps", ["sps_id"])
    op.create_index("ix_procedure_steps_station", "procedure_steps", ["station_ae", "start_date"])
    op.create_index("ix_procedure_steps_date", "procedure_steps", ["start_date", "modality"])
    op.create_index("ix_procedure_steps_modality", "procedure_steps", ["modality", "start_date"])


def _reports_findings_trace() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.String(ACCORD_ID), nullable=False),
        _text("accession", 199),
        _text("placer_number", 199),
        _text("filler_number", 199),
        sa.Column("order_id", sa.String(ACCORD_ID), nullable=True),
        _text("patient_id", ACCORD_ID),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("doc", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reports"),
    )
    for name, column in (
        ("accession", "accession"),
        ("placer", "placer_number"),
        ("filler", "filler_number"),
        ("order", "order_id"),
        ("patient", "patient_id"),
    ):
        op.create_index(f"ix_reports_{name}", "reports", [column])
    op.create_table(
        "findings",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        _text("accession", 199),
        _text("patient_id", ACCORD_ID),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("resolution", sa.String(16), nullable=False),
        sa.Column("doc", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_findings"),
    )
    op.create_index("uq_findings_key", "findings", ["key"], unique=True)
    op.create_index("ix_findings_accession", "findings", ["accession"])
    op.create_index("ix_findings_patient", "findings", ["patient_id"])
    op.create_index("ix_findings_kind", "findings", ["kind", "resolution", "last_seen"])
    op.create_index("ix_findings_last_seen", "findings", ["last_seen"])
    op.create_table(
        "trace_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        _text("order_id", ACCORD_ID),
        _text("accession", 199),
        _text("message", 512),
        sa.Column("doc", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_trace_events"),
    )
    op.create_index("ix_trace_events_order", "trace_events", ["order_id", "id"])
    op.create_index("ix_trace_events_accession", "trace_events", ["accession", "id"])


def _the_rest() -> None:
    op.create_table(
        "field_stats",
        sa.Column("sender", sa.String(227), nullable=False),
        sa.Column("message_type", sa.String(64), nullable=False),
        sa.Column("path", sa.String(64), nullable=False),
        sa.Column("seen", sa.Integer(), nullable=False),
        sa.Column("filled", sa.Integer(), nullable=False),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.Column("drifting", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("sender", "message_type", "path", name="pk_field_stats"),
    )
    op.create_table(
        "procedure_versions",
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("table_name", "number", name="pk_procedure_versions"),
    )
    op.create_table(
        "procedure_codes",
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("doc", JSON, nullable=False),
        sa.PrimaryKeyConstraint("table_name", "number", "code", name="pk_procedure_codes"),
    )
    op.create_table(
        "mpps_instances",
        sa.Column("sop_instance_uid", sa.String(ACCORD_ID), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("dataset", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("sop_instance_uid", name="pk_mpps_instances"),
    )
    op.create_table(
        "worklist_log",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(ACCORD_ID), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_worklist_log"),
    )


def upgrade() -> None:
    _patients()
    _orders()
    _reports_findings_trace()
    _the_rest()


def downgrade() -> None:
    for table in (
        "worklist_log",
        "mpps_instances",
        "procedure_codes",
        "procedure_versions",
        "field_stats",
        "trace_events",
        "findings",
        "reports",
        "procedure_steps",
        "orders",
        "visits",
        "patient_blocks",
        "patient_identifiers",
        "patients",
    ):
        op.drop_table(table)
