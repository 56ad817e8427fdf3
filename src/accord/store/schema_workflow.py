"""Workflow tables (issues 4 and 5): defined in :mod:`accord.store.schema` (one module,
so importing any table module first can never meet a half-initialised other one), and
re-exported here under the names the workflow's SQL uses.
"""

from accord.store.schema import (
    ID_LEN,
    wf_field_stats,
    wf_findings,
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
    "wf_field_stats",
    "wf_findings",
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
