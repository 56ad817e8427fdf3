"""Modality Performed Procedure Step: N-CREATE / N-SET datasets to status commands.

Rules: pure. No sockets, no store, no clock reads; the SCP passes in the instance as last
stored, the steps the MPPS may reference and the patients it may be about, and persists
what comes back *before* it answers (persist, then respond, as ingest does for HL7).
- PS3.4 F.7.2.1 (N-CREATE): Performed Procedure Step Status must be IN PROGRESS; a second
  N-CREATE of one SOP Instance UID is refused (0111).
- PS3.4 F.7.2.2 (N-SET): an instance that is COMPLETED or DISCONTINUED may no longer be
  updated (0110); reaching COMPLETED needs the end date/time and at least one performed
  series, DISCONTINUED the end date/time (the Type 1 "final state" attributes of Table
  F.7.2-1). Attributes N-SET may not change (patient, scheduled step attributes, start,
  PPS ID) are kept from the N-CREATE.
- IN PROGRESS -> ``in_progress``; COMPLETED -> ``completed``; DISCONTINUED ->
  ``discontinued``. Every step referenced by the Scheduled Step Attributes Sequence
  (Study Instance UID, accession, SPS ID) gets the command; an MPPS referencing none is an
  ``unscheduled_procedure`` finding with the best patient match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from pydicom.dataset import Dataset
from rapidfuzz.distance import JaroWinkler

from accord.dicom.received import unreadable
from accord.dicom.worklist import WorklistItem
from accord.workflow.model import Patient
from accord.workflow.status import Status

PPS_STATUS: dict[str, Status] = {
    "IN PROGRESS": Status.IN_PROGRESS,
    "COMPLETED": Status.COMPLETED,
    "DISCONTINUED": Status.DISCONTINUED,
}
FINAL = frozenset({"COMPLETED", "DISCONTINUED"})
_CREATE_REQUIRED = ("PerformedProcedureStepStatus", "ScheduledStepAttributesSequence",
                    "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime",
                    "Modality")
# Attributes an N-SET may not change (Table F.7.2-1, "Not allowed" in the N-SET column).
_CREATE_ONLY = frozenset({
    0x00400270, 0x00100010, 0x00100020, 0x00100021, 0x00100030, 0x00100040, 0x00081120,
    0x00400244, 0x00400245, 0x00400253, 0x00400241, 0x00400242, 0x00080060, 0x00200010,
})
BEST_MATCH_THRESHOLD = 0.85


@dataclass(frozen=True, slots=True)
class MppsInstance:
    """An MPPS SOP Instance as last stored: the N-CREATE attributes with N-SETs applied."""

    sop_instance_uid: str
    status: str  # Performed Procedure Step Status (0040,0252)
    dataset: Dataset


@dataclass(frozen=True, slots=True)
class StepRef:
    """One scheduled procedure step an MPPS refers to."""

    order_id: str
    sps_id: str
    accession: str
    study_instance_uid: str


@dataclass(frozen=True, slots=True)
class StatusCommand:
    """Set ``status`` on every referenced step (and its order): for workflow to apply."""

    mpps_uid: str
    status: Status
    steps: tuple[StepRef, ...]
    station_ae: str = ""
    started: datetime | None = None
    ended: datetime | None = None


@dataclass(frozen=True, slots=True)
class UnscheduledProcedure:
    """Finding ``unscheduled_procedure``: an MPPS that references no known step."""

    mpps_uid: str
    status: Status
    patient_id: str
    patient_name: str
    birth_date: str
    accession: str
    study_instance_uid: str
    modality: str
    station_ae: str
    best_match: str | None = None  # Patient.id
    score: float = 0.0
    kind: str = "unscheduled_procedure"


@dataclass(frozen=True, slots=True)
class MppsRejected:
    """The N-CREATE/N-SET is refused with this DIMSE status (PS3.7 C.11)."""

    status: int
    comment: str


Outcome = StatusCommand | UnscheduledProcedure | None


@dataclass(frozen=True, slots=True)
class MppsResult:
    """What to persist (the instance) and what it means for the workflow (the outcome)."""

    instance: MppsInstance
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class References:
    """The keys an MPPS's Scheduled Step Attributes Sequence carries, for the lookup."""

    study_uids: tuple[str, ...]
    accessions: tuple[str, ...]
    sps_ids: tuple[str, ...]


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def references(ds: Dataset) -> References:
    """Study Instance UIDs, accessions and SPS IDs of the Scheduled Step Attributes."""
    items = list(ds.get("ScheduledStepAttributesSequence") or [])
    def pick(keyword: str) -> tuple[str, ...]:
        return tuple(v for v in (_text(i, keyword) for i in items) if v)
    return References(pick("StudyInstanceUID"), pick("AccessionNumber"),
                      pick("ScheduledProcedureStepID"))


def _item_steps(ref: Dataset, items: Sequence[WorklistItem]) -> list[WorklistItem]:
    uid, acc = _text(ref, "StudyInstanceUID"), _text(ref, "AccessionNumber")
    sps_id = _text(ref, "ScheduledProcedureStepID")
    orders = [i for i in items
              if (uid and i.order.study_instance_uid == uid) or (acc and i.order.accession == acc)]
    if sps_id:
        exact = [i for i in (orders or items) if i.step.sps_id == sps_id]
        if exact:
            return exact
    return orders


def referenced_steps(ds: Dataset, items: Sequence[WorklistItem]) -> tuple[StepRef, ...]:
    """Every step the Scheduled Step Attributes Sequence references (F.7.2.1), each once."""
    seen: dict[tuple[str, str], StepRef] = {}
    for ref in ds.get("ScheduledStepAttributesSequence") or []:
        for i in _item_steps(ref, items):
            seen.setdefault(i.key, StepRef(i.order.id, i.step.sps_id, i.order.accession,
                                           i.order.study_instance_uid))
    return tuple(seen[k] for k in sorted(seen))


def _when(date: str, time: str, tz: tzinfo) -> datetime | None:
    if len(date) != 8 or not date.isdigit():
        return None
    digits = (time.split(".")[0] + "000000")[:6]
    try:
        return datetime.strptime(date + digits, "%Y%m%d%H%M%S").replace(tzinfo=tz)
    except ValueError:
        return None


def best_patient(ds: Dataset, patients: Sequence[Patient]) -> tuple[str | None, float]:
    """The patient an unscheduled MPPS most likely is: same ID, else name and birth date."""
    pid, issuer = _text(ds, "PatientID"), _text(ds, "IssuerOfPatientID")
    name = _text(ds, "PatientName").split("=")[0].casefold()
    birth = _text(ds, "PatientBirthDate")
    best: tuple[str | None, float] = (None, 0.0)
    for p in patients:
        if pid and any(i.value == pid and (not issuer or i.authority in ("", issuer))
                       for i in p.identifiers):
            return (p.id, 1.0)
        n = p.demographics.name
        sim = JaroWinkler.similarity(name, f"{n.family}^{n.given}".casefold()) if name else 0.0
        born = p.demographics.birth_date
        same_birth = born is not None and born.strftime("%Y%m%d") == birth
        score = 0.7 * sim + (0.3 if same_birth else 0.0)
        if score > best[1]:
            best = (p.id, score)
    return best if best[1] >= BEST_MATCH_THRESHOLD else (None, best[1])


def _outcome(uid: str, ds: Dataset, status: Status, items: Sequence[WorklistItem],
             patients: Sequence[Patient], tz: tzinfo) -> Outcome:
    steps = referenced_steps(ds, items)
    station = _text(ds, "PerformedStationAETitle")
    if steps:
        return StatusCommand(
            uid, status, steps, station,
            _when(_text(ds, "PerformedProcedureStepStartDate"),
                  _text(ds, "PerformedProcedureStepStartTime"), tz),
            _when(_text(ds, "PerformedProcedureStepEndDate"),
                  _text(ds, "PerformedProcedureStepEndTime"), tz),
        )
    refs = references(ds)
    match, score = best_patient(ds, patients)
    return UnscheduledProcedure(
        uid, status, _text(ds, "PatientID"), _text(ds, "PatientName"),
        _text(ds, "PatientBirthDate"), refs.accessions[0] if refs.accessions else "",
        refs.study_uids[0] if refs.study_uids else "", _text(ds, "Modality"), station,
        match, round(score, 3),
    )


def n_create(uid: str, attributes: Dataset, existing: MppsInstance | None,
             items: Sequence[WorklistItem], patients: Sequence[Patient],
             tz: tzinfo = UTC) -> MppsResult | MppsRejected:
    """An N-CREATE of MPPS instance ``uid`` (PS3.4 F.7.2.1)."""
    if existing is not None:
        return MppsRejected(0x0111, "duplicate SOP Instance UID")
    if (why := unreadable(attributes)) is not None:
        return MppsRejected(0x0106, why)  # invalid attribute value (PS3.7 C.4.2)
    missing = [k for k in _CREATE_REQUIRED if k not in attributes]
    if missing:
        return MppsRejected(0x0120, "missing " + ", ".join(missing))
    pps = _text(attributes, "PerformedProcedureStepStatus")
    if pps != "IN PROGRESS":
        return MppsRejected(0x0106, f"N-CREATE status must be IN PROGRESS, not {pps!r}")
    instance = MppsInstance(uid, pps, attributes)
    return MppsResult(instance, _outcome(uid, attributes, Status.IN_PROGRESS, items,
                                         patients, tz))


def _final_problems(ds: Dataset, pps: str) -> list[str]:
    problems = [k for k in ("PerformedProcedureStepEndDate", "PerformedProcedureStepEndTime")
                if not _text(ds, k)]
    if pps == "COMPLETED" and not list(ds.get("PerformedSeriesSequence") or []):
        problems.append("PerformedSeriesSequence")
    return problems


def n_set(current: MppsInstance | None, modifications: Dataset,
          items: Sequence[WorklistItem], patients: Sequence[Patient],
          tz: tzinfo = UTC) -> MppsResult | MppsRejected:
    """An N-SET on an MPPS instance (PS3.4 F.7.2.2)."""
    if current is None:
        return MppsRejected(0x0112, "no such SOP Instance")
    if current.status in FINAL:
        return MppsRejected(0x0110, f"Performed Procedure Step is {current.status}: "
                                    "it may no longer be updated")
    if (why := unreadable(modifications)) is not None:
        return MppsRejected(0x0106, why)  # invalid attribute value (PS3.7 C.4.2)
    # A new top level over the same elements: an N-SET replaces whole elements, never
    # changes one in place, so ``current`` stays as it was without a deep copy.
    merged = Dataset(dict(current.dataset.items()))
    for elem in modifications:
        if elem.tag not in _CREATE_ONLY and elem.tag.element != 0:
            merged[elem.tag] = elem
    pps = _text(merged, "PerformedProcedureStepStatus")
    if pps not in PPS_STATUS:
        return MppsRejected(0x0106, f"unknown Performed Procedure Step Status {pps!r}")
    if pps in FINAL and (problems := _final_problems(merged, pps)):
        return MppsRejected(0x0110, f"{pps} needs " + ", ".join(problems))
    instance = MppsInstance(current.sop_instance_uid, pps, merged)
    if pps == current.status:
        return MppsResult(instance, None)
    return MppsResult(instance, _outcome(current.sop_instance_uid, merged, PPS_STATUS[pps],
                                         items, patients, tz))
