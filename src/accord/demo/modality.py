"""Simulated modalities for ``accord demo``: worklist query, then MPPS, as IHE SWF says.

Each station (an AE title the procedure catalog schedules on) behaves like a modality in
IHE Radiology Scheduled Workflow: every few seconds it asks the worklist for its own
steps of today (RAD-5, Modality Worklist C-FIND, PS3.4 K.6.1: Scheduled Station AE Title
and Scheduled Procedure Step Start Date in the Scheduled Procedure Step Sequence), picks
the earliest whose slot has come (never one before its scheduled time), starts it
(RAD-6, MPPS N-CREATE with status IN PROGRESS, PS3.4 F.7.2.1) and after a short while
ends it (RAD-7, N-SET COMPLETED with the performed series, or now and then DISCONTINUED
with a reason, PS3.4 F.7.2.2). The Scheduled Step Attributes Sequence
carries the step's Study Instance UID, accession, Requested Procedure ID and SPS ID
(RAD TF-2 Table 4.6-1). Rarely a procedure is performed with no step at all (an
emergency typed in at the console): the ``unscheduled_procedure`` finding.

The dataset builders are pure (the caller passes the time and the UIDs);
:class:`ModalityScu` is the pynetdicom edge (TCP_NODELAY on its socket, as
:mod:`accord.dicom.scu`), run in a thread by :class:`Modalities`. Nothing here logs a
patient's name or identifier.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, evt

from accord.clock import uid_from_uuid
from accord.dicom.scp import MODALITY_WORKLIST_FIND, MPPS, quiet_identifiers, set_nodelay

LOG = logging.getLogger(__name__)
_PENDING = (0xFF00, 0xFF01)
_STEP_KEYS = ("ScheduledStationAETitle", "ScheduledProcedureStepStartDate",
              "ScheduledProcedureStepStartTime", "Modality", "ScheduledProcedureStepID",
              "ScheduledProcedureStepDescription")
_TOP_KEYS = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate",
             "PatientSex", "AccessionNumber", "StudyInstanceUID", "RequestedProcedureID",
             "RequestedProcedureDescription")
# PS3.16 CID 9300 "Procedure Discontinuation Reasons".
DISCONTINUED_REASON = ("110513", "DCM", "Discontinued for unspecified reason")


@dataclass(frozen=True, slots=True)
class Station:
    """One modality: its AE title (the step's Scheduled Station AE Title) and type."""

    ae_title: str
    modality: str


@dataclass(frozen=True, slots=True)
class ScheduledStep:
    """One worklist answer: the attributes the MPPS must carry back (RAD-6)."""

    patient_name: str
    patient_id: str
    issuer: str
    birth_date: str
    sex: str
    accession: str
    study_uid: str
    requested_procedure_id: str
    description: str
    sps_id: str
    start: str  # Scheduled Procedure Step Start Date + Time, for ordering


def stations_of(catalog: Mapping[str, Any]) -> tuple[Station, ...]:
    """The stations a procedure catalog (``workflow.catalog``) schedules on, each once,
    with the modality of the first procedure naming it."""
    seen: dict[str, Station] = {}
    for proc in catalog.get("procedures") or []:
        for ae in proc.get("stations") or []:
            seen.setdefault(str(ae), Station(str(ae), str(proc.get("modality") or "OT")))
    return tuple(seen.values())


def worklist_query(station: Station, day: str) -> Dataset:
    """The C-FIND identifier of a modality asking for its own steps on ``day``."""
    query = Dataset()
    for key in ("SpecificCharacterSet", *_TOP_KEYS):
        setattr(query, key, "")
    item = Dataset()
    for key in _STEP_KEYS:
        setattr(item, key, "")
    item.ScheduledStationAETitle = station.ae_title
    item.ScheduledProcedureStepStartDate = day
    query.ScheduledProcedureStepSequence = [item]
    return query


def step_from(ds: Dataset) -> ScheduledStep:
    """A C-FIND answer as a :class:`ScheduledStep`."""
    sps = (ds.get("ScheduledProcedureStepSequence") or [Dataset()])[0]
    def text(d: Dataset, key: str) -> str:
        value = d.get(key)
        return "" if value is None else str(value)
    return ScheduledStep(
        text(ds, "PatientName"), text(ds, "PatientID"), text(ds, "IssuerOfPatientID"),
        text(ds, "PatientBirthDate"), text(ds, "PatientSex"), text(ds, "AccessionNumber"),
        text(ds, "StudyInstanceUID"), text(ds, "RequestedProcedureID"),
        text(sps, "ScheduledProcedureStepDescription") or text(ds, "RequestedProcedureDescription"),
        text(sps, "ScheduledProcedureStepID"),
        text(sps, "ScheduledProcedureStepStartDate") + text(sps, "ScheduledProcedureStepStartTime"))


def in_progress(step: ScheduledStep, station: Station, now: datetime, pps_id: str, *,
                scheduled: bool = True) -> Dataset:
    """N-CREATE attributes (PS3.4 Table F.7.2-1, RAD TF-2 4.6.4.1.2): status IN PROGRESS,
    the patient, and the Scheduled Step Attributes referencing ``step`` (``scheduled``
    False: an unscheduled procedure, only a new Study Instance UID is given)."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ref = Dataset()
    ref.StudyInstanceUID = step.study_uid
    ref.AccessionNumber = step.accession if scheduled else ""
    ref.RequestedProcedureID = step.requested_procedure_id if scheduled else ""
    ref.ScheduledProcedureStepID = step.sps_id if scheduled else ""
    ref.ScheduledProcedureStepDescription = step.description if scheduled else ""
    ref.ReferencedStudySequence = []
    ds.ScheduledStepAttributesSequence = [ref]
    for key, value in (
            ("PatientName", step.patient_name), ("PatientID", step.patient_id),
            ("IssuerOfPatientID", step.issuer), ("PatientBirthDate", step.birth_date),
            ("PatientSex", step.sex), ("PerformedProcedureStepID", pps_id),
            ("PerformedStationAETitle", station.ae_title),
            ("PerformedStationName", station.ae_title), ("PerformedLocation", "Radiology"),
            ("PerformedProcedureStepStartDate", f"{now:%Y%m%d}"),
            ("PerformedProcedureStepStartTime", f"{now:%H%M%S}"),
            ("PerformedProcedureStepStatus", "IN PROGRESS"),
            ("PerformedProcedureStepDescription", step.description),
            ("PerformedProcedureStepEndDate", ""), ("PerformedProcedureStepEndTime", ""),
            ("Modality", station.modality), ("StudyID", pps_id)):
        setattr(ds, key, value)
    ds.ProcedureCodeSequence = []
    ds.PerformedSeriesSequence = []
    return ds


def completed(step: ScheduledStep, station: Station, now: datetime, series_uid: str,
              image_uid: str) -> Dataset:
    """N-SET to COMPLETED: end date/time and the performed series (PS3.4 F.7.2.2)."""
    ds = _ended("COMPLETED", now)
    series = Dataset()
    series.SeriesInstanceUID = series_uid
    series.SeriesDescription = step.description
    series.ProtocolName = step.description
    series.PerformingPhysicianName = ""
    series.OperatorsName = "Tech^Sim"
    series.RetrieveAETitle = "PACS"
    image = Dataset()
    image.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    image.ReferencedSOPInstanceUID = image_uid
    series.ReferencedImageSequence = [image]
    series.ReferencedNonImageCompositeSOPInstanceSequence = []
    ds.PerformedSeriesSequence = [series]
    return ds


def discontinued(now: datetime) -> Dataset:
    """N-SET to DISCONTINUED with a reason from CID 9300."""
    ds = _ended("DISCONTINUED", now)
    reason = Dataset()
    reason.CodeValue, reason.CodingSchemeDesignator, reason.CodeMeaning = DISCONTINUED_REASON
    ds.PerformedProcedureStepDiscontinuationReasonCodeSequence = [reason]
    return ds


def _ended(status: str, now: datetime) -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = status
    ds.PerformedProcedureStepEndDate = f"{now:%Y%m%d}"
    ds.PerformedProcedureStepEndTime = f"{now:%H%M%S}"
    return ds


class ModalityScu:
    """One station's DICOM client: MWL C-FIND and MPPS N-CREATE/N-SET, one association
    per operation (as many modalities do). Blocking; failures return status -1."""

    def __init__(self, station: Station, host: str, port: int, called_ae: str = "ACCORD",
                 timeout: float = 10.0) -> None:
        self.station, self._host, self._port, self._called = station, host, port, called_ae
        self._timeout = timeout

    def _associate(self, context: str) -> Any:
        ae = AE(ae_title=self.station.ae_title)
        ae.add_requested_context(context)
        for attr in ("acse_timeout", "dimse_timeout", "network_timeout", "connection_timeout"):
            setattr(ae, attr, self._timeout)
        assoc = ae.associate(self._host, self._port, ae_title=self._called,
                             evt_handlers=[(evt.EVT_CONN_OPEN, set_nodelay)])
        return assoc if assoc.is_established else None

    def find(self, day: str) -> list[ScheduledStep]:
        """Today's steps for this station ([] when the worklist cannot be asked)."""
        assoc = self._associate(MODALITY_WORKLIST_FIND)
        if assoc is None:
            return []
        try:
            found = []
            for status, ds in assoc.send_c_find(worklist_query(self.station, day),
                                                MODALITY_WORKLIST_FIND):
                if getattr(status, "Status", None) in _PENDING and ds is not None:
                    found.append(step_from(ds))
            return found
        finally:
            assoc.release()

    def create(self, uid: str, attributes: Dataset) -> int:
        """MPPS N-CREATE; the DIMSE status."""
        return self._mpps(lambda a: a.send_n_create(attributes, MPPS, uid))

    def set(self, uid: str, modifications: Dataset) -> int:
        """MPPS N-SET; the DIMSE status."""
        return self._mpps(lambda a: a.send_n_set(modifications, MPPS, uid))

    def _mpps(self, call: Any) -> int:
        assoc = self._associate(MPPS)
        if assoc is None:
            return -1
        try:
            status, _ = call(assoc)
            return int(getattr(status, "Status", -1))
        finally:
            assoc.release()


@dataclass
class Modalities:
    """The demo's modalities, one task per station (see the module docstring).

    ``poll`` is the range (s) between worklist queries, ``duration`` of an exam;
    ``unscheduled`` and ``discontinue`` the chance of each (the 3rd procedure of all is
    unscheduled, so the finding shows early).
    """

    stations: tuple[Station, ...]
    host: str
    port: int
    called_ae: str = "ACCORD"
    seed: int | None = None
    poll: tuple[float, float] = (2.0, 5.0)
    duration: tuple[float, float] = (3.0, 8.0)
    unscheduled: float = 0.03
    discontinue: float = 0.1
    counts: dict[str, int] = field(default_factory=dict)
    _rng: random.Random = field(init=False)
    _done: set[str] = field(default_factory=set)  # SPS keys this floor started
    _attempts: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    async def run(self) -> None:
        """Run every station until cancelled."""
        quiet_identifiers()
        async with asyncio.TaskGroup() as group:
            for station in self.stations:
                group.create_task(self._station(station))

    def summary(self) -> str:
        c = self.counts
        return (f"modalities: {c.get('queries', 0)} worklist queries, MPPS started "
                f"{c.get('started', 0)}, completed {c.get('completed', 0)}, discontinued "
                f"{c.get('discontinued', 0)}, unscheduled {c.get('unscheduled', 0)}")

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def _uid(self) -> str:
        return uid_from_uuid(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    async def _station(self, station: Station) -> None:
        scu = ModalityScu(station, self.host, self.port, self.called_ae)
        while True:
            await asyncio.sleep(self._rng.uniform(*self.poll))
            try:
                await self._exam(scu, station)
            except Exception as exc:  # a demo modality never stops the demo
                LOG.warning("simulated modality %s: %s", station.ae_title, exc)

    async def _exam(self, scu: ModalityScu, station: Station) -> None:
        now = datetime.now(UTC)
        steps = await asyncio.to_thread(scu.find, f"{now:%Y%m%d}")
        self._count("queries")
        todo = sorted((s for s in steps if f"{s.accession}/{s.sps_id}" not in self._done
                       and due(s, now)), key=lambda s: s.start)
        if not todo:
            return
        step, scheduled = todo[0], True
        self._attempts += 1
        n = self._attempts
        if n == 3 or (n > 3 and self._rng.random() < self.unscheduled):
            step, scheduled = _walk_in(step, self._uid()), False
        else:
            self._done.add(f"{step.accession}/{step.sps_id}")
        uid, pps_id = self._uid(), f"PPS{self._rng.getrandbits(32):08X}"
        attrs = in_progress(step, station, datetime.now(UTC), pps_id, scheduled=scheduled)
        if await asyncio.to_thread(scu.create, uid, attrs) != 0x0000:
            self._count("refused")
            return
        self._count("started")
        self._count("scheduled" if scheduled else "unscheduled")
        await asyncio.sleep(self._rng.uniform(*self.duration))
        now = datetime.now(UTC)
        if self._rng.random() < self.discontinue:
            end, key = discontinued(now), "discontinued"
        else:
            end, key = completed(step, station, now, self._uid(), self._uid()), "completed"
        if await asyncio.to_thread(scu.set, uid, end) == 0x0000:
            self._count(key)


def due(step: ScheduledStep, now: datetime) -> bool:
    """Whether the step's slot has come: a modality starts an exam at its scheduled time
    or later, never before (a step without a start time is due)."""
    start = step.start.split(".")[0]
    if len(start) < 12:
        return True
    return start[:14].ljust(14, "0") <= f"{now:%Y%m%d%H%M%S}"


def _walk_in(step: ScheduledStep, study_uid: str) -> ScheduledStep:
    """An emergency done before its order exists: the patient typed in at the console
    (name in capitals, no issuer), a new Study Instance UID, no accession or step."""
    return ScheduledStep(
        step.patient_name.upper(), step.patient_id, "", step.birth_date, step.sex, "",
        study_uid, "", "Emergency exam", "", step.start)
