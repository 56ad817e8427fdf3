"""Outbound mapping: a domain event → the HL7 message a destination expects.

Rules:
- Pure: the caller gives MSH-10 (stored with the outbox row, so every resend carries
  the same one, so a receiver can recognise a resend) and MSH-7's time.
- Procedure status (``OrderStatusChanged``) goes as ORM^O01 v2.3.1 with ORC-1 ``SC`` and
  ORC-5 ``IP``/``CM``/``DC`` (IHE RAD TF-2 RAD-3/RAD-13 style), or as OMI^O23 v2.5.1
  (with IPC) when the destination's dialect says so. The ORC-5 code is the dialect's own:
  the first ``SC/xx`` pair of its table that means the status.
- Orders (``OrderForwarded``) go as NW / XO / CA (DC after start) in the same forms;
  reports as ORU^R01 (OBR-25 from the dialect's OBR-25 table, text as TX OBX lines);
  merges as ADT^A40 (PID survivor, MRG-1 the merged identifiers); patient changes as
  ADT^A04 (new) or A08.
- An event with nothing to say to that form (a status with no ORC-5 code) gives None.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from accord.hl7 import Message, format_ts
from accord.mapping.dialect import DEFAULT_ORDER_STATUS, Dialect
from accord.workflow.events import (
    Event,
    OrderForwarded,
    OrderStatusChanged,
    PatientChanged,
    PatientMerged,
    ReportForwarded,
)
from accord.workflow.model import Identifier, Order, Patient, Report
from accord.workflow.status import Status

SENDING_APPLICATION = "ACCORD"
_REPORTED = frozenset({Status.PRELIMINARY, Status.FINAL, Status.AMENDED, Status.CANCELLED})


def status_code(dialect: Dialect, status: Status) -> str:
    """The ORC-5 code meaning ``status`` in ``dialect`` ("" when it has none)."""
    for table in (dialect.order_status, DEFAULT_ORDER_STATUS):
        for key, value in table.items():
            if value is status and key.startswith("SC/"):
                return key[3:]
    return ""


def build(
    event: Event, dialect: Dialect, *, control_id: str, now: datetime,
    receiving_application: str = "",
) -> Message | None:
    """The message for ``event`` in ``dialect``'s form, or None (module rules)."""
    def header(message_type: str, version: str) -> Message:
        return Message.new(
            message_type, control_id=control_id, timestamp=format_ts(now),
            sending_application=SENDING_APPLICATION,
            receiving_application=receiving_application, version=version,
        )

    omi = dialect.outbound == "OMI^O23"
    match event:
        case OrderStatusChanged():
            code = status_code(dialect, event.after)
            if not code:
                return None
            msg = header(*_order_form(omi))
            _order(msg, event.patient, event.order, "SC", code, omi)
            return msg
        case OrderForwarded():
            control, code = _control(event.order, event.action)
            msg = header(*_order_form(omi))
            _order(msg, event.patient, event.order, control, code, omi)
            return msg
        case ReportForwarded():
            if event.report.status not in _REPORTED:
                return None
            msg = header("ORU^R01^ORU_R01", "2.5.1")
            _report(msg, event.patient, event.order, event.report, dialect)
            return msg
        case PatientMerged() | PatientChanged():
            return _adt(event, header, now)
    return None


def _adt(
    event: PatientMerged | PatientChanged, header: Callable[[str, str], Message], now: datetime
) -> Message:
    """ADT^A40 (PID survivor, MRG-1 merged identifiers) or ADT^A04/A08."""
    if isinstance(event, PatientMerged):
        msg = header("ADT^A40^ADT_A39", "2.5.1")
        msg.set("EVN-1", "A40")
        msg.set("EVN-2", format_ts(now))
        _pid(msg, event.survivor)
        _cx(msg, "MRG-1", event.merged.identifiers)
        return msg
    trigger = "A04" if event.created else "A08"
    msg = header(f"ADT^{trigger}^ADT_A01", "2.5.1")
    msg.set("EVN-1", trigger)
    msg.set("EVN-2", format_ts(now))
    _pid(msg, event.patient)
    msg.set("PV1-2", "U")
    return msg


def _order_form(omi: bool) -> tuple[str, str]:
    return ("OMI^O23^OMI_O23", "2.5.1") if omi else ("ORM^O01", "2.3.1")


def _control(order: Order, action: str) -> tuple[str, str]:
    if action == "new":
        return "NW", "SC" if order.status is Status.SCHEDULED else ""
    if action == "cancel":
        return ("DC", "DC") if order.status is Status.DISCONTINUED else ("CA", "CA")
    return "XO", ""


def _cx(msg: Message, path: str, identifiers: tuple[Identifier, ...]) -> None:
    for n, ident in enumerate(identifiers, start=1):
        msg.set(f"{path}[{n}].1", ident.value)
        if ident.authority:
            msg.set(f"{path}[{n}].4", ident.authority)
        if ident.type_code:
            msg.set(f"{path}[{n}].5", ident.type_code)


def _pid(msg: Message, patient: Patient | None) -> None:
    msg.set("PID-1", "1")
    if patient is None:
        return
    _cx(msg, "PID-3", patient.identifiers)
    d = patient.demographics
    for n, value in enumerate((d.name.family, d.name.given, d.name.middle), start=1):
        if value:
            msg.set(f"PID-5.{n}", value)
    if d.birth_date is not None:
        msg.set("PID-7", format_ts(d.birth_date, "day"))
    if d.sex:
        msg.set("PID-8", d.sex)


def _order(
    msg: Message, patient: Patient, order: Order, control: str, code: str, omi: bool
) -> None:
    """PID, PV1, ORC, (TQ1), OBR, and ZDS (ORM) or IPC per step (OMI)."""
    _pid(msg, patient)
    msg.set("PV1-2", "U")
    if order.visit_number:
        msg.set("PV1-19", order.visit_number)
    msg.set("ORC-1", control)
    msg.set("ORC-2", order.placer_number)
    msg.set("ORC-3", order.filler_number)
    if code:
        msg.set("ORC-5", code)
    start = order.steps[0].start if order.steps else None
    if omi and start is not None:
        msg.set("TQ1-7", format_ts(start))
    msg.set("OBR-1", "1")
    msg.set("OBR-2", order.placer_number)
    msg.set("OBR-3", order.filler_number)
    msg.set("OBR-4.1", order.procedure_code)
    msg.set("OBR-4.2", order.procedure_description)
    msg.set("OBR-4.3", order.coding_system)
    msg.set("OBR-18", order.accession)
    msg.set("OBR-19", order.requested_procedure_id)
    if order.steps:
        msg.set("OBR-20", order.steps[0].sps_id)
    msg.set("OBR-24", order.modality)
    if not omi and start is not None:
        msg.set("OBR-27.4", format_ts(start))
    _steps(msg, order, omi)


def _steps(msg: Message, order: Order, omi: bool) -> None:
    """IPC per procedure step (OMI^O23, IHE RAD TF-2 Table 4.4-7) or ZDS-1 (ORM^O01)."""
    if omi:
        for n, step in enumerate(order.steps, start=1):
            for field, value in ((1, order.accession), (2, order.requested_procedure_id),
                                 (3, order.study_instance_uid), (4, step.sps_id),
                                 (5, step.modality or order.modality), (7, step.station_name),
                                 (8, step.location)):
                msg.set(f"IPC[{n}]-{field}", value)
            for r, ae in enumerate(step.station_ae_titles, start=1):
                msg.set(f"IPC[{n}]-9[{r}]", ae)
    elif order.study_instance_uid:
        for n, value in enumerate((order.study_instance_uid, "100", "Application", "DICOM"), 1):
            msg.set(f"ZDS-1.{n}", value)


def _report(
    msg: Message, patient: Patient | None, order: Order | None, report: Report, d: Dialect
) -> None:
    _pid(msg, patient)
    code = next((k for k, v in d.report_status.items() if v is report.status), "F")
    msg.set("OBR-1", "1")
    msg.set("OBR-2", order.placer_number if order else report.placer_number)
    msg.set("OBR-3", order.filler_number if order else report.filler_number)
    if order is not None:
        msg.set("OBR-4.1", order.procedure_code)
        msg.set("OBR-4.2", order.procedure_description)
    msg.set("OBR-18", report.accession)
    msg.set("OBR-25", code)
    if report.interpreter:
        msg.set("OBR-32.1", report.interpreter.replace("^", " "))
    for n, line in enumerate(report.text.split("\n") if report.text else [], start=1):
        msg.set(f"OBX[{n}]-1", str(n))
        msg.set(f"OBX[{n}]-2", "TX")
        msg.set(f"OBX[{n}]-3.2", "Report text")
        msg.set(f"OBX[{n}]-5", line)
        msg.set(f"OBX[{n}]-11", code)
