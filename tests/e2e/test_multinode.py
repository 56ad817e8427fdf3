"""Scale-out: three ``accord serve`` nodes on one PostgreSQL database.

Three real node processes on 127.0.0.1 (own MLLP and HTTP ports, own ``node_id``) share
one fresh database on the local server (created for the test, dropped after). Two mock
receivers stand for downstream systems: ``pacs`` delivered per patient (several workers
on every node, rows claimed with ``FOR UPDATE SKIP LOCKED``), ``ris`` FIFO (runs claimed
from the head of one queue shared by the nodes). Senders spread numbered traffic over
the nodes (see ``multinode.py``); a message without an ACK is resent, same MSH-10, to
the next node.

The promise, checked after each disruption: every AA'd message is stored once (the
database is asked); every routed row reaches its receiver; after MSH-10 dedupe no
inbound message arrives twice; each patient's messages arrive in order.

- ``test_node_killed_half_way``: one node is SIGKILLed when half the traffic is ACKed;
  its senders move to the others, its leased rows are taken over when the lease ends.
- ``test_database_goes_away_under_load``: half way, the database goes away and comes
  back; the nodes reconnect. The PostgreSQL SERVER is restarted
  (``pg_ctlcluster --skip-systemctl-redirect <ver> main restart``) only when
  ``ACCORD_PG_RESTART_OK=1`` or in CI (``CI`` set), because other test runs may share
  this server; otherwise only this test's database is taken away (connections refused
  and cut for a few seconds), which is what a restart does to the nodes.

Size: 2,000 messages (200 patients × 10) per test in ``make test`` (measured on the
shared 2-core machine: 40–85 s per test, nodes, PostgreSQL, senders and receivers all on
the same two cores); ``ACCORD_SOAK=1`` runs the full 10,000 (200 × 50) per test (about
2 min each when the machine is otherwise quiet, more under load). Without PostgreSQL:
failure in CI, loud skip elsewhere.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from multinode import (
    DESTINATIONS,
    Traffic,
    check_receiver,
    node_config,
    outbox_ids,
    restart_allowed,
    restart_server,
    sender,
    split_patients,
    stored_messages,
)

from accord.demo.traffic import Receiver
from pg_support import database_away, fresh_database

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(600)]

NODES = 3
SENDERS = 6
PATIENTS = 200
PER_PATIENT = 50 if os.environ.get("ACCORD_SOAK") == "1" else 10


@pytest.fixture
def db_url() -> Iterator[str]:
    with fresh_database("accord_scale", "scale-out tests") as url:
        yield url


Disrupt = Callable[[list[Any]], Awaitable[None]]


async def run_scenario(tmp_path: Path, db_url: str, serve: Callable[..., Any],
                       free_port: Callable[[], int], disrupt: Disrupt) -> None:
    """Start the nodes, send the traffic, ``disrupt(nodes)`` half way, then check."""
    receivers = {name: Receiver() for name, _ in DESTINATIONS}
    for r in receivers.values():
        await r.start()
    ports = {name: r.port for name, r in receivers.items()}
    nodes = [serve(node_config(tmp_path / f"node{i}.yaml", db_url, f"node-{i}", free_port(),
                               ports), tmp_path / f"node{i}", free_port())
             for i in range(NODES)]
    traffic = Traffic()
    total = PATIENTS * PER_PATIENT
    loop = asyncio.get_running_loop()
    marks = [("start", loop.time())]
    try:
        await asyncio.gather(*(asyncio.to_thread(n.start, 60.0) for n in nodes))
        marks.append(("nodes up", loop.time()))
        mllp = [n.port for n in nodes]
        senders = [asyncio.create_task(sender(mllp, i % NODES, patients, PER_PATIENT,
                                              traffic))
                   for i, patients in enumerate(split_patients(PATIENTS, SENDERS))]
        while len(traffic.acked) < total // 2 and not all(t.done() for t in senders):
            await asyncio.sleep(0.02)
        marks.append(("half ACKed", loop.time()))
        await disrupt(nodes)
        marks.append(("disrupted", loop.time()))
        async with asyncio.timeout(300):
            await asyncio.gather(*senders)
        marks.append(("all ACKed", loop.time()))
        assert traffic.refused == [] and len(traffic.acked) == total
        for r in receivers.values():
            await r.wait_for(total, timeout=180)
        marks.append(("all delivered", loop.time()))
        await check_store_and_receivers(db_url, traffic, receivers, total)
        marks.append(("checked", loop.time()))
    finally:
        for r in receivers.values():
            await r.stop()
    for n in nodes:
        if n.proc is not None and n.proc.poll() is None:
            assert await asyncio.to_thread(n.terminate) == 0, n.output()[-2000:]
    arrivals = {name: len(r.received) for name, r in receivers.items()}
    print(f"\n{total} messages AA'd; sender resends {traffic.resends}; "
          f"wire arrivals {arrivals} for {total} each")
    print(", ".join(f"{what} +{t - marks[0][1]:.1f}s" for what, t in marks[1:]))


async def check_store_and_receivers(db_url: str, traffic: Traffic,
                                    receivers: dict[str, Receiver], total: int) -> None:
    firsts, _duplicates = await asyncio.to_thread(stored_messages, db_url)
    assert len(firsts) == total
    for cid in traffic.acked:
        assert firsts[cid].ack_code == "AA", cid
    rows = await asyncio.to_thread(outbox_ids, db_url)
    for name, receiver in receivers.items():
        assert set(rows[name].values()) == {"delivered"}
        check_receiver(receiver, set(rows[name]), total, PER_PATIENT)


async def test_node_killed_half_way(tmp_path: Path, db_url: str, serve: Callable[..., Any],
                                    free_port: Callable[[], int]) -> None:
    async def kill_one(nodes: list[Any]) -> None:
        await asyncio.to_thread(nodes[0].kill)

    await run_scenario(tmp_path, db_url, serve, free_port, kill_one)


async def test_database_goes_away_under_load(
        tmp_path: Path, db_url: str, serve: Callable[..., Any],
        free_port: Callable[[], int]) -> None:
    async def database_restart(_nodes: list[Any]) -> None:
        if restart_allowed():
            await asyncio.to_thread(restart_server)
            return
        await asyncio.to_thread(database_away, db_url, True)
        await asyncio.sleep(3.0)
        await asyncio.to_thread(database_away, db_url, False)

    await run_scenario(tmp_path, db_url, serve, free_port, database_restart)
