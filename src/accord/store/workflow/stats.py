"""Field fill statistics of the workflow repository, written once per write transaction.

Why: every message reads its sender's statistics for its message type and writes them
back (one row per watched field). Under group commit that was a SELECT and an upsert of
every watched field per message, ~13% of a message's CPU (py-spy, 8 senders). Now a
write transaction keeps them as they stand after its messages so far and writes the
changed rows in one statement just before it commits.

Rules:
- The stored result is the same as writing per message (each row's last value), in the
  same transaction as the messages that changed it, so durability is unchanged.
- Only outside savepoints. Before a savepoint opens, what is pending is written and the
  kept statistics dropped; inside one, reads and writes go to the database as before. A
  savepoint rolled back (ingest's one-message-at-a-time path) then undoes only what was
  written inside it, and nothing kept in memory is stale.
- A transaction rolled back takes its pending statistics with it.
- Hooked on SQLAlchemy's ``commit``/``savepoint``/``rollback`` events of the engine, the
  only end-of-transaction signal a repository on ingest's connection gets.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, event

from accord.store.db.compiled import Runner
from accord.workflow.findings import FieldStat, FieldStats

Key = tuple[str, str]  # (sender, message type)
Writer = Callable[[Connection, Sequence[Mapping[str, Any]], Runner], None]


class Batch:
    """The statistics of one write transaction on one connection (module rules)."""

    def __init__(self, conn: Connection, write: Writer) -> None:
        self._conn = conn
        self._write = write
        self.kept: dict[Key, FieldStats] = {}  # as they stand in this transaction
        self._pending: dict[tuple[str, str, str], FieldStat] = {}

    def save(self, key: Key, stats: FieldStats) -> None:
        """Keep ``stats`` (one sender, one type) and remember its changed rows."""
        before = self.kept.get(key, FieldStats(key[0])).fields
        sender, message_type = key
        for (mt, path), stat in stats.fields.items():
            if mt == message_type and before.get((mt, path)) != stat:
                self._pending[(sender, mt, path)] = stat
        self.kept[key] = stats

    def write(self) -> None:
        """Write the pending rows (one statement), keep the statistics."""
        if self._pending:
            # In key order: transactions of several nodes lock these rows in one order.
            rows = [{"sender": sender, "message_type": mt, "path": path, "seen": s.seen,
                     "filled": s.filled, "streak": s.streak, "drifting": s.drifting}
                    for (sender, mt, path), s in sorted(self._pending.items())]
            self._pending = {}
            self._write(self._conn, rows, Runner(self._conn))

    def drop(self) -> None:
        self.kept.clear()
        self._pending.clear()


_BATCHES: weakref.WeakKeyDictionary[Connection, Batch] = weakref.WeakKeyDictionary()
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()  # listened to (once per engine)
_LOCK = threading.Lock()  # connections of several threads (ingest, MPPS, console)


def batch_of(conn: Connection, write: Writer) -> Batch | None:
    """The statistics batch of ``conn``'s transaction, or None inside a savepoint or
    outside a transaction (then statistics are read and written at once)."""
    if not conn.in_transaction() or conn.in_nested_transaction():
        return None
    with _LOCK:
        batch = _BATCHES.get(conn)
        if batch is None:
            batch = _BATCHES[conn] = Batch(conn, write)
            if conn.engine not in _ENGINES:  # per engine: listening per connection
                _ENGINES.add(conn.engine)    # cost ~55 us per transaction (measured)
                event.listen(conn.engine, "savepoint", _before_savepoint)
                event.listen(conn.engine, "commit", _before_commit)
                event.listen(conn.engine, "rollback", _on_rollback)
    return batch


def write_pending(conn: Connection) -> None:
    """Write what ``conn``'s transaction keeps pending now: before statistics are read
    or written directly (all message types of a sender at once)."""
    with _LOCK:
        batch = _BATCHES.get(conn)
    if batch is not None:
        batch.write()
        batch.drop()


def _before_savepoint(conn: Connection, _name: str | None) -> None:
    write_pending(conn)


def _before_commit(conn: Connection) -> None:
    with _LOCK:
        batch = _BATCHES.get(conn)
    if batch is not None:
        try:
            batch.write()
        finally:
            batch.drop()


def _on_rollback(conn: Connection) -> None:
    with _LOCK:
        batch = _BATCHES.get(conn)
    if batch is not None:
        batch.drop()
