"""The engine: apply one message's commands to the state, and say what happened.

Rules:
- Pure with respect to I/O: state is read and written only through the ``Repository``
  protocol; time and ids are passed in. The caller (ingest) runs this inside the store
  transaction, so a crash loses nothing and half a message is never committed.
- The answer (the ACK rules of docs/interface.md): AA once applied, findings or not —
  a contradiction is recorded, not bounced. AE (with ERR-2 naming the field) when the
  message cannot be applied: a required field is empty, a code has no meaning, a duplicate order
  number, or a policy says reject (unknown order, merged identifier). AR for a message
  type the workflow does not take. Findings are kept whatever the answer.
- Field fill statistics are updated for every message, so ``field_drift`` is noticed
  the first time a field a sender always filled arrives empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from accord.workflow.commands import (
    CancelOrder,
    ChangeIdentifier,
    Command,
    MergePatients,
    PlaceOrder,
    RegisterPatient,
    ReportResult,
    UpdateOrder,
    UpdatePatient,
    VisitEvent,
)
from accord.workflow.findings import Finding, FindingKind, observe_fields
from accord.workflow.orders import cancel, place, set_status, update
from accord.workflow.outcome import (
    IdSource,
    Matcher,
    Outcome,
    Policy,
    Refusal,
    Rejected,
    Session,
)
from accord.workflow.patients import change_identifier, ensure_patient, merge, record_visit
from accord.workflow.reports import link_reports, record_report
from accord.workflow.repository import Repository
from accord.workflow.status import Status


@dataclass(frozen=True, slots=True)
class Request:
    """One message, already mapped: who sent it, and the commands it asks for."""

    source: str  # sending system (MSH-3)
    message_ref: str  # SENDER/MSH-10
    message_type: str  # "ORM^O01"
    at: datetime
    commands: tuple[Command, ...] = ()
    findings: tuple[Finding, ...] = ()  # found while mapping (unmapped code, missing field)
    refusal: Refusal | None = None
    field_values: tuple[tuple[str, str], ...] = ()


def apply_commands(
    repo: Repository, request: Request, *, ids: IdSource, policy: Policy | None = None,
    matcher: Matcher | None = None,
) -> Outcome:
    """Apply ``request`` to ``repo``; the :class:`Outcome` says what changed and the ACK."""
    s = Session(repo, ids, request.at, request.source, request.message_ref,
                policy or Policy(), matcher)
    for finding in request.findings:
        s.finding(finding)
    _observe(s, request)
    refusal = request.refusal
    if refusal is None or refusal.keep:
        try:
            for command in request.commands:
                _dispatch(s, command)
        except Rejected as rejected:
            refusal = rejected.refusal
    return Outcome(
        changes=tuple(s.changes), findings=tuple(s.findings),
        trace_events=tuple(s.trace_events), outbound_events=tuple(s.events),
        ack_code=refusal.ack_code if refusal else "AA",
        error_location=refusal.location if refusal else "",
        error_code=refusal.error_code if refusal else "",
        error_text=refusal.text if refusal else "",
    )


def _observe(s: Session, request: Request) -> None:
    if not request.field_values or not request.source:
        return
    stats, drifts = observe_fields(
        s.repo.field_stats(request.source), request.message_type, request.field_values,
        s.policy.drift_threshold)
    s.repo.save_field_stats(stats)
    for drift in drifts:
        s.new_finding(
            FindingKind.FIELD_DRIFT,
            f"{drift.path} arrived empty in {drift.message_type} from {request.source}, "
            f"which had filled it in {drift.streak} messages in a row" if drift.streak else
            f"{drift.path} is still empty in {drift.message_type} from {request.source}",
            subject=f"{drift.message_type} {drift.path}", location=drift.path)


def _dispatch(s: Session, command: Command) -> None:
    match command:
        case RegisterPatient() | UpdatePatient():
            patient = ensure_patient(s, command.patient, trigger=command.trigger, update=True)
            if command.visit is not None:
                record_visit(s, patient, command.visit)
        case VisitEvent():
            _visit_event(s, command)
        case MergePatients():
            merge(s, command)
        case ChangeIdentifier():
            change_identifier(s, command)
        case PlaceOrder():
            order = place(s, command)
            if order is not None:  # a new order: reports that came before it are its own
                link_reports(s, order)
        case UpdateOrder():
            update(s, command)
        case CancelOrder():
            cancel(s, command)
        case ReportResult():
            record_report(s, command)


def _visit_event(s: Session, cmd: VisitEvent) -> None:
    """A10 arrived: the patient's scheduled orders of that visit are ``arrived``; A11
    (cancel admit/visit) takes them back to ``scheduled`` (status rule 3)."""
    if cmd.action == "update":
        return  # the UpdatePatient before it recorded the visit
    patient = ensure_patient(s, cmd.patient, trigger=cmd.trigger, update=False)
    wanted, new = (
        ((Status.ORDERED, Status.SCHEDULED), Status.ARRIVED) if cmd.action == "arrived"
        else ((Status.ARRIVED,), Status.SCHEDULED)
    )
    for order in s.repo.orders_of(patient.id):
        number = cmd.visit.visit_number
        same_visit = not number or not order.visit_number or order.visit_number == number
        if order.status in wanted and same_visit:
            set_status(s, order, new, f"ADT^{cmd.trigger}")
