"""Modality Worklist items: a scheduled procedure step as the modality sees it.

Rules: pure. No sockets, no clock reads, no file I/O. One worklist item per scheduled
procedure step (SPS), built from the step, its order and its patient with the attributes
of DICOM PS3.4 K.6.1.2.2 (Modality Worklist Information Model, return keys) and IHE
RAD TF-2 RAD-5 (Query Modality Worklist). Matching a C-FIND identifier against these
items lives in :mod:`accord.dicom.query` (PS3.4 C.2.2.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import cache
from typing import Any

from pydicom import config
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from accord.dicom.charset import patient_pn, pn_from_xcn, specific_character_set
from accord.workflow.model import Order, Patient, ProcedureStep
from accord.workflow.status import Status

# Scheduled Procedure Step Status (0040,0020), PS3.3 C.4.10 defined terms.
SPS_STATUS: dict[Status, str] = {
    Status.ORDERED: "SCHEDULED",
    Status.SCHEDULED: "SCHEDULED",
    Status.ARRIVED: "ARRIVED",
    Status.IN_PROGRESS: "STARTED",
    Status.COMPLETED: "COMPLETED",
    Status.PRELIMINARY: "COMPLETED",
    Status.FINAL: "COMPLETED",
    Status.AMENDED: "COMPLETED",
    Status.CANCELLED: "CANCELED",
    Status.DISCONTINUED: "DISCONTINUED",
}

# Requested Procedure Priority (0040,1003) from ORC-7/TQ1-9 priority (HL7 table 0027).
PRIORITY: dict[str, str] = {"S": "STAT", "A": "HIGH", "R": "ROUTINE", "P": "ROUTINE",
                            "C": "HIGH", "T": "MEDIUM"}

# Steps a modality should see by default: not yet started (a started or stopped step is
# no longer work to pick).
SERVABLE: frozenset[Status] = frozenset({Status.SCHEDULED, Status.ARRIVED})


@dataclass(frozen=True, slots=True)
class WorklistItem:
    """One scheduled procedure step with its order and patient (the unit of a C-FIND match)."""

    patient: Patient
    order: Order
    step: ProcedureStep

    @property
    def key(self) -> tuple[str, str]:
        """(order id, SPS ID): unique across the worklist."""
        return (self.order.id, self.step.sps_id)


# Maximum value lengths (PS3.5 Table 6.2-1) of the text VRs written here.
_MAX_LENGTH = {"SH": 16, "LO": 64, "CS": 16, "LT": 10240, "ST": 1024}
# Never cut: a shortened identifier would match nothing when the MPPS comes back.
_IDENTIFIERS = frozenset({"AccessionNumber", "PatientID", "IssuerOfPatientID", "AdmissionID",
                          "RequestedProcedureID", "ScheduledProcedureStepID", "CodeValue"})


@cache
def _tag_vr(keyword: str) -> tuple[int, str]:
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    return tag, dictionary_VR(tag)


def _clean(value: str, vr: str, keyword: str) -> str:
    # A backslash would split the value into several (VM); over-long descriptive text
    # is cut to the VR's limit rather than sent invalid (PS3.5 §6.2).
    text = value.replace("\\", " ")
    limit = None if keyword in _IDENTIFIERS else _MAX_LENGTH.get(vr)
    return text[:limit] if limit else text


def _put(ds: Dataset, keyword: str, value: Any) -> None:
    """Add an element without pydicom's per-assignment lookups and validation: values
    are cleaned here, and building 10,000 items is ~2x faster."""
    tag, vr = _tag_vr(keyword)
    if isinstance(value, str):
        value = _clean(value, vr, keyword)
    elif isinstance(value, list) and value and isinstance(value[0], str):
        value = [_clean(v, vr, keyword) for v in value]
    ds.add(DataElement(tag, vr, value, validation_mode=config.IGNORE))


def local_start(step: ProcedureStep, tz: tzinfo) -> datetime | None:
    """The SPS start in the department's zone: DICOM DA/TM carry local time (PS3.5 §6.2)."""
    start = _utc_start(step)
    return start.astimezone(tz) if start is not None else None


def started_before(step: ProcedureStep, when: datetime) -> bool:
    """Whether the step was scheduled to start before ``when`` (False without a start)."""
    start = _utc_start(step)
    return start is not None and start < when


def _utc_start(step: ProcedureStep) -> datetime | None:
    """The SPS start as an aware datetime (a naive one is taken as UTC)."""
    if step.start is None or step.start.tzinfo is not None:
        return step.start
    return step.start.replace(tzinfo=UTC)


def _code_item(value: str, scheme: str, meaning: str) -> Dataset:
    # Code Sequence Macro, PS3.3 Table 8.8-1.
    item = Dataset()
    _put(item, "CodeValue", value)
    _put(item, "CodingSchemeDesignator", scheme)
    _put(item, "CodeMeaning", meaning or value)
    return item


def _patient_attributes(ds: Dataset, patient: Patient) -> None:
    demo = patient.demographics
    _put(ds, "PatientName", patient_pn(demo))
    primary = patient.identifiers[0] if patient.identifiers else None
    _put(ds, "PatientID", primary.value if primary else "")
    _put(ds, "IssuerOfPatientID", primary.authority if primary else "")
    _put(ds, "PatientBirthDate", demo.birth_date.strftime("%Y%m%d") if demo.birth_date else "")
    _put(ds, "PatientSex", demo.sex if demo.sex in ("M", "F", "O") else "")
    others = Sequence()
    for ident in patient.identifiers[1:]:
        other = Dataset()
        _put(other, "PatientID", ident.value)
        _put(other, "IssuerOfPatientID", ident.authority)
        _put(other, "TypeOfPatientID", "TEXT")
        others.append(other)
    _put(ds, "OtherPatientIDsSequence", others)


def _sps_item(step: ProcedureStep, tz: tzinfo, scheme: str) -> Dataset:
    sps = Dataset()
    _put(sps, "ScheduledStationAETitle", list(step.station_ae_titles) or "")
    start = local_start(step, tz)
    _put(sps, "ScheduledProcedureStepStartDate", start.strftime("%Y%m%d") if start else "")
    _put(sps, "ScheduledProcedureStepStartTime", start.strftime("%H%M%S") if start else "")
    _put(sps, "Modality", step.modality)
    _put(sps, "ScheduledPerformingPhysicianName", pn_from_xcn(step.performing_physician))
    _put(sps, "ScheduledProcedureStepDescription", step.description)
    protocol = Sequence()
    if step.protocol_code:
        protocol.append(_code_item(step.protocol_code, scheme, step.description))
    _put(sps, "ScheduledProtocolCodeSequence", protocol)
    _put(sps, "ScheduledProcedureStepID", step.sps_id)
    _put(sps, "ScheduledStationName", step.station_name)
    _put(sps, "ScheduledProcedureStepLocation", step.location)
    _put(sps, "ScheduledProcedureStepStatus", SPS_STATUS[step.status])
    return sps


def mwl_dataset(item: WorklistItem, *, tz: tzinfo = UTC, coding_scheme: str = "99LOCAL") -> Dataset:
    """The worklist item of PS3.4 K.6.1.2.2 / IHE RAD-5 for one SPS.

    ``tz`` is the department's zone for DA/TM; ``coding_scheme`` the Coding Scheme
    Designator of local procedure and protocol codes (PS3.16 §8: private schemes
    start with "99").
    """
    order, step = item.order, item.step
    ds = Dataset()
    names = [patient_pn(item.patient.demographics), order.referring_physician,
             step.performing_physician, order.procedure_description, step.description,
             step.location, step.station_name, order.reason]
    terms = specific_character_set(order.charset, names)
    if terms:
        _put(ds, "SpecificCharacterSet", list(terms) if len(terms) > 1 else terms[0])
    _put(ds, "AccessionNumber", order.accession)
    _put(ds, "ReferringPhysicianName", pn_from_xcn(order.referring_physician))
    _put(ds, "ReferencedStudySequence", Sequence())
    _put(ds, "ReferencedPatientSequence", Sequence())
    _patient_attributes(ds, item.patient)
    _put(ds, "AdmissionID", order.visit_number)
    _put(ds, "StudyInstanceUID", order.study_instance_uid)
    _put(ds, "RequestedProcedureDescription", order.procedure_description)
    codes = Sequence()
    if order.procedure_code:
        codes.append(_code_item(order.procedure_code, coding_scheme,
                                order.procedure_description))
    _put(ds, "RequestedProcedureCodeSequence", codes)
    _put(ds, "RequestedProcedureID", order.requested_procedure_id or order.accession)
    _put(ds, "ReasonForTheRequestedProcedure", order.reason)
    _put(ds, "RequestedProcedurePriority", PRIORITY.get(order.priority.upper()[:1], ""))
    _put(ds, "ScheduledProcedureStepSequence", Sequence([_sps_item(step, tz, coding_scheme)]))
    return ds
