"""The store's tables: SQLAlchemy Core ``Table`` objects on one ``MetaData``.

Rule: these modules are the schema as the code sees it; ``migrations/versions`` is how a
database gets there (a test checks the two agree). Importing this package loads every
area's tables onto :data:`metadata`: the gateway's (``gateway.py``), the workflow's
(``workflow.py``), the accounts' (``accounts.py``) and the store's own
(``housekeeping.py``), all over ``base.py``.
"""

from accord.store.schema.accounts import (
    api_tokens,
    audit_log,
    audit_patients,
    login_attempts,
    sessions,
    setup_tokens,
    users,
)
from accord.store.schema.base import NAMING, Id, Json, UtcDateTime, metadata
from accord.store.schema.gateway import (
    OPEN,
    OUTBOX_OPEN,
    dedupe,
    inbox,
    job_locks,
    message_keys,
    messages,
    outbox,
)
from accord.store.schema.housekeeping import store_sizes
from accord.store.schema.workflow import (
    ID_LEN,
    wf_dicom_events,
    wf_field_stats,
    wf_findings,
    wf_identity_counts,
    wf_identity_decisions,
    wf_identity_features,
    wf_mpps,
    wf_orders,
    wf_patient_blocks,
    wf_patient_identifiers,
    wf_patients,
    wf_procedure_codes,
    wf_procedure_steps,
    wf_procedure_versions,
    wf_reports,
    wf_trace_events,
    wf_visits,
    wf_worklist_log,
)

__all__ = [
    "ID_LEN",
    "NAMING",
    "OPEN",
    "OUTBOX_OPEN",
    "Id",
    "Json",
    "UtcDateTime",
    "api_tokens",
    "audit_log",
    "audit_patients",
    "dedupe",
    "inbox",
    "job_locks",
    "login_attempts",
    "message_keys",
    "messages",
    "metadata",
    "outbox",
    "sessions",
    "setup_tokens",
    "store_sizes",
    "users",
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
