"""Delivery outlives the database going away: nodes reconnect when the database is back.

A delivery worker whose claim or outcome write fails with StoreError (PostgreSQL
restarted, network cut) must wait and try again, never end: before this test a worker
task died on the first StoreError and its node delivered nothing until restarted.

The outage is real and touches only this test's own database: new connections to it are
refused (``ALLOW_CONNECTIONS false``) and its open ones terminated, as a restart does.
The store is real PostgreSQL (127.0.0.1:5432); the downstream peer is
``accord.demo.traffic.Receiver``. Skipped loudly without PostgreSQL, a failure in CI.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from accord.clock import SystemClock
from accord.config import Destination
from accord.demo.traffic import Receiver
from accord.engine.deliver import Deliverer
from accord.store import OutboxItem, Store, open_store
from pg_support import database_away, fresh_database

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(90)]
CLOCK = SystemClock()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database on the shared server, dropped afterwards."""
    with fresh_database("accord_deliver", "delivery outage test") as url:
        yield url


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


def enqueue(store: Store, dest: str, ids: list[str]) -> None:
    items = [OutboxItem(destination=dest, kind="orders", control_id=cid, patient_key=f"P{n}",
                        payload=(f"MSH|^~\\&|ACCORD|RAD|PACS|RAD|20260101080000||ORM^O01|{cid}"
                                 f"|P|2.5.1\rPID|1||P{n}^^^HOSP^MR||Doe^Test\r").encode())
             for n, cid in enumerate(ids)]
    with store.transaction() as tx:
        tx.enqueue(items, CLOCK.now())


async def test_workers_resume_after_the_database_comes_back(
        pg_url: str, receiver: Receiver) -> None:
    store = open_store(pg_url)
    common = {"host": "127.0.0.1", "port": receiver.port, "send": ["orders"],
              "connect_timeout": 0.5, "ack_timeout": 0.5}
    dests = [Destination.model_validate({"name": "fifo", **common}),
             Destination.model_validate({"name": "pp", "per_patient": True, "workers": 2,
                                         **common})]
    deliverer = Deliverer(store, dests, CLOCK, "node-a", idle_poll=0.05)
    await deliverer.start()
    try:
        enqueue(store, "fifo", ["F1", "F2"])
        enqueue(store, "pp", ["P1", "P2"])
        deliverer.wake()
        await receiver.wait_for(4, timeout=20)
        await asyncio.to_thread(database_away, pg_url, True)
        await asyncio.sleep(1.0)  # every worker's claims fail meanwhile
        await asyncio.to_thread(database_away, pg_url, False)
        enqueue(store, "fifo", ["F3", "F4"])
        enqueue(store, "pp", ["P3", "P4"])
        deliverer.wake()
        await receiver.wait_for(8, timeout=30)
    finally:
        await deliverer.stop()
        store.close()
    assert set(receiver.unique) == {"F1", "F2", "F3", "F4", "P1", "P2", "P3", "P4"}
