"""Inbound mapping (mapping/inbound.py) on corpus messages and small hand-made ones."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from accord.hl7 import parse
from accord.mapping.dialect import Dialect
from accord.mapping.inbound import Mapped, map_message
from accord.mapping.procedures import catalog_from_config
from accord.workflow.commands import (
    CancelOrder,
    ChangeIdentifier,
    MergePatients,
    PlaceOrder,
    RegisterPatient,
    ReportResult,
    UpdateOrder,
    VisitEvent,
)
from accord.workflow.findings import FindingKind
from accord.workflow.status import Status

SAMPLES = Path(__file__).parent.parent / "samples"
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _map(name_or_text: str, dialect: Dialect | None = None, **kw: object) -> Mapped:
    if name_or_text.endswith(".hl7"):
        data = (SAMPLES / name_or_text).read_bytes()
        msg = parse(data)
    else:
        msg = parse(name_or_text.replace("\n", "\r"))
    return map_message(msg, dialect or Dialect(), now=NOW, **kw)  # type: ignore[arg-type]


def test_dcm4che_omi_o23_reads_ipc() -> None:
    mapped = _map("workflow_dcm4che_omi_o23.hl7")
    assert mapped.refusal is None and mapped.source == "MESA_OF"
    assert mapped.message_ref == "MESA_OF/1001125" and mapped.message_type == "OMI^O23"
    (cmd,) = mapped.commands
    assert isinstance(cmd, PlaceOrder)
    assert cmd.status is Status.SCHEDULED and cmd.code == "ORC-1 NW, ORC-5 SC"
    ref = cmd.order.ref
    assert ref.accession == "AccessionNumber"  # OBR-18 empty, IPC-1 used
    assert ref.study_instance_uid == "1.2.392.200036.9125.0.198811291108.7"  # IPC-3
    assert (ref.requested_procedure_id, ref.sps_id) == ("RequestedProcID", "ScheduledProcStepID")
    (step,) = cmd.order.steps
    assert step.station_ae_titles == ("ScheduledStationAET1", "ScheduledStationAET2")
    assert (step.modality, step.station_name, step.location) == (
        "CT", "ScheduledStationName", "ScheduledProcStepLocation")
    assert step.start == datetime(2000, 8, 16, 15, 10, tzinfo=UTC)  # TQ1-7
    assert cmd.patient.identifiers[0].value == "PID_1"
    assert cmd.patient.identifiers[0].authority == "ADT1"
    assert cmd.patient.demographics.name.family == "Smith"
    assert cmd.visit is not None and cmd.visit.visit_number == "AdmissionIDFromVisitNo"


def test_dcm4che_zds_gives_study_uid_and_obr_numbers() -> None:
    (cmd,) = _map("workflow_dcm4che_omi_o23_zds.hl7").commands
    assert isinstance(cmd, PlaceOrder)
    assert cmd.order.ref.study_instance_uid == "1.2.392.200036.9125.0.198811291108.7"
    assert cmd.order.ref.accession == "AccessionNumber"  # OBR-18
    assert cmd.order.procedure_code == "10637-7" and cmd.order.coding_system == "LN"


def test_dcm4che_oru_sr_report_text() -> None:
    (cmd,) = _map("workflow_dcm4che_oru_r01_sr.hl7").commands
    assert isinstance(cmd, ReportResult)
    assert cmd.status is Status.FINAL and cmd.code == "OBR-25 F"
    lines = cmd.text.split("\n")
    assert lines[0] == "The right kidney is slightly enlarged, but otherwise normal"
    assert lines[-1].startswith("Internal technical scan parameters")
    assert not any("1.2.392" in line for line in lines)  # DICOM UID observations left out
    assert cmd.interpreter.startswith("VerifyingObserver")


def test_ms_siu_s12_falls_back_to_appointment_ids() -> None:
    (cmd,) = _map("workflow_ms_siu_s12.hl7").commands
    assert isinstance(cmd, PlaceOrder)
    assert (cmd.order.ref.placer_number, cmd.order.ref.filler_number) == ("12345", "36996")
    assert cmd.order.procedure_code == "76164006"  # AIS-3
    assert cmd.order.steps[0].start is not None


def test_dcm4che_a40_and_a47() -> None:
    (merge,) = _map("workflow_dcm4che_adt_a40.hl7").commands
    assert isinstance(merge, MergePatients)
    assert merge.survivor.identifiers[0].value == "NEW_PID_1"
    assert [i.value for i in merge.merged] == ["OLD_PID_1"]
    (change,) = _map("workflow_dcm4che_adt_a47.hl7").commands
    assert isinstance(change, ChangeIdentifier)
    assert (change.old.value, change.new.value) == ("OLD_PID_1", "NEW_PID_1")


def test_two_pid_mrg_pairs_give_two_merges() -> None:
    commands = _map("workflow_ms_adt_a40_two_pairs.hl7").commands
    pairs = [(c.survivor.identifiers[0].value, c.merged[0].value)
             for c in commands if isinstance(c, MergePatients)]
    assert pairs == [("12345", "56789"), ("145", "569")]


HDR = "MSH|^~\\&|RIS|HOSP|ACCORD|HOSP|20260302080000||{type}|M1|P|2.3.1\n"
PID = "PID|1||MRN1^^^HOSP^MR~123-45-6789^^^SSA^SS||DOE^JANE||19800101|F\n"


def test_order_controls_map_to_commands() -> None:
    body = (PID + "ORC|{c}|P1|F1||{s}\nOBR|1|P1|F1|CTHEAD^CT head^L" + "|" * 14 + "A1")
    cancel = _map(HDR.format(type="ORM^O01") + body.format(c="CA", s="")).commands[0]
    assert isinstance(cancel, CancelOrder) and cancel.status is Status.CANCELLED
    done = _map(HDR.format(type="ORM^O01") + body.format(c="SC", s="CM")).commands[0]
    assert isinstance(done, UpdateOrder) and done.status is Status.COMPLETED
    assert done.order.ref.accession == "A1"


def test_identifiers_keep_authority_and_mrn_first() -> None:
    d = Dialect(authority="SSA")
    (cmd,) = _map(HDR.format(type="ADT^A04") + PID, d).commands
    assert isinstance(cmd, RegisterPatient)
    assert [(i.value, i.authority, i.type_code) for i in cmd.patient.identifiers] == [
        ("123-45-6789", "SSA", "SS"), ("MRN1", "HOSP", "MR")]
    assert cmd.patient.demographics.national_id == "123-45-6789"


def test_a10_is_arrival() -> None:
    msg = HDR.format(type="ADT^A10") + PID + "PV1|1|O" + "|" * 17 + "V1"
    commands = _map(msg).commands
    assert any(isinstance(c, VisitEvent) and c.action == "arrived" for c in commands)


@pytest.mark.parametrize(("text", "location"), [
    (HDR.format(type="ORM^O01") + "PID|1\nORC|NW|P1\nOBR|1|P1||CT^x", "PID-3"),
    (HDR.format(type="ORM^O01") + PID + "ORC|NW\nOBR|1||||", "ORC-2"),
    (HDR.format(type="ORM^O01") + PID + "ORC|NW|P1\nOBR|1|P1", "OBR-4"),
    (HDR.format(type="ORU^R01") + PID + "OBR|1|P1" + "|" * 16 + "A1", "OBR-25"),
    (HDR.format(type="ADT^A40") + PID + "MRG|", "MRG-1"),
])
def test_missing_required_field(text: str, location: str) -> None:
    mapped = _map(text)
    assert mapped.refusal is not None and mapped.refusal.ack_code == "AE"
    assert mapped.refusal.location == location and mapped.refusal.error_code == "101"
    assert [f.kind for f in mapped.findings] == [FindingKind.MISSING_REQUIRED_FIELD]
    assert mapped.findings[0].location == location


def test_unsupported_type_is_ar() -> None:
    mapped = _map(HDR.format(type="QRY^A19") + "QRD|1")
    assert mapped.refusal is not None
    assert (mapped.refusal.ack_code, mapped.refusal.error_code) == ("AR", "200")


def test_unmapped_code_finding_and_default_station() -> None:
    catalog = catalog_from_config({"procedures": [{"code": "CTHEAD", "stations": ["CT1"]}]},
                                  at=NOW, author="t")
    text = HDR.format(type="ORM^O01") + PID + "ORC|NW|P1\nOBR|1|P1||XR1^Chest"
    mapped = _map(text, Dialect(default_station="DX9"), catalog=catalog)
    (cmd,) = mapped.commands
    assert isinstance(cmd, PlaceOrder)
    assert cmd.order.steps[0].station_ae_titles == ("DX9",)
    assert [(f.kind, f.subject) for f in mapped.findings] == [(FindingKind.UNMAPPED_CODE, "XR1")]
    held = _map(text, Dialect(unmapped_code="hold"), catalog=catalog)
    assert held.refusal is not None and held.refusal.keep and held.refusal.location == "OBR-4"
    assert isinstance(held.commands[0], PlaceOrder)
    assert held.commands[0].status is Status.ORDERED and held.commands[0].order.hold_reason


def test_ft_formatting_becomes_text() -> None:
    text = (HDR.format(type="ORU^R01") + PID + "OBR|1|P1" + "|" * 16 + "A1" + "|" * 7 + "F\n"
            "OBX|1|FT|^Report||Line one\\.br\\Line two \\H\\bold\\N\\ done||||||F\n"
            "OBX|2|TX|^Report||A \\T\\ B~Second repetition||||||F\n"
            "OBX|3|NM|^Size||12||||||F")
    (cmd,) = _map(text).commands
    assert isinstance(cmd, ReportResult)
    assert cmd.text == "Line one\nLine two bold done\nA & B\nSecond repetition"
