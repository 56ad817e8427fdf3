"""A real engine for the browser and canary tests: ``accord serve`` as a subprocess on
free ports with a tmp SQLite store, users made with ``accord user add``, a fake PACS
(an MLLP peer answering AA) and a RIS destination that is down (or up, when asked),
messages sent over MLLP, and a modality's MPPS over DICOM (:func:`mpps`). Everything it
prints (stdout and stderr, INFO and above) is kept in ``log``."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from console_support import CATALOG, PASSWORD, PAST_OK, ROLES, sample

from ops_support import AckPeer, free_port, send

ACCORD = Path(sys.executable).with_name("accord")


@dataclass
class Engine:
    data: Path
    http_port: int
    mllp_port: int
    process: subprocess.Popen[bytes]
    pacs: AckPeer
    log_path: Path
    acks: list[bytes] = field(default_factory=list)
    dicom_port: int = 0  # 0: no DICOM listener
    ris: AckPeer | None = None  # the RIS when it is up (else its port answers nothing)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _config(data: Path, mllp: int, http: int, pacs: int, ris: int, dicom: int) -> Path:
    path = data / "accord.yaml"
    path.write_text(json.dumps({  # JSON is YAML
        "mllp": {"port": mllp}, "http": {"port": http},
        # The samples' orders are on fixed days, long past: the worklist keeps them.
        "dicom": ({"port": dicom} if dicom else {"enabled": False})
        | {"worklist_horizon_hours": 1000000},
        "store": {"data_dir": str(data)}, "workflow": {"catalog": CATALOG, "checks": PAST_OK},
        "alerts": {"interval": 1, "rules": [{"kind": "connection_down",
                                             "severity": "error"}]},
        "destinations": [
            {"name": "pacs", "host": "127.0.0.1", "port": pacs,
             "send": ["adt", "orders", "reports"]},
            {"name": "ris", "host": "127.0.0.1", "port": ris, "send": ["status"],
             "connect_timeout": 0.5, "backoff": {"base": 1, "cap": 2}},
        ]}), encoding="utf-8")
    return path


def _wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("accord serve exited:\n" + log_path.read_text())
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError("accord serve did not become ready:\n" + log_path.read_text())


@contextlib.contextmanager
def engine(data: Path, feed: tuple[str, ...], log_format: str = "text", *,
           dicom: bool = False, ris_up: bool = False) -> Iterator[Engine]:
    """``accord serve`` with users for every role (password PASSWORD), fed ``feed``,
    logging in ``log_format`` (``text`` or ``json``); ``dicom``: with its DICOM listener;
    ``ris_up``: the RIS destination answers (else nothing listens on its port)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    env.pop("ACCORD_API_TOKEN", None)
    for role in ROLES:
        subprocess.run([str(ACCORD), "user", "add", role, "--role", role, "--data", str(data)],
                       input=PASSWORD.encode(), check=True, capture_output=True, env=env,
                       timeout=60)
    pacs = AckPeer()
    ris = AckPeer() if ris_up else None
    mllp, http = free_port(), free_port()
    dicom_port = free_port() if dicom else 0
    config = _config(data, mllp, http, pacs.port, ris.port if ris else free_port(),
                     dicom_port)
    log_path = data / "serve.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen([str(ACCORD), "serve", "--config", str(config),
                                    "--log-format", log_format],
                                   stdout=out, stderr=subprocess.STDOUT, env=env)
    eng = Engine(data, http, mllp, process, pacs, log_path, dicom_port=dicom_port, ris=ris)
    try:
        _wait_ready(eng.url, process, log_path)
        eng.acks = [send(mllp, sample(name)) for name in feed]
        yield eng
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        pacs.close()
        if ris is not None:
            ris.close()


def mpps(port: int, uid: str, accession: str, study_uid: str, station: str = "CT1") -> None:
    """A modality (calling AE ``station``) asks its worklist, then performs the step:
    MPPS N-CREATE IN PROGRESS and N-SET COMPLETED (PS3.4 F.7.2)."""
    from pydicom.dataset import Dataset
    from pynetdicom import AE

    from accord.dicom.scp import MODALITY_WORKLIST_FIND, MPPS

    ae = AE(ae_title=station)
    ae.add_requested_context(MODALITY_WORKLIST_FIND)
    ae.add_requested_context(MPPS)
    assoc = ae.associate("127.0.0.1", port, ae_title="ACCORD")
    assert assoc.is_established
    try:
        query, item = Dataset(), Dataset()
        query.PatientName, query.AccessionNumber = "", ""
        item.ScheduledStationAETitle = station
        query.ScheduledProcedureStepSequence = [item]
        list(assoc.send_c_find(query, MODALITY_WORKLIST_FIND))
        create, ref = Dataset(), Dataset()
        ref.StudyInstanceUID, ref.AccessionNumber = study_uid, accession
        ref.ScheduledProcedureStepID, ref.RequestedProcedureID = "", ""
        ref.ReferencedStudySequence = []
        create.ScheduledStepAttributesSequence = [ref]
        for key, value in (("PatientName", "X"), ("PatientID", "X"), ("Modality", "CT"),
                           ("PerformedStationAETitle", station),
                           ("PerformedProcedureStepStatus", "IN PROGRESS"),
                           ("PerformedProcedureStepStartDate", ""),
                           ("PerformedProcedureStepStartTime", "")):
            setattr(create, key, value)
        create.PerformedSeriesSequence = []
        assert int(assoc.send_n_create(create, MPPS, uid)[0].Status) == 0
        done, series = Dataset(), Dataset()
        done.PerformedProcedureStepStatus = "COMPLETED"
        now = datetime.now(UTC)
        done.PerformedProcedureStepEndDate = f"{now:%Y%m%d}"
        done.PerformedProcedureStepEndTime = f"{now:%H%M%S}"
        series.SeriesInstanceUID = study_uid + ".1"
        for key in ("SeriesDescription", "PerformingPhysicianName", "OperatorsName",
                    "ProtocolName", "RetrieveAETitle"):
            setattr(series, key, "")
        series.ReferencedImageSequence = []
        done.PerformedSeriesSequence = [series]
        assert int(assoc.send_n_set(done, MPPS, uid)[0].Status) == 0
    finally:
        assoc.release()
