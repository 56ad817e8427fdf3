"""ACK on store under SIGKILL: real ``accord serve`` processes are killed during a burst
of enhanced-mode messages (MSH-15 valued: answered CA once stored, applied afterwards by
the applier from the inbox).

Promise under test: after the final restart every CA'd message is applied exactly once
(its outcome written, one outbox row made by applying it, nothing left in the inbox), and
each patient's messages were applied in the order they were sent (the outbox rows that
applying made have increasing ids). Senders behave like a RIS: a patient's next message
goes only after the previous one was answered, and a message without an answer is resent
(same MSH-10), to the other node when there are two.

- SQLite: one node, killed 5 times; without a ``node_id`` each restart is a new node,
  which takes the apply lease over once the dead node's has run out.
- PostgreSQL: two nodes on one database, one of them killed 5 times (alternately); the
  survivor's applier takes over the moment the dead node's session ends.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from multinode import message as numbered

from accord.demo.traffic import Receiver
from accord.errors import DeliveryError
from accord.mllp.client import MllpClient
from accord.store import open_store, sqlite_url
from pg_support import fresh_database

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

KILLS = 5
SENDERS = 4
PATIENTS_PER_SENDER = 5


def enhanced(patient: int, seq: int) -> tuple[str, bytes]:
    """A numbered message (see ``multinode.py``) in enhanced mode: MSH-15 AL, MSH-16 NE."""
    cid, payload = numbered(patient, seq)
    head, sep, rest = payload.partition(b"\r")
    return cid, head + b"|||AL|NE" + sep + rest


@dataclass
class Sent:
    """What the senders saw: (patient, number, MSH-10) of every message answered CA."""

    acked: list[tuple[int, int, str]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)


async def sender(ports: list[int], n: int, sent: Sent, stop: asyncio.Event) -> None:
    """Each patient's messages in order, each resent until answered, until ``stop``."""
    node = n % len(ports)
    patients = [n * PATIENTS_PER_SENDER + p for p in range(PATIENTS_PER_SENDER)]
    client = MllpClient("127.0.0.1", ports[node], connect_timeout=1.0, ack_timeout=5.0)
    seq = 0
    try:
        while not stop.is_set():
            for patient in patients:
                cid, payload = enhanced(patient, seq)
                while True:
                    try:
                        result = await client.send_message(payload, cid)
                        break
                    except DeliveryError:
                        await client.close()
                        node = (node + 1) % len(ports)
                        client = MllpClient("127.0.0.1", ports[node], connect_timeout=1.0,
                                            ack_timeout=5.0)
                        await asyncio.sleep(0.05)
                if result.code == "CA":
                    sent.acked.append((patient, seq, cid))
                else:
                    sent.other.append(f"{cid} {result.code}")
            seq += 1
    finally:
        await client.close()


def config(path: Path, receiver_port: int, store_url: str = "", node_id: str = "",
           http_port: int = 0) -> Path:
    lines = ["workflow: {enabled: false}", "dicom: {enabled: false}"]
    if store_url:
        lines.append(f"store: {{url: '{store_url}'}}")
    if node_id:
        lines.append(f"node_id: {node_id}")
    if http_port:
        lines.append(f"http: {{port: {http_port}}}")
    lines += ["destinations:", "  - name: pacs", "    host: 127.0.0.1",
              f"    port: {receiver_port}", "    send: [adt, orders]",
              "    connect_timeout: 1", "    ack_timeout: 2",
              "    backoff: {base: 0.05, cap: 0.5}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def wait_applied(url: str, timeout: float = 90.0) -> None:
    """Until the inbox is empty (the applier drained what the crashes left)."""
    store = open_store(url)
    try:
        deadline = time.monotonic() + timeout
        while (waiting := store.backlog()[0]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert waiting == 0, f"{waiting} messages still not applied"
    finally:
        store.close()


def check_applied_once_in_order(url: str, sent: Sent) -> None:
    """Every CA'd message applied exactly once, each patient's in the order sent."""
    store = open_store(url)
    try:
        made: dict[int, dict[int, int]] = {}  # patient -> number -> outbox row id
        for patient, seq, cid in sent.acked:
            firsts = [m for m in store.search_messages(control_id=cid).items
                      if m.status != "duplicate"]
            assert len(firsts) == 1, f"{cid} stored {len(firsts)} times"
            msg = firsts[0]
            assert (msg.status, msg.ack_code) == ("processed", "CA"), cid
            assert msg.outcome.get("applied") is not False, f"{cid} not applied"
            rows = store.list_outbox(source_message_id=msg.id).items
            assert len(rows) == 1, f"{cid} applied {len(rows)} times"
            made.setdefault(patient, {})[seq] = rows[0].id
    finally:
        store.close()
    for patient, by_seq in made.items():
        ids = [by_seq[s] for s in sorted(by_seq)]
        assert ids == sorted(ids), f"patient {patient} applied out of order"


async def burst_and_kill(nodes: list[Any], victims: Callable[[int], Any], sent: Sent,
                         seed: int) -> None:
    """Senders run while a node is SIGKILLed and restarted ``KILLS`` times."""
    rng = random.Random(seed)
    stop = asyncio.Event()
    ports = [n.port for n in nodes]
    senders = [asyncio.create_task(sender(ports, n, sent, stop)) for n in range(SENDERS)]
    try:
        for kill in range(KILLS):
            await asyncio.sleep(rng.uniform(1.0, 2.5))
            victim = victims(kill)
            await asyncio.to_thread(victim.kill)
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            await asyncio.to_thread(victim.start, 60.0)
        await asyncio.sleep(1.0)
        stop.set()
        async with asyncio.timeout(60):
            await asyncio.gather(*senders)
    finally:
        stop.set()
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)


async def test_sigkill_during_ack_on_store_sqlite(
        tmp_path: Path, free_port: Callable[[], int], serve: Callable[..., Any]) -> None:
    receiver = Receiver()
    await receiver.start()
    data = tmp_path / "data"
    node = serve(config(tmp_path / "accord.yaml", receiver.port), data, free_port())
    sent = Sent()
    try:
        await asyncio.to_thread(node.start)
        await burst_and_kill([node], lambda _kill: node, sent, seed=11)
        await asyncio.to_thread(wait_applied, sqlite_url(data))
        await asyncio.to_thread(check_applied_once_in_order, sqlite_url(data), sent)
        assert await asyncio.to_thread(node.terminate) == 0
    finally:
        await receiver.stop()
    assert sent.other == []
    assert len(sent.acked) > 50, "too little traffic to say anything"


@pytest.fixture
def db_url() -> Iterator[str]:
    with fresh_database("accord_apply", "ACK on store tests") as url:
        yield url


@pytest.mark.postgres
async def test_sigkill_during_ack_on_store_two_nodes_postgres(
        tmp_path: Path, db_url: str, free_port: Callable[[], int],
        serve: Callable[..., Any]) -> None:
    receiver = Receiver()
    await receiver.start()
    nodes = [serve(config(tmp_path / f"node{i}.yaml", receiver.port, db_url, f"node-{i}",
                          free_port()), tmp_path / f"node{i}", free_port())
             for i in range(2)]
    sent = Sent()
    try:
        await asyncio.gather(*(asyncio.to_thread(n.start, 60.0) for n in nodes))
        await burst_and_kill(nodes, lambda kill: nodes[kill % 2], sent, seed=12)
        await asyncio.to_thread(wait_applied, db_url)
        await asyncio.to_thread(check_applied_once_in_order, db_url, sent)
        for n in nodes:
            assert await asyncio.to_thread(n.terminate) == 0, n.output()[-2000:]
    finally:
        await receiver.stop()
    assert sent.other == []
    assert len(sent.acked) > 50, "too little traffic to say anything"
