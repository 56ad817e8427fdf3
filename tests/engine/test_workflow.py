"""The workflow processor in ingest's seam, on a real SQLite store: the workflow's answer
(AE with the ERR location, writes kept), outbound messages per destination and dialect
(no echo of a status to the system that reported it), MSH-10 per outbox row, and a
group-committed batch where one message is refused and the others are applied."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from accord.clock import ControlIds, FixedClock
from accord.config import Config, Destination
from accord.engine.ingest import Ingestor
from accord.engine.processor import Prepared
from accord.engine.workflow import Outbound, WorkflowProcessor
from accord.hl7 import Message, parse
from accord.mapping.dialect import Dialects
from accord.mapping.procedures import catalog_from_config
from accord.mllp.server import PeerInfo
from accord.store import open_store, sqlite_url
from accord.store.gateway.store import SqlStore
from accord.store.workflow.repository import reading, repository_for
from accord.workflow.memory import SequentialIds

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PEER = PeerInfo("127.0.0.1", 40000)
DIALECTS = Dialects.from_config({
    "ris": {"match": {"application": "RIS"}, "unmapped_code": "hold"},
    "omi": {"outbound": "OMI^O23"},
})
DESTINATIONS = (
    Destination(name="ris", host="127.0.0.1", port=9, send=("status",), dialect="ris"),
    Destination(name="ris2", host="127.0.0.1", port=9, send=("status",), dialect="omi"),
    Destination(name="pacs", host="127.0.0.1", port=9, send=("adt", "orders", "reports")),
)


def orm(cid: str, control: str, status: str, *, accession: str = "A1", mrn: str = "MRN1",
        placer: str = "P1", code: str = "CTHEAD") -> bytes:
    return "\r".join([
        f"MSH|^~\\&|RIS|HOSP|ACCORD|HOSP|20260302080000||ORM^O01|{cid}|P|2.3.1",
        f"PID|1||{mrn}^^^HOSP^MR||DOE^JANE||19800101|F",
        "PV1|1|O|RAD^1||||||||||||||||V1",
        f"ORC|{control}|{placer}|F{placer}||{status}",
        f"OBR|1|{placer}|F{placer}|{code}^CT head^L||||||||||||||{accession}||||||CT|||"
        "^^^20260302090000"]).encode()


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[SqlStore, Ingestor]]:
    store = open_store(sqlite_url(tmp_path / "data"))
    assert isinstance(store, SqlStore)
    ids = ControlIds("OUT")
    catalog = catalog_from_config(
        {"procedures": [{"code": "CTHEAD", "modality": "CT", "stations": ["CT1"]}]},
        at=T0, author="test")
    processor = WorkflowProcessor(dialects=DIALECTS, outbound=Outbound(DESTINATIONS, DIALECTS, ids),
                                  ids=SequentialIds(), repository=repository_for,
                                  catalog=catalog)
    ingestor = Ingestor(store, FixedClock(T0), ids, processor, Config())
    yield store, ingestor
    await ingestor.close()
    store.close()


def outbox(store: SqlStore) -> list[tuple[str, str, str, str, str]]:
    rows = store.list_outbox(oldest_first=True, limit=100).items
    out = []
    for row in rows:
        msg = parse(row.payload)
        assert msg.control_id == row.control_id  # each row's own MSH-10, kept for resends
        out.append((row.destination, row.kind, msg.get("MSH-9.1"),
                    msg.get("ORC-1") or msg.get("EVN-1"), msg.get("ORC-5")))
    return out


async def test_order_goes_to_pacs_and_status_to_the_other_ris_only(
        setup: tuple[SqlStore, Ingestor]) -> None:
    store, ingestor = setup
    assert b"MSA|AA|M1" in await ingestor.handle(orm("M1", "NW", "SC"), PEER)
    assert b"MSA|AA|M2" in await ingestor.handle(orm("M2", "SC", "IP"), PEER)
    assert outbox(store) == [
        ("pacs", "adt", "ADT", "A04", ""),  # the patient the order created
        ("pacs", "orders", "ORM", "NW", "SC"),
        ("ris2", "status", "OMI", "SC", "IP"),  # not echoed to ris, which said it
    ]
    rows = store.list_outbox(oldest_first=True).items
    assert {r.patient_key for r in rows} == {"MRN1^^^HOSP"}
    assert len({r.control_id for r in rows}) == len(rows)
    # Each row names the order it is about (a patient update names none).
    assert [r.accession for r in rows] == ["", "A1", "A1"]
    stored = store.search_messages(control_id="M2").items[0]
    assert stored.outcome["workflow"]["events"] == ["status"]
    assert [r["destination"] for r in stored.outcome["routed"]] == ["ris2"]


async def test_a_refused_message_keeps_its_writes_and_names_the_field(
        setup: tuple[SqlStore, Ingestor]) -> None:
    store, ingestor = setup
    ack = await ingestor.handle(orm("M1", "NW", "SC", code="MRKNEE"), PEER)  # not mapped
    msg = parse(ack)
    assert msg.get("MSA-1") == "AE"
    stored = store.search_messages(control_id="M1").items[0]
    assert (stored.status, stored.outcome["location"]) == ("error", "OBR-4")
    assert "unmapped_code" in stored.outcome["workflow"]["findings"]
    with reading(store.database, T0) as repo:
        order = repo.orders_by("accession", "A1")[0]
        assert order.hold_reason  # held off the worklist, but kept
        assert repo.trace(accession="A1")[0].outcome == "held"


async def test_one_refusal_in_a_group_commit_leaves_the_others_applied(
        setup: tuple[SqlStore, Ingestor]) -> None:
    store, ingestor = setup
    await ingestor.handle(orm("M0", "NW", "SC", accession="A0", placer="P0"), PEER)
    batch = [orm(f"B{n}", "NW", "SC", accession=f"A{n}", mrn=f"MRN{n}", placer=f"P{n}")
             for n in range(1, 6)]
    batch.insert(3, orm("BX", "NW", "SC", accession="A0", mrn="OTHER", placer="PX"))
    acks = await asyncio.gather(*(ingestor.handle(raw, PEER) for raw in batch))
    codes = [parse(a).get("MSA-1") for a in acks]
    assert codes == ["AA", "AA", "AA", "AE", "AA", "AA"]
    with reading(store.database, T0) as repo:
        assert [len(repo.orders_by("accession", f"A{n}")) for n in range(6)] == [1] * 6
        assert repo.orders_by("placer_number", "PX") == []
        duplicates = [f for f in repo.findings_about(accession="A0")
                      if f.kind.value == "duplicate_order"]
    assert len(duplicates) == 1  # the refused message's finding is kept


async def test_a_message_is_mapped_once_even_when_its_batch_is_redone(
        tmp_path: Path) -> None:
    mapped: list[str] = []

    class Watched(WorkflowProcessor):
        def prepare(self, msg: Message, now: datetime) -> Prepared:
            mapped.append(msg.control_id)
            return super().prepare(msg, now)

    store = open_store(sqlite_url(tmp_path / "data"))
    ids = ControlIds("OUT")
    processor = Watched(dialects=DIALECTS, outbound=Outbound(DESTINATIONS, DIALECTS, ids),
                        ids=SequentialIds(), repository=repository_for)
    ingestor = Ingestor(store, FixedClock(T0), ids, processor, Config())
    batch = [orm(f"M{n}", "NW", "SC", accession=f"A{n}", placer=f"P{n}") for n in range(3)]
    try:  # a resend in the same batch: redone one message at a time
        acks = await asyncio.gather(*(ingestor.handle(raw, PEER) for raw in [*batch, batch[1]]))
    finally:
        await ingestor.close()
    assert ingestor.stats.slow_batches == 1
    assert [parse(a).get("MSA-1") for a in acks] == ["AA"] * 4
    assert acks[3] == acks[1]  # the resend gets the first ACK
    assert sorted(mapped) == ["M0", "M1", "M1", "M2"]  # once per message received
    with reading(store.database, T0) as repo:  # applied as process() would apply them
        assert [len(repo.orders_by("accession", f"A{n}")) for n in range(3)] == [1] * 3
    store.close()


async def test_a_message_whose_mapping_fails_is_still_stored_and_answered(
        tmp_path: Path) -> None:
    class Broken(WorkflowProcessor):
        def prepare(self, msg: Message, now: datetime) -> Prepared:
            raise RuntimeError("a bug in mapping")

    store = open_store(sqlite_url(tmp_path / "data"))
    ids = ControlIds("OUT")
    processor = Broken(dialects=DIALECTS, outbound=Outbound(DESTINATIONS, DIALECTS, ids),
                       ids=SequentialIds(), repository=repository_for)
    ingestor = Ingestor(store, FixedClock(T0), ids, processor, Config())
    try:
        ack = await ingestor.handle(orm("M1", "NW", "SC"), PEER)
    finally:
        await ingestor.close()
    assert parse(ack).get("MSA-1") == "AE"  # process() met the bug in the transaction
    assert store.search_messages(control_id="M1").items[0].status == "error"
    store.close()
