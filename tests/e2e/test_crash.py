"""Crash: a real ``accord serve`` is SIGKILLed repeatedly while clients send.

Promise under test (nothing acknowledged is ever lost): after the final restart, every
message that got AA is stored, and every routed one reaches the receiver — at least once
on the wire, exactly once after MSH-10 dedupe — in order per patient. The clients behave
like real senders: a message without an ACK (connection refused, lost, timed out) is
resent until answered.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from accord.demo.traffic import Department, Receiver
from accord.errors import DeliveryError
from accord.mllp.client import MllpClient
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


@pytest.mark.parametrize(("per_patient", "kills"), [(False, KILLS), (True, 3)],
                         ids=["fifo", "per-patient"])
async def test_sigkill_loses_nothing_acknowledged(
        per_patient: bool, kills: int, tmp_path: Path, free_port: Callable[[], int],
        gateway_config: Callable[..., Path], serve: Callable[..., Any]) -> None:
    receiver = Receiver()
    await receiver.start()
    # A configured node_id: each restart resumes the rows its killed predecessor had in
    # flight at once (per-patient); without one (FIFO) they wait out their lease.
    config = gateway_config(tmp_path / "accord.yaml", receiver.port,
                            node_id="crash-node" if per_patient else None,
                            per_patient=str(per_patient).lower(), workers=3)
    data = tmp_path / "data"
    port = free_port()
    rng = random.Random(7)
    acked: list[tuple[str, str]] = []
    stop = asyncio.Event()
    senders = [asyncio.create_task(sender(port, n, acked, stop)) for n in range(SENDERS)]
    proc = serve(config, data, port)
    try:
        for _ in range(kills):
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
    """Every ACKed message is stored; every outbox row it made reaches the receiver
    (exactly once after MSH-10 dedupe); per patient, rows arrive in the order made."""
    store = open_store(sqlite_url(data))
    patient_of = {cid: mrn for mrn, cid in acked}
    try:
        routed: dict[str, tuple[str, int]] = {}  # outbound MSH-10 -> (patient, row id)
        for _mrn, cid in acked:
            [msg] = [m for m in store.search_messages(control_id=cid).items
                     if m.status != "duplicate"]
            assert msg.ack_code == "AA"
            for row in store.list_outbox(source_message_id=msg.id).items:
                assert row.control_id not in routed
                routed[row.control_id] = (patient_of[cid], row.id)
        # Rows in flight at a kill come back when their lease ends (connect + ACK + 5 s).
        await receiver.wait_for(len(routed), timeout=60)
    finally:
        store.close()
    assert routed, "nothing was routed: the test would prove nothing"
    assert set(receiver.unique) == set(routed)
    first_seen = list(dict.fromkeys(m.control_id for m in receiver.received))
    for mrn in set(patient_of.values()):
        arrived = [routed[c][1] for c in first_seen if routed[c][0] == mrn]
        assert arrived == sorted(arrived), "order broken for one patient"
