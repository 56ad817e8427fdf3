"""``accord demo`` end to end: a real process on free ports with a tmp ``--data``.

Within ~40 s the simulated department must show what an evaluator looks for: messages
ingested, an order moved by a modality's MPPS, the procedure status delivered to the
simulated RIS (``ris-sim``), findings to explain; the announcement says where to look;
SIGINT stops it cleanly (exit 0).
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.timeout(90)
TOKEN = "demo-e2e-token"
PERFORMED = ("orders_in_progress", "orders_completed", "orders_discontinued",
             "orders_preliminary", "orders_final")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _ris_deliveries(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        (n,), = conn.execute("SELECT count(*) FROM outbox WHERE destination = 'ris-sim' "
                             "AND kind = 'status' AND status = 'delivered'")
        return int(n)


def _mpps(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        (n,), = conn.execute("SELECT count(*) FROM mpps_instances")
        return int(n)


def _state(api: httpx.Client, db: Path) -> dict[str, Any]:
    stats = api.get("/api/stats").json()
    findings = api.get("/api/findings", params={"limit": 1000}).json()["items"]
    return {
        "messages": stats.get("messages", 0),
        "performed": sum(stats.get(k, 0) for k in PERFORMED),
        "mpps": _mpps(db),
        "ris_status": _ris_deliveries(db),
        "finding_kinds": sorted({f["kind"] for f in findings}),
    }


def _done(state: dict[str, Any]) -> bool:
    return bool(state["messages"] and state["performed"] and state["mpps"]
                and state["ris_status"] and state["finding_kinds"])


def test_demo_shows_a_department(tmp_path: Path, free_port: Callable[[], int]) -> None:
    data = tmp_path / "data"
    mllp, dicom, http = free_port(), free_port(), free_port()
    log = tmp_path / "demo.log"
    args = [sys.executable, "-m", "accord", "demo", "--data", str(data),
            "--mllp-port", str(mllp), "--dicom-port", str(dicom), "--http-port", str(http)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "ACCORD_API_TOKEN": TOKEN}
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 20
        while not _listening(http):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "console never listened"
            time.sleep(0.1)
        db = data / "accord.db"
        with httpx.Client(base_url=f"http://127.0.0.1:{http}", timeout=10,
                          headers={"Authorization": f"Bearer {TOKEN}"}) as api:
            state: dict[str, Any] = {}
            deadline = time.monotonic() + 45
            while time.monotonic() < deadline:
                state = _state(api, db)
                if _done(state):
                    break
                time.sleep(1.0)
            assert _done(state), state
            assert api.get("/api/health").status_code == 200
        announced = log.read_text(encoding="utf-8", errors="replace")
        for where in (f"mllp://127.0.0.1:{mllp}", f"ACCORD@127.0.0.1:{dicom}",
                      f"console:   http://127.0.0.1:{http}", "setup:     http://127.0.0.1",
                      "demo RIS:", "demo MOD:", "demo PACS:"):
            assert where in announced, where
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0, log.read_text()
        assert "Traceback" not in log.read_text(encoding="utf-8", errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
