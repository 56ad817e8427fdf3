"""Background jobs: retention pruning runs on one node at a time, deletes only what is
older than the retention, and hands its lease back on a graceful stop so another node
takes over at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from accord.clock import FixedClock, SystemClock
from accord.config import StoreConfig, load_config
from accord.engine.jobs import prune_once, pruning_loop
from accord.mllp.client import MllpClient
from accord.runtime import build
from accord.store import open_store, sqlite_url

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
FREE_PORTS = {"mllp.port": 0, "dicom.port": 0, "http.port": 0}


async def test_pruning_lease_is_handed_back_on_stop(tmp_path: Path) -> None:
    store = open_store(sqlite_url(tmp_path))
    clock = SystemClock()
    settings = StoreConfig(data_dir=tmp_path, retention_days=30, prune_interval=3600)
    task = asyncio.create_task(pruning_loop(store, settings, clock, "node-a"))
    try:
        for _ in range(200):  # until node-a's first round has taken the lease
            if not store.try_job_lock("prune", "node-b", 60, clock.now()):
                break
            store.release_job_lock("prune", "node-b")
            await asyncio.sleep(0.02)
        assert not store.try_job_lock("prune", "node-b", 60, clock.now())
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # node-a stopped: its lease (valid for two hours) was handed back, node-b takes it now
    assert store.try_job_lock("prune", "node-b", 60, clock.now())
    store.close()


async def test_pruning_job_respects_retention(tmp_path: Path) -> None:
    store = open_store(sqlite_url(tmp_path))
    clock = FixedClock()
    try:
        cfg = load_config(None, FREE_PORTS)
        rt = build(cfg, store=store, clock=clock)
        await rt.start()
        raw = (SAMPLES / "gateway_adt_a04.hl7").read_bytes()
        async with MllpClient("127.0.0.1", rt.mllp_port) as client:
            await client.send_message(raw, "GW00000001")
        await rt.stop()
        settings = load_config(None, {"store.retention_days": 30}).store
        assert prune_once(store, cfg.store, clock, "n1") is None  # no retention set
        assert prune_once(store, settings, clock, "n1") == 0  # too young
        assert prune_once(store, settings, clock, "n2") is None  # n1 holds the job lease
        clock.t = clock.t + timedelta(days=31)  # n1's lease has long expired
        assert prune_once(store, settings, clock, "n2") == 1
        assert store.stats()["messages"] == 0
    finally:
        store.close()


class _Recorder:
    """A Housekeeping that remembers what it was asked to do."""

    def __init__(self) -> None:
        self.cutoffs: list[dict[str, object]] = []
        self.sizes = 0

    def prune(self, cutoffs: object, block: int) -> dict[str, int]:
        self.cutoffs.append(dict(cutoffs))  # type: ignore[call-overload]
        return {}

    def record_size(self, now: object) -> int:
        self.sizes += 1
        return 0


def test_a_round_prunes_every_table_with_a_retention_and_records_the_size(
        tmp_path: Path) -> None:
    store = open_store(sqlite_url(tmp_path))
    clock = FixedClock()
    try:
        settings = load_config(None, {"store.retention.trace": 10}).store
        done = _Recorder()
        assert prune_once(store, settings, clock, "n1", done) == 0
        assert done.cutoffs == [{"trace": clock.now() - timedelta(days=10),
                                 "audit": clock.now() - timedelta(days=3653)}]
        assert done.sizes == 1
        assert prune_once(store, settings, clock, "n2", done) is None  # n1 holds the lease
        assert done.sizes == 1
    finally:
        store.close()
