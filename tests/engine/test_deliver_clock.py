"""A clock step (NTP stepping the system clock) under delivery and jobs.

The engine runs on :class:`accord.clock.SteadyClock`; here its system clock is injected
(the real time plus an offset the test steps) and its monotonic clock is the real one.
Promises: rows queued before a step back an hour are sent at once, in their patient's
order (not an hour later); a lease, an outbox row's or a job's, ends after its real
duration, never early because the clock stepped forward, never an hour late because it
stepped back. The store is the real SQLite store; the peer ``accord.demo.traffic.Receiver``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from accord.clock import SteadyClock
from accord.config import Destination
from accord.demo.traffic import Receiver
from accord.engine.deliver import Deliverer
from accord.store import OutboxItem, Store, open_store, sqlite_url

pytestmark = pytest.mark.timeout(60)
HOUR = timedelta(hours=1)


class SteppingWall:
    """The system clock: real time plus an offset that a test steps."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(sqlite_url(tmp_path))
    yield s
    s.close()


def enqueue(store: Store, clock: SteadyClock, ids: list[str], patient: str) -> None:
    items = [OutboxItem(destination="pacs", kind="orders", control_id=cid, patient_key=patient,
                        payload=(f"MSH|^~\\&|ACCORD|RAD|PACS|RAD|20260101080000||ORM^O01|{cid}"
                                 f"|P|2.5.1\rPID|1||{patient}^^^HOSP^MR||Doe^Test\r").encode())
             for cid in ids]
    with store.transaction() as tx:
        tx.enqueue(items, clock.now())


@pytest.mark.parametrize("per_patient", [False, True], ids=["fifo", "per-patient"])
async def test_a_step_back_neither_holds_nor_reorders_a_patients_messages(
        store: Store, per_patient: bool) -> None:
    receiver = Receiver()
    await receiver.start()
    wall = SteppingWall()
    clock = SteadyClock(wall)
    d = Destination.model_validate({
        "name": "pacs", "host": "127.0.0.1", "port": receiver.port, "send": ["orders"],
        "connect_timeout": 0.5, "ack_timeout": 0.5, "backoff": {"base": 0.02, "cap": 0.1},
        "per_patient": per_patient})
    enqueue(store, clock, [f"B{n}" for n in range(5)], "P1")
    wall.offset -= HOUR  # NTP steps the system clock back an hour
    enqueue(store, clock, [f"A{n}" for n in range(5)], "P1")
    deliverer = Deliverer(store, [d], clock, "node-a", idle_poll=0.02)
    await deliverer.start()
    try:
        await receiver.wait_for(10, timeout=20)  # not an hour
    finally:
        await deliverer.stop()
        await receiver.stop()
    sent = [m.control_id for m in receiver.received]
    assert sent == [f"B{n}" for n in range(5)] + [f"A{n}" for n in range(5)]


@pytest.mark.parametrize("step", [HOUR, -HOUR], ids=["forward", "back"])
def test_a_lease_ends_after_its_real_duration(store: Store, step: timedelta) -> None:
    wall = SteppingWall()
    clock = SteadyClock(wall)
    enqueue(store, clock, ["L1"], "P1")
    [row] = store.claim("pacs", "node-a", clock.now(), 1.0)
    assert store.try_job_lock("prune", "node-a", 1.0, clock.now())
    wall.offset += step
    # node-a is still sending, and still pruning: nobody else may take them
    assert store.claim("pacs", "node-b", clock.now(), 1.0) == []
    assert not store.try_job_lock("prune", "node-b", 1.0, clock.now())
    time.sleep(1.2)  # the lease's real second (and the slew's 5%) has passed
    assert [r.id for r in store.claim("pacs", "node-b", clock.now(), 1.0)] == [row.id]
    assert store.try_job_lock("prune", "node-b", 1.0, clock.now())
