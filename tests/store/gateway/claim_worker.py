"""A delivery node for the multi-process claim test: claims rows of one destination,
checks the ordering promise at the moment it holds each row, marks them delivered."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import func, select

from accord.store import open_store
from accord.store.gateway.store import SqlStore
from accord.store.schema import outbox


def _check(
    store: SqlStore, destination: str, per_patient: bool, row_id: int, key: str, runs: bool
) -> str:
    """'' when the promise holds for a row about to be sent, else what is wrong. In a
    run the rows are sent in order, so when one is sent the older ones are delivered
    and only the rest of this node's run is in flight."""
    same_queue = outbox.c.destination == destination
    if per_patient:
        same_queue = same_queue & (outbox.c.patient_key == key)
    with store.database.engine.connect() as conn:
        in_flight = conn.scalar(
            select(func.count()).where(
                same_queue,
                outbox.c.status == "in_flight",
                outbox.c.id <= row_id if runs else outbox.c.id.is_not(None),
            )
        )
        older_open = conn.scalar(
            select(func.count()).where(
                same_queue, outbox.c.id < row_id, outbox.c.status != "delivered"
            )
        )
    if in_flight != 1 or older_open != 0:
        return f"row {row_id} key {key!r}: {in_flight} in flight, {older_open} older open"
    return ""


def run(
    url: str, destination: str, node: str, per_patient: bool, runs: bool = False
) -> tuple[list[int], list[str]]:
    """Deliver until the destination's queue is empty; returns (claimed ids, violations).
    ``runs``: claim FIFO runs of up to 4 rows (``claim_run``) instead of one row."""
    store = open_store(url)
    assert isinstance(store, SqlStore)
    claimed: list[int] = []
    violations: list[str] = []
    try:
        while True:
            now = datetime.now(UTC)
            rows = (
                store.claim_run(destination, node, now, 300, limit=4)
                if runs
                else store.claim(destination, node, now, 300, limit=4, per_patient=per_patient)
            )
            if not rows:
                stats = store.stats()
                if stats["outbox_pending"] == 0 and stats["outbox_in_flight"] == 0:
                    return claimed, violations
                time.sleep(0.002)
                continue
            for row in rows:
                problem = _check(store, destination, per_patient, row.id, row.patient_key, runs)
                if problem:
                    violations.append(problem)
                claimed.append(row.id)
                if not store.mark_delivered(row.id, node, b"MSA|AA\r", datetime.now(UTC)):
                    violations.append(f"row {row.id}: lost its claim")
    finally:
        store.close()
