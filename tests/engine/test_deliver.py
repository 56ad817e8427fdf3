"""Tests for accord.engine.deliver over real sockets on 127.0.0.1.

The store is the real SQLite store; the downstream system is
``accord.demo.traffic.Receiver`` (a fake peer whose answers each test chooses). Waits
poll the store with a generous limit; nothing asserts on timings.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from accord.clock import SystemClock
from accord.config import Destination
from accord.demo.traffic import Receiver
from accord.engine.deliver import Deliverer
from accord.hl7 import Message
from accord.store import OutboxItem, OutboxRow, Store, open_store, sqlite_url

pytestmark = pytest.mark.timeout(60)
CLOCK = SystemClock()


def payload(control_id: str, patient: str = "P1") -> bytes:
    return (f"MSH|^~\\&|ACCORD|RAD|PACS|RAD|20260101080000||ORM^O01|{control_id}|P|2.5.1\r"
            f"PID|1||{patient}^^^HOSP^MR||Doe^Test\r").encode()


def dest(port: int, **kw: Any) -> Destination:
    fields: dict[str, Any] = {"name": "pacs", "host": "127.0.0.1", "port": port,
                              "send": ["orders"], "connect_timeout": 0.5,
                              "ack_timeout": 0.5, "backoff": {"base": 0.02, "cap": 0.1}}
    fields.update(kw)
    return Destination.model_validate(fields)


def enqueue(store: Store, ids: list[str], patients: list[str] | None = None) -> list[int]:
    items = [OutboxItem(destination="pacs", payload=payload(cid, p), control_id=cid,
                        kind="orders", patient_key=p)
             for cid, p in zip(ids, patients or ["P1"] * len(ids), strict=True)]
    with store.transaction() as tx:
        return tx.enqueue(items, CLOCK.now())


async def until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(sqlite_url(tmp_path))
    yield s
    s.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


async def running(store: Store, d: Destination) -> Deliverer:
    deliverer = Deliverer(store, [d], CLOCK, "node-test", idle_poll=0.02)
    await deliverer.start()
    return deliverer


def row(store: Store, row_id: int) -> OutboxRow:
    return store.get_outbox(row_id)


async def test_delivers_in_fifo_order(store: Store, receiver: Receiver) -> None:
    ids = [f"OUT{i:03d}" for i in range(20)]
    rows = enqueue(store, ids)
    deliverer = await running(store, dest(receiver.port))
    try:
        await until(lambda: all(row(store, r).status == "delivered" for r in rows))
    finally:
        await deliverer.stop()
    assert [m.control_id for m in receiver.received] == ids
    assert row(store, rows[0]).last_ack is not None


async def test_outage_then_back(store: Store) -> None:
    port = free_port()
    [rid] = enqueue(store, ["OUTAGE1"])
    deliverer = await running(store, dest(port))
    receiver = Receiver(port=port)
    try:
        await until(lambda: row(store, rid).attempts >= 2)
        assert row(store, rid).status != "delivered"
        await receiver.start()
        await until(lambda: row(store, rid).status == "delivered")
    finally:
        await deliverer.stop()
        await receiver.stop()
    assert [m.control_id for m in receiver.received] == ["OUTAGE1"]


async def test_late_ack_is_not_success(store: Store, receiver: Receiver) -> None:
    seen: list[str] = []

    def slow_first(msg: Message) -> float:
        seen.append(msg.control_id)
        return 1.0 if len(seen) == 1 else 0.0  # past the 0.5 s ACK timeout

    receiver.delay = slow_first
    [rid] = enqueue(store, ["LATE1"])
    deliverer = await running(store, dest(receiver.port))
    try:
        await until(lambda: row(store, rid).status == "delivered")
    finally:
        await deliverer.stop()
    assert row(store, rid).attempts == 2 and seen == ["LATE1", "LATE1"]


async def test_wrong_msa2_is_not_success(store: Store, receiver: Receiver) -> None:
    answers = 0

    def wrong_twice(msg: Message) -> bytes | str:
        nonlocal answers
        answers += 1
        if answers <= 2:
            return b"MSH|^~\\&|PACS|RAD|ACCORD|RAD|20260101||ACK|X1|P|2.5.1\rMSA|AA|SOMEOTHER"
        return "AA"

    receiver.respond = wrong_twice
    [rid] = enqueue(store, ["WRONG1"])
    deliverer = await running(store, dest(receiver.port))
    try:
        await until(lambda: row(store, rid).status == "delivered")
    finally:
        await deliverer.stop()
    assert answers == 3 and row(store, rid).attempts == 3


async def test_ar_goes_to_error_queue_without_retry(store: Store,
                                                    receiver: Receiver) -> None:
    receiver.respond = lambda msg: "AR" if msg.control_id == "BAD1" else "AA"
    rows = enqueue(store, ["BAD1", "GOOD2"])
    deliverer = await running(store, dest(receiver.port))
    try:
        await until(lambda: row(store, rows[1]).status == "delivered")
    finally:
        await deliverer.stop()
    assert row(store, rows[0]).status == "error"
    assert [m.control_id for m in receiver.received] == ["BAD1", "GOOD2"]
    [entry] = store.error_queue().items
    assert entry.outbox is not None and entry.outbox.id == rows[0]


async def test_ae_retried_three_times_then_error_queue(store: Store,
                                                       receiver: Receiver) -> None:
    receiver.respond = lambda msg: "AE"
    [rid] = enqueue(store, ["AE1"])
    deliverer = await running(store, dest(receiver.port))
    try:
        await until(lambda: row(store, rid).status == "error")
    finally:
        await deliverer.stop()
    assert len(receiver.received) == 4  # the first attempt and 3 retries
    assert (row(store, rid).last_error or "").startswith("AE")


async def test_reprocess_creates_linked_row_and_delivers(store: Store,
                                                         receiver: Receiver) -> None:
    receiver.respond = lambda msg: "AR"
    [rid] = enqueue(store, ["REPRO1"])
    deliverer = await running(store, dest(receiver.port))
    try:
        await until(lambda: row(store, rid).status == "error")
        receiver.respond = lambda msg: "AA"
        new_id = await deliverer.reprocess(rid)
        await until(lambda: row(store, new_id).status == "delivered")
    finally:
        await deliverer.stop()
    new = row(store, new_id)
    assert new.reprocess_of == rid and new.control_id == "REPRO1"
    assert [m.control_id for m in receiver.received] == ["REPRO1", "REPRO1"]


async def test_ae_once_keeps_fifo(store: Store, receiver: Receiver) -> None:
    answered: set[str] = set()

    def ae_once(msg: Message) -> str:
        if msg.control_id == "F2" and "F2" not in answered:
            answered.add("F2")
            return "AE"
        return "AA"

    receiver.respond = ae_once
    rows = enqueue(store, ["F1", "F2", "F3"])
    deliverer = await running(store, dest(receiver.port))
    try:
        await until(lambda: row(store, rows[2]).status == "delivered")
    finally:
        await deliverer.stop()
    assert [m.control_id for m in receiver.received] == ["F1", "F2", "F2", "F3"]


async def test_rotate_moves_a_stuck_row_behind_its_queue(store: Store,
                                                         receiver: Receiver) -> None:
    receiver.respond = lambda msg: None if msg.control_id == "STUCK" else "AA"
    rows = enqueue(store, ["STUCK", "NEXT"])
    d = dest(receiver.port, rotate=True, retries=1, ack_timeout=0.2)
    deliverer = await running(store, d)
    try:
        await until(lambda: row(store, rows[1]).status == "delivered")
    finally:
        await deliverer.stop()
    assert row(store, rows[0]).status == "cancelled"
    assert "NEXT" in [m.control_id for m in receiver.received]


async def test_per_patient_order(store: Store, receiver: Receiver) -> None:
    patients = ["A", "B", "C"] * 8
    ids = [f"{p}{i:02d}" for i, p in enumerate(patients)]
    receiver.delay = lambda msg: 0.03 if msg.control_id.startswith("A") else 0.0
    rows = enqueue(store, ids, patients)
    deliverer = await running(store, dest(receiver.port, per_patient=True, workers=3))
    try:
        await until(lambda: all(row(store, r).status == "delivered" for r in rows))
    finally:
        await deliverer.stop()
    got = [m.control_id for m in receiver.received]
    for p in "ABC":
        assert [c for c in got if c.startswith(p)] == [c for c in ids if c.startswith(p)]
    assert sorted(got) == sorted(ids)


def test_backoff_is_capped_exponential() -> None:
    d = dest(1, backoff={"base": 1.0, "cap": 30.0})
    assert [d.backoff.delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]



def test_claim_run_is_a_prefix_of_the_queue(store: Store) -> None:
    rows = enqueue(store, [f"R{i}" for i in range(5)])
    now = CLOCK.now()
    first = store.claim("pacs", "n1", now, 60, 1)
    assert [r.id for r in first] == rows[:1]
    assert store.claim_run("pacs", "n2", now, 60, 10) == []  # the head is in flight
    assert store.mark_retry(rows[0], "n1", "AE", now)
    run = store.claim_run("pacs", "n2", now, 60, 3)
    assert [r.id for r in run] == rows[:3]
    assert store.release_many([rows[1], rows[2]], "n2") == 2
    assert store.mark_delivered_many([(rows[0], b"ACK")], "n2", now) == 1
    assert store.mark_delivered_many([(rows[1], b"ACK")], "n2", now) == 0  # released
    again = store.claim_run("pacs", "n3", now, 60, 10)
    assert [r.id for r in again] == rows[1:]
    assert [r.attempts for r in again] == [1, 1, 1, 1]  # a released claim is no attempt


async def test_restarted_node_resumes_its_rows_at_once(store: Store,
                                                       receiver: Receiver) -> None:
    rows = enqueue(store, ["KEPT1", "KEPT2"])
    assert [r.id for r in store.claim_run("pacs", "node-test", CLOCK.now(), 3600, 2)] == rows
    # The process that claimed them died; the same node starts again.
    deliverer = Deliverer(store, [dest(receiver.port)], CLOCK, "node-test", idle_poll=0.02,
                          resume_own_leases=True)
    await deliverer.start()
    try:
        await until(lambda: all(row(store, r).status == "delivered" for r in rows))
    finally:
        await deliverer.stop()
    assert [m.control_id for m in receiver.received] == ["KEPT1", "KEPT2"]


async def test_other_nodes_rows_wait_for_their_lease(store: Store, receiver: Receiver) -> None:
    [rid] = enqueue(store, ["THEIRS"])
    store.claim_run("pacs", "other-node", CLOCK.now(), 3600, 1)
    deliverer = Deliverer(store, [dest(receiver.port)], CLOCK, "node-test", idle_poll=0.02,
                          resume_own_leases=True)
    await deliverer.start()
    try:
        await asyncio.sleep(0.3)
    finally:
        await deliverer.stop()
    assert row(store, rid).status == "in_flight" and receiver.received == []


def test_settle_and_claim_records_the_last_run_and_claims_the_next(store: Store) -> None:
    rows = enqueue(store, [f"S{i}" for i in range(4)])
    now = CLOCK.now()
    marked, run = store.settle_and_claim_run([], "pacs", "n1", now, 60, 2)
    assert (marked, [r.id for r in run]) == (0, rows[:2])
    marked, run = store.settle_and_claim_run([(rows[0], b"A0"), (rows[1], b"A1")], "pacs",
                                             "n1", now, 60, 5)
    assert (marked, [r.id for r in run]) == (2, rows[2:])
    assert row(store, rows[0]).status == "delivered" and row(store, rows[1]).last_ack == b"A1"
    marked, run = store.settle_and_claim_run([(rows[0], b"A0")], "pacs", "n1", now, 60, 5)
    assert (marked, run) == (0, [])  # delivered already; the rest are in flight


class CountingTransactions:
    """The real store; counts the write transactions the deliverer opens."""

    def __init__(self, inner: Store) -> None:
        self.inner, self.calls = inner, 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name in ("claim_run", "mark_delivered_many", "settle_and_claim_run",
                    "release_many", "claim"):
            def counted(*args: Any, **kw: Any) -> Any:
                self.calls += 1
                return attr(*args, **kw)
            return counted
        return attr


async def test_a_worker_that_keeps_up_commits_once_a_run(store: Store,
                                                          receiver: Receiver) -> None:
    """The AAs of a run are recorded in the transaction that claims the next."""
    counting = CountingTransactions(store)
    deliverer = Deliverer(counting, [dest(receiver.port)], CLOCK, "node-test",  # type: ignore[arg-type]
                          idle_poll=60)
    await deliverer.start()
    try:
        for n in range(5):
            rows = enqueue(store, [f"K{n}"])
            before = counting.calls
            deliverer.wake()
            await until(lambda r=rows[0]: row(store, r).status == "delivered")  # type: ignore[misc]
            assert counting.calls - before == 2  # claim; then settle it with the next claim
    finally:
        await deliverer.stop()
    assert deliverer.delivered == 5
