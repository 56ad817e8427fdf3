"""Reference servers for bench/ingest.py: what a durable ACK costs in CPython here.

Run as ``python bench/_ingest_refs.py floor|record PORT DB``. Both are the least code
that answers MLLP after a durable SQLite commit (WAL, synchronous=FULL), with an asyncio
Protocol and group commit in one thread; neither checks, routes, dedupes or survives
a resend, so neither is a peer. They bound what any server can do on this machine:

- ``floor``: MSH-10 cut out of the bytes, (raw, MSH-10) inserted into one table with
  no index: the least a durable ACK can cost.
- ``record``: the record Accord keeps of every message, written with raw ``sqlite3`` into
  Accord's own schema (DB must be a migrated Accord store): the message row with its
  header keys, ACK and outcome (5 indexes), the PID-3 / accession search keys, and the
  MSH-3 + MSH-4 + MSH-10 dedupe claim; parsed with ``accord.hl7`` and answered with
  ``ack_text``. What the record itself costs, without SQLAlchemy, dataclasses, the
  metrics or the error paths.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import sqlite3
import sys
import threading
from collections.abc import Callable
from typing import Any

SB, END = b"\x0b", b"\x1c\x0d"
FLOOR_ACK = b"MSH|^~\\&|FLOOR||||||ACK|1|P|2.5\rMSA|AA|"
MESSAGE_COLUMNS = ("received_at", "peer", "listener", "raw", "charset", "sending_app",
                   "sending_facility", "receiving_app", "receiving_facility", "message_type",
                   "control_id", "version", "parse_error", "status", "ack_code", "ack",
                   "outcome", "duplicate_of", "reprocess_of")
INSERT_MESSAGE = (f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) "
                  f"VALUES ({', '.join('?' * len(MESSAGE_COLUMNS))})")

Item = tuple[Any, bytes, asyncio.Transport]  # (what the writer stores, ACK, where to)


def connect(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
        db.execute(f"PRAGMA {pragma}")
    return db


def floor_item(raw: bytes) -> tuple[Any, bytes]:
    cid = raw.split(b"\r", 1)[0].split(b"|")[9]
    return (raw, cid), FLOOR_ACK + cid + b"\r"


def floor_store(db: sqlite3.Connection, stored: list[Any]) -> None:
    db.executemany("INSERT INTO m (raw, cid) VALUES (?, ?)", stored)


def record_item(raw: bytes) -> tuple[Any, bytes]:
    from accord.engine.records import accessions, patient_identifiers
    from accord.hl7 import parse
    from accord.hl7.ack import ack_text

    msg = parse(raw)
    now = datetime.datetime.now(datetime.UTC)
    ack = ack_text(msg, "AA", now=now, control_id="REF1").encode()
    app, fac, cid = msg.get("MSH-3"), msg.get("MSH-4"), msg.get("MSH-10")
    row = (now.strftime("%Y-%m-%d %H:%M:%S.%f"), "127.0.0.1", "mllp", raw, msg.charset,
           app, fac, msg.get("MSH-5"), msg.get("MSH-6"), msg.message_type, cid,
           msg.get("MSH-12"), None, "processed", "AA", ack,
           json.dumps({"category": "orders", "routed": []}), None, None)
    keys = sorted({("patient", v) for v in patient_identifiers(msg)}
                  | {("accession", v) for v in accessions(msg)})
    return (row, keys, (app, fac, cid)), ack


def record_store(db: sqlite3.Connection, stored: list[Any]) -> None:
    keys, claims = [], []
    for row, message_keys, claim in stored:
        mid = db.execute(INSERT_MESSAGE, row).lastrowid
        keys += [(mid, kind, value) for kind, value in message_keys]
        claims.append((*claim, mid))
    db.executemany("INSERT INTO message_keys (message_id, kind, value) VALUES (?, ?, ?)",
                   keys)
    db.executemany("INSERT INTO dedupe (sending_app, sending_facility, control_id, "
                   "message_id) VALUES (?, ?, ?, ?)", claims)


class Writer:
    """One thread commits whatever is queued, then the loop sends the ACKs."""

    def __init__(self, db: sqlite3.Connection,
                 store: Callable[[sqlite3.Connection, list[Any]], None]) -> None:
        self.db, self.store = db, store
        self.cond = threading.Condition()
        self.items: list[Item] = []

    def add(self, item: Item) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify()

    def run(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            with self.cond:
                while not self.items:
                    self.cond.wait()
                batch, self.items = self.items, []
            self.db.execute("BEGIN IMMEDIATE")
            self.store(self.db, [stored for stored, _, _ in batch])
            self.db.execute("COMMIT")
            loop.call_soon_threadsafe(answer, batch)


def answer(batch: list[Item]) -> None:
    for _, ack, transport in batch:
        transport.write(SB + ack + END)


class Mllp(asyncio.Protocol):
    def __init__(self, writer: Writer, item: Callable[[bytes], tuple[Any, bytes]]) -> None:
        self.writer, self.item, self.buf = writer, item, b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(END)) >= 0:
            raw, self.buf = self.buf[self.buf.find(SB) + 1:end], self.buf[end + 2:]
            stored, ack = self.item(raw)
            self.writer.add((stored, ack, self.transport))


async def serve(kind: str, port: int, path: str) -> None:
    db = connect(path)
    if kind == "floor":
        db.execute("CREATE TABLE IF NOT EXISTS m (id INTEGER PRIMARY KEY, raw BLOB, cid BLOB)")
        writer, item = Writer(db, floor_store), floor_item
    else:
        writer, item = Writer(db, record_store), record_item
    loop = asyncio.get_running_loop()
    threading.Thread(target=writer.run, args=(loop,), daemon=True).start()
    server = await loop.create_server(lambda: Mllp(writer, item), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
