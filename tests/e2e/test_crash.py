"""Crash: a real ``accord serve`` is SIGKILLed repeatedly while clients send.

Promise under test (issue 3): after the final restart, every message that got AA is
stored, and every routed one reaches the receiver — at least once on the wire, exactly
once after MSH-10 dedupe — in order per patient. The clients behave like real senders:
a message without an ACK (connection refused, lost, timed out) is resent until answered.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from accord.errors import DeliveryError
from accord.hl7 import parse
from accord.mllp.client import MllpClient
from accord.sim import Department, Receiver
from accord.store import open_store, sqlite_url

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

KILLS = 5
SENDERS = 4


async def sender(port: int, n: int, acked: list[tuple[str, str]], stop: asyncio.Event) -> None:
    """Send exams (each message in order, each resent until ACKed) until ``stop``."""
    dept = Department(seed=100 + n, control_prefix=f"S{n}-")
    client = MllpClient("127.0.0.1", port, connect_timeout=1.0, ack_timeout=5.0)
    try:
        while not stop.is_set():
            exam = dept.exam(datetime.now(UTC))
            for text in exam.messages:
                control_id = text.split("|", 10)[9]
                while True:
                    try:
                        result = await client.send_message(text.encode(), control_id)
                    except DeliveryError:
                        await asyncio.sleep(0.05)
                        continue
                    assert result.code == "AA", result.text
                    acked.append((exam.patient.mrn, control_id))
                    break
    finally:
        await client.close()


@pytest.mark.parametrize("per_patient", [False, True], ids=["fifo", "per-patient"])
async def test_sigkill_loses_nothing_acknowledged(
        per_patient: bool, tmp_path: Path, free_port: Callable[[], int],
        gateway_config: Callable[..., Path], serve: Callable[..., Any]) -> None:
    receiver = Receiver()
    await receiver.start()
    config = gateway_config(tmp_path / "accord.yaml", receiver.port,
                            per_patient=str(per_patient).lower(), workers=3)
    data = tmp_path / "data"
    port = free_port()
    rng = random.Random(7)
    acked: list[tuple[str, str]] = []
    stop = asyncio.Event()
    senders = [asyncio.create_task(sender(port, n, acked, stop)) for n in range(SENDERS)]
    proc = serve(config, data, port)
    try:
        for _ in range(KILLS):
            await asyncio.to_thread(proc.start)
            await asyncio.sleep(rng.uniform(1.0, 2.5))
            await asyncio.to_thread(proc.kill)
            await asyncio.sleep(rng.uniform(0.0, 0.3))
        await asyncio.to_thread(proc.start)
        await asyncio.sleep(1.0)
        stop.set()
        async with asyncio.timeout(60):
            await asyncio.gather(*senders)
        await check_delivered(data, acked, receiver)
        assert await asyncio.to_thread(proc.terminate) == 0
    finally:
        stop.set()
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
        await receiver.stop()
    assert len(acked) > 50, "too little traffic to say anything"


async def check_delivered(data: Path, acked: list[tuple[str, str]],
                          receiver: Receiver) -> None:
    store = open_store(sqlite_url(data))
    try:
        stored = {}
        for _mrn, cid in acked:
            [msg] = [m for m in store.search_messages(control_id=cid).items
                     if m.status == "processed"]
            stored[cid] = msg
        routed = {}  # outbound MSH-10 -> inbound MSH-10
        for cid, msg in stored.items():
            rows = store.list_outbox(source_message_id=msg.id).items
            assert len(rows) == 1, f"{cid} routed {len(rows)} times"
            routed[rows[0].control_id] = cid
        # Rows in flight at a kill come back when their lease ends (connect + ACK + 5 s).
        await receiver.wait_for(len(routed), timeout=60)
    finally:
        store.close()
    assert set(receiver.unique) == set(routed)
    first_seen: list[str] = []
    for m in receiver.received:
        inbound = routed[m.control_id]
        if inbound not in first_seen:
            first_seen.append(inbound)
    patient_of = dict((cid, mrn) for mrn, cid in acked)
    for mrn in {mrn for mrn, _ in acked}:
        sent = [cid for m, cid in acked if m == mrn]
        arrived = [cid for cid in first_seen if patient_of[cid] == mrn]
        assert arrived == sent, f"order broken for one patient: {sent} vs {arrived}"
    for m in receiver.unique.values():
        assert parse(m.to_er7()).get("PID-3.1").startswith("MRN")
