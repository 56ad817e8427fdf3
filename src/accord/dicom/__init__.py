"""The DICOM bridge: Modality Worklist (C-FIND) and MPPS (N-CREATE/N-SET) for modalities,
and the PACS C-FIND used by reconciliation.

Pure parts: :mod:`.worklist` (SPS -> MWL dataset, PS3.4 K.6), :mod:`.query` (C-FIND
matching, PS3.4 C.2.2.2), :mod:`.mpps` (MPPS -> status command, PS3.4 F.7),
:mod:`.charset`, :mod:`.reconcile`. Edges: :mod:`.scp`, :mod:`.scu`. On the store:
:mod:`.bridge` (the worklist the SCP serves, kept in sync with the workflow through the
in-memory :class:`WorklistIndex`; where MPPS goes; the running bridge), and
:mod:`.reconcile_job`. Those two are imported by their own path, not from here: they
need the engine and the store, the parts above do not.
"""

from accord.dicom.index import WorklistEntry, WorklistIndex
from accord.dicom.mpps import (
    MppsInstance,
    MppsRejected,
    MppsResult,
    Outcome,
    StatusCommand,
    StepRef,
    UnscheduledProcedure,
)
from accord.dicom.query import Query, QueryRejected, compile_query, response, worklist_keys
from accord.dicom.reconcile import CompletedOrder, ReconcileFinding, StudyRecord
from accord.dicom.scp import DicomServer, MppsSink, ScpConfig, WorklistSource, start_scp
from accord.dicom.scu import PacsClient, PacsPeer, reconcile
from accord.dicom.worklist import WorklistItem, mwl_dataset

__all__ = [
    "CompletedOrder",
    "DicomServer",
    "MppsInstance",
    "MppsRejected",
    "MppsResult",
    "MppsSink",
    "Outcome",
    "PacsClient",
    "PacsPeer",
    "Query",
    "QueryRejected",
    "ReconcileFinding",
    "ScpConfig",
    "StatusCommand",
    "StepRef",
    "StudyRecord",
    "UnscheduledProcedure",
    "WorklistEntry",
    "WorklistIndex",
    "WorklistItem",
    "WorklistSource",
    "compile_query",
    "mwl_dataset",
    "reconcile",
    "response",
    "start_scp",
    "worklist_keys",
]
