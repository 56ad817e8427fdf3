"""The simulated modality (``accord.demo.modality``) against a real engine on 127.0.0.1:
it finds the simulated RIS's order on the worklist by its station AE title, and its
MPPS N-CREATE / N-SET move the order; the simulated RIS (``accord.demo.ris``) gets the
status and answers a CM with a preliminary report. The dataset builders follow PS3.4."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from accord.config import Destination, load_config
from accord.demo.department import demo_catalog
from accord.demo.modality import (
    ModalityScu,
    ScheduledStep,
    Station,
    completed,
    discontinued,
    due,
    in_progress,
    stations_of,
    worklist_query,
)
from accord.demo.ris import SimulatedRis
from accord.hl7 import parse
from accord.mllp.client import MllpClient
from accord.runtime import Runtime, build

pytestmark = pytest.mark.timeout(60)
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
CT1 = Station("CT1", "CT")


def test_stations_of_the_demo_catalog() -> None:
    assert stations_of(demo_catalog()) == (
        Station("CT1", "CT"), Station("MR1", "MR"), Station("US1", "US"), Station("DX1", "CR"))
    assert stations_of({}) == ()


def test_worklist_query_asks_for_the_station_and_day() -> None:
    query = worklist_query(CT1, "20260302")
    sps = query.ScheduledProcedureStepSequence[0]
    assert sps.ScheduledStationAETitle == "CT1"
    assert sps.ScheduledProcedureStepStartDate == "20260302"
    assert query.AccessionNumber == "" and query.StudyInstanceUID == ""


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[tuple[Runtime, SimulatedRis]]:
    ris = SimulatedRis(0, rate=50.0, seed=21, reading=(0.0, 0.0))  # reads at once
    ris_port = await ris.start()
    cfg = load_config(None, {"store.data_dir": str(tmp_path), "mllp.port": 0,
                             "dicom.port": 0, "http.port": 0})
    cfg = cfg.model_copy(update={
        "destinations": (Destination(name="ris", host="127.0.0.1", port=ris_port,
                                     send=("status",)),),
        "workflow": cfg.workflow.model_copy(update={"catalog": demo_catalog()})})
    rt = build(cfg)
    await rt.start()
    ris.set_target(rt.mllp_port)
    try:
        yield rt, ris
    finally:
        await rt.stop()
        await ris.stop()


def _order_status(rt: Runtime, accession: str) -> str:
    db = rt.config.store.data_dir / "accord.db"
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT status FROM orders WHERE accession = ?", (accession,))
        return str(row.fetchone()[0])


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


async def test_worklist_mpps_status_and_report(
        engine: tuple[Runtime, SimulatedRis]) -> None:
    rt, ris = engine
    async with MllpClient("127.0.0.1", rt.mllp_port) as client:
        texts = ris.next_messages()
        for text in texts:
            await client.send_message(text.encode(), parse(text).control_id)
        (accession, placed), = ris.orders.items()  # the visit just sent
        station = Station(placed.procedure[3], placed.procedure[2])
        scu = ModalityScu(station, "127.0.0.1", rt.dicom_port)
        steps = await asyncio.to_thread(scu.find, f"{datetime.now(UTC):%Y%m%d}")
        step = next(s for s in steps if s.accession == accession)
        assert step.study_uid == placed.study_uid and step.sps_id
        now = datetime.now(UTC)
        status = await asyncio.to_thread(scu.create, "1.2.826.0.1.3680043.8.498.77",
                                         in_progress(step, station, now, "PPS1"))
        assert status == 0x0000
        assert _order_status(rt, accession) == "in_progress"
        end = completed(step, station, now, "1.2.826.0.1.3680043.8.498.78",
                        "1.2.826.0.1.3680043.8.498.79")
        assert await asyncio.to_thread(scu.set, "1.2.826.0.1.3680043.8.498.77", end) == 0
        assert _order_status(rt, accession) == "completed"
        await _until(lambda: ris.counts["status CM"] == 1)
        assert ris.counts["status IP"] == 1
        report = ris.next_messages()
        assert len(report) == 1 and parse(report[0]).get("OBR-25") == "P"
        assert parse(report[0]).get("OBR-18") == accession
        ack = await client.send_message(report[0].encode(), parse(report[0]).control_id)
        assert ack.code == "AA"
    assert _order_status(rt, accession) == "preliminary"
    walk_in = replace(step, accession="", sps_id="", study_uid="1.2.826.0.1.3680043.8.498.80")
    create = in_progress(walk_in, station, now, "PPS2", scheduled=False)
    assert await asyncio.to_thread(scu.create, "1.2.826.0.1.3680043.8.498.81", create) == 0
    with sqlite3.connect(rt.config.store.data_dir / "accord.db") as conn:
        kinds = {k for (k,) in conn.execute("SELECT kind FROM findings")}
    assert "unscheduled_procedure" in kinds


def test_unscheduled_and_discontinued_datasets() -> None:
    step = ScheduledStep("Doe^Jo", "MRN1", "HOSP", "19700102", "F", "ACC1", "1.2.3", "RP1",
                         "CT head", "SPS1", "202603021000")
    ds = in_progress(step, CT1, NOW, "PPS9", scheduled=False)
    ref = ds.ScheduledStepAttributesSequence[0]
    assert ref.StudyInstanceUID == "1.2.3" and ref.AccessionNumber == ""
    assert ref.ScheduledProcedureStepID == ""
    assert ds.PerformedProcedureStepStatus == "IN PROGRESS" and ds.Modality == "CT"
    assert ds.PerformedStationAETitle == "CT1" and ds.PerformedProcedureStepStartTime == "093000"
    stop = discontinued(NOW)
    assert stop.PerformedProcedureStepStatus == "DISCONTINUED"
    assert stop.PerformedProcedureStepEndDate == "20260302"
    assert stop.PerformedProcedureStepDiscontinuationReasonCodeSequence[0].CodeValue


def test_a_step_is_due_at_its_slot_never_before() -> None:
    step = ScheduledStep("Doe^Jo", "MRN1", "HOSP", "19700102", "F", "ACC1", "1.2.3", "RP1",
                         "CT head", "SPS1", "202603020930")
    assert not due(step, datetime(2026, 3, 2, 9, 29, 59, tzinfo=UTC))
    assert due(step, datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    assert due(replace(step, start="20260302093000.5"), datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    assert due(replace(step, start=""), datetime(2026, 3, 2, 0, 0, tzinfo=UTC))
