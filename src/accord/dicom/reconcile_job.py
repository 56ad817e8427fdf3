"""The "completed but not found" job: one node at a time asks the PACS.

Rules: every ``interval`` seconds, the node holding the store's ``reconcile`` lease
(``store.try_job_lock``) looks at orders completed between ``after`` and ``after + 1 day``
ago and asks the PACS for each study (C-FIND, Study Root, by Study Instance UID, then
accession); a study missing is a ``completed_study_missing`` finding. Then it asks for
today's studies and records a ``study_without_order`` for each one no order knows. The
decisions are the pure functions of :mod:`accord.dicom.reconcile`; findings are stored
like the workflow's (same key = counted, not repeated). PACS I/O runs in a thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from accord.clock import Clock
from accord.dicom.reconcile import (
    COMPLETED_STUDY_MISSING,
    CompletedOrder,
    ReconcileFinding,
    studies_without_order,
)
from accord.dicom.scu import PacsClient, PacsPeer, missing_studies
from accord.engine.jobs import hand_back
from accord.engine.workflow import RepositoryFactory
from accord.store import Store
from accord.workflow.findings import Finding, FindingKind, merge
from accord.workflow.model import Order

LOG = logging.getLogger(__name__)
JOB = "reconcile"


class CompletedSource(Protocol):
    """The store reads of the job (``accord.store.workflow.worklist.SqlWorklistReader``)."""

    def completed_between(self, start: datetime, end: datetime,
                          limit: int = 1000) -> list[tuple[Order, datetime]]: ...

    def known_studies(self, study_uids: Sequence[str],
                      accessions: Sequence[str]) -> tuple[set[str], set[str]]: ...


@dataclass(frozen=True, slots=True)
class ReconcileSettings:
    peer: PacsPeer
    after: timedelta = timedelta(minutes=60)
    interval: float = 300.0
    window: timedelta = timedelta(days=1)


def ask_pacs(peer: PacsPeer, source: CompletedSource, settings: ReconcileSettings,
             now: datetime) -> list[ReconcileFinding]:
    """One round of questions to the PACS; the findings it gives (nothing stored)."""
    start = now - settings.after - settings.window
    completed = [CompletedOrder(o, at) for o, at in
                 source.completed_between(start, now - settings.after)]
    with PacsClient(peer) as pacs:
        findings = missing_studies(pacs, completed, now)
        today = pacs.find_studies(study_date=now.strftime("%Y%m%d"))
    uids, accessions = source.known_studies([s.study_instance_uid for s in today],
                                            [s.accession for s in today if s.accession])
    return findings + studies_without_order(today, uids, accessions)


def store_findings(store: Store, repository: RepositoryFactory,
                   found: Sequence[ReconcileFinding], now: datetime) -> None:
    """Record the job's findings (merged with the stored ones of the same key)."""
    if not found:
        return
    with store.transaction() as tx:
        repo = repository(tx, now)
        for r in found:
            kind = (FindingKind.COMPLETED_STUDY_MISSING if r.kind == COMPLETED_STUDY_MISSING
                    else FindingKind.STUDY_WITHOUT_ORDER)
            new = Finding(kind=kind, detail=r.detail, first_seen=now, accession=r.accession,
                          subject=r.study_instance_uid, source="PACS")
            repo.save_finding(merge(repo.finding(new.key), new))
        repo.flush()


def reconcile_once(store: Store, source: CompletedSource, repository: RepositoryFactory,
                   settings: ReconcileSettings, clock: Clock, node: str,
                   ask: Callable[..., list[ReconcileFinding]] = ask_pacs) -> int | None:
    """One round if this node holds the lease; the number of findings (None: not run)."""
    now = clock.now()
    if not store.try_job_lock(JOB, node, settings.interval * 2, now):
        return None
    found = ask(settings.peer, source, settings, now)
    store_findings(store, repository, found, now)
    if found:
        LOG.info("reconciliation: %d finding(s)", len(found))
    return len(found)


async def reconciliation_loop(store: Store, source: CompletedSource,
                              repository: RepositoryFactory, settings: ReconcileSettings,
                              clock: Clock, node: str) -> None:
    """Reconcile every ``settings.interval`` seconds until cancelled; on a graceful stop
    the job lease is handed back so another node takes over at once."""
    try:
        while True:
            try:
                await asyncio.to_thread(reconcile_once, store, source, repository, settings,
                                        clock, node)
            except Exception as exc:  # an unreachable PACS is retried next interval
                LOG.warning("reconciliation round failed: %s", exc)
            await asyncio.sleep(settings.interval)
    finally:
        hand_back(store, JOB, node)
