"""``accord trace ACCESSION`` as a subprocess, on a store filled through the real ingest
path (Ingestor + WorkflowProcessor + SQLite): the history in plain words, where the order
stands, why it is not on a worklist, the findings; ``--json``; exit 1 when unknown."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from accord.clock import ControlIds, FixedClock
from accord.config import Config
from accord.engine.ingest import Ingestor
from accord.engine.workflow import Outbound, WorkflowProcessor
from accord.mapping.dialect import Dialects
from accord.mapping.procedures import catalog_from_config
from accord.mllp.server import PeerInfo
from accord.store import open_store, sqlite_url
from accord.store.workflow.repository import repository_for
from accord.workflow.memory import SequentialIds

ACCORD = Path(sys.executable).parent / "accord"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
HEAD = "MSH|^~\\&|RIS|HOSP|ACCORD|HOSP|20260302080000||{type}|{cid}|P|2.3.1"
PID = "PID|1||MRN1^^^HOSP^MR||DOE^JANE||19800101|F"


def orm(cid: str, control: str, status: str, code: str = "CTHEAD") -> str:
    return "\r".join([
        HEAD.format(type="ORM^O01", cid=cid), PID, "PV1|1|O|RAD^1||||||||||||||||V1",
        f"ORC|{control}|P1|F1||{status}",
        f"OBR|1|P1|F1|{code}^CT head^L||||||||||||||A1||||||CT|||^^^20260302090000"])


def oru(cid: str, accession: str) -> str:
    return "\r".join([
        HEAD.format(type="ORU^R01", cid=cid), PID, "PV1|1|O|RAD^1||||||||||||||||V1",
        f"OBR|1|P9|F9|CTHEAD^CT head^L||||||||||||||{accession}||||||CT|F",
        "OBX|1|TX|59776-5^Findings^LN||No bleed.||||||F"])


async def fill(data: Path, messages: list[str]) -> None:
    store = open_store(sqlite_url(data))
    catalog = catalog_from_config(
        {"procedures": [{"code": "CTHEAD", "modality": "CT", "stations": ["CT1"]}]},
        at=T0, author="test")
    ids = ControlIds("T")
    processor = WorkflowProcessor(dialects=Dialects(), outbound=Outbound((), Dialects(), ids),
                                  ids=SequentialIds(), repository=repository_for,
                                  catalog=catalog)
    clock = FixedClock(T0)
    ingestor = Ingestor(store, clock, ids, processor, Config())
    try:
        for text in messages:
            clock.advance(60)
            await ingestor.handle(text.encode(), PeerInfo("127.0.0.1", 1))
    finally:
        await ingestor.close()
        store.close()


def accord(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("ACCORD_DEBUG", None)
    return subprocess.run([str(ACCORD), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def test_trace_tells_the_life_of_an_order_and_why_it_is_off_the_worklist(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    asyncio.run(fill(data, [orm("M1", "NW", "SC"), orm("M2", "SC", "IP"),
                            orm("M3", "CA", "CA")]))
    done = accord("trace", "A1", "--data", data)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "order O1: in_progress" in out
    assert "placed" in out or "status: (empty) → scheduled" in out
    assert "scheduled → in_progress" in out
    assert "station CT1" in out or "CT1" in out
    assert "worklist: not on any worklist: the order is in_progress" in out
    assert "cancelled_but_performed" in out  # a cancel after the start is a finding
    assert "now: in_progress since" in out


def test_trace_json_and_scheduled_worklist(tmp_path: Path) -> None:
    data = tmp_path / "data"
    asyncio.run(fill(data, [orm("M1", "NW", "SC")]))
    done = accord("trace", "A1", "--data", data, "--json")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["accession"] == "A1"
    assert [o["status"] for o in got["orders"]] == ["scheduled"]
    assert got["orders"][0]["stations"] == ["CT1"]
    assert got["orders"][0]["worklist"].startswith("on the worklist of CT1, scheduled 2026-03-02")
    assert got["events"][0]["changes"][0] == {"attribute": "status", "before": "",
                                              "after": "scheduled"}
    assert got["explanation"][-1].startswith("now: scheduled since")


def test_report_for_an_order_never_received_and_unknown_accession(tmp_path: Path) -> None:
    data = tmp_path / "data"
    asyncio.run(fill(data, [oru("R1", "A9")]))
    done = accord("trace", "A9", "--data", data)
    assert done.returncode == 0, done.stderr
    assert "unknown_order" in done.stdout
    unknown = accord("trace", "NOPE", "--data", data)
    assert unknown.returncode == 1
    assert "never received" in unknown.stdout
    missing = accord("trace", "A1", "--data", tmp_path / "nowhere")
    assert missing.returncode == 2 and missing.stderr.startswith("accord: error:")


def test_trace_help_lists_its_options() -> None:
    done = accord("trace", "--help")
    assert done.returncode == 0
    for option in ("--data", "--db", "--json"):
        assert option in done.stdout


def test_trace_shows_what_went_out_to_whom_its_ack_and_attempts(tmp_path: Path) -> None:
    from accord.store import OutboxItem

    data = tmp_path / "data"
    asyncio.run(fill(data, [orm("M1", "NW", "SC")]))
    store = open_store(sqlite_url(data))
    try:
        with store.transaction() as tx:  # as an MPPS queues them: no received message
            tx.enqueue([OutboxItem(destination="ris", payload=b"MSH|", control_id="OUT1",
                                   kind="status", accession="A1"),
                        OutboxItem(destination="pacs", payload=b"MSH|", control_id="OUT2",
                                   kind="orders", accession="A1")], T0)
        [ris] = store.claim("ris", "n", T0, 60)
        ack = b"MSH|^~\\&|RIS|H|ACCORD|H|20260302||ACK|X|P|2.5.1\rMSA|AE|OUT1\r"
        store.mark_retry(ris.id, "n", "AE: busy", T0)
        [ris] = store.claim("ris", "n", T0, 60)
        store.mark_delivered(ris.id, "n", ack.replace(b"MSA|AE", b"MSA|AA"), T0)
    finally:
        store.close()
    done = accord("trace", "A1", "--data", data)
    assert done.returncode == 0, done.stderr
    sent = done.stdout.split("sent:\n", 1)[1]
    assert "to ris: status OUT1 delivered, ACK AA, 2 attempt(s)" in sent
    assert "to pacs: orders OUT2 pending, 0 attempt(s)" in sent
    got = json.loads(accord("trace", "A1", "--data", data, "--json").stdout)
    assert [(s["destination"], s["ack_code"], s["attempts"]) for s in got["sent"]] == [
        ("ris", "AA", 2), ("pacs", "", 0)]
