"""Outbound messages (mapping/outbound.py), parsed back and checked field by field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from accord.hl7 import parse
from accord.mapping.dialect import Dialect
from accord.mapping.outbound import build, status_code
from accord.workflow.events import (
    OrderForwarded,
    OrderStatusChanged,
    PatientChanged,
    PatientMerged,
    ReportForwarded,
)
from accord.workflow.model import (
    Demographics,
    Identifier,
    Order,
    Patient,
    PersonName,
    ProcedureStep,
    Report,
)
from accord.workflow.status import Status

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
PATIENT = Patient("P1", (Identifier("MRN1", "HOSP", "MR"), Identifier("X9", "OTHER")),
                  Demographics(PersonName("DOE", "JANE")))
ORDER = Order(
    id="O1", patient_id="P1", status=Status.IN_PROGRESS, accession="A1", placer_number="P^1",
    filler_number="F1", requested_procedure_id="RP1", study_instance_uid="1.2.3.4",
    procedure_code="CTHEAD", procedure_description="CT head", modality="CT", visit_number="V1",
    steps=(ProcedureStep("SPS1", "CT", ("CT1", "CT2"), start=datetime(2026, 3, 2, 9, 0,
                                                                       tzinfo=UTC)),),
)


@pytest.mark.parametrize(("after", "orc5"), [
    (Status.IN_PROGRESS, "IP"), (Status.COMPLETED, "CM"), (Status.DISCONTINUED, "DC"),
])
def test_status_as_orm_o01(after: Status, orc5: str) -> None:
    event = OrderStatusChanged(ORDER, PATIENT, Status.SCHEDULED, after)
    msg = build(event, Dialect(), control_id="ACC0000000001", now=NOW)
    assert msg is not None
    back = parse(msg.to_er7())
    assert back.message_type == "ORM^O01" and back.version == "2.3.1"
    assert back.control_id == "ACC0000000001"
    assert (back.get("ORC-1"), back.get("ORC-5")) == ("SC", orc5)
    assert back.get("ORC-2") == "P^1"  # escaped on the way out, unescaped back
    assert back.get("OBR-18") == "A1" and back.get("OBR-20") == "SPS1"
    assert back.get("ZDS-1.1") == "1.2.3.4"
    assert back.get("PID-3[1].1") == "MRN1" and back.get("PID-3[2].4") == "OTHER"
    assert back.get("MSH-7").startswith("20260302093000")


def test_status_as_omi_o23_with_ipc() -> None:
    event = OrderStatusChanged(ORDER, PATIENT, Status.IN_PROGRESS, Status.COMPLETED)
    msg = build(event, Dialect(outbound="OMI^O23"), control_id="C2", now=NOW)
    assert msg is not None
    back = parse(msg.to_er7())
    assert back.message_type == "OMI^O23" and back.version == "2.5.1"
    assert (back.get("ORC-1"), back.get("ORC-5")) == ("SC", "CM")
    assert [back.get(f"IPC-{n}") for n in (1, 2, 3, 4, 5)] == ["A1", "RP1", "1.2.3.4", "SPS1", "CT"]
    assert (back.get("IPC-9[1]"), back.get("IPC-9[2]")) == ("CT1", "CT2")
    assert back.get("TQ1-7").startswith("20260302090000")


def test_dialect_own_status_code_is_used() -> None:
    d = Dialect.from_config({"order_status": {"SC/ZC": "completed", "SC/CM": "scheduled"}})
    assert status_code(d, Status.COMPLETED) in ("ZC",)
    assert status_code(Dialect(), Status.PRELIMINARY) == ""
    event = OrderStatusChanged(ORDER, PATIENT, Status.COMPLETED, Status.FINAL)
    assert build(event, Dialect(), control_id="C3", now=NOW) is None


@pytest.mark.parametrize(("action", "status", "orc1", "orc5"), [
    ("new", Status.SCHEDULED, "NW", "SC"), ("update", Status.SCHEDULED, "XO", ""),
    ("cancel", Status.CANCELLED, "CA", "CA"), ("cancel", Status.DISCONTINUED, "DC", "DC"),
])
def test_order_forwarding(action: str, status: Status, orc1: str, orc5: str) -> None:
    from dataclasses import replace

    event = OrderForwarded(replace(ORDER, status=status), PATIENT, action)  # type: ignore[arg-type]
    msg = build(event, Dialect(), control_id="C4", now=NOW)
    assert msg is not None
    back = parse(msg.to_er7())
    assert (back.get("ORC-1"), back.get("ORC-5")) == (orc1, orc5)


def test_report_as_oru() -> None:
    report = Report("R1", "A1", Status.AMENDED, text="Line 1\nLine | 2", order_id="O1")
    msg = build(ReportForwarded(report, ORDER, PATIENT), Dialect(), control_id="C5", now=NOW)
    assert msg is not None
    back = parse(msg.to_er7())
    assert back.message_type == "ORU^R01" and back.get("OBR-25") == "C"
    assert (back.get("OBX[1]-5"), back.get("OBX[2]-5")) == ("Line 1", "Line | 2")


def test_merge_as_a40() -> None:
    merged = Patient("P2", (Identifier("MRN2", "HOSP", "MR"),), merged_into="P1")
    msg = build(PatientMerged(PATIENT, merged), Dialect(), control_id="C6", now=NOW)
    assert msg is not None
    back = parse(msg.to_er7())
    assert back.message_type == "ADT^A40" and back.get("EVN-1") == "A40"
    assert back.get("PID-3[1].1") == "MRN1" and back.get("MRG-1.1") == "MRN2"
    assert back.get("MRG-1.4") == "HOSP"


def test_patient_change_as_a04_or_a08() -> None:
    new = build(PatientChanged(PATIENT, created=True), Dialect(), control_id="C7", now=NOW)
    old = build(PatientChanged(PATIENT, created=False), Dialect(), control_id="C8", now=NOW)
    assert new is not None and old is not None
    assert parse(new.to_er7()).message_type == "ADT^A04"
    assert parse(old.to_er7()).get("PID-5.1") == "DOE"
