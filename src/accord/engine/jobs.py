"""Background jobs: retention pruning (and the store's daily size), run by one node at a
time (``store.try_job_lock``).

Each job is a loop that, every ``interval`` seconds, takes the store's job lease for its
name and, only if it got it, does one round of work in a worker thread (the store is
blocking). Several nodes sharing one PostgreSQL store run the loop; one does the work.
A node that stops gracefully hands its lease back (:func:`hand_back`), so another node
takes the job at its next round instead of waiting for the lease to run out. The
settings are read again at every round, so a configuration reload applies to the next.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Protocol

from accord.clock import Clock
from accord.config import StoreConfig
from accord.errors import StoreError
from accord.store import Store, committing_as

log = logging.getLogger(__name__)


class Housekeeping(Protocol):
    """What a pruning round does besides the messages (``accord.store.retention`` and
    ``accord.store.storage``, wired by the runtime)."""

    def prune(self, cutoffs: Mapping[str, datetime], block: int) -> dict[str, int]:
        """Delete per kind (trace, findings, mpps, audit) what is older than its cutoff."""
        ...

    def record_size(self, now: datetime) -> int:
        """Measure the store and keep the figure as today's."""
        ...


def cutoffs(settings: StoreConfig, now: datetime) -> dict[str, datetime]:
    """The cutoff of each table kind with a retention set (messages aside)."""
    days = settings.retention
    kept = {"trace": days.trace, "findings": days.findings, "mpps": days.mpps,
            "audit": days.audit}
    return {kind: now - timedelta(days=n) for kind, n in kept.items() if n is not None}


def prune_once(store: Store, settings: StoreConfig, clock: Clock, node: str,
               housekeeping: Housekeeping | None = None) -> int | None:
    """One pruning round if this node holds the ``prune`` lease (and there is something
    to do); returns the number of messages deleted (None when it did not run)."""
    now = clock.now()
    others = cutoffs(settings, now) if housekeeping is not None else {}
    days = settings.message_retention
    if days is None and housekeeping is None:
        return None
    if not store.try_job_lock("prune", node, settings.prune_interval * 2, now):
        return None
    deleted = 0
    if days is not None:
        cutoff = now - timedelta(days=days)
        deleted = store.prune(cutoff, settings.prune_block)
        if deleted:
            log.info("retention: pruned %d message(s) received before %s", deleted,
                     cutoff.isoformat(timespec="seconds"))
    if housekeeping is not None:
        pruned = housekeeping.prune(others, settings.prune_block)
        if any(pruned.values()):
            log.info("retention: pruned %s", ", ".join(
                f"{n} {kind}" for kind, n in pruned.items() if n))
        housekeeping.record_size(now)
    return deleted


def hand_back(store: Store, name: str, node: str) -> None:
    """Release this node's lease on job ``name`` (on a graceful stop); never raises."""
    try:
        store.release_job_lock(name, node)
    except Exception as exc:  # the lease then simply expires
        log.warning("could not hand back the %s job lease: %s", name, exc)


async def pruning_loop(store: Store, settings: StoreConfig | Callable[[], StoreConfig],
                       clock: Clock, node: str,
                       housekeeping: Housekeeping | None = None) -> None:
    """Prune every ``prune_interval`` seconds until cancelled; ``settings`` may be a
    callable giving the current ones (a reload changes them)."""
    def current() -> StoreConfig:
        return settings() if callable(settings) else settings

    committing_as("jobs")  # this task's and its threads' commits (accord.store)
    try:
        while True:
            try:
                await asyncio.to_thread(prune_once, store, current(), clock, node,
                                        housekeeping)
            except StoreError as exc:  # the store is away (disk, database): one line
                log.warning("retention pruning skipped this round: %s", exc)
            except Exception:  # a failed round is retried next interval, never fatal
                log.exception("retention pruning failed")
            await asyncio.sleep(current().prune_interval)
    finally:
        hand_back(store, "prune", node)
