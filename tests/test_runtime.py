"""Tests for accord.runtime (the composition root), over real sockets."""

from __future__ import annotations

import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from accord.clock import FixedClock
from accord.config import Config, load_config
from accord.demo.traffic import Department, Receiver
from accord.engine import gil
from accord.engine.processor import Outcome
from accord.errors import StartupError
from accord.hl7 import Message
from accord.mllp.client import MllpClient
from accord.runtime import build
from accord.store import Tx, open_store, sqlite_url

SAMPLES = Path(__file__).parent / "samples"
FREE_PORTS = {"mllp.port": 0, "dicom.port": 0, "http.port": 0}


def config(tmp_path: Path, receiver_port: int, extra: str = "") -> Config:
    path = tmp_path / "accord.yaml"
    path.write_text(
        "mllp: {port: 0}\ndicom: {port: 0}\nhttp: {port: 0}\n"
        "workflow: {enabled: false}\n"  # the gateway alone: messages pass through
        f"store: {{data_dir: {tmp_path / 'data'}}}\n"
        "destinations:\n"
        f"  - {{name: pacs, host: 127.0.0.1, port: {receiver_port}, "
        "send: [adt, orders, reports], backoff: {base: 0.05, cap: 0.2}}\n" + extra,
        encoding="utf-8")
    return load_config(path)


async def test_message_in_ack_out_and_delivered(tmp_path: Path) -> None:
    receiver = Receiver()
    await receiver.start()
    rt = build(config(tmp_path, receiver.port))
    sys.setswitchinterval(0.005)
    await rt.start()
    assert sys.getswitchinterval() == pytest.approx(gil.SWITCH_INTERVAL)  # engine/gil.py
    try:
        exam = Department(seed=3).exam(datetime.now(UTC))
        async with MllpClient("127.0.0.1", rt.mllp_port) as client:
            for text in exam.messages:
                cid = text.split("|", 10)[9]
                assert (await client.send_message(text.encode(), cid)).code == "AA"
            again = await client.send_message(exam.messages[0].encode(), "SIM00000001")
            assert again.code == "AA"
        await receiver.wait_for(len(exam.messages))
    finally:
        await rt.stop()
        await receiver.stop()
    got = [m.get("MSH-9.1") for m in receiver.unique.values()]
    assert got == [t.split("|", 9)[8].split("^")[0] for t in exam.messages]
    assert (tmp_path / "data" / "accord.db").exists()


async def test_store_survives_restart_and_dedupes(tmp_path: Path) -> None:
    receiver = Receiver()
    await receiver.start()
    cfg = config(tmp_path, receiver.port)
    raw = (SAMPLES / "gateway_orm_o01_nw.hl7").read_bytes()
    acks = []
    try:
        for _ in range(2):
            rt = build(cfg)
            await rt.start()
            async with MllpClient("127.0.0.1", rt.mllp_port) as client:
                acks.append((await client.send_message(raw, "GW00000003")).ack)
            await receiver.wait_for(1)
            await rt.stop()
    finally:
        await receiver.stop()
    assert acks[0] == acks[1]
    assert len(receiver.received) == 1


class CountingProcessor:
    """A stand-in for the workflow's processor: the seam is the only thing it sees."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def process(self, msg: Message, tx: Tx, now: datetime) -> Outcome:
        self.seen.append(msg.message_type)
        return Outcome(detail={"seen": len(self.seen)})


async def test_processor_seam_and_injected_parts(tmp_path: Path) -> None:
    store = open_store(sqlite_url(tmp_path))
    proc = CountingProcessor()
    cfg = load_config(None, FREE_PORTS)
    rt = build(cfg, store=store, clock=FixedClock(), processor=proc)
    await rt.start()
    try:
        raw = (SAMPLES / "gateway_adt_a04.hl7").read_bytes()
        async with MllpClient("127.0.0.1", rt.mllp_port) as client:
            assert (await client.send_message(raw, "GW00000001")).code == "AA"
    finally:
        await rt.stop()
    assert proc.seen == ["ADT^A04"]
    [stored] = store.search_messages(control_id="GW00000001").items
    assert stored.outcome == {"seen": 1}
    assert stored.received_at == FixedClock().now()
    assert store.ping()  # the runtime did not close a store it was given
    store.close()


def test_listening_names_only_what_runs(tmp_path: Path) -> None:
    rt = build(load_config(None, {"mllp.port": 2999, "store.data_dir": str(tmp_path)}))
    try:
        assert rt.listening() == ["HL7 mllp://127.0.0.1:2999"]
    finally:
        rt.store.close()


@pytest.mark.parametrize(("what", "key", "flag"), [
    ("MLLP", "mllp.port", "--mllp-port"), ("DICOM", "dicom.port", "--dicom-port"),
    ("HTTP", "http.port", "--http-port")])
async def test_a_port_in_use_stops_the_start_with_one_line(
        tmp_path: Path, what: str, key: str, flag: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        rt = build(load_config(None, {**FREE_PORTS, key: port,
                                      "store.data_dir": str(tmp_path)}))
        with pytest.raises(StartupError) as raised:
            await rt.start()
    assert str(raised.value) == f"{what} port {port} is in use ({flag})"
    # Whatever had started is stopped again: no listener is left.
    assert rt.mllp_port == rt.config.mllp.port and rt.dicom_port == 0  # nothing bound
    assert rt.http is not None and rt.http.port == 0
