"""Helpers for the DICOM bridge tests: a small department, the indexed worklist, a
SQLite MPPS sink (a test peer standing in for the durable store) and a live SCP on a free
127.0.0.1 port, queried by real pynetdicom SCUs."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, evt

from accord.dicom.index import WorklistIndex
from accord.dicom.mpps import MppsInstance, Outcome
from accord.dicom.scp import (
    MODALITY_WORKLIST_FIND,
    MPPS,
    VERIFICATION,
    Caller,
    DicomServer,
    ScpConfig,
    set_nodelay,
    start_scp,
)
from accord.workflow.model import (
    Demographics,
    Identifier,
    Order,
    Patient,
    PersonName,
    ProcedureStep,
)
from accord.workflow.status import Status

T9 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def patient(pid: str, family: str, given: str, *, born: date = date(1970, 1, 2),
            sex: str = "M", ideographic: PersonName | None = None,
            phonetic: PersonName | None = None, authority: str = "HOSP") -> Patient:
    return Patient(
        id=f"pat-{pid}",
        identifiers=(Identifier(pid, authority, "MR"), Identifier(f"X{pid}", "OTHER", "PI")),
        demographics=Demographics(PersonName(family, given), born, sex,
                                  ideographic_name=ideographic, phonetic_name=phonetic),
    )


def order(oid: str, pat: Patient, *, accession: str, station: str = "CT1",
          modality: str = "CT", start: datetime = T9, charset: str = "",
          status: Status = Status.SCHEDULED, steps: int = 1) -> Order:
    sps = tuple(
        ProcedureStep(
            sps_id=f"{accession}-S{n + 1}", modality=modality, station_ae_titles=(station,),
            station_name=f"{station} room", location="Radiology 1", start=start,
            description=f"{modality} head plain", protocol_code=f"{modality}P1",
            performing_physician="^Tech^Tina", status=status,
        )
        for n in range(steps)
    )
    return Order(
        id=oid, patient_id=pat.id, status=status, accession=accession,
        requested_procedure_id=f"RP{accession}", study_instance_uid=f"1.2.826.0.1.{oid[1:]}",
        procedure_code=f"{modality}HEAD", procedure_description=f"{modality} Head",
        modality=modality, visit_number=f"V{oid}", priority="R",
        referring_physician="1234^Smith^Anna", steps=sps, charset=charset,
    )


@dataclasses.dataclass
class Department:
    index: WorklistIndex
    patients: dict[str, Patient]
    orders: dict[str, Order]


def department() -> Department:
    doe = patient("1001", "Doe", "John")
    muller = patient("1002", "Müller", "Jürgen", sex="M")
    yamada = patient("1003", "Yamada", "Tarou", ideographic=PersonName("山田", "太郎"),
                     phonetic=PersonName("やまだ", "たろう"))
    smith = patient("1004", "Smith", "Jane", sex="F", born=date(1985, 5, 6))
    orders = [
        order("o1", doe, accession="A001"),
        order("o2", muller, accession="A002", charset="8859/1",
              start=datetime(2026, 3, 2, 11, 0, tzinfo=UTC)),
        order("o3", yamada, accession="A003", station="MR1", modality="MR", charset="ISO IR87"),
        order("o4", smith, accession="A004", station="US1", modality="US",
              start=datetime(2026, 3, 3, 8, 0, tzinfo=UTC), charset="UNICODE UTF-8"),
        order("o5", smith, accession="A005", station="CT1",
              start=datetime(2026, 3, 5, 14, 0, tzinfo=UTC), status=Status.COMPLETED),
    ]
    pats = {p.id: p for p in (doe, muller, yamada, smith)}
    index = WorklistIndex()
    for o in orders:
        index.put_order(o, pats[o.patient_id])
    return Department(index, pats, {o.id: o for o in orders})


class SqliteMppsSink:
    """MPPS sink writing to a SQLite file before returning (the durability contract)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS mpps (uid TEXT PRIMARY KEY, status TEXT,"
                         " dataset TEXT)")
        self._db.execute("CREATE TABLE IF NOT EXISTS outcome (n INTEGER PRIMARY KEY, uid TEXT,"
                         " kind TEXT, body TEXT)")
        self._lock = threading.Lock()

    def instance(self, sop_instance_uid: str) -> MppsInstance | None:
        with self._lock:
            row = self._db.execute("SELECT status, dataset FROM mpps WHERE uid = ?",
                                   (sop_instance_uid,)).fetchone()
        if row is None:
            return None
        return MppsInstance(sop_instance_uid, row[0], Dataset.from_json(row[1]))

    def record(self, instance: MppsInstance, outcome: Outcome, caller: Caller) -> None:
        body = json.dumps(dataclasses.asdict(outcome), default=str) if outcome else None
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO mpps VALUES (?, ?, ?)",
                             (instance.sop_instance_uid, instance.status,
                              instance.dataset.to_json()))
            if outcome is not None:
                self._db.execute("INSERT INTO outcome (uid, kind, body) VALUES (?, ?, ?)",
                                 (instance.sop_instance_uid, type(outcome).__name__, body))

    def outcomes(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            rows = self._db.execute("SELECT kind, body FROM outcome ORDER BY n").fetchall()
        return [(kind, json.loads(body)) for kind, body in rows]


def serve(dept: Department, sink: SqliteMppsSink, **config: Any) -> DicomServer:
    cfg = ScpConfig(port=0, **config)
    return start_scp(cfg, dept.index, sink)


def associate(server: DicomServer, calling: str = "MODALITY", called: str = "ACCORD") -> Any:
    """A real pynetdicom SCU association, TCP_NODELAY set as a modality should."""
    ae = AE(ae_title=calling)
    for uid in (MODALITY_WORKLIST_FIND, MPPS, VERIFICATION):
        ae.add_requested_context(uid)
    assoc = ae.associate("127.0.0.1", server.port, ae_title=called,
                         evt_handlers=[(evt.EVT_CONN_OPEN, set_nodelay)])
    assert assoc.is_established
    return assoc


def mwl_find(server: DicomServer, identifier: Dataset,
             calling: str = "MODALITY") -> list[Dataset]:
    """Run one worklist C-FIND and return the pending identifiers."""
    assoc = associate(server, calling)
    try:
        out: list[Dataset] = []
        for status, ds in assoc.send_c_find(identifier, MODALITY_WORKLIST_FIND):
            assert status.Status in (0xFF00, 0xFF01, 0x0000), hex(status.Status)
            if ds is not None and status.Status in (0xFF00, 0xFF01):
                out.append(ds)
        return out
    finally:
        assoc.release()


def mwl_query(**top: Any) -> Dataset:
    """A worklist identifier: top-level keys plus ``sps={...}`` for the SPS item keys."""
    sps_keys = top.pop("sps", {})
    ds = Dataset()
    for key in ("PatientName", "PatientID", "AccessionNumber", "StudyInstanceUID"):
        setattr(ds, key, "")
    for key, value in top.items():
        setattr(ds, key, value)
    item = Dataset()
    for key in ("ScheduledStationAETitle", "ScheduledProcedureStepStartDate",
                "ScheduledProcedureStepStartTime", "Modality", "ScheduledProcedureStepID"):
        setattr(item, key, "")
    for key, value in sps_keys.items():
        setattr(item, key, value)
    ds.ScheduledProcedureStepSequence = [item]
    return ds


def mpps_create(*refs: dict[str, str], patient_id: str = "1001",
                name: str = "Doe^John", station: str = "CT1") -> Dataset:
    """An N-CREATE attribute list as a modality sends it (PS3.4 F.7.2.1, IHE RAD-6)."""
    ds = Dataset()
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    items = []
    for ref in refs:
        item = Dataset()
        item.StudyInstanceUID = ref.get("uid", "")
        item.AccessionNumber = ref.get("accession", "")
        item.ScheduledProcedureStepID = ref.get("sps", "")
        item.RequestedProcedureID = ""
        item.ReferencedStudySequence = []
        items.append(item)
    ds.ScheduledStepAttributesSequence = items
    ds.PatientName = name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700102"
    ds.PatientSex = "M"
    ds.PerformedStationAETitle = station
    ds.PerformedProcedureStepStartDate = "20260302"
    ds.PerformedProcedureStepStartTime = "093512"
    ds.PerformedProcedureStepID = "PPS1"
    ds.Modality = "CT"
    ds.PerformedProcedureStepEndDate = ""
    ds.PerformedProcedureStepEndTime = ""
    ds.PerformedSeriesSequence = []
    return ds


def mpps_set(status: str, *, series: bool = True) -> Dataset:
    """An N-SET modification list closing the step (IHE RAD-7)."""
    ds = Dataset()
    ds.PerformedProcedureStepStatus = status
    ds.PerformedProcedureStepEndDate = "20260302"
    ds.PerformedProcedureStepEndTime = "100200"
    items = []
    if series:
        s = Dataset()
        s.SeriesInstanceUID = "1.2.826.0.9.1"
        s.SeriesDescription = "Head"
        s.PerformingPhysicianName = ""
        s.OperatorsName = ""
        s.ProtocolName = "CT head"
        s.RetrieveAETitle = ""
        s.ReferencedImageSequence = []
        items.append(s)
    ds.PerformedSeriesSequence = items
    return ds
