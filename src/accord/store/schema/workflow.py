"""Workflow tables: the canonical model (patients, visits, orders, procedure steps,
reports, findings, trace) as rows, and what the DICOM bridge and the code tables keep.

Rules:
- Each entity keeps its full value in ``doc`` (JSON, see ``store/workflow/codec.py``)
  and copies into plain, indexed columns only what is looked up or listed.
- Order numbers are unique where not empty (partial unique indexes).
- ``patient_blocks`` holds the identity matcher's blocking keys, written at save time, so
  ``candidates()`` is one indexed lookup at a million patients.
- ``identity_counts`` counts live patients per term and blocking key (kept in the
  transaction of every patient write): term-frequency weights and the bound on blocking;
  ``identity_features`` holds what scoring reads of a patient (its normalised features,
  packed), so a candidate fetch decodes no patient documents; ``identity_decisions``
  remembers a reviewer's decision about a pair.
- ``worklist_log`` is appended in the transaction of every order change; worklist readers
  in any process poll it.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, LargeBinary, String, Table, Text, text

from accord.store.schema.base import Id, Json, UtcDateTime, metadata

__all__ = [
    "ID_LEN",
    "wf_dicom_events",
    "wf_field_stats",
    "wf_findings",
    "wf_identity_counts",
    "wf_identity_decisions",
    "wf_identity_features",
    "wf_mpps",
    "wf_orders",
    "wf_patient_blocks",
    "wf_patient_identifiers",
    "wf_patients",
    "wf_procedure_codes",
    "wf_procedure_steps",
    "wf_procedure_versions",
    "wf_reports",
    "wf_trace_events",
    "wf_visits",
    "wf_worklist_log",
]

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
    _s("value_rev", 199),  # the value casefolded and reversed (see ``search_key``)
    Index("uq_patient_identifiers_key", "value", "authority", unique=True),
    Index("ix_patient_identifiers_patient", "patient_id"),
    Index("ix_patient_identifiers_rev", "value_rev"),
)

wf_patient_blocks = Table(
    "patient_blocks",
    metadata,
    Column("key", String(255), nullable=False),  # "<rule number>:<blocking key>"
    Column("patient_id", String(ID_LEN), nullable=False),
    Index("ix_patient_blocks_key", "key", "patient_id"),
    Index("ix_patient_blocks_patient", "patient_id"),
)

wf_identity_counts = Table(
    "identity_counts",
    metadata,
    Column("key", String(255), primary_key=True),  # "family:SMITH", "0:S5301960", "*"
    Column("count", Integer(), nullable=False),
)

wf_identity_features = Table(
    "identity_features",
    metadata,
    Column("patient_id", String(ID_LEN), primary_key=True),
    Column("packed", Text(), nullable=False),  # ``accord.workflow.identity.index.pack``
)

wf_identity_decisions = Table(
    "identity_decisions",
    metadata,
    Column("a", String(ID_LEN), primary_key=True),  # the pair's ids, a < b
    Column("b", String(ID_LEN), primary_key=True),
    Column("decision", String(16), nullable=False),  # "distinct" or "same"
    Column("at", UtcDateTime(), nullable=False),
    Column("levels", Json, nullable=False),  # the comparison vector when decided
    Index("ix_identity_decisions_b", "b"),
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
    _s("accession_rev", 199),  # the accession casefolded and reversed (``search_key``)
    _unique_number("accession"),
    _unique_number("placer_number"),
    _unique_number("filler_number"),
    _unique_number("study_instance_uid"),
    Index("ix_orders_patient", "patient_id"),
    Index("ix_orders_status", "status", "updated_at"),
    Index("ix_orders_requested_procedure", "requested_procedure_id"),
    # Order lists (console and API) are newest first, keyset-paginated on (updated_at, id).
    Index("ix_orders_updated_at", "updated_at", "id"),
    Index("ix_orders_accession_rev", "accession_rev"),
)

# One row per scheduled procedure step and station AE title (a step for two stations
# has two rows; a step for none has one with station ""), for worklist queries. The
# rows are rewritten with every save of their order and carry its status and hold flag,
# so a worklist page is cut on this table alone.
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
    Column("held", Boolean(), nullable=False, server_default=text("false")),
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
    Index("ix_mpps_instances_updated_at", "updated_at"),  # retention, oldest first
)

# What the DICOM SCP was asked, one row per request: each worklist query (C-FIND) and
# each MPPS (N-CREATE, N-SET), with the calling AE title. The console's DICOM log and
# the dashboard's per-station figures read it; rows older than ``dicom.activity_days``
# are pruned.
wf_dicom_events = Table(
    "dicom_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("kind", String(16), nullable=False),  # "find" or "mpps"
    _s("station", 16),  # the calling AE title
    _s("peer", 64),
    _s("status", 16),  # MPPS: IN PROGRESS, COMPLETED, DISCONTINUED; find: ok, refused
    Column("matches", Integer(), nullable=False, server_default="0"),
    _s("accession", 199),
    _s("sop_instance_uid", ID_LEN),
    _s("summary", 255),
    Index("ix_dicom_events_at", "at", "station", "kind"),
    Index("ix_dicom_events_station", "station", "id"),
    Index("ix_dicom_events_kind", "kind", "id"),
)

# Orders whose worklist items may have changed, in commit order (polled by readers).
wf_worklist_log = Table(
    "worklist_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", String(ID_LEN), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
)
