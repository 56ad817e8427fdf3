"""Delivery claims while another destination is down: the CPU of one run's claim and its
settling, for a destination that keeps up, against the backlog of one that does not.

A destination down for a weekend queues its messages in the outbox; every other
destination's worker goes on claiming the head of its own queue and settling what it
sent (``Store.settle_and_claim_run``, one row a run, as a worker does when its receiver
keeps up). Each run below: a fresh SQLite store, ``BACKLOG`` rows queued for the down
destination, then ``ROWS`` rows claimed and settled one by one for the healthy one; the
claiming thread's CPU time per claim. The cost must not grow with the backlog
(``tests/store/test_growth.py`` checks the rows SQLite reads; this shows the time).
Printed, not written to bench/RESULTS.md: a development measure, run before and after a
change on the same machine.

Run: .venv/bin/python bench/claims.py   (BACKLOGS, ROWS from the environment)
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import UTC, datetime

from accord.store import OutboxItem, open_store, sqlite_url

BACKLOGS = tuple(int(b) for b in os.environ.get("BACKLOGS", "0,20000,50000").split(","))
ROWS = int(os.environ.get("ROWS", "1000"))
NOW = datetime(2026, 12, 8, tzinfo=UTC)
PAYLOAD = b"MSH|^~\\&|ACCORD|RAD|PACS|RAD|||ADT^A08|X|P|2.5.1\r" * 6


def _items(destination: str, first: int, n: int) -> list[OutboxItem]:
    return [OutboxItem(destination=destination, payload=PAYLOAD,
                       control_id=f"{destination}{i}", kind="adt")
            for i in range(first, first + n)]


def claim_cpu_us(backlog: int, rows: int = ROWS) -> float:
    """CPU microseconds per claim-and-settle of a one-row run for ``pacs`` while ``ris``
    has ``backlog`` rows queued."""
    with tempfile.TemporaryDirectory() as data:
        store = open_store(sqlite_url(data))
        try:
            with store.transaction() as tx:
                for first in range(0, backlog, 1000):
                    tx.enqueue(_items("ris", first, min(1000, backlog - first)), NOW)
                tx.enqueue(_items("pacs", 0, rows), NOW)
            acks: list[tuple[int, bytes]] = []
            claimed = 0
            started = time.thread_time()
            while True:
                _, run = store.settle_and_claim_run(acks, "pacs", "bench", NOW, 60.0, 1)
                if not run:
                    break
                claimed += len(run)
                acks = [(row.id, b"MSA|AA|X\r") for row in run]
            spent = time.thread_time() - started
        finally:
            store.close()
    assert claimed == rows, (claimed, rows)
    return spent * 1e6 / rows


def main() -> None:
    for backlog in BACKLOGS:
        print(f"another destination's backlog {backlog:>7,}: "
              f"{claim_cpu_us(backlog):6.0f} us CPU per claim and settle", flush=True)
    print(f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
