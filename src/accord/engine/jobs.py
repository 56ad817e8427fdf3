"""Background jobs: retention pruning, run by one node at a time (``store.try_job_lock``).

Each job is a loop that, every ``interval`` seconds, takes the store's job lease for its
name and, only if it got it, does one round of work in a worker thread (the store is
blocking). Several nodes sharing one PostgreSQL store run the loop; one does the work.
A node that stops gracefully hands its lease back (:func:`hand_back`), so another node
takes the job at its next round instead of waiting for the lease to run out.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from accord.clock import Clock
from accord.config import StoreConfig
from accord.store import Store

log = logging.getLogger(__name__)


def prune_once(store: Store, settings: StoreConfig, clock: Clock, node: str) -> int | None:
    """One pruning round if retention is set and this node holds the ``prune`` lease;
    returns the number of messages deleted (None when it did not run)."""
    if settings.retention_days is None:
        return None
    now = clock.now()
    if not store.try_job_lock("prune", node, settings.prune_interval * 2, now):
        return None
    cutoff = now - timedelta(days=settings.retention_days)
    deleted = store.prune(cutoff, settings.prune_block)
    if deleted:
        log.info("retention: pruned %d message(s) received before %s", deleted,
                 cutoff.isoformat(timespec="seconds"))
    return deleted


def hand_back(store: Store, name: str, node: str) -> None:
    """Release this node's lease on job ``name`` (on a graceful stop); never raises."""
    try:
        store.release_job_lock(name, node)
    except Exception as exc:  # the lease then simply expires
        log.warning("could not hand back the %s job lease: %s", name, exc)


async def pruning_loop(store: Store, settings: StoreConfig, clock: Clock, node: str) -> None:
    """Prune every ``settings.prune_interval`` seconds until cancelled."""
    try:
        while True:
            try:
                await asyncio.to_thread(prune_once, store, settings, clock, node)
            except Exception:  # a failed round is retried next interval, never fatal
                log.exception("retention pruning failed")
            await asyncio.sleep(settings.prune_interval)
    finally:
        hand_back(store, "prune", node)
