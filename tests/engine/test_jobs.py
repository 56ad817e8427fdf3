"""Background jobs hand their lease back on a graceful stop (a job runs on one node at a
time, and another node takes over at once when the holder stops)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from accord.clock import SystemClock
from accord.config import StoreConfig
from accord.engine.jobs import pruning_loop
from accord.store import open_store, sqlite_url


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
