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


class Demo:
    """One ``accord demo`` child process with the admin token in its environment."""

    def __init__(self, data: Path, log: Path, free_port: Callable[[], int]) -> None:
        self.data, self.log = data, log
        self.mllp, self.dicom, self.http = free_port(), free_port(), free_port()
        args = [sys.executable, "-m", "accord", "demo", "--data", str(data),
                "--mllp-port", str(self.mllp), "--dicom-port", str(self.dicom),
                "--http-port", str(self.http)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "ACCORD_API_TOKEN": TOKEN}
        with log.open("wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 20
        while not _listening(self.http):
            assert self.proc.poll() is None, self.output()
            assert time.monotonic() < deadline, "console never listened"
            time.sleep(0.1)

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.http}", timeout=10,
                            headers={"Authorization": f"Bearer {TOKEN}"})

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def interrupt(self) -> int:
        """SIGINT (Ctrl-C) and wait; the exit code."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(30)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _wait(check: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool],
          seconds: float) -> dict[str, Any]:
    deadline, state = time.monotonic() + seconds, check()
    while not done(state) and time.monotonic() < deadline:
        time.sleep(1.0)
        state = check()
    return state


def test_demo_shows_a_department(tmp_path: Path, free_port: Callable[[], int]) -> None:
    data = tmp_path / "data"
    db = data / "accord.db"
    demo = Demo(data, tmp_path / "demo1.log", free_port)
    try:
        with demo.api() as api:
            state = _wait(lambda: _state(api, db), _done, 45)
            assert _done(state), state
            assert api.get("/api/health").status_code == 200
        announced = demo.output()
        for where in (f"mllp://127.0.0.1:{demo.mllp}", f"ACCORD@127.0.0.1:{demo.dicom}",
                      f"console:   http://127.0.0.1:{demo.http}",
                      "setup:     http://127.0.0.1", "demo RIS:", "demo MOD:", "demo PACS:"):
            assert where in announced, where
        assert demo.interrupt() == 0, demo.output()
        assert "Traceback" not in demo.output()
    finally:
        demo.kill()
    # `make demo` again on the same ./accord-data: new traffic is applied, not taken for
    # resends of the first run's messages.
    with sqlite3.connect(db) as conn:
        before = dict(conn.execute("SELECT status, count(*) FROM messages GROUP BY status"))
    again = Demo(data, tmp_path / "demo2.log", free_port)
    try:
        with again.api() as api:
            stats = _wait(lambda: dict(api.get("/api/stats").json()),
                          lambda st: st.get("messages", 0) >= sum(before.values()) + 8, 20)
        assert stats["processed"] >= before["processed"] + 6, (before, stats)
        assert stats["duplicates"] <= before.get("duplicate", 0) + 1, (before, stats)
        assert again.interrupt() == 0, again.output()
    finally:
        again.kill()
