"""Imaging exams for a population (``bench/population.py``): the orders a RIS places and
the messages that carry an exam's life, for the at-age benchmark.

- ``Exam``: one requested procedure as a RIS numbers it: accession (OBR-18, also the
  filler number ORC-3 as a PACS-centred RIS sends it), placer number (ORC-2), requested
  procedure and scheduled procedure step IDs (OBR-19, OBR-20), the visit (PV1-19), the
  Study Instance UID (ZDS-1), a procedure from ``PROCEDURES`` (weighted as a general
  radiology department's: radiographs first, then CT, ultrasound, MR), the station
  (OBR-21) and the scheduled start (OBR-27.4, ORC-7.4).
- ``orm(record, exam, control, status, cid)``: ORM^O01 (HL7 v2.5.1 §4.4.1) with ORC-1
  ``control`` (NW, XO, SC, CA) and ORC-5 ``status``; ``oru(record, exam, cid)``: ORU^R01
  (§7.3.1) with the final report (OBR-25 F). Both carry the patient's PID as
  ``population.adt`` writes it, and PV1 with the visit.
- ``patient_of`` / ``order_of`` / ``report_of`` / ``visit_of``: the values the engine
  stores for an exam whose NW (and ORU) it applied (``tests/bench/test_exams.py``
  checks them against the engine), for loading a store in bulk.

Rule: pure and seeded, as ``population.py``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import population
from population import AUTHORITY, Registration

from accord.hl7 import parse
from accord.mapping import segments
from accord.mapping.dialect import Dialects
from accord.workflow.model import Order, Patient, ProcedureStep, Report, Visit
from accord.workflow.status import Status

SENDER = "RIS"
REFERRING = ("1234^WELBY^MARCUS", "2345^QUINN^MARY", "3456^HOUSE^GREGORY",
             "4567^GREY^MEREDITH", "5678^KILDARE^JAMES")
#: code, description, modality, station AE title, weight (a department's mix)
PROCEDURES = (
    ("XR-CHEST", "XR Chest 2 views", "DX", "DX1", 30),
    ("XR-KNEE", "XR Knee 3 views", "DX", "DX2", 8),
    ("XR-HAND", "XR Hand 3 views", "DX", "DX2", 6),
    ("CT-HEAD", "CT Head without contrast", "CT", "CT1", 10),
    ("CT-CHEST", "CT Chest with contrast", "CT", "CT1", 8),
    ("CT-ABD", "CT Abdomen and pelvis", "CT", "CT2", 7),
    ("US-ABD", "US Abdomen", "US", "US1", 10),
    ("US-THY", "US Thyroid", "US", "US2", 4),
    ("MR-BRAIN", "MR Brain", "MR", "MR1", 6),
    ("MR-KNEE", "MR Knee", "MR", "MR1", 5),
    ("MG-SCREEN", "Mammography screening", "MG", "MG1", 6),
)
_WEIGHTS = tuple(float(p[4]) for p in PROCEDURES)
_DIALECT = Dialects.from_config({}).default


@dataclass(frozen=True, slots=True)
class Exam:
    """One requested procedure (module doc); ``n`` makes every number unique."""

    n: int
    procedure: tuple[str, str, str, str, int]
    start: datetime  # aware UTC, whole minutes
    study_uid: str
    referring: str

    @property
    def accession(self) -> str:
        return f"A{self.n:09d}"

    @property
    def placer(self) -> str:
        return f"P{self.n:09d}"

    @property
    def requested_procedure_id(self) -> str:
        return f"RP{self.n:09d}"

    @property
    def sps_id(self) -> str:
        return f"SPS{self.n:09d}"

    @property
    def visit(self) -> str:
        return f"V{self.n:09d}"


def exam(n: int, start: datetime, rng: random.Random) -> Exam:
    """Exam number ``n``, scheduled at ``start`` (cut to the minute)."""
    procedure = rng.choices(PROCEDURES, weights=_WEIGHTS)[0]
    uid = f"2.25.{rng.getrandbits(126)}"
    return Exam(n, procedure, start.replace(second=0, microsecond=0), uid,
                rng.choice(REFERRING))


def _ts(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%d%H%M")


def _msh(kind: str, cid: str, sent: datetime) -> str:
    return (f"MSH|^~\\&|{SENDER}|{AUTHORITY}|ACCORD|{AUTHORITY}|{sent:%Y%m%d%H%M%S}||{kind}|"
            f"{cid}|P|2.5.1")


def _pid(r: Registration) -> str:
    """PID exactly as ``population.adt`` writes it (same demographics on every message)."""
    adt = population.adt(r, "X")
    return next(seg for seg in adt.split("\r") if seg.startswith("PID|"))


def pv1(e: Exam) -> str:
    """Outpatient, radiology, the referring physician as attending, PV1-19 the visit."""
    fields = ["PV1", "1", "O", "RAD^^^" + AUTHORITY, "", "", "", e.referring,
              *[""] * 11, e.visit]
    return "|".join(fields)


def _obr(e: Exam, result: str = "", observed: datetime | None = None) -> str:
    code, desc, modality, station, _ = e.procedure
    f = [""] * 28
    f[0], f[1], f[2], f[3] = "OBR", "1", f"{e.placer}^{SENDER}", f"{e.accession}^PACS"
    f[4], f[7], f[16] = f"{code}^{desc}^LOCAL", _ts(observed or e.start), e.referring
    f[18], f[19], f[20], f[21], f[24] = e.accession, e.requested_procedure_id, e.sps_id, \
        station, modality
    f[27] = f"1^^^{_ts(e.start)}^^R"
    if result:
        f[22], f[25] = _ts(observed or e.start), result
    return "|".join(f).rstrip("|")


def orm(r: Registration, e: Exam, control: str, status: str, cid: str,
        sent: datetime) -> str:
    """ORM^O01 for exam ``e`` of ``r``: ORC-1 ``control``, ORC-5 ``status``."""
    segments = [
        _msh("ORM^O01^ORM_O01", cid, sent), _pid(r), pv1(e),
        f"ORC|{control}|{e.placer}^{SENDER}|{e.accession}^PACS||{status}||"
        f"1^^^{_ts(e.start)}^^R||{sent:%Y%m%d%H%M%S}|||{e.referring}",
        _obr(e), f"ZDS|{e.study_uid}^Accord^Application^DICOM",
    ]
    return "\r".join(segments) + "\r"


IMPRESSIONS = ("No acute abnormality.", "Normal study.", "Mild degenerative changes.",
               "No interval change since the prior study.")


def oru(r: Registration, e: Exam, cid: str, sent: datetime, result: str = "F") -> str:
    """ORU^R01: the radiologist's report on ``e`` (OBR-25 ``result``), text in OBX-5."""
    code, desc = e.procedure[0], e.procedure[1]
    impression = IMPRESSIONS[e.n % len(IMPRESSIONS)]
    segments = [
        _msh("ORU^R01^ORU_R01", cid, sent), _pid(r), pv1(e),
        f"ORC|RE|{e.placer}^{SENDER}|{e.accession}^PACS||CM",
        _obr(e, result, sent),
        f"OBX|1|TX|{code}^{desc}^LOCAL|1|Findings: {impression}||||||{result}",
        f"OBX|2|TX|IMP^Impression^LOCAL|2|Impression: {impression}||||||{result}",
    ]
    return "\r".join(segments) + "\r"


# --------------------------------------------------------------------------- values


def patient_of(r: Registration, patient_id: str) -> Patient:
    """The patient the engine stores for ``population.adt(r, …)``: PID read by the
    engine's own mapping (so malformed birth dates and phone formats read as it reads
    them)."""
    data = segments.patient(parse(population.adt(r, "X")), _DIALECT)
    return Patient(patient_id, data.identifiers, data.demographics)


def order_of(e: Exam, order_id: str, patient_id: str,
             status: Status = Status.SCHEDULED) -> Order:
    """The order the engine stores for ``orm(…, "NW", "SC", …)`` of ``e`` (default
    configuration: no code table, so no station is chosen), in ``status``."""
    code, desc, modality, _, _ = e.procedure
    step = ProcedureStep(e.sps_id, modality, (), start=e.start, description=desc)
    return Order(
        id=order_id, patient_id=patient_id, status=status, accession=e.accession,
        placer_number=e.placer, filler_number=e.accession,
        requested_procedure_id=e.requested_procedure_id, study_instance_uid=e.study_uid,
        procedure_code=code, procedure_description=desc, modality=modality,
        visit_number=e.visit, priority="R", referring_physician=_person(e.referring),
        steps=(step,), source=SENDER, coding_system="LOCAL")


def _person(xcn: str) -> str:
    _id, family, given = xcn.split("^")
    return f"{family}^{given}"


def report_of(e: Exam, report_id: str, order: Order, sent: datetime) -> Report:
    """The report the engine stores for ``oru(…, e, …, sent)`` of ``order``."""
    impression = IMPRESSIONS[e.n % len(IMPRESSIONS)]
    text = f"Findings: {impression}\nImpression: {impression}"
    return Report(report_id, e.accession, Status.FINAL, text, _person(e.referring),
                  sent.replace(second=0, microsecond=0),
                  e.visit, order.id, order.patient_id, e.placer, e.accession, SENDER)


def visit_of(e: Exam, patient_id: str) -> Visit:
    """The visit the engine stores for the PV1 of ``e``'s messages."""
    return Visit(e.visit, patient_id, "O", "RAD", _person(e.referring))  # PV1-3.1-3


def done(order: Order, status: Status) -> Order:
    """``order`` moved on to ``status`` (the steps keep theirs, as the engine does)."""
    return replace(order, status=status)


def later(at: datetime, minutes: float) -> datetime:
    return at + timedelta(minutes=minutes)
