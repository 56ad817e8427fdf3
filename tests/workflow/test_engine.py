"""The engine (workflow/engine.py) driven by commands directly, without HL7.

This is how a DICOM MPPS event or a console action uses the same core.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from accord.workflow.commands import (
    CancelOrder,
    OrderData,
    OrderRef,
    PatientData,
    PlaceOrder,
    UpdateOrder,
)
from accord.workflow.engine import Request, apply_commands
from accord.workflow.events import OrderForwarded, OrderStatusChanged, PatientChanged
from accord.workflow.findings import FindingKind
from accord.workflow.memory import MemoryRepository, SequentialIds
from accord.workflow.model import Demographics, Identifier, PersonName, ProcedureStep
from accord.workflow.outcome import Policy, Refusal
from accord.workflow.status import Status
from accord.workflow.trace import explain

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PATIENT = PatientData((Identifier("MRN1", "HOSP", "MR"),), Demographics(PersonName("DOE", "JANE")))
REF = OrderRef(accession="A1", placer_number="P1")
ORDER = OrderData(REF, procedure_code="CTHEAD", modality="CT",
                  steps=(ProcedureStep("", "CT", ("CT1",), start=T0 + timedelta(hours=1)),))


def _request(*commands: object, minutes: int = 0, source: str = "RIS",
             refusal: Refusal | None = None) -> Request:
    return Request(source=source, message_ref=f"{source}/{minutes}", message_type="X",
                   at=T0 + timedelta(minutes=minutes), commands=commands,  # type: ignore[arg-type]
                   refusal=refusal)


def test_place_then_mpps_progress() -> None:
    repo, ids = MemoryRepository(), SequentialIds()
    placed = apply_commands(repo, _request(PlaceOrder(PATIENT, ORDER, Status.SCHEDULED, "NW")),
                            ids=ids, policy=Policy(uid_root="1.2.3"))
    assert placed.ack_code == "AA"
    assert [type(e) for e in placed.outbound_events] == [PatientChanged, OrderForwarded]
    (order,) = repo.orders.values()
    assert order.study_instance_uid == "1.2.3.1"  # generated under the root
    assert order.steps[0].sps_id == "A1.1" and order.requested_procedure_id == "A1"
    mpps = UpdateOrder(PATIENT, OrderData(OrderRef(study_instance_uid="1.2.3.1")),
                       Status.IN_PROGRESS, "MPPS IN PROGRESS")
    moved = apply_commands(repo, _request(mpps, minutes=5, source="MPPS"), ids=ids)
    (event,) = moved.outbound_events
    assert isinstance(event, OrderStatusChanged)
    assert (event.before, event.after, event.by) == (Status.SCHEDULED, Status.IN_PROGRESS, "MPPS")
    assert repo.orders[order.id].status is Status.IN_PROGRESS
    lines = explain(repo.trace(accession="A1"))
    assert any("MPPS IN PROGRESS" in line for line in lines)
    assert lines[-1].startswith("now: in_progress since 2026-03-02 08:05:00")


def test_refusal_stops_the_commands_but_keeps_findings() -> None:
    repo, ids = MemoryRepository(), SequentialIds()
    refusal = Refusal("OBR-4", "no procedure code")
    outcome = apply_commands(
        repo, _request(PlaceOrder(PATIENT, ORDER, Status.SCHEDULED, "NW"), refusal=refusal),
        ids=ids)
    assert (outcome.ack_code, outcome.error_location, outcome.error_code) == ("AE", "OBR-4", "101")
    assert repo.orders == {} and repo.patients == {}


def test_keep_refusal_applies_and_answers_ae() -> None:
    repo, ids = MemoryRepository(), SequentialIds()
    refusal = Refusal("OBR-4", "held", error_code="103", keep=True)
    outcome = apply_commands(
        repo, _request(PlaceOrder(PATIENT, ORDER, Status.ORDERED, "NW"), refusal=refusal),
        ids=ids)
    assert outcome.ack_code == "AE" and len(repo.orders) == 1


def test_unknown_order_policy_reject() -> None:
    repo, ids = MemoryRepository(), SequentialIds()
    cancel = CancelOrder(REF, Status.CANCELLED, "ORC-1 CA")
    kept = apply_commands(repo, _request(cancel), ids=ids)
    assert kept.ack_code == "AA"
    assert [f.kind for f in kept.findings] == [FindingKind.UNKNOWN_ORDER]
    rejected = apply_commands(repo, _request(cancel, minutes=1), ids=ids,
                              policy=Policy(unknown_order="reject", accession_location="IPC-1"))
    assert (rejected.ack_code, rejected.error_location, rejected.error_code) == (
        "AE", "IPC-1", "204")
    (finding,) = repo.findings.values()
    assert finding.count == 2  # the same finding, counted


def test_findings_are_counted_across_messages() -> None:
    repo, ids = MemoryRepository(), SequentialIds()
    apply_commands(repo, _request(PlaceOrder(PATIENT, ORDER, Status.SCHEDULED, "NW")), ids=ids)
    done = UpdateOrder(PATIENT, OrderData(REF), Status.COMPLETED, "ORC-5 CM")
    back = UpdateOrder(PATIENT, OrderData(REF), Status.SCHEDULED, "ORC-5 SC")
    apply_commands(repo, _request(done, minutes=1), ids=ids)
    apply_commands(repo, _request(back, minutes=2), ids=ids)
    apply_commands(repo, _request(back, minutes=3), ids=ids)
    (finding,) = repo.findings.values()
    assert finding.kind is FindingKind.STATUS_REGRESSION and finding.count == 2
    assert finding.first_seen == T0 + timedelta(minutes=2)
    assert finding.last_seen == T0 + timedelta(minutes=3)
    assert finding.messages == ("RIS/2", "RIS/3")
