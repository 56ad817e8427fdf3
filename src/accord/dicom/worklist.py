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

# Steps a modality should see by default: not yet started (issue 5).
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


def local_start(step: ProcedureStep, tz: tzinfo) -> datetime | None:
    """The SPS start in the department's zone: DICOM DA/TM carry local time (PS3.5 §6.2)."""
    if step.start is None:
        return None
    start = step.start if step.start.tzinfo else step.start.replace(tzinfo=UTC)
    return start.astimezone(tz)


def _code_item(value: str, scheme: str, meaning: str) -> Dataset:
    # Code Sequence Macro, PS3.3 Table 8.8-1.
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning or value
    return item


def _patient_attributes(ds: Dataset, patient: Patient) -> None:
    demo = patient.demographics
    ds.PatientName = patient_pn(demo)
    primary = patient.identifiers[0] if patient.identifiers else None
    ds.PatientID = primary.value if primary else ""
    ds.IssuerOfPatientID = primary.authority if primary else ""
    ds.PatientBirthDate = demo.birth_date.strftime("%Y%m%d") if demo.birth_date else ""
    ds.PatientSex = demo.sex if demo.sex in ("M", "F", "O") else ""
    others = Sequence()
    for ident in patient.identifiers[1:]:
        other = Dataset()
        other.PatientID = ident.value
        other.IssuerOfPatientID = ident.authority
        other.TypeOfPatientID = "TEXT"
        others.append(other)
    ds.OtherPatientIDsSequence = others


def _sps_item(step: ProcedureStep, tz: tzinfo, scheme: str) -> Dataset:
    sps = Dataset()
    sps.ScheduledStationAETitle = list(step.station_ae_titles) or ""
    start = local_start(step, tz)
    sps.ScheduledProcedureStepStartDate = start.strftime("%Y%m%d") if start else ""
    sps.ScheduledProcedureStepStartTime = start.strftime("%H%M%S") if start else ""
    sps.Modality = step.modality
    sps.ScheduledPerformingPhysicianName = pn_from_xcn(step.performing_physician)
    sps.ScheduledProcedureStepDescription = step.description
    protocol = Sequence()
    if step.protocol_code:
        protocol.append(_code_item(step.protocol_code, scheme, step.description))
    sps.ScheduledProtocolCodeSequence = protocol
    sps.ScheduledProcedureStepID = step.sps_id
    sps.ScheduledStationName = step.station_name
    sps.ScheduledProcedureStepLocation = step.location
    sps.ScheduledProcedureStepStatus = SPS_STATUS[step.status]
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
        ds.SpecificCharacterSet = list(terms) if len(terms) > 1 else terms[0]
    ds.AccessionNumber = order.accession
    ds.ReferringPhysicianName = pn_from_xcn(order.referring_physician)
    ds.ReferencedStudySequence = Sequence()
    ds.ReferencedPatientSequence = Sequence()
    _patient_attributes(ds, item.patient)
    ds.AdmissionID = order.visit_number
    ds.StudyInstanceUID = order.study_instance_uid
    ds.RequestedProcedureDescription = order.procedure_description
    codes = Sequence()
    if order.procedure_code:
        codes.append(_code_item(order.procedure_code, coding_scheme,
                                order.procedure_description))
    ds.RequestedProcedureCodeSequence = codes
    ds.RequestedProcedureID = order.requested_procedure_id or order.accession
    ds.ReasonForTheRequestedProcedure = order.reason
    ds.RequestedProcedurePriority = PRIORITY.get(order.priority.upper()[:1], "")
    ds.ScheduledProcedureStepSequence = Sequence([_sps_item(step, tz, coding_scheme)])
    return ds
