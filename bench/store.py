"""Store throughput: durable commits/s with and without batching, and outbox claims/s.

Runs the same workloads side by side on SQLite (WAL, synchronous=FULL) and PostgreSQL
(127.0.0.1:5432, a scratch database), one thread, 3 rounds each, and reports medians:

- ingest 1/tx: one transaction per message (save + dedupe claim + one outbox row);
- ingest 16/tx savepoints: group commit of 16 messages, one savepoint each (slow path);
- ingest 16/tx bulk: group commit of 16 with ``save_inbound_many``/``claim_control_ids``;
- deliver FIFO: ``claim`` (1 row) + ``mark_delivered`` per row, one destination;
- deliver per-patient: ``claim(limit=8, per_patient=True)`` + ``mark_delivered``.

Usage: ``.venv/bin/python bench/store.py [--quick]``; rewrites the ``store`` section of
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section

from accord.store import InboundMessage, OutboxItem, open_store, sqlite_url
from accord.store.gateway.store import SqlStore

ADMIN_URL = os.environ.get("ACCORD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
RAW = (b"MSH|^~\\&|RIS|HOSP|ACCORD|RAD|20260302080000||ORM^O01|C|P|2.5.1\r" + b"X" * 900)[:1024]
Workload = Callable[[SqlStore, int], None]


def _message(n: int) -> InboundMessage:
    return InboundMessage(
        received_at=T0 + timedelta(milliseconds=n),
        raw=RAW,
        sending_app="RIS",
        sending_facility="HOSP",
        message_type="ORM^O01",
        control_id=f"C{n}",
        status="processed",
        ack_code="AA",
        ack=b"MSH|^~\\&|ACCORD|RAD|RIS|HOSP|||ACK^O01|A|P|2.5.1\rMSA|AA|C\r",
        outcome={"applied": True},
        patient_ids=(f"P{n % 50}",),
        accessions=(f"A{n}",),
    )


def _item(n: int, mid: int | None = None) -> OutboxItem:
    return OutboxItem(
        destination="pacs",
        payload=RAW,
        control_id=f"O{n}",
        kind="orders",
        patient_key=f"P{n % 50}",
        source_message_id=mid,
    )


def ingest_one_per_tx(store: SqlStore, n: int) -> None:
    for i in range(n):
        with store.transaction() as tx:
            mid = tx.save_inbound(_message(i))
            tx.claim_control_id("RIS", "HOSP", f"C{i}", mid)
            tx.enqueue([_item(i, mid)], T0)


def ingest_savepoints(store: SqlStore, n: int, batch: int = 16) -> None:
    for start in range(0, n, batch):
        with store.transaction() as tx:
            for i in range(start, min(n, start + batch)):
                with tx.savepoint():
                    mid = tx.save_inbound(_message(i))
                    tx.claim_control_id("RIS", "HOSP", f"C{i}", mid)
                    tx.enqueue([_item(i, mid)], T0)


def ingest_bulk(store: SqlStore, n: int, batch: int = 16) -> None:
    for start in range(0, n, batch):
        idx = range(start, min(n, start + batch))
        with store.transaction() as tx:
            ids = tx.save_inbound_many([_message(i) for i in idx])
            tx.claim_control_ids(
                [("RIS", "HOSP", f"C{i}", m) for i, m in zip(idx, ids, strict=True)]
            )
            tx.enqueue([_item(i, m) for i, m in zip(idx, ids, strict=True)], T0)


def raw_sqlite_floor(path: Path, n: int) -> float:
    """The peer: bare ``sqlite3``, one 1 KB insert per transaction, WAL + FULL: what the
    disk's sync allows before any of Accord's work."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, raw BLOB)")
        start = time.perf_counter()
        for _ in range(n):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (raw) VALUES (?)", (RAW,))
            conn.execute("COMMIT")
        return n / (time.perf_counter() - start)
    finally:
        conn.close()


def _fill_outbox(store: SqlStore, n: int) -> None:
    with store.transaction() as tx:
        tx.enqueue([_item(i) for i in range(n)], T0)


def deliver_fifo(store: SqlStore, n: int) -> None:
    for _ in range(n):
        [row] = store.claim("pacs", "n1", T0, 60)
        store.mark_delivered(row.id, "n1", b"MSA|AA\r", T0)


def deliver_per_patient(store: SqlStore, n: int) -> None:
    done = 0
    while done < n:
        for row in store.claim("pacs", "n1", T0, 60, limit=8, per_patient=True):
            store.mark_delivered(row.id, "n1", b"MSA|AA\r", T0)
            done += 1


WORKLOADS: list[tuple[str, Workload, bool]] = [
    ("ingest 1 msg/tx", ingest_one_per_tx, False),
    ("ingest 16 msg/tx, savepoints", ingest_savepoints, False),
    ("ingest 16 msg/tx, bulk", ingest_bulk, False),
    ("deliver FIFO (claim 1 + mark)", deliver_fifo, True),
    ("deliver per-patient (claim 8 + marks)", deliver_per_patient, True),
]


class Backends:
    """Fresh stores for each round: a new SQLite file, or an emptied scratch database."""

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="accord-bench-store-")
        self.pg_name = f"accord_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.pg_url: str | None = None
        try:
            with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.pg_name)))
            self.pg_url = ADMIN_URL.rsplit("/", 1)[0] + "/" + self.pg_name
        except psycopg.Error as exc:
            print(f"PostgreSQL unavailable, SQLite only: {exc}", file=sys.stderr)
        self.rounds = 0

    def names(self) -> list[str]:
        return ["sqlite"] + (["postgresql"] if self.pg_url else [])

    def fresh(self, name: str) -> SqlStore:
        self.rounds += 1
        if name == "sqlite":
            store = open_store(sqlite_url(Path(self.tmp.name) / str(self.rounds)))
        else:
            assert self.pg_url is not None
            store = open_store(self.pg_url)
            with store.database.engine.begin() as conn:
                conn.exec_driver_sql(
                    "TRUNCATE messages, message_keys, dedupe, outbox RESTART IDENTITY CASCADE"
                )
        assert isinstance(store, SqlStore)
        return store

    def close(self) -> None:
        self.tmp.cleanup()
        if self.pg_url:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(self.pg_name)
                    )
                )


def measure(backends: Backends, backend: str, work: Workload, prefill: bool, n: int) -> float:
    store = backends.fresh(backend)
    try:
        if prefill:
            _fill_outbox(store, n)
        start = time.perf_counter()
        work(store, n)
        return n / (time.perf_counter() - start)
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages, one round")
    args = parser.parse_args()
    n, rounds = (160, 1) if args.quick else (800, 3)
    backends = Backends()
    try:
        for r in range(rounds):
            floor = raw_sqlite_floor(Path(backends.tmp.name) / "floor.db", n)
            results_samples.setdefault(("floor", "sqlite"), []).append(floor)
            print(f"round {r + 1} sqlite3    bare insert 1/tx (peer)  {floor:8.0f}/s")
            for label, work, prefill in WORKLOADS:
                for backend in backends.names():  # peers side by side, interleaved
                    rate = measure(backends, backend, work, prefill, n)
                    results_samples.setdefault((label, backend), []).append(rate)
                    print(f"round {r + 1} {backend:10} {label:40} {rate:8.0f}/s", flush=True)
    finally:
        backends.close()
    table = _table(backends.names(), n, rounds)
    print(table)
    write_section("store", table)


results_samples: dict[tuple[str, str], list[float]] = {}


def _table(names: list[str], n: int, rounds: int) -> str:
    head = "| workload | " + " | ".join(f"{b} /s" for b in names) + " |"
    lines = [
        "## Store (`bench/store.py`)",
        "",
        f"{n} messages or rows per round, one thread, median of {rounds} round(s); SQLite in "
        "WAL with synchronous=FULL (an fsync per commit), PostgreSQL 15 on the same "
        "2-core machine (default fsync on). Noisy: other work shares the cores "
        f"(1-minute load average at the end of the run: {os.getloadavg()[0]:.1f}).",
        "",
        head,
        "|---|" + "---:|" * len(names),
    ]
    for label, _, _ in WORKLOADS:
        rates = [statistics.median(results_samples[(label, b)]) for b in names]
        lines.append(f"| {label} | " + " | ".join(f"{r:,.0f}" for r in rates) + " |")
    base = {b: statistics.median(results_samples[(WORKLOADS[0][0], b)]) for b in names}
    bulk = {b: statistics.median(results_samples[(WORKLOADS[2][0], b)]) for b in names}
    floor = statistics.median(results_samples[("floor", "sqlite")])
    lines.append(
        f"| peer: bare `sqlite3`, one 1 KB insert per transaction (WAL, FULL) | {floor:,.0f} |"
        + " – |" * (len(names) - 1)
    )
    lines.append("")
    lines.append(
        "Group commit gain (bulk 16/tx vs 1/tx): "
        + ", ".join(f"{b} ×{bulk[b] / base[b]:.1f}" for b in names)
        + "."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
