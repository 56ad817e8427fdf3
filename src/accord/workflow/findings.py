"""Findings: every contradiction between systems, recorded instead of applied or dropped.

Rules (DESIGN.md, "Explain, don't just fail"):
- A finding is a value. The same finding seen again (same :attr:`Finding.key`) is not a
  new row: :func:`merge` raises its ``count`` and ``last_seen`` and adds the message ref.
- ``field_drift`` comes from per-sender, per-field fill statistics kept here as pure
  state (:class:`FieldStats`): a field a sender filled in at least N messages in a row
  that arrives empty is drift, found the first time it happens.
Pure: no clock reads (``now`` is passed in), no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum


class FindingKind(StrEnum):
    UNKNOWN_ORDER = "unknown_order"  # report or status for an order never received
    VISIT_MISMATCH = "visit_mismatch"  # report's PV1-19 differs from its order's
    STATUS_REGRESSION = "status_regression"  # a transition the status table forbids
    CANCELLED_BUT_PERFORMED = "cancelled_but_performed"  # cancel after start, or after it
    DUPLICATE_ORDER = "duplicate_order"  # a different order claims the same number
    POTENTIAL_DUPLICATE_PATIENT = "potential_duplicate_patient"  # demographics resemble
    MERGED_PATIENT_REFERENCE = "merged_patient_reference"  # a merged identifier is used
    UNMAPPED_CODE = "unmapped_code"  # a procedure code no table knows
    MISSING_REQUIRED_FIELD = "missing_required_field"  # the field location in .location
    FIELD_DRIFT = "field_drift"  # a field a sender always filled arrives empty
    # DICOM bridge (issue 5): MPPS and PACS reconciliation.
    UNSCHEDULED_PROCEDURE = "unscheduled_procedure"  # an MPPS that references no step
    COMPLETED_STUDY_MISSING = "completed_study_missing"  # completed, PACS has no study
    STUDY_WITHOUT_ORDER = "study_without_order"  # the PACS has a study no order knows


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class Resolution(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"  # the contradiction went away (e.g. the order arrived later)
    IGNORED = "ignored"  # a person decided it does not matter


DEFAULT_SEVERITY: Mapping[FindingKind, Severity] = {
    FindingKind.UNKNOWN_ORDER: Severity.WARNING,
    FindingKind.VISIT_MISMATCH: Severity.ERROR,
    FindingKind.STATUS_REGRESSION: Severity.WARNING,
    FindingKind.CANCELLED_BUT_PERFORMED: Severity.ERROR,
    FindingKind.DUPLICATE_ORDER: Severity.ERROR,
    FindingKind.POTENTIAL_DUPLICATE_PATIENT: Severity.WARNING,
    FindingKind.MERGED_PATIENT_REFERENCE: Severity.INFO,
    FindingKind.UNMAPPED_CODE: Severity.WARNING,
    FindingKind.MISSING_REQUIRED_FIELD: Severity.ERROR,
    FindingKind.FIELD_DRIFT: Severity.WARNING,
    FindingKind.UNSCHEDULED_PROCEDURE: Severity.WARNING,
    FindingKind.COMPLETED_STUDY_MISSING: Severity.ERROR,
    FindingKind.STUDY_WITHOUT_ORDER: Severity.WARNING,
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One contradiction, with who and what it is about and when it was seen.

    ``subject`` tells same-kind findings apart (the code for ``unmapped_code``, the
    field for ``field_drift``, the other patient for ``potential_duplicate_patient``).
    ``messages`` holds message refs (sender + MSH-10) in the order they were seen.
    """

    kind: FindingKind
    detail: str
    first_seen: datetime
    accession: str = ""
    patient_id: str = ""
    subject: str = ""
    location: str = ""  # HL7 field location, e.g. "OBR-4" (missing_required_field)
    source: str = ""  # sending system
    messages: tuple[str, ...] = ()
    severity: Severity | None = None
    last_seen: datetime | None = None
    count: int = 1
    resolution: Resolution = Resolution.OPEN
    score: float | None = None  # potential_duplicate_patient: the match score

    def __post_init__(self) -> None:
        if self.severity is None:
            object.__setattr__(self, "severity", DEFAULT_SEVERITY[self.kind])
        if self.last_seen is None:
            object.__setattr__(self, "last_seen", self.first_seen)
        if self.count < 1:
            raise ValueError("finding count must be at least 1")

    @property
    def key(self) -> str:
        """What makes two findings the same finding (then counted, not repeated)."""
        return "|".join(
            (self.kind.value, self.source, self.accession, self.patient_id, self.subject,
             self.location)
        )


def merge(existing: Finding | None, new: Finding) -> Finding:
    """The finding to store: ``new`` if first seen, else ``existing`` counted once more.

    A resolved finding that happens again is open again: it is happening now.
    """
    if existing is None:
        return new
    messages = existing.messages + tuple(m for m in new.messages if m not in existing.messages)
    return replace(
        existing,
        detail=new.detail,
        last_seen=new.first_seen,
        count=existing.count + 1,
        messages=messages[-50:],  # bounded: the trace keeps the full history
        resolution=Resolution.OPEN,
        score=new.score if new.score is not None else existing.score,
    )


def resolve(finding: Finding, at: datetime, note: str) -> Finding:
    """Mark ``finding`` resolved (the detail gains why)."""
    return replace(
        finding, resolution=Resolution.RESOLVED, last_seen=at, detail=f"{finding.detail}; {note}"
    )


# --- field drift ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldStat:
    """How one sender fills one field of one message type."""

    seen: int = 0
    filled: int = 0
    streak: int = 0  # messages in a row, up to the last one, with the field filled
    drifting: bool = False  # the field went empty after a streak and has stayed empty


@dataclass(frozen=True, slots=True)
class FieldStats:
    """Fill statistics of one sender: ``(message type, field path) -> FieldStat``."""

    sender: str
    fields: Mapping[tuple[str, str], FieldStat] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DriftObservation:
    """One field of one message that drifted (empty after a streak of N filled)."""

    message_type: str
    path: str
    streak: int


def observe_fields(
    stats: FieldStats, message_type: str, values: Iterable[tuple[str, str]], threshold: int
) -> tuple[FieldStats, list[DriftObservation]]:
    """Count one message's watched fields; return the new stats and the drifts seen.

    A field drifts when it arrives empty after ``threshold`` or more messages in a row
    had it filled; it keeps drifting (one finding, counted up) until it is filled again.
    """
    updated = dict(stats.fields)
    drifts: list[DriftObservation] = []
    for path, value in values:
        old = updated.get((message_type, path), FieldStat())
        if value:
            new = FieldStat(old.seen + 1, old.filled + 1, old.streak + 1, False)
        else:
            drifting = old.drifting or old.streak >= threshold
            if drifting:
                drifts.append(DriftObservation(message_type, path, old.streak))
            new = FieldStat(old.seen + 1, old.filled, 0, drifting)
        updated[(message_type, path)] = new
    return FieldStats(stats.sender, updated), drifts
