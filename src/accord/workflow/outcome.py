"""What applying one message did: the Outcome, and the Session that gathers it.

Rules: a :class:`Session` is the only writer during one message. It records every
change in words, merges each finding with the stored one of the same key (counted, not
repeated), writes the trace, and collects the events for the outbox. Policies come in
as a :class:`Policy` value (built from the sender's dialect), so ``workflow`` never
imports ``mapping``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from accord.workflow.events import Event
from accord.workflow.findings import Finding, FindingKind, merge
from accord.workflow.identity.fellegi_sunter import MatchResult
from accord.workflow.identity.matcher import Assessment, Candidates
from accord.workflow.model import Demographics, Order
from accord.workflow.repository import Repository
from accord.workflow.trace import Change, TraceEvent


class Matcher(Protocol):
    """The identity matcher (``accord.workflow.identity.Matcher()``): scores the
    candidates the repository found against a registration; returns the pairs worth a
    person's review, best first."""

    def propose(self, demographics: Demographics, candidates: Candidates
                ) -> Sequence[MatchResult]: ...

    def assess(self, demographics: Demographics, candidates: Candidates) -> Assessment:
        """``propose``'s pairs and the registration's expected matches."""
        ...


class IdSource(Protocol):
    """Ids for new rows and DICOM UIDs (PS3.5 §9) — injected, so the core stays pure."""

    def new_id(self, kind: str) -> str: ...

    def new_uid(self, root: str) -> str: ...


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a message cannot be applied: the ACK code, the ERR-2 location, table 0357 code.

    101 required field missing, 103 table value not found, 200 unsupported message type,
    204 unknown key identifier (HL7 v2.5.1 table 0357). ``keep``: the commands are still
    applied (an order held off the worklist is kept) but the answer is the refusal's.
    """

    location: str
    text: str
    ack_code: str = "AE"
    error_code: str = "101"
    keep: bool = False


@dataclass(frozen=True, slots=True)
class Policy:
    """The sender's policies the engine needs (from its dialect)."""

    unknown_order: str = "keep"  # keep | reject
    merged_reference: str = "apply"  # apply | reject
    study_uid_policy: str = "generate"  # generate | accession | reject
    uid_root: str = ""
    authority: str = ""  # the authoritative assigning authority
    accession_location: str = "OBR-18"
    drift_threshold: int = 20


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one message: what changed and what to answer (AA, AE or AR, as the
    engine's rules say)."""

    changes: tuple[str, ...]
    findings: tuple[Finding, ...]
    trace_events: tuple[TraceEvent, ...]
    outbound_events: tuple[Event, ...]
    ack_code: str = "AA"
    error_location: str = ""
    error_code: str = ""
    error_text: str = ""


class Rejected(Exception):
    """Raised inside a handler to stop the message with a refusal (never escapes)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.text)
        self.refusal = refusal


@dataclass
class Session:
    """One message being applied: state access, ids, and everything it produced."""

    repo: Repository
    ids: IdSource
    now: datetime
    source: str
    message_ref: str
    policy: Policy = field(default_factory=Policy)
    matcher: Matcher | None = None
    changes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    trace_events: list[TraceEvent] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def finding(self, finding: Finding) -> Finding:
        """Store ``finding`` (merged with the stored one of the same key)."""
        stored = merge(self.repo.finding(finding.key), finding)
        self.repo.save_finding(stored)
        self.findings.append(stored)
        return stored

    def new_finding(
        self, kind: FindingKind, detail: str, *, accession: str = "", patient_id: str = "",
        subject: str = "", location: str = "", score: float | None = None,
        explanation: tuple[tuple[str, str, float, float], ...] = (),
    ) -> Finding:
        return self.finding(Finding(
            kind=kind, detail=detail, first_seen=self.now, accession=accession,
            patient_id=patient_id, subject=subject, location=location, source=self.source,
            messages=(self.message_ref,), score=score, explanation=explanation,
        ))

    def trace(
        self, order: Order | None, summary: str, *, accession: str = "",
        changes: Sequence[Change] = (), rules: Sequence[str] = (), outcome: str = "applied",
    ) -> None:
        event = TraceEvent(
            at=self.now, message=self.message_ref, source=self.source, summary=summary,
            order_id=order.id if order else "", accession=order.accession if order else accession,
            changes=tuple(changes), rules=tuple(rules), outcome=outcome,
        )
        self.repo.add_trace(event)
        self.trace_events.append(event)

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def changed(self, text: str) -> None:
        self.changes.append(text)
