"""SqlStore: the one implementation of :class:`accord.store.Store`, the message gateway's
port, over SQLAlchemy Core.

Rules:
- The same SQL runs on SQLite and PostgreSQL; what must differ comes from
  ``db/sqlite.py`` (pragmas, BEGIN IMMEDIATE) and ``db/postgres.py`` (row and advisory
  locks).
- Every public method is one short transaction; ingest's group commit uses
  :meth:`SqlStore.transaction` and savepoints. Database errors become StoreError.
- The SQL of each concept lives in its own module (``messages``, ``outbox``, ``runs``,
  ``bulk``, ``queue``, ``job_locks``); this class only opens the transactions.
- The workflow's SQL joins an ingest transaction through :func:`connection_of`, the one
  place that knows a :class:`SqlTx` holds a connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from accord.errors import StoreError
from accord.store.db import Database, connect
from accord.store.db.errors import db_errors
from accord.store.db.pinned import PinnedConnections
from accord.store.db.sanitize import clean_text
from accord.store.gateway import bulk, inbox, queue, runs
from accord.store.gateway import messages as msgs
from accord.store.gateway import outbox as box
from accord.store.gateway.job_locks import JobLocks
from accord.store.records import (
    ErrorEntry,
    InboundMessage,
    InvalidStateError,
    JsonDict,
    MessageStatus,
    NotFoundError,
    OutboxItem,
    OutboxRow,
    OutboxStatus,
    Page,
    StoredMessage,
)
from accord.store.schema import outbox
from accord.store.schema.migrations import upgrade

log = logging.getLogger(__name__)


class SqlTx:
    """A write transaction on one connection (see :class:`accord.store.Tx`).

    ``connection`` is for the store's workflow modules, which run their SQL in the same
    transaction (:func:`connection_of`). Nothing outside ``accord.store`` uses it.

    :meth:`after_commit` keeps what must happen once the transaction's writes are
    durable (the DICOM bridge's worklist is fed the orders it committed): the hooks run
    in order when the transaction commits, never when it rolls back, and those added
    inside a savepoint that rolls back are dropped with its writes.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._after: list[Callable[[], None]] = []

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        mark = len(self._after)
        try:
            with self.connection.begin_nested():
                yield
        except BaseException:
            del self._after[mark:]
            raise

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once this transaction committed (see the class doc)."""
        self._after.append(hook)

    def committed(self) -> None:
        """The transaction committed: run its hooks. One that fails is logged; the
        others still run, and the commit stands."""
        hooks, self._after = self._after, []
        for hook in hooks:
            try:
                hook()
            except Exception:
                log.exception("a hook after commit failed")

    def save_inbound(self, msg: InboundMessage) -> int:
        return msgs.save_inbound(self.connection, msg)

    def find_first(
        self, sending_app: str, sending_facility: str, control_id: str
    ) -> StoredMessage | None:
        return msgs.find_first(self.connection, sending_app, sending_facility, control_id)

    def claim_control_id(
        self,
        sending_app: str,
        sending_facility: str,
        control_id: str,
        message_id: int,
        *,
        takeover_from: int | None = None,
    ) -> bool:
        key = (sending_app, sending_facility, control_id)
        return msgs.claim_control_id(self.connection, key, message_id, takeover_from)

    def enqueue(self, items: Sequence[OutboxItem], now: datetime) -> list[int]:
        return box.enqueue(self.connection, items, now)

    def save_inbound_many(self, records: Sequence[InboundMessage]) -> list[int]:
        return bulk.save_inbound_many(self.connection, records)

    def claim_control_ids(self, claims: Sequence[tuple[str, str, str, int]], *,
                          keep_usable: bool = True) -> bool:
        return bulk.claim_control_ids(self.connection, claims, keep_usable=keep_usable)

    def save_custody_many(self, records: Sequence[InboundMessage]) -> list[int] | None:
        return bulk.save_custody_many(self.connection, records)

    def inbox_add(self, waiting: Sequence[tuple[int, datetime]]) -> None:
        inbox.add(self.connection, waiting)

    def inbox_oldest(self, limit: int) -> list[StoredMessage]:
        return inbox.oldest(self.connection, limit)

    def inbox_remove(self, message_id: int) -> bool:
        return inbox.remove(self.connection, message_id)

    def record_outcome(self, message_id: int, status: MessageStatus,
                       outcome: JsonDict) -> None:
        inbox.record_outcome(self.connection, message_id, status, outcome)

    def inbox_take(self, message_ids: Sequence[int]) -> bool:
        return inbox.take(self.connection, message_ids)

    def record_applied(self, applied: Sequence[tuple[int, InboundMessage]]) -> None:
        inbox.record_applied(self.connection, applied)


class SqlStore:
    """The store on one :class:`~accord.store.db.Database` (SQLite or PostgreSQL).

    ``database`` is what the store's other SQL parts (workflow, views, accounts) are
    built on; the composition root (``accord.runtime``) hands it to them.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self.dialect: str = database.dialect
        self._jobs = JobLocks(database)
        self._pinned = PinnedConnections(database.engine)  # pinned_transaction's, per thread

    @classmethod
    def open(cls, url: str) -> SqlStore:
        """Connect, then upgrade the schema to head (under a lock on PostgreSQL)."""
        database = connect(url)
        store = cls(database)
        try:
            store.migrate()
        except BaseException:
            database.close()
            raise
        return store

    def migrate(self) -> None:
        """Apply pending migrations; idempotent, safe when nodes start together."""
        with self.database.write() as conn:
            if self.dialect == "postgresql":
                from accord.store.db.postgres import lock_migrations

                lock_migrations(conn)
            upgrade(conn)

    def _read(self) -> AbstractContextManager[Connection]:
        return self.database.read()

    def transaction(self) -> AbstractContextManager[SqlTx]:
        return self._transaction()

    @contextmanager
    def _transaction(self, durable: bool = True) -> Iterator[SqlTx]:
        with self.database.write(durable=durable) as conn:
            tx = SqlTx(conn)
            yield tx
        tx.committed()

    def pinned_transaction(self, *, wait: bool = True) -> AbstractContextManager[SqlTx]:
        return self._pinned_transaction(wait)

    @contextmanager
    def _pinned_transaction(self, wait: bool) -> Iterator[SqlTx]:
        with db_errors(), self.database.commits.watch(), \
                self._pinned.transaction(wait) as conn:
            tx = SqlTx(conn)
            yield tx
        tx.committed()

    # -- inbound ---------------------------------------------------------------------
    def get_message(self, message_id: int) -> StoredMessage:
        with self._read() as conn:
            found = msgs.get_message(conn, message_id)
        if found is None:
            raise NotFoundError(f"no message {message_id}")
        return found

    def search_messages(
        self,
        *,
        control_id: str | None = None,
        message_type: str | None = None,
        sender: str | None = None,
        patient_id: str | None = None,
        accession: str | None = None,
        status: MessageStatus | Sequence[MessageStatus] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: str | None = None,
        limit: int = 100,
        ack_code: str | None = None,
    ) -> Page[StoredMessage]:
        where = msgs.message_filters(
            control_id=control_id,
            message_type=message_type,
            sender=sender,
            patient_id=patient_id,
            accession=accession,
            status=status,
            since=since,
            until=until,
            ack_code=ack_code,
        )
        with self._read() as conn:
            return msgs.search(conn, where, cursor, limit)

    def reprocess_message(self, message_id: int) -> StoredMessage:
        found = self.get_message(message_id)
        if found.status not in ("error", "rejected") or found.superseded_by is not None:
            raise InvalidStateError(
                f"message {message_id} is {found.status}"
                + (f", reprocessed as {found.superseded_by}" if found.superseded_by else "")
            )
        return found

    # -- outbox ----------------------------------------------------------------------
    def claim(
        self,
        destination: str,
        node: str,
        now: datetime,
        lease_seconds: float,
        limit: int = 1,
        per_patient: bool = False,
    ) -> list[OutboxRow]:
        lock = None
        if self.dialect == "postgresql":
            from accord.store.db.postgres import lock_claimed

            def lock(stmt: Any) -> Any:
                return lock_claimed(stmt, outbox)

        lease = timedelta(seconds=lease_seconds)
        with self._transaction() as tx:
            return box.claim(tx.connection, destination, node, now, lease, limit, per_patient, lock)

    def mark_delivered(self, row_id: int, node: str, ack: bytes, now: datetime) -> bool:
        values = {"status": "delivered", "last_ack": ack, "delivered_at": now, "lease_until": None}
        with self._transaction() as tx:
            return box.finish(tx.connection, row_id, node, values)

    def mark_retry(self, row_id: int, node: str, error: str, next_attempt_at: datetime) -> bool:
        values = {
            "status": "pending",
            "last_error": clean_text(error),
            "next_attempt_at": next_attempt_at,
            "claimed_by": None,
            "lease_until": None,
        }
        with self._transaction() as tx:
            return box.finish(tx.connection, row_id, node, values)

    def claim_run(
        self, destination: str, node: str, now: datetime, lease_seconds: float, limit: int
    ) -> list[OutboxRow]:
        lease = timedelta(seconds=lease_seconds)
        with self._transaction() as tx:
            return runs.claim_run(tx.connection, destination, node, now, lease, limit)

    def mark_delivered_many(
        self, acks: Sequence[tuple[int, bytes]], node: str, now: datetime
    ) -> int:
        with self._transaction() as tx:
            return runs.mark_delivered_many(tx.connection, acks, node, now)

    def settle_and_claim_run(
        self, acks: Sequence[tuple[int, bytes]], destination: str, node: str, now: datetime,
        lease_seconds: float, limit: int,
    ) -> tuple[int, list[OutboxRow]]:
        lease = timedelta(seconds=lease_seconds)
        # Not durable: lost to a power failure, the run is sent again (at least once).
        with self._transaction(durable=False) as tx:
            marked = runs.mark_delivered_many(tx.connection, acks, node, now)
            return marked, runs.claim_run(tx.connection, destination, node, now, lease, limit)

    def release_many(self, row_ids: Sequence[int], node: str) -> int:
        with self._transaction() as tx:
            return runs.release_many(tx.connection, row_ids, node)

    def mark_error(self, row_id: int, node: str, error: str, ack: bytes | None) -> bool:
        values = {
            "status": "error",
            "last_error": clean_text(error),
            "last_ack": ack,
            "lease_until": None,
        }
        with self._transaction() as tx:
            return box.finish(tx.connection, row_id, node, values)

    def rotate(self, row_id: int, node: str, error: str, now: datetime) -> int | None:
        with self._transaction() as tx:
            return box.rotate(tx.connection, row_id, node, error, now)

    def reprocess_outbox(self, row_id: int, now: datetime) -> int:
        with self._transaction() as tx:
            original = box.get_row(tx.connection, row_id)
            if original is None:
                raise NotFoundError(f"no outbox row {row_id}")
            if original.status not in ("error", "cancelled") or original.superseded_by:
                raise InvalidStateError(
                    f"outbox row {row_id} is {original.status}"
                    + (f", resent as {original.superseded_by}" if original.superseded_by else "")
                )
            return box.reprocess(tx.connection, original, now)

    def get_outbox(self, row_id: int) -> OutboxRow:
        with self._read() as conn:
            found = box.get_row(conn, row_id)
        if found is None:
            raise NotFoundError(f"no outbox row {row_id}")
        return found

    def list_outbox(
        self,
        *,
        destination: str | None = None,
        status: OutboxStatus | Sequence[OutboxStatus] | None = None,
        source_message_id: int | None = None,
        control_id: str | None = None,
        oldest_first: bool = False,
        cursor: str | None = None,
        limit: int = 100,
        accession: str | None = None,
        delivered_since: datetime | None = None,
        delivered_until: datetime | None = None,
        current: bool = False,
    ) -> Page[OutboxRow]:
        where = box.outbox_filters(
            destination=destination,
            status=status,
            source_message_id=source_message_id,
            control_id=control_id,
            accession=accession,
            delivered_since=delivered_since,
            delivered_until=delivered_until,
            current=current,
        )
        with self._read() as conn:
            return box.list_rows(conn, where, oldest_first, cursor, limit)

    def error_queue(self, *, cursor: str | None = None, limit: int = 100) -> Page[ErrorEntry]:
        with self._read() as conn:
            return queue.error_queue(conn, cursor, limit)

    def stats(self) -> dict[str, int]:
        with self._read() as conn:
            return queue.stats(conn)

    def backlog(self) -> tuple[int, datetime | None]:
        with self._read() as conn:
            return inbox.backlog(conn)

    def queue_depth(self) -> dict[tuple[str, str], int]:
        with self._read() as conn:
            return queue.depth(conn)

    # -- housekeeping ----------------------------------------------------------------
    def prune(self, older_than: datetime, block_size: int = 1000) -> int:
        total = self._in_blocks(msgs.prune_block, older_than, block_size)
        self._in_blocks(box.prune_orphans_block, older_than, block_size)
        return total

    def _in_blocks(
        self, step: Callable[[Connection, datetime, int], int], older_than: datetime, size: int
    ) -> int:
        """Run ``step`` in short transactions until a block comes back short."""
        size = max(1, size)
        total = 0
        while True:
            with self._transaction() as tx:
                deleted = step(tx.connection, older_than, size)
            total += deleted
            if deleted < size:
                return total

    def try_job_lock(self, name: str, node: str, ttl_seconds: float, now: datetime) -> bool:
        return self._jobs.try_lock(name, node, ttl_seconds, now)

    def release_job_lock(self, name: str, node: str) -> None:
        self._jobs.release(name, node)

    def ping(self) -> bool:
        try:
            with self._read() as conn:
                conn.execute(text("SELECT 1"))
        except StoreError:
            return False
        return True

    def close(self) -> None:
        self._jobs.close()
        self._pinned.close()
        self.database.close()


def connection_of(tx: object) -> Connection:
    """The connection of a transaction this store opened (an :class:`accord.store.Tx`):
    the store's workflow modules run their SQL on it, inside the same transaction (and
    savepoint) as the gateway's."""
    if not isinstance(tx, SqlTx):
        raise TypeError(f"not a transaction of the SQL store: {type(tx).__name__}")
    return tx.connection
