"""Findings: every contradiction between systems, recorded instead of applied or dropped.

Rules (a contradiction is explained, never silently applied or dropped):
- Each kind is defined once (:class:`FindingKind`): its severity, its title and the
  explanation people read are part of the kind, not kept elsewhere.
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
from typing import Any


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class Resolution(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"  # the contradiction went away (e.g. the order arrived later)
    IGNORED = "ignored"  # a person decided it does not matter


class _About:
    """What is said about a finding kind (set on each :class:`FindingKind` member)."""

    severity: Severity  # the default severity of its findings
    label: str  # a short title, e.g. "Report for an unknown order"
    explanation: str  # what it means, as the console shows it


class FindingKind(_About, StrEnum):
    """What contradiction a finding records. Each kind is defined once, here, with all
    that is said about it: its value (stored, and answered by the JSON API), its default
    severity, a short title (``label``) and the explanation the console shows."""

    def __new__(cls, value: str, *about: Any) -> FindingKind:
        severity, label, explanation = about  # every kind states all three
        kind = str.__new__(cls, value)
        kind._value_ = value
        kind.severity, kind.label, kind.explanation = severity, label, explanation
        return kind

    UNKNOWN_ORDER = (
        "unknown_order", Severity.WARNING, "Report for an unknown order",
        "A report or status arrived for an order Accord never received.")
    VISIT_MISMATCH = (
        "visit_mismatch", Severity.ERROR, "Report on another visit",
        "The report's visit (PV1-19) differs from its order's visit.")
    STATUS_REGRESSION = (
        "status_regression", Severity.WARNING, "Status went backwards",
        "A status change the status table forbids (e.g. final → preliminary); it was "
        "recorded, not applied.")
    CANCELLED_BUT_PERFORMED = (
        "cancelled_but_performed", Severity.ERROR, "Cancelled but performed",
        "The exam was cancelled but evidence says it was performed (MPPS or a report), "
        "or cancelled after it started.")
    DUPLICATE_ORDER = (
        "duplicate_order", Severity.ERROR, "Order number claimed twice",
        "A different order claims the same number (accession, placer, filler or Study "
        "Instance UID).")
    POTENTIAL_DUPLICATE_PATIENT = (
        "potential_duplicate_patient", Severity.WARNING, "Possible duplicate patient",
        "Two patient records look like the same person; review them side by side.")
    MERGED_PATIENT_REFERENCE = (
        "merged_patient_reference", Severity.INFO, "Merged identifier used",
        "A sender used an identifier that was merged away.")
    UNMAPPED_CODE = (
        "unmapped_code", Severity.WARNING, "Unmapped procedure code",
        "A procedure code no code table knows; the order is held off the worklist until "
        "it is mapped.")
    MISSING_REQUIRED_FIELD = (
        "missing_required_field", Severity.ERROR, "Required field missing",
        "A field the workflow needs was empty (see Field).")
    FIELD_DRIFT = (
        "field_drift", Severity.WARNING, "Field no longer filled",
        "A field this sender always filled arrived empty.")
    UNSCHEDULED_PROCEDURE = (
        "unscheduled_procedure", Severity.WARNING, "Unscheduled procedure",
        "A modality reported a procedure (MPPS) that references no scheduled step: no "
        "order has its Study Instance UID, accession or SPS ID. The detail names the "
        "closest patient match, if any.")
    COMPLETED_STUDY_MISSING = (
        "completed_study_missing", Severity.ERROR, "Completed study not in the PACS",
        "The exam was completed, but some time later the PACS still has no study with "
        "its Study Instance UID or accession (images lost or sent elsewhere).")
    STUDY_WITHOUT_ORDER = (
        "study_without_order", Severity.WARNING, "Study without an order",
        "The PACS holds a study whose Study Instance UID and accession no order has "
        "(performed without an order, or its numbers were changed at the modality).")
    PROFILE_VIOLATION = (
        "profile_violation", Severity.WARNING, "Order breaks the message profile",
        "The order message does not meet the HL7 profile orders are checked against "
        "(workflow.checks.profile; IHE Scheduled Workflow by default): a field is "
        "missing, misplaced or of the wrong type (the detail names each). The order was "
        "applied as it was read, so the worklist may show it wrongly; correct the "
        "sender's interface.")
    SCHEDULED_IN_PAST = (
        "scheduled_in_past", Severity.WARNING, "Scheduled in the past",
        "The order's scheduled start is further in the past than "
        "workflow.checks.max_schedule_age_hours allows: a wrong date at the sender, or an "
        "order sent long after its slot. It is on the worklist as sent, but a modality "
        "asking for today's steps will not see it.")


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
    # potential_duplicate_patient: the terms of the match weight, (comparison, level,
    # weight in bits, of which the term-frequency effect), adding up to the score's
    # log2 odds (``accord.workflow.identity.FieldWeight``)
    explanation: tuple[tuple[str, str, float, float], ...] = ()

    def __post_init__(self) -> None:
        if self.severity is None:
            object.__setattr__(self, "severity", self.kind.severity)
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
        explanation=new.explanation or existing.explanation,
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
