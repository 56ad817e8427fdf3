"""Commands: what one inbound message asks the workflow to do, in the model's words.

``accord.mapping.inbound`` turns a parsed message and its sender's dialect into these;
``accord.workflow.engine`` applies them to a repository. They hold no HL7 types, so a
DICOM MPPS event or a console action can ask for the same changes.
Each command keeps ``code``: the sender's own words ("ORC-1 CA", "OBR-25 F", "A10"),
so the trace can say what was said as well as what it meant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from accord.workflow.model import Demographics, Identifier, ProcedureStep
from accord.workflow.status import Status


@dataclass(frozen=True, slots=True)
class PatientData:
    """The patient a message names: PID-3 identifiers (with authority) and demographics."""

    identifiers: tuple[Identifier, ...]
    demographics: Demographics = field(default_factory=Demographics)


@dataclass(frozen=True, slots=True)
class VisitData:
    """PV1: PV1-19 visit number, PV1-2 class, PV1-3 location, PV1-7 attending, PV1-44/45."""

    visit_number: str
    patient_class: str = ""
    location: str = ""
    attending: str = ""
    admitted_at: datetime | None = None
    discharged_at: datetime | None = None


ORDER_KEYS = (
    "accession", "placer_number", "filler_number", "study_instance_uid",
    "requested_procedure_id", "sps_id",
)


@dataclass(frozen=True, slots=True)
class OrderRef:
    """Every number an order may be known by: accession, placer and filler numbers, the
    Study Instance UID, the requested procedure and SPS IDs (docs/model.md)."""

    accession: str = ""  # OBR-18 / IPC-1 / where the dialect says
    placer_number: str = ""  # ORC-2 / OBR-2
    filler_number: str = ""  # ORC-3 / OBR-3
    study_instance_uid: str = ""  # ZDS-1 / IPC-3
    requested_procedure_id: str = ""  # OBR-19 / IPC-2
    sps_id: str = ""  # OBR-20 / IPC-4

    def numbers(self) -> list[tuple[str, str]]:
        """The (key, value) pairs that are filled, most specific first."""
        return [(k, getattr(self, k)) for k in ORDER_KEYS if getattr(self, k)]

    def __bool__(self) -> bool:
        return bool(self.numbers())

    def describe(self) -> str:
        """Plain words: ``accession A1, placer P1``."""
        return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in self.numbers()) or "no number"


@dataclass(frozen=True, slots=True)
class OrderData:
    """What an order message says about one requested procedure (one ORC/OBR group)."""

    ref: OrderRef
    procedure_code: str = ""  # OBR-4.1 / AIS-3.1
    procedure_description: str = ""
    coding_system: str = ""
    modality: str = ""
    body_part: str = ""
    steps: tuple[ProcedureStep, ...] = ()
    priority: str = ""
    referring_physician: str = ""
    reason: str = ""
    hold_reason: str = ""  # set by mapping policy: kept off the worklist, and why
    rules: tuple[str, ...] = ()  # mapping rule outcomes in plain words, for the trace


@dataclass(frozen=True, slots=True)
class RegisterPatient:
    """ADT^A01/A04/A05/A28 (and A08/A31 for an unknown patient): create or update."""

    patient: PatientData
    trigger: str
    visit: VisitData | None = None


@dataclass(frozen=True, slots=True)
class UpdatePatient:
    """ADT^A08/A31 (and A02/A03/A06/A07): update demographics and the visit."""

    patient: PatientData
    trigger: str
    visit: VisitData | None = None


@dataclass(frozen=True, slots=True)
class MergePatients:
    """ADT^A40 (A34/A18): ``merged`` (MRG-1) is merged into ``survivor`` (PID-3)."""

    survivor: PatientData
    merged: tuple[Identifier, ...]
    trigger: str


@dataclass(frozen=True, slots=True)
class ChangeIdentifier:
    """ADT^A47: the identifier ``old`` (MRG-1) becomes ``new`` (PID-3) on one patient."""

    old: Identifier
    new: Identifier
    trigger: str
    patient: PatientData | None = None


VisitAction = Literal["arrived", "undo_arrival", "update"]


@dataclass(frozen=True, slots=True)
class VisitEvent:
    """ADT^A10 (arrived), A11/A12/A13 (cancels), A02/A03/A06/A07 (visit changes)."""

    patient: PatientData
    visit: VisitData
    trigger: str
    action: VisitAction = "update"


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """ORM^O01 NW, OMI^O23 / OMG^O19 NW, SIU^S12: a new order (or a resend of one)."""

    patient: PatientData
    order: OrderData
    status: Status
    code: str
    visit: VisitData | None = None


@dataclass(frozen=True, slots=True)
class UpdateOrder:
    """ORC-1 XO/SC (with ORC-5), SIU^S13/S14: new details and maybe a new status."""

    patient: PatientData
    order: OrderData
    status: Status | None
    code: str
    visit: VisitData | None = None


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """ORC-1 CA/OC/DC/OD, SIU^S15/S17/S26: stop the order (cancelled or discontinued)."""

    ref: OrderRef
    status: Status
    code: str
    reason: str = ""
    patient: PatientData | None = None


@dataclass(frozen=True, slots=True)
class ReportResult:
    """ORU^R01: one OBR group's report, with OBR-25 mapped to a report status."""

    ref: OrderRef
    status: Status
    code: str
    text: str = ""
    interpreter: str = ""
    observed_at: datetime | None = None
    patient: PatientData | None = None
    visit_number: str = ""


Command = (
    RegisterPatient | UpdatePatient | MergePatients | ChangeIdentifier | VisitEvent
    | PlaceOrder | UpdateOrder | CancelOrder | ReportResult
)
