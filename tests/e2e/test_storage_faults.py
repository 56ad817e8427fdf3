"""Storage faults under a real ``accord serve``: the disk fills up, the disk fails, the
PostgreSQL server goes away — while senders send and destinations receive.

Promises under test, for each fault:
- no positive ACK (AA, or MPPS status 0000) for anything not durable: the sender gets
  AE, a failure status, or no answer, and resends;
- nothing acknowledged is lost: after the fault every message that got AA is stored,
  and every outbox row it made reaches the receiver;
- the engine recovers by itself when the fault clears (the same process, no restart),
  and its log says what happened, without message content;
- with ACK on store, the applier's commit meets the fault too: what was acknowledged
  waits in the inbox and is applied once when it clears.

Faults are real where a test can make them real: disk full is a small filesystem
(tmpfs, mounted when the test runs as root, skipped otherwise) filled up with a
ballast file; PostgreSQL going away is the test database's connections terminated
and new ones refused. A disk I/O error cannot be made real here: it is injected at
the store's commit (``accord.store.db.faults``, enabled by ``ACCORD_TEST_STORE_FAULTS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import ModalityPerformedProcedureStep  # type: ignore[attr-defined]

from accord.demo.traffic import Receiver
from accord.errors import DeliveryError
from accord.mllp.client import MllpClient
from accord.store import open_store, sqlite_url
from accord.store.db.faults import ENV, FAULTS
from pg_support import database_away, fresh_database

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

PHI = "Faultfamily"  # the patient name in every message: must never reach the log


def message(n: int, filler: int = 0) -> tuple[str, bytes]:
    """An ORM^O01 with MSH-10 ``F<n>`` (``filler`` bytes of NTE to fill a disk fast)."""
    cid = f"F{n:06d}"
    note = f"NTE|1||{'x' * filler}\r" if filler else ""
    text = (f"MSH|^~\\&|RIS|HOSP|ACCORD|RAD|20260101080000||ORM^O01|{cid}|P|2.5.1\r"
            f"PID|1||MRN{n % 7}^^^HOSP^MR||{PHI}^Ann||19700101|F\r"
            f"ORC|NW|P{n}|A{n}\rOBR|1|P{n}|A{n}|CT1^CT Chest\r{note}")
    return cid, text.encode()


class Sender:
    """A sender as a real RIS behaves: each message resent until it gets an ACK. Keeps
    which got AA, and how many attempts got no positive answer (AE, or none)."""

    def __init__(self, port: int) -> None:
        self.client = MllpClient("127.0.0.1", port, connect_timeout=1.0, ack_timeout=5.0)
        self.acked: list[str] = []
        self.refused = 0  # attempts answered AE/AR
        self.unanswered = 0  # attempts with no answer (connection closed, timeout)

    async def attempt(self, cid: str, payload: bytes) -> bool:
        try:
            result = await self.client.send_message(payload, cid)
        except DeliveryError:
            self.unanswered += 1
            return False
        if result.code == "AA":
            self.acked.append(cid)
            return True
        self.refused += 1
        return False

    async def until_acked(self, cid: str, payload: bytes, timeout: float = 60.0) -> None:
        async with asyncio.timeout(timeout):
            while not await self.attempt(cid, payload):
                await asyncio.sleep(0.1)

    async def close(self) -> None:
        await self.client.close()


def stored_and_routed(url: str, acked: list[str]) -> set[str]:
    """Every ACKed message is stored with its AA; returns the MSH-10s its rows carry."""
    store = open_store(url)
    routed: set[str] = set()
    try:
        for cid in acked:
            found = [m for m in store.search_messages(control_id=cid).items
                     if m.status != "duplicate"]
            assert [m.ack_code for m in found] == ["AA"], cid
            routed |= {r.control_id for r in store.list_outbox(source_message_id=found[0].id).items}
    finally:
        store.close()
    return routed


async def started(proc: Any, timeout: float = 60.0) -> None:
    """Start ``proc`` and wait until every part is up (the log's "listening:" line), not
    only MLLP: a fault injected while the engine starts stops it, as it should."""
    await asyncio.to_thread(proc.start)
    async with asyncio.timeout(timeout):
        while " listening: " not in proc.output():
            await asyncio.sleep(0.1)


def assert_log_says(log: str, fault: str) -> None:
    assert "store cannot commit" in log and fault in log, log[-3000:]
    assert "store commits again" in log, log[-3000:]
    assert PHI not in log, "message content in the log"


# -- disk full: a real small filesystem ------------------------------------------------

@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs (root only; skipped otherwise)."""
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(where)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Fill the filesystem to the last byte with a ballast file; returns it."""
    ballast = disk / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)
    try:
        for block in (65536, 512):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * block)
    finally:
        os.close(fd)
    return ballast


async def test_disk_full_refuses_then_recovers(
        small_disk: Path, tmp_path: Path, free_port: Callable[[], int],
        gateway_config: Callable[..., Path], serve: Callable[..., Any]) -> None:
    receiver = Receiver()
    await receiver.start()
    config = gateway_config(tmp_path / "accord.yaml", receiver.port)
    proc = serve(config, small_disk / "data", free_port())
    await started(proc)
    sender = Sender(proc.port)
    n = 0
    try:
        for _ in range(20):  # before the fault: all acknowledged
            n += 1
            await sender.until_acked(*message(n))
        ballast = await asyncio.to_thread(fill, small_disk)
        # Until a commit needs a page the disk cannot give (SQLite reuses its WAL's
        # space first): 8 KiB messages fill what is left within a few hundred.
        failed: tuple[str, bytes] | None = None
        for _ in range(3000):
            n += 1
            cid, payload = message(n, filler=8192)
            if not await sender.attempt(cid, payload):
                failed = cid, payload
                break
        assert failed is not None, "the disk never filled up"
        for _ in range(3):  # still full: still no AA
            assert not await sender.attempt(*failed)
        ballast.unlink()  # the operator frees space; the engine is not restarted
        await sender.until_acked(*failed)
        for _ in range(20):
            n += 1
            await sender.until_acked(*message(n))
        assert proc.proc is not None and proc.proc.poll() is None
        routed = stored_and_routed(sqlite_url(small_disk / "data"), sender.acked)
        await receiver.wait_for(len(routed), timeout=60)
        assert routed <= set(receiver.unique)
        assert await asyncio.to_thread(proc.terminate) == 0
        assert_log_says(proc.output(), "database or disk is full")
    finally:
        await sender.close()
        await receiver.stop()


# -- injected at the commit (an I/O error; the disk full), at every commit point ------

MPPS_CONFIG = """\
workflow:
  catalog:
    procedures: [{{code: CT1, description: CT Chest, modality: CT, stations: [CT1]}}]
destinations:
  - name: ris
    host: 127.0.0.1
    port: {port}
    send: [orders, status]
    connect_timeout: 1
    ack_timeout: 2
    backoff: {{base: 0.05, cap: 0.5}}
store:
  prune_interval: 1
"""


TOKEN = "faults-test-token-0123456789"


def unanswered_count(http_port: int) -> float:
    """``accord_messages_unanswered_total`` for the MLLP listener, from ``/metrics``."""
    text = httpx.get(f"http://127.0.0.1:{http_port}/metrics", timeout=30,
                     headers={"Authorization": f"Bearer {TOKEN}"}).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("accord_messages_unanswered_total{"))


def mpps(port: int, uid: str, accession: str) -> int:
    """N-CREATE IN PROGRESS for ``accession``; the DIMSE status (-1: no answer)."""
    ae = AE(ae_title="CT1")
    ae.add_requested_context(ModalityPerformedProcedureStep)
    assoc = ae.associate("127.0.0.1", port, ae_title="ACCORD")
    if not assoc.is_established:
        return -1
    try:
        ds = Dataset()
        ref = Dataset()
        ref.AccessionNumber, ref.StudyInstanceUID = accession, ""
        ref.ScheduledProcedureStepID = ref.RequestedProcedureID = ""
        ref.ReferencedStudySequence = []
        ds.ScheduledStepAttributesSequence = [ref]
        ds.PatientName, ds.PatientID = f"{PHI}^Ann", "MRN1"
        ds.PerformedProcedureStepID, ds.PerformedStationAETitle = "PPS1", "CT1"
        ds.PerformedProcedureStepStartDate, ds.PerformedProcedureStepStartTime = (
            "20260101", "080000")
        ds.PerformedProcedureStepStatus, ds.Modality = "IN PROGRESS", "CT"
        ds.PerformedSeriesSequence = []
        status, _ = assoc.send_n_create(ds, ModalityPerformedProcedureStep, uid)
        return int(getattr(status, "Status", -1))
    finally:
        assoc.release()


@pytest.mark.parametrize("fault", ["io", "full"], ids=["io-error", "disk-full-injected"])
async def test_injected_fault_at_every_commit_then_recovers(
        fault: str, tmp_path: Path, free_port: Callable[[], int],
        serve: Callable[..., Any]) -> None:
    """Ingest, MPPS, delivery and the pruning job each meet the fault; the disk full
    here too, for machines where the real one cannot be made (not root)."""
    receiver = Receiver()
    await receiver.start()
    config = tmp_path / "accord.yaml"
    config.write_text(MPPS_CONFIG.format(port=receiver.port), encoding="utf-8")
    control = tmp_path / "fault"
    proc = serve(config, tmp_path / "data", free_port(),
                 env={ENV: str(control), "ACCORD_API_TOKEN": TOKEN})
    await started(proc)
    sender = Sender(proc.port)
    try:
        await sender.until_acked(*message(1))  # the order of accession A1
        await receiver.wait_for(1, timeout=30)
        control.write_text(fault, encoding="utf-8")
        # ingest: no AA; MPPS: no success status; delivery: nothing marked delivered
        for n in (2, 3):
            assert not await sender.attempt(*message(n))
        before = len(receiver.received)
        status = await asyncio.to_thread(mpps, proc.dicom_port, "2.25.77", "A1")
        assert status not in (0x0000, -1), hex(status)
        await asyncio.sleep(1.5)  # a pruning round (prune_interval 1) fails meanwhile
        assert len(receiver.received) == before
        unanswered = await asyncio.to_thread(unanswered_count, proc.http_port)
        control.write_text("", encoding="utf-8")  # the fault clears; no restart
        for n in (2, 3):
            await sender.until_acked(*message(n))
        assert await asyncio.to_thread(mpps, proc.dicom_port, "2.25.77", "A1") == 0x0000
        routed = stored_and_routed(sqlite_url(tmp_path / "data"), sender.acked)
        await receiver.wait_for(len(routed), timeout=30)
        assert routed <= set(receiver.unique)
        assert await asyncio.to_thread(proc.terminate) == 0
        log = proc.output()
        assert_log_says(log, FAULTS[fault])
        assert "MPPS not stored" in log
        assert "retention pruning skipped this round: database error" in log
        assert unanswered >= 2  # what a Prometheus alert on the engine watches
    finally:
        await sender.close()
        await receiver.stop()


async def test_injected_fault_at_the_applier_commit_then_applied_once(
        tmp_path: Path, free_port: Callable[[], int], serve: Callable[..., Any]) -> None:
    """ACK on store: the applier's commits fail while ingest's succeed. What was
    acknowledged waits in the inbox, and is applied once (one outbox row each, each
    delivered once) when the fault clears, with no restart."""
    receiver = Receiver()
    await receiver.start()
    config = tmp_path / "accord.yaml"
    config.write_text(MPPS_CONFIG.format(port=receiver.port) + "mllp:\n  ack: on_store\n",
                      encoding="utf-8")
    control = tmp_path / "fault"
    control.write_text("io@accord-apply", encoding="utf-8")
    proc = serve(config, tmp_path / "data", free_port(), env={ENV: str(control)})
    await started(proc)
    sender = Sender(proc.port)
    try:
        for n in range(1, 6):  # stored and acknowledged: ingest's commits succeed
            await sender.until_acked(*message(n))
        await asyncio.sleep(2.5)  # the applier tries (it polls every second), and fails
        assert receiver.received == [], "applied while the applier's commits fail"
        control.write_text("", encoding="utf-8")
        await receiver.wait_for(5, timeout=30)
        await asyncio.sleep(1.0)  # anything applied twice would have been sent by now
        assert proc.proc is not None and proc.proc.poll() is None
        store = open_store(sqlite_url(tmp_path / "data"))
        try:
            assert store.backlog() == (0, None)
        finally:
            store.close()
        routed = stored_and_routed(sqlite_url(tmp_path / "data"), sender.acked)
        assert len(routed) == 5 and routed == set(receiver.unique)
        assert len(receiver.received) == len(receiver.unique) == 5
        assert await asyncio.to_thread(proc.terminate) == 0
        log = proc.output()
        assert "applying stored messages failed" in log and FAULTS["io"] in log, log[-3000:]
        assert PHI not in log, "message content in the log"
    finally:
        await sender.close()
        await receiver.stop()


# -- PostgreSQL goes away --------------------------------------------------------------

@pytest.mark.postgres
async def test_postgres_going_away_refuses_then_recovers(
        tmp_path: Path, free_port: Callable[[], int], serve: Callable[..., Any]) -> None:
    with fresh_database("accord_faults", "PostgreSQL outage test") as url:
        receiver = Receiver()
        await receiver.start()
        config = tmp_path / "accord.yaml"
        config.write_text(MPPS_CONFIG.format(port=receiver.port) + f"  url: {url}\n",
                          encoding="utf-8")
        proc = serve(config, tmp_path / "data", free_port())
        await started(proc)
        sender = Sender(proc.port)
        try:
            for n in range(1, 21):
                await sender.until_acked(*message(n))
            await asyncio.to_thread(database_away, url, True)
            for n in (21, 22):
                assert not await sender.attempt(*message(n))
            status = await asyncio.to_thread(mpps, proc.dicom_port, "2.25.78", "A1")
            assert status not in (0x0000, -1), hex(status)
            await asyncio.sleep(2.0)  # delivery and the pruning job meet the outage too
            await asyncio.to_thread(database_away, url, False)
            for n in range(21, 41):
                await sender.until_acked(*message(n))
            async with asyncio.timeout(30):  # the modality resends its N-CREATE
                while await asyncio.to_thread(
                        mpps, proc.dicom_port, "2.25.78", "A1") != 0x0000:
                    await asyncio.sleep(0.5)
            assert proc.proc is not None and proc.proc.poll() is None
            routed = stored_and_routed(url, sender.acked)
            await receiver.wait_for(len(routed), timeout=60)
            assert routed <= set(receiver.unique)
            assert await asyncio.to_thread(proc.terminate) == 0
            log = proc.output()
            assert_log_says(log, "database error")
            assert "MPPS not stored" in log
            assert "retention pruning skipped this round: database error" in log
        finally:
            await sender.close()
            await receiver.stop()
            proc.cleanup()


def test_the_fault_seam_is_off_without_its_setting() -> None:
    assert not os.environ.get(ENV), f"{ENV} must not be set for the test suite"


# -- the operator is told: health, the alerts API, the dashboard ------------------------

def api(http_port: int, path: str) -> Any:
    response = httpx.get(f"http://127.0.0.1:{http_port}{path}", timeout=30,
                         headers={"Authorization": f"Bearer {TOKEN}"})
    response.raise_for_status()
    return response.json() if path.startswith("/api/") else response.text


async def until(probe: Callable[[], Any], timeout: float = 30.0) -> Any:
    """``probe()`` (run in a thread) until it answers something true; that answer."""
    async with asyncio.timeout(timeout):
        while not (found := await asyncio.to_thread(probe)):
            await asyncio.sleep(0.2)
    return found


def failing(http_port: int) -> dict[str, dict[str, Any]]:
    return {f["component"]: f for f in api(http_port, "/api/health")["storage_faults"]}


def fault_alerts(http_port: int) -> dict[str, dict[str, Any]]:
    return {a["subject"]: a for a in api(http_port, "/api/alerts")["items"]
            if a["rule"] == "storage_fault"}


async def test_a_storage_fault_raises_an_alert_that_clears_with_the_fault(
        tmp_path: Path, free_port: Callable[[], int], serve: Callable[..., Any]) -> None:
    """While commits fail, ``/api/health`` lists each component whose last commit failed
    (status ``degraded``) and a ``storage_fault`` alert per component says what happened
    (on ``/api/alerts`` and the dashboard), with no message content; each clears with
    the component's next successful commit, with no restart."""
    receiver = Receiver()
    await receiver.start()
    config = tmp_path / "accord.yaml"
    config.write_text(MPPS_CONFIG.format(port=receiver.port) + "alerts:\n  interval: 0.5\n",
                      encoding="utf-8")
    control = tmp_path / "fault"
    proc = serve(config, tmp_path / "data", free_port(),
                 env={ENV: str(control), "ACCORD_API_TOKEN": TOKEN})
    await started(proc)
    sender = Sender(proc.port)
    port = proc.http_port
    try:
        await sender.until_acked(*message(1))
        health = await asyncio.to_thread(api, port, "/api/health")
        assert (health["status"], health["storage_faults"]) == ("ok", [])
        control.write_text("io", encoding="utf-8")
        assert not await sender.attempt(*message(2))
        assert await asyncio.to_thread(mpps, proc.dicom_port, "2.25.79", "A1") != 0x0000
        # ingest and MPPS failed above; the pruning job (every second) fails meanwhile
        down = await until(lambda: (f := failing(port)).keys() >= {"ingest", "mpps", "jobs"}
                           and f)
        assert (down["ingest"]["error_class"], down["ingest"]["error"]) == (
            "InjectedFault", FAULTS["io"])
        assert (await asyncio.to_thread(api, port, "/api/health"))["status"] == "degraded"
        raised = await until(lambda: (a := fault_alerts(port)).keys() >= {"ingest", "mpps"}
                             and a)
        summary = raised["ingest"]["summary"]
        assert "cannot commit ingest writes" in summary and FAULTS["io"] in summary, summary
        assert raised["ingest"]["severity"] == "error"
        dashboard = await asyncio.to_thread(api, port, "/dashboard/live")
        assert "cannot commit ingest writes" in dashboard
        assert PHI not in str(raised) and PHI not in dashboard

        control.write_text("", encoding="utf-8")  # the fault clears; no restart
        await sender.until_acked(*message(2))
        assert await asyncio.to_thread(mpps, proc.dicom_port, "2.25.79", "A1") == 0x0000
        await until(lambda: not failing(port))  # each component committed again
        await until(lambda: not fault_alerts(port))
        assert (await asyncio.to_thread(api, port, "/api/health"))["status"] == "ok"
        assert await asyncio.to_thread(proc.terminate) == 0
        log = proc.output()
        assert "alert raised: the store cannot commit ingest writes" in log, log[-3000:]
        assert "alert cleared: storage_fault:ingest" in log
        assert PHI not in log
    finally:
        await sender.close()
        await receiver.stop()
