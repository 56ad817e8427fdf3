"""The dashboard (``console/dashboard.py``): open alerts show and go when they clear; and
on a running engine (MLLP, the DICOM SCP, delivery to receivers), every figure — whatever
made its rows: a message over MLLP, an MPPS through the SCP, a person's merge at the
console, a job — is the length of the list its link opens, and the page says what
``GET /api/dashboard`` says."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_support import login
from fastapi.testclient import TestClient
from pydicom.dataset import Dataset
from pynetdicom import AE

from accord.config import Config
from accord.demo.traffic import Receiver
from accord.dicom.reconcile import ReconcileFinding
from accord.dicom.reconcile_job import ReconcileSettings, reconcile_once
from accord.dicom.scp import MODALITY_WORKLIST_FIND, MPPS
from accord.dicom.scu import PacsPeer
from accord.mllp.client import MllpClient
from accord.runtime import Runtime, build
from accord.store.workflow.repository import repository_for
from accord.store.workflow.worklist import SqlWorklistReader
from accord.web.auth import Auth

pytestmark = pytest.mark.timeout(120)
PASSWORD = "correct horse battery"


def test_open_alerts_show_on_the_dashboard(rt: Runtime, app_client: TestClient) -> None:
    from accord.store.views.dashboard import Dashboard, DestinationFigures
    from accord.web.alert_rules import AlertRule

    app = app_client.app
    monitor = app.state.alerts  # type: ignore[attr-defined]
    monitor.settings = type(monitor.settings)(rules=(AlertRule("connection_down"),))
    down = Dashboard(rt.clock.now(), (), (DestinationFigures(
        "pacs", 3, 0, 0, None, None, "retrying", "connection refused"),), ())
    monitor.evaluate_once(down)
    login(app_client, "viewer")
    page = app_client.get("/dashboard/live").text
    assert "connection_down" in page and "pacs is not accepting messages" in page
    monitor.evaluate_once(Dashboard(rt.clock.now(), (), (), ()))
    assert "No open alerts" in app_client.get("/dashboard/live").text


# --- figures per origin, on a running engine ----------------------------------------------
def _hl7(*segments: str) -> bytes:
    return "\r".join(segments).encode()


def _orm(n: int, mrn: str, family: str, when: datetime) -> bytes:
    t = f"{when:%Y%m%d%H%M}"
    return _hl7(
        f"MSH|^~\\&|RIS|HOSP|ACCORD|HOSP|{t}||ORM^O01^ORM_O01|DSH{n}|P|2.5.1",
        f"PID|1||{mrn}^^^HOSP^MR||{family}^ANNA||19700101|F",
        "PV1|1|O|RAD^1||||||||||||||||V1",
        f"ORC|NW|P{n}^RIS|ACC{n}^PACS||SC||^^^{t}^^R||{t}",
        f"OBR|1|P{n}^RIS|ACC{n}^PACS|CTHEAD^CT head^LOCAL|||{t}|||||||||||ACC{n}|RP{n}|"
        f"SPS{n}|CT1|||CT|||1^^^{t}^^R",
        f"ZDS|1.2.826.0.1.3680043.10.543.{n}^Accord^Application^DICOM")


def _mpps(port: int, uid: str, accession: str, study_uid: str) -> tuple[int, int]:
    """A modality (calling AE CT1) asks its worklist, then N-CREATE and N-SET COMPLETED."""
    ae = AE(ae_title="CT1")
    ae.add_requested_context(MODALITY_WORKLIST_FIND)
    ae.add_requested_context(MPPS)
    assoc = ae.associate("127.0.0.1", port, ae_title="ACCORD")
    assert assoc.is_established
    try:
        query, item = Dataset(), Dataset()
        query.PatientName, query.AccessionNumber = "", ""
        item.ScheduledStationAETitle = "CT1"
        query.ScheduledProcedureStepSequence = [item]
        list(assoc.send_c_find(query, MODALITY_WORKLIST_FIND))
        create, ref = Dataset(), Dataset()
        ref.StudyInstanceUID, ref.AccessionNumber = study_uid, accession
        ref.ScheduledProcedureStepID, ref.RequestedProcedureID = "", ""
        ref.ReferencedStudySequence = []
        create.ScheduledStepAttributesSequence = [ref]
        for key, value in (("PatientName", "X"), ("PatientID", "X"),
                           ("PerformedStationAETitle", "CT1"), ("Modality", "CT"),
                           ("PerformedProcedureStepStatus", "IN PROGRESS"),
                           ("PerformedProcedureStepStartDate", ""),
                           ("PerformedProcedureStepStartTime", "")):
            setattr(create, key, value)
        create.PerformedSeriesSequence = []
        first = int(assoc.send_n_create(create, MPPS, uid)[0].Status)
        done, series = Dataset(), Dataset()
        done.PerformedProcedureStepStatus = "COMPLETED"
        done.PerformedProcedureStepEndDate = f"{datetime.now(UTC):%Y%m%d}"
        done.PerformedProcedureStepEndTime = f"{datetime.now(UTC):%H%M%S}"
        series.SeriesInstanceUID = study_uid + ".1"
        for key in ("SeriesDescription", "PerformingPhysicianName", "OperatorsName",
                    "ProtocolName", "RetrieveAETitle"):
            setattr(series, key, "")
        series.ReferencedImageSequence = []
        done.PerformedSeriesSequence = [series]
        return first, int(assoc.send_n_set(done, MPPS, uid)[0].Status)
    finally:
        assoc.release()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[tuple[Runtime, Receiver, Receiver]]:
    pacs, ris = Receiver(), Receiver()
    await pacs.start()
    await ris.start()
    rt = build(Config.model_validate({
        "store": {"data_dir": str(tmp_path / "data")}, "mllp": {"port": 0},
        "dicom": {"port": 0}, "http": {"port": 0},
        "alerts": {"interval": 0.2},
        "workflow": {"catalog": {"procedures": [{"code": "CTHEAD", "modality": "CT",
                                                 "stations": ["CT1", "CT2"]}]}},
        "destinations": [
            {"name": "pacs", "host": "127.0.0.1", "port": pacs.port,
             "send": ["adt", "orders", "reports"]},
            {"name": "ris", "host": "127.0.0.1", "port": ris.port, "send": ["status"]}]}))
    auth = Auth(rt.accounts, rt.clock)
    for role in ("operator", "admin"):
        auth.add_user(role, role, PASSWORD)
    await rt.start()
    try:
        yield rt, pacs, ris
    finally:
        await rt.stop()
        await pacs.stop()
        await ris.stop()


def _figure(page: str, name: str) -> tuple[int, str]:
    """A figure of the dashboard page and the link of its list."""
    cell = re.search(rf'data-figure="{re.escape(name)}">(.*?)</td>', page, re.S)
    assert cell is not None, name
    link = re.search(r'href="([^"]+)">(\d+)</a>', cell.group(1))
    if link is None:
        return int(cell.group(1).strip()), ""
    return int(link.group(2)), link.group(1).replace("&amp;", "&")


async def _rows(http: httpx.AsyncClient, href: str) -> int:
    """How many rows the list page behind a figure shows."""
    page = (await http.get(href)).text
    return len(re.findall(r"<tr data-(?:id|accession)=", page))


async def test_every_figure_is_its_list_whatever_made_the_rows(
        engine: tuple[Runtime, Receiver, Receiver]) -> None:
    rt, _, ris = engine
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    # MLLP: two patients, each with an order today; one message the engine cannot read.
    async with MllpClient("127.0.0.1", rt.mllp_port) as client:
        for n, (mrn, family) in enumerate((("M1", "DIETZ"), ("M2", "DIETS")), start=1):
            assert (await client.send_message(_orm(n, mrn, family, now), f"DSH{n}")
                    ).code == "AA"
        assert (await client.send_message(b"not HL7 at all", "")).code == "AR"
    # MPPS: the modality CT1 performs the first order (status updates to the RIS).
    statuses = await asyncio.to_thread(_mpps, rt.dicom_port, "1.2.826.0.1.3680043.9.1",
                                       "ACC1", "1.2.826.0.1.3680043.10.543.1")
    assert statuses == (0, 0)
    # A person at the console: merge the two patients (an A40 from ACCORD^CONSOLE).
    token, _ = Auth(rt.accounts, rt.clock).create_token(
        rt.accounts.users.named("operator").id, "test")  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{rt.http.port}"  # type: ignore[union-attr]
    async with httpx.AsyncClient(base_url=base, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        patients = (await http.get("/api/patients")).json()["items"]
        by_mrn = {p["identifiers"][0]["id"]: p["id"] for p in patients}
        merged = await http.post(f"/api/patients/{by_mrn['M2']}/merge",
                                 json={"into": by_mrn["M1"]})
        assert merged.json()["ack_code"] == "AA"
        # A job: reconciliation finds the completed exam missing from the PACS.
        settings = ReconcileSettings(PacsPeer("127.0.0.1", 9))
        found = [ReconcileFinding("completed_study_missing", "ACC1", "1.2.9", "not in PACS")]
        assert await asyncio.to_thread(
            reconcile_once, rt.store, SqlWorklistReader(rt.store.database), repository_for,
            settings, rt.clock, "node", lambda *_: found) == 1
        await ris.wait_for(2)  # the MPPS's IP and CM reached the RIS
        assert rt.bridge is not None and rt.bridge.queries is not None
        queries = rt.bridge.queries

        async def settled() -> tuple[dict[str, Any], str]:
            for _ in range(100):
                # The C-FIND's row is written every few seconds, and the association's
                # handler may record it after the SCU has its answer: flush until it shows.
                queries.flush()
                dash = (await http.get("/api/dashboard")).json()
                out = {d["name"]: d for d in dash["destinations"]}
                seen = {s["station"]: s["queries"] for s in dash["stations"]}
                if (out["ris"]["delivered"] == 2 and out["pacs"]["queued"] == 0
                        and out["pacs"]["delivered"] >= 5 and seen.get("CT1") == 1):
                    page = (await http.get("/dashboard/live")).text
                    if (await http.get("/api/dashboard")).json() == dash:
                        return dash, page
                await asyncio.sleep(0.2)
            raise AssertionError(f"the figures did not settle: {dash}")

        dash, page = await settled()
        out = {d["name"]: d for d in dash["destinations"]}
        assert out["ris"]["delivered"] == 2  # MPPS-origin status updates are counted
        senders = {i["sender"]: i for i in dash["interfaces"]}
        assert senders["RIS^HOSP"]["received"] == 2
        assert senders["ACCORD^CONSOLE"]["received"] == 1
        assert senders["-"]["rejected"] == 1
        stations = {s["station"]: s for s in dash["stations"]}
        assert (stations["CT1"]["queries"], stations["CT1"]["mpps"]) == (1, 2)
        assert stations["CT2"]["queries"] == 0 and stations["CT2"]["known"]
        findings = {f["kind"]: f["open"] for f in dash["findings"]}
        assert findings["completed_study_missing"] == 1
        # The page shows the API's figures; each links to a list of that many rows.
        figures = [f"received:{s}" for s in senders] + [f"errored:{s}" for s in senders]
        figures += [f"delivered:{d}" for d in out] + [f"queued:{d}" for d in out]
        figures += ["queries:CT1", "mpps:CT1", "findings:completed_study_missing"]
        figures += [f"orders:{c['modality']}:{c['status']}" for c in dash["orders_today"]]
        for name in figures:
            count, href = _figure(page, name)
            kind, _, key = name.partition(":")
            source = senders if kind in ("received", "errored") else out
            if kind in ("received", "errored", "delivered", "queued"):
                assert count == source[key][kind], name
            if count:
                assert href, name
                assert await _rows(http, href) == count, (name, href)


def test_the_client_connections_panel_shows_trouble_per_address(
    rt: Runtime, app_client: TestClient,
) -> None:
    page = app_client.get("/", follow_redirects=False)
    login(app_client, "viewer")
    assert 'hx-get="/dashboard/peers"' in app_client.get("/").text
    assert "No client has connected yet" in app_client.get("/dashboard/peers").text
    junk = rt.mllp.peer_table.seen("10.9.8.7", 0.0)
    junk.junk, junk.silent = 3, 1
    rt.mllp.peer_table.seen("10.9.8.6", 0.0).messages = 12
    panel = app_client.get("/dashboard/peers").text
    assert panel.index("10.9.8.7") < panel.index("10.9.8.6")  # trouble first
    assert '<td class="n bad">3</td>' in panel
    assert page.status_code == 303
