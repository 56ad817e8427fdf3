"""The canonical model: patients, visits, orders, procedure steps, reports.

Rule: pure values. No I/O, no SQLAlchemy, no HL7 types here: mapping/ turns HL7 into
these, store/ persists them, dicom/ serves them. Field names follow the standard that
feeds them (PID-3 CX, XPN, PV1-19, ORC/OBR, DICOM PS3.4 K.6 for procedure steps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from accord.workflow.status import Status


@dataclass(frozen=True, slots=True)
class Identifier:
    """A CX identifier (HL7 v2.5.1 §2.A.14): CX-1 value, CX-4 authority, CX-5 type."""

    value: str
    authority: str = ""  # CX-4.1 namespace ID (or CX-4.2 universal ID when .1 is empty)
    type_code: str = ""  # CX-5, table 0203 (MR, PI, AN, VN, SS...)

    def __post_init__(self) -> None:
        if not self.value:
            raise ValueError("identifier value is empty")


@dataclass(frozen=True, slots=True)
class PersonName:
    """An XPN name (§2.A.89): family ^ given ^ middle ^ suffix ^ prefix."""

    family: str = ""
    given: str = ""
    middle: str = ""
    suffix: str = ""
    prefix: str = ""


@dataclass(frozen=True, slots=True)
class Address:
    """An XAD address (§2.A.85)."""

    street: str = ""
    other: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""


@dataclass(frozen=True, slots=True)
class Demographics:
    """What PID carries besides identifiers: PID-5, -7, -8, -11, -13, -19, -6."""

    name: PersonName = field(default_factory=PersonName)
    birth_date: date | None = None
    sex: str = ""  # table 0001: F, M, O, U, A, N
    address: Address = field(default_factory=Address)
    phone: str = ""
    national_id: str = ""  # PID-19 (SSN) or a CX with type SS/NI in PID-3
    mothers_maiden_name: str = ""
    # PID-5 repetitions with XPN-8 "I" / "P" (table 4000): the DICOM PN ideographic and
    # phonetic component groups (PS3.5 §6.2.1.2).
    ideographic_name: PersonName | None = None
    phonetic_name: PersonName | None = None


@dataclass(frozen=True, slots=True)
class Patient:
    """One person as Accord knows them. ``merged_into`` marks a tombstone."""

    id: str
    identifiers: tuple[Identifier, ...]
    demographics: Demographics = field(default_factory=Demographics)
    merged_into: str | None = None


@dataclass(frozen=True, slots=True)
class Visit:
    """A visit (PV1): PV1-19 visit number, PV1-2 class, PV1-3 location, PV1-7 attending."""

    visit_number: str
    patient_id: str
    patient_class: str = ""
    location: str = ""
    attending: str = ""
    admitted_at: datetime | None = None
    discharged_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProcedureStep:
    """A scheduled procedure step (DICOM PS3.4 K.6, Scheduled Procedure Step Sequence)."""

    sps_id: str
    modality: str = ""
    station_ae_titles: tuple[str, ...] = ()
    station_name: str = ""
    location: str = ""
    start: datetime | None = None
    description: str = ""
    protocol_code: str = ""
    performing_physician: str = ""
    status: Status = Status.SCHEDULED


@dataclass(frozen=True, slots=True)
class Order:
    """A requested procedure: the unit the RIS orders and the modality performs."""

    id: str
    patient_id: str
    status: Status
    accession: str = ""  # OBR-18 / IPC-1 / where the dialect says
    placer_number: str = ""  # ORC-2 / OBR-2
    filler_number: str = ""  # ORC-3 / OBR-3
    requested_procedure_id: str = ""  # OBR-19 / IPC-2
    study_instance_uid: str = ""  # ZDS-1 / IPC-3, or generated
    procedure_code: str = ""  # OBR-4.1 (local code)
    procedure_description: str = ""  # OBR-4.2 or mapped
    modality: str = ""
    visit_number: str = ""  # PV1-19 when the order came
    priority: str = ""
    referring_physician: str = ""
    reason: str = ""
    steps: tuple[ProcedureStep, ...] = ()
    source: str = ""  # the sending system (MSH-3) that placed it
    coding_system: str = ""  # OBR-4.3
    body_part: str = ""  # from the procedure code table
    hold_reason: str = ""  # why it is kept off the worklist (unmapped code, policy hold)
    charset: str = ""  # MSH-18 of the message that placed it ("" = ASCII / default)


@dataclass(frozen=True, slots=True)
class Report:
    """A diagnostic report (ORU^R01) linked to its order."""

    id: str
    accession: str
    status: Status  # PRELIMINARY, FINAL, AMENDED or CANCELLED (OBR-25 X)
    text: str = ""
    interpreter: str = ""  # OBR-32
    observed_at: datetime | None = None  # OBR-7 / OBR-22
    visit_number: str = ""
    order_id: str | None = None  # None until the order is known (out-of-order arrival)
    patient_id: str = ""  # the patient the report named (PID-3), once resolved
    placer_number: str = ""  # OBR-2, to link when the order arrives later
    filler_number: str = ""  # OBR-3
    source: str = ""  # the sending system (MSH-3)
