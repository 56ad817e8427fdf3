"""End to end, one real runtime (SQLite store, MLLP, DICOM SCP on 127.0.0.1): an order sent
over MLLP is on the worklist a pynetdicom SCU queries; a cancel takes it off; an A40 merge
changes its patient; MPPS IN PROGRESS / COMPLETED change the order and a mock RIS
(``send: [status]``) receives ORM^O01 ORC-1 SC with ORC-5 IP then CM — and a second one in
the OMI^O23 dialect gets OMI^O23; German and Japanese names survive to the C-FIND answer.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from pydicom.dataset import Dataset
from pynetdicom import AE, evt

from accord.config import load_config
from accord.demo.traffic import Receiver
from accord.dicom.scp import MODALITY_WORKLIST_FIND, MPPS, set_nodelay
from accord.mllp.client import MllpClient
from accord.runtime import Runtime, build
from accord.store.workflow.worklist import SqlWorklistReader

pytestmark = pytest.mark.timeout(120)
ADMIN_URL = os.environ.get("ACCORD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
DAY = "20260302"
# PID-5 repetitions: alphabetic, ideographic, phonetic (XPN-8, HL7 table 4000).
JAPANESE = "Yamada^Tarou^^^^^L^A~山田^太郎^^^^^L^I~やまだ^たろう^^^^^L^P"


def orm(control_id: str, mrn: str, name: str, accession: str, *, control: str = "NW",
        status: str = "SC", station_code: str = "CTHEAD") -> bytes:
    """An ORM^O01 (v2.3.1, UTF-8) for a CT head at 09:00 on ``DAY``."""
    lines = [
        f"MSH|^~\\&|RIS|HOSP|ACCORD|HOSP|{DAY}080000||ORM^O01|{control_id}|P|2.3.1"
        "|||||UNICODE UTF-8",
        f"PID|1||{mrn}^^^HOSP^MR||{name}||19700102|M",
        f"PV1|1|O|RAD^1||||||||||||||||V{accession}",
        f"ORC|{control}|P{accession}|F{accession}||{status}",
        f"OBR|1|P{accession}|F{accession}|{station_code}^CT head^L||||||||||||||{accession}"
        f"||||||CT|||^^^{DAY}090000",
    ]
    return "\r".join(lines).encode("utf-8")


def adt(control_id: str, trigger: str, mrn: str, name: str, merged: str = "") -> bytes:
    lines = [
        f"MSH|^~\\&|HIS|HOSP|ACCORD|HOSP|{DAY}080000||ADT^{trigger}|{control_id}|P|2.5.1"
        "|||||UNICODE UTF-8",
        f"EVN|{trigger}|{DAY}080000",
        f"PID|1||{mrn}^^^HOSP^MR||{name}||19700102|M",
    ]
    if merged:
        lines.append(f"MRG|{merged}^^^HOSP^MR")
    return "\r".join(lines).encode("utf-8")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_line(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The ``store:`` line of the config: SQLite under tmp, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"store: {{data_dir: {tmp_path / 'data'}}}\n"
        return
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3, autocommit=True) as conn:
            name = f"accord_e2e_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    try:
        yield f"store: {{url: '{ADMIN_URL.rsplit('/', 1)[0]}/{name}'}}\n"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


@pytest.fixture
async def runtime(tmp_path: Path,
                  store_line: str) -> AsyncIterator[tuple[Runtime, Receiver, Receiver]]:
    ris, ris_omi = Receiver(), Receiver()
    await ris.start()
    await ris_omi.start()
    path = tmp_path / "accord.yaml"
    path.write_text(
        "mllp: {port: 0}\n"
        # Its orders are on a fixed day (DAY), long past: kept on the worklist anyway.
        "dicom: {port: 0, worklist_horizon_hours: 1000000}\n"
        "http: {port: 0}\n"
        + store_line +
        "destinations:\n"
        f"  - {{name: ris, host: 127.0.0.1, port: {ris.port}, send: [status], dialect: ris}}\n"
        f"  - {{name: ris2, host: 127.0.0.1, port: {ris_omi.port}, send: [status],"
        " dialect: omi}\n"
        "dialects:\n"
        "  ris: {match: {application: RIS}}\n"
        "  omi: {outbound: OMI^O23}\n"
        "workflow:\n"
        "  catalog:\n"
        "    procedures: [{code: CTHEAD, description: CT head, modality: CT,"
        " stations: [CT1]}]\n", encoding="utf-8")
    rt = build(load_config(path))
    await rt.start()
    try:
        yield rt, ris, ris_omi
    finally:
        await rt.stop()
        await ris.stop()
        await ris_omi.stop()


def _associate(port: int) -> Any:
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(MODALITY_WORKLIST_FIND)
    ae.add_requested_context(MPPS)
    assoc = ae.associate("127.0.0.1", port, ae_title="ACCORD",
                         evt_handlers=[(evt.EVT_CONN_OPEN, set_nodelay)])
    assert assoc.is_established
    return assoc


def _find(port: int, station: str = "CT1") -> list[Dataset]:
    query = Dataset()
    for key in ("PatientName", "PatientID", "AccessionNumber", "StudyInstanceUID",
                "SpecificCharacterSet"):
        setattr(query, key, "")
    item = Dataset()
    item.ScheduledStationAETitle = station
    item.ScheduledProcedureStepStartDate = ""
    item.ScheduledProcedureStepID = ""
    item.Modality = ""
    query.ScheduledProcedureStepSequence = [item]
    assoc = _associate(port)
    try:
        found = []
        for status, ds in assoc.send_c_find(query, MODALITY_WORKLIST_FIND):
            assert status.Status in (0x0000, 0xFF00, 0xFF01), hex(status.Status)
            if ds is not None and status.Status in (0xFF00, 0xFF01):
                found.append(ds)
        return sorted(found, key=lambda d: str(d.AccessionNumber))
    finally:
        assoc.release()


def _mpps(port: int, uid: str, accession: str, study_uid: str) -> tuple[int, int]:
    """N-CREATE IN PROGRESS then N-SET COMPLETED; the two DIMSE statuses."""
    create = Dataset()
    create.PerformedProcedureStepStatus = "IN PROGRESS"
    ref = Dataset()
    ref.StudyInstanceUID = study_uid
    ref.AccessionNumber = accession
    ref.ScheduledProcedureStepID = ""
    ref.RequestedProcedureID = ""
    ref.ReferencedStudySequence = []
    create.ScheduledStepAttributesSequence = [ref]
    for key, value in (("PatientName", "X"), ("PatientID", "X"), ("PatientBirthDate", ""),
                       ("PatientSex", ""), ("PerformedStationAETitle", "CT1"),
                       ("PerformedProcedureStepStartDate", DAY),
                       ("PerformedProcedureStepStartTime", "093000"),
                       ("PerformedProcedureStepID", "PPS1"), ("Modality", "CT"),
                       ("PerformedProcedureStepEndDate", ""),
                       ("PerformedProcedureStepEndTime", "")):
        setattr(create, key, value)
    create.PerformedSeriesSequence = []
    done = Dataset()
    done.PerformedProcedureStepStatus = "COMPLETED"
    done.PerformedProcedureStepEndDate = DAY
    done.PerformedProcedureStepEndTime = "094500"
    series = Dataset()
    series.SeriesInstanceUID = study_uid + ".1"
    series.SeriesDescription = "Head"
    series.PerformingPhysicianName = ""
    series.OperatorsName = ""
    series.ProtocolName = "CT head"
    series.RetrieveAETitle = ""
    series.ReferencedImageSequence = []
    done.PerformedSeriesSequence = [series]
    assoc = _associate(port)
    try:
        status, _ = assoc.send_n_create(create, MPPS, uid)
        first = int(status.Status)
        status, _ = assoc.send_n_set(done, MPPS, uid)
        return first, int(status.Status)
    finally:
        assoc.release()


async def test_order_worklist_cancel_merge_mpps_and_status_to_ris(
        runtime: tuple[Runtime, Receiver, Receiver]) -> None:
    rt, ris, ris_omi = runtime
    port = rt.dicom_port
    assert port and any(line.startswith("DICOM") for line in rt.listening())
    async with MllpClient("127.0.0.1", rt.mllp_port) as client:
        for raw, cid in (
            (orm("O1", "M100", "Müller^Jürgen", "A100"), "O1"),
            (orm("O2", "M200", JAPANESE, "A200"), "O2"),
        ):
            assert (await client.send_message(raw, cid)).code == "AA"

        found = await asyncio.to_thread(_find, port)
        assert [str(d.AccessionNumber) for d in found] == ["A100", "A200"]
        assert str(found[0].PatientName) == "Müller^Jürgen"
        japanese = str(found[1].PatientName)
        assert "山田^太郎" in japanese and "やまだ^たろう" in japanese
        study_uid = str(found[0].StudyInstanceUID)

        cancel = orm("O3", "M200", "Yamada^Tarou", "A200", control="CA", status="CA")
        assert (await client.send_message(cancel, "O3")).code == "AA"
        found = await asyncio.to_thread(_find, port)
        assert [str(d.AccessionNumber) for d in found] == ["A100"]  # the cancel removed it

        for raw, cid in ((adt("H1", "A04", "M900", "Schmidt^Jürgen"), "H1"),
                         (adt("H2", "A40", "M900", "Schmidt^Jürgen", merged="M100"), "H2")):
            assert (await client.send_message(raw, cid)).code == "AA"
        found = await asyncio.to_thread(_find, port)
        assert [(str(d.AccessionNumber), str(d.PatientID), str(d.PatientName))
                for d in found] == [("A100", "M900", "Schmidt^Jürgen")]

    # Every change reached the worklist from the commits of this node: none was read
    # back from the store (the worklist log had nothing another node wrote).
    assert rt.bridge is not None and rt.bridge.worklist.read_back == 0
    statuses = await asyncio.to_thread(_mpps, port, "1.2.826.0.1.3680043.99.1", "A100",
                                       study_uid)
    assert statuses == (0x0000, 0x0000)
    assert await asyncio.to_thread(_find, port) == []  # started: off the worklist
    await ris.wait_for(2)
    await ris_omi.wait_for(3)
    got = [(m.get("MSH-9.1"), m.get("ORC-1"), m.get("ORC-5"), m.get("OBR-18"))
           for m in ris.unique.values()]
    # The RIS's own cancel is not echoed back to it; the other status receiver gets it.
    assert got == [("ORM", "SC", "IP", "A100"), ("ORM", "SC", "CM", "A100")]
    omi = [(m.get("MSH-9"), m.get("ORC-5"), m.get("IPC-1")) for m in ris_omi.unique.values()]
    assert omi == [("OMI^O23^OMI_O23", "CA", "A200"), ("OMI^O23^OMI_O23", "IP", "A100"),
                   ("OMI^O23^OMI_O23", "CM", "A100")]
    orders = SqlWorklistReader(rt.store.database).referenced(accessions=["A100"])  # type: ignore[arg-type]
    assert [o.status.value for o, _ in orders] == ["completed"]
    mpps = SqlWorklistReader(rt.store.database).mpps("1.2.826.0.1.3680043.99.1")  # type: ignore[arg-type]
    assert mpps is not None and mpps[0] == "COMPLETED"
    # The DICOM log: each C-FIND (written by the bridge a little later) and each MPPS
    # (written with it), by the calling AE title; the status updates name their order.
    assert rt.bridge is not None and rt.bridge.queries is not None
    rt.bridge.queries.flush()
    log = rt.views.dicom.list().items
    assert [(e.kind, e.station) for e in log if e.kind == "find"] == [("find", "MODALITY")] * 4
    assert [(e.status, e.accession) for e in log if e.kind == "mpps"] == [
        ("COMPLETED", "A100"), ("IN PROGRESS", "A100")]
    done = next(e for e in log if e.kind == "mpps")
    assert "A100: in_progress → completed" in done.summary
    sent = rt.store.list_outbox(accession="A100").items
    assert {(r.destination, r.kind) for r in sent} >= {("ris", "status"), ("ris2", "status")}
    assert rt.bridge.worklist.read_back == 0  # the MPPS changes too
