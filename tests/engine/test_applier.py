"""Tests for accord.engine.applier (and ingest's ACK on store): CA once stored, applied
later in arrival order exactly once, errors to the error queue without stalling the
rest, application ACKs as MSH-16 asks, the backlog, and retention leaving the inbox be.

A real SQLite store in a temporary directory, the real router, and the processor seam
given small processors that record or refuse.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from accord.clock import ControlIds, FixedClock
from accord.config import Config, load_config
from accord.demo.traffic import Receiver
from accord.engine.applier import Applier
from accord.engine.ingest import Ingestor
from accord.engine.processor import Outcome, Processor
from accord.engine.router import Router
from accord.errors import ApplyError, ConfigError
from accord.hl7 import Message, parse
from accord.mllp.client import MllpClient
from accord.mllp.server import PeerInfo
from accord.runtime import build
from accord.store import Tx, open_store, sqlite_url
from accord.store.gateway.store import SqlStore, SqlTx

SAMPLES = Path(__file__).parents[1] / "samples"
PEER = PeerInfo("127.0.0.1", 40000)
ORM = (SAMPLES / "gateway_orm_o01_nw.hl7").read_bytes()

DESTS = """\
destinations:
  - {name: pacs, host: 127.0.0.1, port: 2577, send: [orders]}
  - {name: ris, host: 127.0.0.1, port: 2576, send: [status]}
"""
ACKS = DESTS + """\
mllp:
  application_acks: {"RIS^RADIOLOGY": ris}
"""


def config(tmp_path: Path, text: str = "") -> Config:
    path = tmp_path / "accord.yaml"
    path.write_text(text or "{}\n", encoding="utf-8")
    return load_config(path)


def message(control_id: str, *, accept: str = "", application: str = "",
            patient: str = "MRN1") -> bytes:
    """The sample ORM with its MSH-10, MSH-15/16 and PID-3 set."""
    head, sep, rest = ORM.partition(b"\r")
    fields = head.split(b"|")
    fields += [b""] * (19 - len(fields))
    fields[9] = control_id.encode()
    fields[14], fields[15] = accept.encode(), application.encode()
    rest = rest.replace(b"MRN3530829", patient.encode())
    return b"|".join(fields) + sep + rest


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = open_store(sqlite_url(tmp_path))
    yield s
    s.close()


class Recording:
    """Records the MSH-10 of each message it applies, once its transaction committed
    (a message may be processed again after a rollback), and routes nothing."""

    def __init__(self, refuse: str = "") -> None:
        self.seen: list[str] = []
        self.refuse = refuse
        self.calls = 0

    def process(self, msg: Message, tx: Tx, now: datetime) -> Outcome:
        self.calls += 1
        if msg.control_id == self.refuse:
            raise ApplyError("unknown procedure code", location="OBR-4", error_code="103")
        assert isinstance(tx, SqlTx)
        control_id = msg.control_id
        tx.after_commit(lambda: self.seen.append(control_id))
        return Outcome(detail={"seen": msg.control_id})


def parts(store: SqlStore, cfg: Config, processor: Processor | None = None,
          batch: int = 500) -> tuple[Ingestor, Applier]:
    ids = ControlIds("T")
    proc = processor or Router(cfg.destinations, ids)
    ingestor = Ingestor(store, FixedClock(), ids, proc, cfg)
    applier = Applier(store, FixedClock(), ids, proc, "node-1", batch=batch, hold=60.0,
                      ack_route=cfg.mllp.application_ack_destination)
    return ingestor, applier


async def test_enhanced_mode_is_answered_ca_once_stored_then_applied(
        store: SqlStore, tmp_path: Path) -> None:
    ingestor, applier = parts(store, config(tmp_path, DESTS))
    ack = parse(await ingestor.handle(message("E1", accept="AL", application="NE"), PEER))
    assert (ack.get("MSA-1"), ack.get("MSA-2")) == ("CA", "E1")
    [stored] = store.search_messages(control_id="E1").items
    assert stored.ack_code == "CA" and stored.outcome == {"applied": False}
    assert store.backlog()[0] == 1
    assert store.stats()["outbox_pending"] == 0  # not applied yet
    assert applier.drain() == 1
    assert store.backlog() == (0, None)
    assert store.stats()["outbox_pending"] == 1  # routed to pacs once applied
    applied = store.get_message(stored.id)
    assert applied.status == "processed" and applied.ack == stored.ack
    assert applier.drain() == 0  # exactly once


async def test_original_mode_follows_mllp_ack(store: SqlStore, tmp_path: Path) -> None:
    ingestor, applier = parts(store, config(tmp_path, DESTS))
    ack = parse(await ingestor.handle(message("O1"), PEER))
    assert ack.get("MSA-1") == "AA"
    assert store.backlog()[0] == 0  # on_apply (the default): applied before the AA
    assert store.stats()["outbox_pending"] == 1
    ingestor, applier = parts(store, config(tmp_path, DESTS + "mllp: {ack: on_store}\n"))
    ack = parse(await ingestor.handle(message("O2"), PEER))
    assert ack.get("MSA-1") == "AA" and store.backlog()[0] == 1
    assert applier.drain() == 1 and store.stats()["outbox_pending"] == 2


def test_mllp_ack_key_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"mllp\.ack"):
        config(tmp_path, "mllp: {ack: later}\n")
    with pytest.raises(ConfigError, match=r"application_acks.*line 5"):
        config(tmp_path, DESTS + "mllp:\n  application_acks: {RIS: nowhere}\n")
    cfg = config(tmp_path, ACKS)
    assert cfg.mllp.application_ack_destination("RIS", "RADIOLOGY") == "ris"
    assert cfg.mllp.application_ack_destination("LAB", "RADIOLOGY") is None


async def test_refused_input_keeps_its_answer(store: SqlStore, tmp_path: Path) -> None:
    cfg = config(tmp_path, DESTS + "mllp: {ack: on_store, allowed_senders: [{app: HIS}]}\n")
    ingestor, _ = parts(store, cfg)
    assert parse(await ingestor.handle(b"not HL7", PEER)).get("MSA-1") == "AR"
    refused = parse(await ingestor.handle(message("R1", accept="AL"), PEER))
    assert refused.get("MSA-1") == "CR"
    assert store.backlog()[0] == 0


async def test_applied_in_arrival_order_in_batches(store: SqlStore, tmp_path: Path) -> None:
    recording = Recording()
    ingestor, applier = parts(store, config(tmp_path, DESTS), recording, batch=3)
    sent = [f"M{n:02d}" for n in range(10)]
    for n, control_id in enumerate(sent):
        await ingestor.handle(message(control_id, accept="AL", patient=f"P{n % 3}"), PEER)
    assert applier.apply_batch() == 3  # at most ``batch`` per transaction
    assert applier.drain() == 7
    assert recording.seen == sent
    assert applier.stats.batches == 4


async def test_a_resend_is_answered_with_the_first_ca_and_applied_once(
        store: SqlStore, tmp_path: Path) -> None:
    recording = Recording()
    ingestor, applier = parts(store, config(tmp_path, DESTS), recording)
    first = await ingestor.handle(message("D1", accept="AL"), PEER)
    assert await ingestor.handle(message("D1", accept="AL"), PEER) == first
    applier.drain()
    assert recording.seen == ["D1"]
    assert store.stats()["duplicates"] == 1


async def test_an_error_goes_to_the_error_queue_and_the_rest_apply(
        store: SqlStore, tmp_path: Path) -> None:
    recording = Recording(refuse="X2")
    ingestor, applier = parts(store, config(tmp_path, DESTS), recording)
    for control_id in ("X1", "X2", "X3"):
        await ingestor.handle(message(control_id, accept="AL"), PEER)
    assert applier.drain() == 3
    assert recording.seen == ["X1", "X3"]
    [failed] = store.error_queue().items
    stored = failed.message
    assert stored is not None and stored.control_id == "X2"
    assert stored.status == "error" and stored.outcome["location"] == "OBR-4"
    assert store.backlog()[0] == 0 and applier.stats.errors == 1


async def test_a_batch_applies_at_once_and_completes_each_record(
        store: SqlStore, tmp_path: Path) -> None:
    recording = Recording()
    ingestor, applier = parts(store, config(tmp_path, DESTS), recording)
    for n in range(3):
        await ingestor.handle(message(f"F{n}", accept="AL", patient=f"P{n}"), PEER)
    [waiting] = store.search_messages(control_id="F1").items
    assert waiting.message_type == "" and waiting.patient_ids == ()  # custody only
    assert applier.drain() == 3
    assert recording.seen == ["F0", "F1", "F2"] and recording.calls == 3
    assert (applier.stats.batches, applier.stats.slow_batches) == (1, 0)
    applied = store.get_message(waiting.id)
    assert applied.message_type == "ORM^O01" and applied.outcome == {"seen": "F1"}
    assert applied.ack == waiting.ack and applied.ack_code == "CA"
    assert [m.control_id for m in store.search_messages(patient_id="P1").items] == ["F1"]


async def test_an_error_redoes_the_batch_one_message_at_a_time(
        store: SqlStore, tmp_path: Path) -> None:
    recording = Recording(refuse="R2")
    ingestor, applier = parts(store, config(tmp_path, DESTS), recording)
    for n in range(5):
        await ingestor.handle(message(f"R{n}", accept="AL"), PEER)
    assert applier.apply_batch() == 5  # one transaction: the fast try, then the redo
    assert recording.seen == ["R0", "R1", "R3", "R4"]
    assert recording.calls == 3 + 5  # R0, R1, R2 (raised), then all five again
    assert (applier.stats.batches, applier.stats.slow_batches) == (1, 1)
    assert applier.stats.errors == 1 and store.backlog()[0] == 0
    [failed] = store.error_queue().items
    assert failed.message is not None and failed.message.control_id == "R2"
    assert failed.message.message_type == "ORM^O01"  # its record completed all the same
    assert store.stats()["outbox_pending"] == 0  # Recording routes nothing
    assert applier.drain() == 0


async def test_application_ack_as_msh_16_asks(store: SqlStore, tmp_path: Path) -> None:
    recording = Recording(refuse="ER-bad")
    ingestor, applier = parts(store, config(tmp_path, ACKS), recording)
    for control_id, condition in (("AL-ok", "AL"), ("ER-ok", "ER"), ("SU-ok", "SU"),
                                  ("NE-ok", "NE"), ("ER-bad", "ER")):
        await ingestor.handle(message(control_id, accept="AL", application=condition),
                              PEER)
    applier.drain()
    rows = store.list_outbox(destination="ris", oldest_first=True).items
    acks = [parse(row.payload) for row in rows]
    assert [(a.get("MSA-1"), a.get("MSA-2")) for a in acks] == [
        ("AA", "AL-ok"), ("AA", "SU-ok"), ("AE", "ER-bad")]
    ack = acks[0]
    assert (ack.get("MSH-5"), ack.get("MSH-6")) == ("RIS", "RADIOLOGY")
    assert ack.get("MSH-10") == rows[0].control_id and rows[0].kind == "ack"
    assert acks[2].get("ERR-3.1") == "103"


async def test_backlog_counts_down_and_age_of_the_oldest(store: SqlStore,
                                                         tmp_path: Path) -> None:
    ingestor, applier = parts(store, config(tmp_path, DESTS), Recording(), batch=2)
    for n in range(5):
        await ingestor.handle(message(f"B{n}", accept="AL"), PEER)
    count, oldest = store.backlog()
    assert count == 5 and oldest == FixedClock().now()
    seen = []
    while applier.apply_batch():
        seen.append(store.backlog()[0])
    assert seen == [3, 1, 0]


async def test_retention_never_prunes_what_waits(store: SqlStore, tmp_path: Path) -> None:
    ingestor, applier = parts(store, config(tmp_path, DESTS), Recording())
    await ingestor.handle(message("K1", accept="AL"), PEER)
    later = FixedClock().now() + timedelta(days=400)
    assert store.prune(later) == 0
    applier.drain()
    assert store.prune(later) == 1


async def test_application_ack_is_delivered_and_matched(tmp_path: Path) -> None:
    """A running engine: MSH-16 AL gets CA at once, then, once applied, an application
    ACK reaches the sender's configured destination, which answers it; the outbox row is
    delivered only because the answer's MSA-2 matched its MSH-10."""
    ris, pacs = Receiver(), Receiver()
    await ris.start()
    await pacs.start()
    text = (f"store: {{data_dir: '{tmp_path / 'data'}'}}\n"
            "http: {port: 0}\nmllp: {port: 0, application_acks: {RIS: ris}}\n"
            "dicom: {enabled: false}\nworkflow: {enabled: false}\ndestinations:\n"
            f"  - {{name: ris, host: 127.0.0.1, port: {ris.port}, send: [status]}}\n"
            f"  - {{name: pacs, host: 127.0.0.1, port: {pacs.port}, send: [orders]}}\n")
    rt = build(config(tmp_path, text))
    await rt.start()
    try:
        async with MllpClient("127.0.0.1", rt.mllp_port) as client:
            answer = await client.send_message(message("AL1", accept="AL",
                                                       application="AL"), "AL1")
        assert answer.code == "CA"
        await ris.wait_for(1, timeout=20)
        await pacs.wait_for(1, timeout=20)
        [ack] = ris.unique.values()
        assert (ack.get("MSH-9.1"), ack.get("MSA-1"), ack.get("MSA-2")) == ("ACK", "AA",
                                                                             "AL1")
        for _ in range(100):
            [row] = await asyncio.to_thread(
                lambda: rt.store.list_outbox(destination="ris").items)
            if row.status == "delivered":
                break
            await asyncio.sleep(0.05)
        assert row.status == "delivered" and row.control_id == ack.get("MSH-10")
    finally:
        await rt.stop()
        await ris.stop()
        await pacs.stop()


async def test_a_batch_commits_early_while_ingest_waits_for_the_writer(
        store: SqlStore, tmp_path: Path) -> None:
    cfg = config(tmp_path, DESTS)
    recording = Recording()
    ingestor, _ = parts(store, cfg, recording)
    for n in range(3):
        await ingestor.handle(message(f"H{n}", accept="AL"), PEER)
    ids = ControlIds("T")
    impatient = Applier(store, FixedClock(), ids, recording, "node-1", hold=0.0,
                        ack_route=cfg.mllp.application_ack_destination,
                        ingest_busy=lambda: True)  # ingest always waits to commit
    assert [impatient.apply_batch() for _ in range(4)] == [1, 1, 1, 0]
    assert recording.seen == ["H0", "H1", "H2"]
