"""Tests for accord.engine.ingest: persist-then-ACK, AR/AE/duplicates, allow-list, group commit.

A real SQLite store in a temporary directory; the only wrapper counts (or fails) commits
of that real store.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from accord.clock import ControlIds, FixedClock
from accord.config import Config, load_config
from accord.engine.ingest import Ingestor
from accord.engine.processor import Outcome
from accord.engine.records import accessions, patient_identifiers
from accord.engine.router import Router
from accord.errors import ApplyError, StoreError
from accord.hl7 import Message, parse
from accord.mllp.server import PeerInfo
from accord.store import Store, Tx, open_store, sqlite_url

SAMPLES = Path(__file__).parents[1] / "samples"
PEER = PeerInfo("127.0.0.1", 40000)
ORM = (SAMPLES / "gateway_orm_o01_nw.hl7").read_bytes()
ADT = (SAMPLES / "gateway_adt_a04.hl7").read_bytes()
ORU = (SAMPLES / "gateway_oru_r01.hl7").read_bytes()


class CountingStore:
    """The real store, with its committed transactions counted (and optionally failed)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.commits = 0
        self.fail_commit = False
        self.open = False  # a transaction is open now

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def transaction(self) -> AbstractContextManager[Tx]:
        return self._tx()

    def pinned_transaction(self, *, wait: bool = True) -> AbstractContextManager[Tx]:
        return self._tx()

    @contextmanager
    def _tx(self) -> Iterator[Tx]:
        self.open = True
        try:
            with self.inner.transaction() as tx:
                yield tx
                if self.fail_commit:
                    raise StoreError("disk full")
        finally:
            self.open = False
        self.commits += 1


def config(tmp_path: Path, text: str = "") -> Config:
    path = tmp_path / "accord.yaml"
    path.write_text(text or "{}\n", encoding="utf-8")
    return load_config(path)


DESTS = """\
destinations:
  - {name: pacs, host: 127.0.0.1, port: 2577, send: [adt, orders, reports]}
  - {name: ris, host: 127.0.0.1, port: 2576, send: [status]}
  - {name: reporting, host: 127.0.0.1, port: 2578, send: [orders]}
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CountingStore]:
    s = CountingStore(open_store(sqlite_url(tmp_path)))
    yield s
    s.inner.close()


def ingestor(store: Any, cfg: Config, processor: Any = None) -> Ingestor:
    ids = ControlIds("T")
    return Ingestor(store, FixedClock(), ids, processor or Router(cfg.destinations, ids), cfg)


def with_control_id(raw: bytes, control_id: str) -> bytes:
    head, sep, rest = raw.partition(b"\r")
    fields = head.split(b"|")
    fields[9] = control_id.encode()
    return b"|".join(fields) + sep + rest


async def test_aa_only_after_commit(store: CountingStore, tmp_path: Path) -> None:
    ing = ingestor(store, config(tmp_path))
    ack = parse(await ing.handle(ORM, PEER))
    assert ack.get("MSA-1") == "AA" and ack.get("MSA-2") == "GW00000003"
    assert store.commits == 1
    [stored] = store.search_messages(control_id="GW00000003").items
    assert stored.status == "processed" and stored.raw == ORM
    assert stored.ack_code == "AA" and parse(stored.ack).get("MSA-2") == "GW00000003"
    assert (stored.sending_app, stored.message_type) == ("RIS", "ORM^O01")
    assert stored.peer == "127.0.0.1:40000"


async def test_failed_commit_gives_no_ack_and_keeps_nothing(store: CountingStore,
                                                            tmp_path: Path) -> None:
    ing = ingestor(store, config(tmp_path))
    store.fail_commit = True
    with pytest.raises(StoreError):
        await ing.handle(ORM, PEER)
    store.fail_commit = False
    assert store.stats()["messages"] == 0
    assert parse(await ing.handle(ORM, PEER)).get("MSA-1") == "AA"  # the resend is applied


async def test_junk_is_stored_and_answered_ar(store: CountingStore, tmp_path: Path) -> None:
    ing = ingestor(store, config(tmp_path))
    ack = parse(await ing.handle(b"this is not HL7", PEER))
    assert ack.get("MSA-1") == "AR"
    [stored] = store.search_messages(status="rejected").items
    assert stored.raw == b"this is not HL7" and stored.parse_error


async def test_oversize_and_empty_blocks_are_recorded(store: CountingStore,
                                                      tmp_path: Path) -> None:
    ing = ingestor(store, config(tmp_path))
    assert parse(await ing.on_oversize(20_000_000, PEER)).get("MSA-1") == "AR"
    assert parse(await ing.on_empty(PEER)).get("MSA-1") == "AR"
    assert store.stats()["rejected"] == 2


class Refuses:
    """A processor that cannot apply the message (an unknown procedure code in OBR-4)."""

    def process(self, msg: Message, tx: Tx, now: datetime) -> Outcome:
        raise ApplyError("unknown procedure code", location="OBR-4", error_code="103")


async def test_apply_error_is_stored_and_answered_ae(store: CountingStore,
                                                     tmp_path: Path) -> None:
    ing = ingestor(store, config(tmp_path, DESTS), Refuses())
    raw = await ing.handle(ORM, PEER)
    ack = parse(raw)
    assert ack.get("MSA-1") == "AE"
    assert ack.get("ERR-2.1") == "OBR" and ack.get("ERR-2.3") == "4"
    assert ack.get("ERR-3.1") == "103"
    [stored] = store.search_messages(status="error").items
    assert stored.outcome["location"] == "OBR-4"
    assert store.stats()["outbox_pending"] == 0  # nothing routed
    assert await ing.handle(ORM, PEER) == raw  # a resend gets the same AE


async def test_duplicate_answered_with_first_ack_and_applied_once(
        store: CountingStore, tmp_path: Path) -> None:
    cfg = config(tmp_path, DESTS)
    first = await ingestor(store, cfg).handle(ORM, PEER)
    again = await ingestor(store, cfg).handle(ORM, PEER)
    assert again == first
    stats = store.stats()
    assert (stats["processed"], stats["duplicates"]) == (1, 1)
    assert stats["outbox_pending"] == 2  # pacs + reporting, once
    dup = store.search_messages(status="duplicate").items[0]
    assert dup.duplicate_of is not None and dup.ack == first


async def test_duplicate_across_restart(tmp_path: Path) -> None:
    cfg = config(tmp_path, DESTS)
    s1 = open_store(sqlite_url(tmp_path))
    first = await ingestor(s1, cfg).handle(ORM, PEER)
    s1.close()
    s2 = open_store(sqlite_url(tmp_path))
    try:
        assert await ingestor(s2, cfg).handle(ORM, PEER) == first
        assert s2.stats()["outbox_pending"] == 2
        assert s2.stats()["duplicates"] == 1
    finally:
        s2.close()


async def test_same_control_id_other_sender_is_not_a_duplicate(
        store: CountingStore, tmp_path: Path) -> None:
    ing = ingestor(store, config(tmp_path))
    await ing.handle(ORM, PEER)
    other = ORM.replace(b"|RIS|RADIOLOGY|", b"|HIS|RADIOLOGY|", 1)
    assert parse(await ing.handle(other, PEER)).get("MSA-1") == "AA"
    assert store.stats()["processed"] == 2


async def test_allow_list(store: CountingStore, tmp_path: Path) -> None:
    cfg = config(tmp_path, "mllp:\n  allowed_senders: [{app: RIS, facility: RADIOLOGY}]\n")
    ing = ingestor(store, cfg)
    assert parse(await ing.handle(ORM, PEER)).get("MSA-1") == "AA"
    stranger = with_control_id(ORM.replace(b"|RIS|", b"|LAB|", 1), "X1")
    ack = parse(await ing.handle(stranger, PEER))
    assert ack.get("MSA-1") == "AR" and ack.get("ERR-2.1") == "MSH"
    [refused] = store.search_messages(status="rejected").items
    assert refused.sending_app == "LAB" and refused.raw == stranger


async def test_group_commit_batches_concurrent_messages(store: CountingStore,
                                                        tmp_path: Path) -> None:
    ing = ingestor(store, config(tmp_path, DESTS))
    payloads = [with_control_id(ORM, f"C{i:04d}") for i in range(50)]
    acks = await asyncio.gather(*(ing.handle(p, PEER) for p in payloads))
    assert [parse(a).get("MSA-2") for a in acks] == [f"C{i:04d}" for i in range(50)]
    assert {parse(a).get("MSA-1") for a in acks} == {"AA"}
    assert store.commits == 1 and ing.stats.largest_batch == 50
    assert ing.stats.slow_batches == 0  # one statement per table for the batch
    assert store.stats()["processed"] == 50
    assert store.stats()["outbox_pending"] == 100


async def test_one_failing_message_does_not_sink_its_batch(store: CountingStore,
                                                           tmp_path: Path) -> None:
    ing = ingestor(store, config(tmp_path))
    batch = [ORM, b"junk", with_control_id(ORM, "C2"), ORM]
    acks = [parse(a) for a in await asyncio.gather(*(ing.handle(p, PEER) for p in batch))]
    assert [a.get("MSA-1") for a in acks] == ["AA", "AR", "AA", "AA"]
    assert acks[3].to_er7() == acks[0].to_er7()  # same batch, second copy: the first ACK
    assert store.commits == 1 and ing.stats.slow_batches == 1
    stats = store.stats()
    assert (stats["processed"], stats["rejected"], stats["duplicates"]) == (2, 1, 1)


async def test_routing_gives_each_copy_its_own_stable_control_id(
        store: CountingStore, tmp_path: Path) -> None:
    ing = ingestor(store, config(tmp_path, DESTS))
    for raw in (ADT, ORM, ORU, ORM):
        await ing.handle(raw, PEER)
    rows = store.list_outbox(oldest_first=True).items
    assert [(r.destination, r.kind) for r in rows] == [
        ("pacs", "adt"), ("pacs", "orders"), ("reporting", "orders"), ("pacs", "reports")]
    ids = [r.control_id for r in rows]
    assert len(set(ids)) == 4 and not {"GW00000001", "GW00000003"} & set(ids)
    for row in rows:
        out = parse(row.payload)
        assert out.control_id == row.control_id
        assert out.get("PID-3.1") == parse(ORM).get("PID-3.1")
        assert row.patient_key.endswith("^^^HOSP")


def test_search_keys() -> None:
    msg = parse(ORM)
    mrn = msg.get("PID-3.1")
    assert patient_identifiers(msg) == (mrn, f"{mrn}^^^HOSP")
    assert accessions(msg) == (msg.get("OBR-18"),)
    two = parse((SAMPLES / "hl7_orm_o01.hl7").read_bytes())
    assert patient_identifiers(two) == ("PAT1001", "PAT1001^^^HOSP", "99887766",
                                        "99887766^^^NHS")


async def test_messages_are_searchable_by_patient_and_accession(
        store: CountingStore, tmp_path: Path) -> None:
    ing = ingestor(store, config(tmp_path))
    await ing.handle(ORM, PEER)
    msg = parse(ORM)
    assert len(store.search_messages(patient_id=msg.get("PID-3.1")).items) == 1
    assert len(store.search_messages(accession=msg.get("OBR-18")).items) == 1


class RefusesOne:
    """Routes like the default, but cannot apply the message whose MSH-10 is ``BAD``."""

    def __init__(self, cfg: Config) -> None:
        self.router = Router(cfg.destinations, ControlIds("R"))

    def process(self, msg: Message, tx: Tx, now: datetime) -> Outcome:
        if msg.control_id == "BAD":
            raise ApplyError("missing accession", location="OBR-18", error_code="101")
        return self.router.process(msg, tx, now)


async def test_apply_error_in_a_batch_touches_no_other_message(
        store: CountingStore, tmp_path: Path) -> None:
    cfg = config(tmp_path, DESTS)
    ing = ingestor(store, cfg, RefusesOne(cfg))
    names = ["C1", "C2", "BAD", "C3"]
    acks = await asyncio.gather(*(ing.handle(with_control_id(ORM, n), PEER) for n in names))
    assert [parse(a).get("MSA-1") for a in acks] == ["AA", "AA", "AE", "AA"]
    assert store.commits == 1
    stats = store.stats()
    assert (stats["processed"], stats["errors"], stats["outbox_pending"]) == (3, 1, 6)


async def test_a_lone_message_never_holds_the_loop_on_another_writers_lock(
        tmp_path: Path) -> None:
    """SQLite: a lone message commits on the event loop only if the write lock is free;
    while another writer holds it, the writer thread waits for it and the loop runs on."""
    store = open_store(sqlite_url(tmp_path))
    try:
        ing = ingestor(store, config(tmp_path))
        assert parse(await ing.handle(ORM, PEER)).get("MSA-1") == "AA"  # inline
        held, release = threading.Event(), threading.Event()

        def hold() -> None:
            with store.transaction():
                held.set()
                release.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert await asyncio.to_thread(held.wait, 10)
            answer = asyncio.ensure_future(ing.handle(with_control_id(ORM, "C2"), PEER))
            ticks = 0
            while ticks < 20:  # the loop is not held while the lock is
                await asyncio.sleep(0.005)
                ticks += 1
            assert not answer.done()
        finally:
            release.set()
            await asyncio.to_thread(holder.join)
        assert parse(await answer).get("MSA-1") == "AA"
        assert store.stats()["processed"] == 2
        await ing.close()
    finally:
        store.close()


class WhereProcessed:
    """Routes like the default and records which thread processed each message."""

    def __init__(self, cfg: Config) -> None:
        self.router = Router(cfg.destinations, ControlIds("W"))
        self.threads: list[str] = []

    def process(self, msg: Message, tx: Tx, now: datetime) -> Outcome:
        self.threads.append(threading.current_thread().name)
        return self.router.process(msg, tx, now)


async def test_only_a_sole_sender_is_committed_on_the_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lone message commits on the event loop only when one connection alone has been
    sending for a while; with others sending it goes to the writer thread, so their
    next messages never wait behind the loop's commit."""
    monkeypatch.setattr("accord.engine.ingest.SOLE_SENDER_SECONDS", 0.2)
    store = open_store(sqlite_url(tmp_path))
    try:
        cfg = config(tmp_path)
        proc = WhereProcessed(cfg)
        ing = ingestor(store, cfg, proc)
        loop_thread = threading.current_thread().name
        other = PeerInfo("127.0.0.1", 40001)
        for n in range(4):  # two connections taking turns
            await ing.handle(with_control_id(ORM, f"T{n}"), PEER if n % 2 else other)
        assert loop_thread not in proc.threads
        await asyncio.sleep(0.25)  # then one connection alone
        await ing.handle(with_control_id(ORM, "S1"), PEER)
        await ing.handle(with_control_id(ORM, "S2"), PEER)
        assert proc.threads[-1] == loop_thread
        assert store.stats()["processed"] == 6
        await ing.close()
    finally:
        store.close()


class PreparesFirst:
    """Routes like the default; its ``prepare`` notes whether a transaction was open."""

    def __init__(self, cfg: Config, store: CountingStore) -> None:
        self.router = Router(cfg.destinations, ControlIds("P"))
        self.store = store
        self.open_at_prepare: list[bool] = []

    def prepare(self, msg: Message, now: datetime) -> Any:
        self.open_at_prepare.append(self.store.open)
        return lambda tx: self.router.process(msg, tx, now)

    def process(self, msg: Message, tx: Tx, now: datetime) -> Outcome:
        return self.router.process(msg, tx, now)


async def test_messages_are_mapped_before_the_write_transaction_begins(
        store: CountingStore, tmp_path: Path) -> None:
    """Parsing and mapping need no transaction: they run before the batch takes the
    write lock, which MPPS, delivery and the jobs wait for meanwhile."""
    cfg = config(tmp_path, DESTS)
    proc = PreparesFirst(cfg, store)
    ing = ingestor(store, cfg, proc)
    payloads = [with_control_id(ORM, f"M{i:04d}") for i in range(20)]
    acks = await asyncio.gather(*(ing.handle(p, PEER) for p in payloads))
    assert {parse(a).get("MSA-1") for a in acks} == {"AA"}
    assert proc.open_at_prepare == [False] * 20
    await ing.close()
