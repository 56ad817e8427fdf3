"""The durable store: one narrow interface, two databases (SQLite embedded, PostgreSQL).

This module is the port the engine sees: :class:`Store` and :class:`Tx` (the message
gateway: inbound messages, dedupe, outbox, error queue, job locks) and
:func:`open_store`. Behind it, by concept:

- ``records.py``: the values that go in and out, and the port's errors;
- ``db/``: engines (``sqlite.py``, ``postgres.py``), the :class:`~accord.store.db.Database`
  every SQL part is built on, pinned write connections, compiled statements, paging,
  text cleaning, upserts;
- ``schema/``: the tables by area, and ``migrations/``;
- ``gateway/``: :class:`~accord.store.gateway.store.SqlStore` (this port) and its SQL:
  messages, outbox, delivery runs, bulk writes, queues, job locks;
- ``workflow/``: the order repository the engine saves through (with its statements,
  codec, field statistics and the worklist changes it tells after a commit), the DICOM
  bridge's reads, the procedure code tables, the bulk loader of a store at age;
- ``views/``: the one read model of the console and the JSON API;
- ``accounts/``: users, sessions, API tokens, login attempts, the audit log.

The composition root (``accord.runtime``) opens the store and builds the other parts on
its ``database``; nothing outside this package reaches SQL any other way.

Rules:
- Persist, then acknowledge: ingest writes the raw message, its outcome, the dedupe claim
  and the outbox rows in ONE :meth:`Store.transaction`; the ACK goes out after it exits.
  A message answered on store writes its raw bytes, its dedupe key and claim and an
  inbox row instead; the applier later completes its record (:meth:`Tx.record_applied`),
  writes its outbox rows and deletes the inbox row in ONE transaction
  (:meth:`Tx.inbox_take`, :meth:`Tx.inbox_remove`).
- Nothing outside ``accord.store`` imports SQLAlchemy. Database failures surface as
  :class:`accord.errors.StoreError` (answer AE / retry later; nothing was committed).
- All times are timezone-aware UTC and are passed in (``now``): the store never reads
  the clock, so tests drive it with a FixedClock.
- Additive changes only: ingest, delivery, the console and the workflow build on this.

Usage::

    store = open_store(sqlite_url("./accord-data"))      # or "postgresql://host/db"
    with store.transaction() as tx:
        for msg in waiting:                              # group commit
            with tx.savepoint():                         # one message's failure is isolated
                first = tx.find_first(app, fac, control_id)
                ...
    rows = store.claim("pacs", node="n1", now=now, lease_seconds=60, limit=1)
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from accord.errors import StoreError
from accord.store.db.commit_faults import CommitFault, committing_as
from accord.store.records import (
    MESSAGE_STATUSES,
    OUTBOX_STATUSES,
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

if TYPE_CHECKING:
    from accord.store.gateway.store import SqlStore

__all__ = [
    "MESSAGE_STATUSES",
    "OUTBOX_STATUSES",
    "CommitFault",
    "ErrorEntry",
    "InboundMessage",
    "InvalidStateError",
    "JsonDict",
    "MessageStatus",
    "NotFoundError",
    "OutboxItem",
    "OutboxRow",
    "OutboxStatus",
    "Page",
    "Store",
    "StoreError",
    "StoredMessage",
    "Tx",
    "committing_as",
    "open_store",
    "sqlite_url",
]


class Tx(Protocol):
    """A write transaction, committed when the ``with store.transaction()`` block exits
    normally and rolled back when it raises."""

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested transaction: if the block raises, only its writes are undone (and the
        exception propagates); the rest of the transaction stays. Group commit wraps each
        message in one so a failing message does not lose the others."""
        ...

    def save_inbound(self, msg: InboundMessage) -> int:
        """Store a received message (raw bytes, header keys, outcome, ACK) and its search
        keys (``patient_ids``, ``accessions``); returns its id. When ``msg.reprocess_of``
        is set, the original is marked ``superseded_by`` this one (it leaves the error
        queue). Does NOT claim the control ID: see :meth:`claim_control_id`."""
        ...

    def find_first(
        self, sending_app: str, sending_facility: str, control_id: str
    ) -> StoredMessage | None:
        """The message that holds the dedupe claim for MSH-3 + MSH-4 + MSH-10, if any.
        A resend is answered with ``first.ack`` and saved with status ``duplicate``."""
        ...

    def claim_control_id(
        self,
        sending_app: str,
        sending_facility: str,
        control_id: str,
        message_id: int,
        *,
        takeover_from: int | None = None,
    ) -> bool:
        """Claim MSH-3 + MSH-4 + MSH-10 for ``message_id``. The UNIQUE constraint decides
        races across connections and nodes: returns False when another message holds the
        claim (the caller undoes its work, e.g. by raising out of its savepoint, and
        answers with :meth:`find_first`'s ACK). On PostgreSQL a concurrent claimer waits
        until the holder commits or rolls back. ``takeover_from``: a reprocess attempt
        moves the claim from the original message so later resends get the new ACK."""
        ...

    def enqueue(self, items: Sequence[OutboxItem], now: datetime) -> list[int]:
        """Add outbox rows (status ``pending``, due ``now``), in order; returns their ids.
        Rows of one destination are delivered in id order (FIFO)."""
        ...

    def save_inbound_many(self, records: Sequence[InboundMessage]) -> list[int]:
        """Group commit's fast path: :meth:`save_inbound` for many messages at once (one
        statement per table); returns their ids in order. No ``reprocess_of`` records."""
        ...

    def claim_control_ids(self, claims: Sequence[tuple[str, str, str, int]], *,
                          keep_usable: bool = True) -> bool:
        """:meth:`claim_control_id` for many ``(MSH-3, MSH-4, MSH-10, message_id)`` at
        once, all or nothing: False when any is already held (nothing claimed; the
        transaction stays usable, so the caller can fall back to one at a time).
        ``keep_usable=False`` is for a caller that rolls back on False: cheaper, and
        the transaction must not be committed after a False."""
        ...

    # -- the inbox: stored, acknowledged, not yet applied (ACK on store) ------------------
    def save_custody_many(self, records: Sequence[InboundMessage]) -> list[int] | None:
        """Group commit's fast path for messages answered on store: each message's
        custody (raw bytes, peer, listener, MSH-3/4/10, status, ACK, outcome; no search
        keys), its dedupe claim and its inbox row, one statement per table; returns
        their ids in order. None when any claim is held already (or appears twice):
        the caller must roll the transaction back, some rows may be written."""
        ...

    def inbox_add(self, waiting: Sequence[tuple[int, datetime]]) -> None:
        """Put stored messages ``(message id, received_at)`` in the inbox, in the
        transaction that stores them; message id order is their arrival order."""
        ...

    def inbox_oldest(self, limit: int) -> list[StoredMessage]:
        """The ``limit`` oldest messages in the inbox, oldest first."""
        ...

    def inbox_remove(self, message_id: int) -> bool:
        """Take a message out of the inbox in the transaction that applies it (exactly
        once); False when it was no longer there (another applier applied it)."""
        ...

    def record_outcome(self, message_id: int, status: MessageStatus,
                       outcome: JsonDict) -> None:
        """Set a stored message's status and outcome once applied (its ACK is kept)."""
        ...

    def inbox_take(self, message_ids: Sequence[int]) -> bool:
        """:meth:`inbox_remove` for many messages at once: False when any was no longer
        there (some may be taken: the caller rolls back, then takes them one at a time)."""
        ...

    def record_applied(self, applied: Sequence[tuple[int, InboundMessage]]) -> None:
        """Write what applying found, ``(message id, record)``: the record's header keys,
        status and outcome over the stored row (its ACK is kept), and its search keys
        (``patient_ids``, ``accessions``) added. A message answered on store was stored
        with its raw bytes and dedupe key only; this completes its record."""
        ...


class Store(Protocol):
    """The durable store (SQLite or PostgreSQL); safe to share between threads."""

    dialect: str
    """``"sqlite"`` or ``"postgresql"``."""

    def transaction(self) -> AbstractContextManager[Tx]:
        """A write transaction (SQLite: ``BEGIN IMMEDIATE``). Commit at exit; a commit
        that fails raises StoreError and nothing of the block is kept. Use only ``tx``
        inside the block: other Store methods run on their own connection and, on
        SQLite, would wait for this transaction's write lock."""
        ...

    def pinned_transaction(self, *, wait: bool = True) -> AbstractContextManager[Tx]:
        """:meth:`transaction` on a connection the calling thread keeps between calls
        (ingest's one writer thread): no pool checkout, reset and checkin per commit.
        After any failure the connection is closed and a new one taken next time.
        ``wait=False`` (SQLite; elsewhere ignored): if another writer holds the lock,
        raise :class:`~accord.errors.StoreBusy` at once, having done nothing."""
        ...

    # -- inbound messages -------------------------------------------------------------
    def get_message(self, message_id: int) -> StoredMessage:
        """One stored message; raises NotFoundError."""
        ...

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
        """Messages matching every given filter, newest first, keyset-paginated.
        ``sender`` is MSH-3, ``"MSH-3^MSH-4"``, or ``"-"`` for input without an MSH-3;
        ``message_type`` matches MSH-9 exactly (``"ORM^O01"``) or its message code alone
        (``"ORM"``); ``status`` one status or several; ``ack_code`` the answer sent (AA,
        AE, AR, CA, CE, CR); ``since`` is inclusive, ``until`` exclusive
        (``received_at``). ``limit`` is capped at 1000."""
        ...

    def reprocess_message(self, message_id: int) -> StoredMessage:
        """The error-queue message to run through ingest again (status ``error`` or
        ``rejected``, not yet superseded). Ingest saves the new attempt with
        ``reprocess_of=message_id``; raises NotFoundError / InvalidStateError."""
        ...

    # -- outbox -----------------------------------------------------------------------
    def claim(
        self,
        destination: str,
        node: str,
        now: datetime,
        lease_seconds: float,
        limit: int = 1,
        per_patient: bool = False,
    ) -> list[OutboxRow]:
        """Hand out rows to deliver, marked ``in_flight`` for ``node`` until
        ``now + lease_seconds``. FIFO per destination: only the oldest unfinished row
        (pending or in flight) may be handed out, once due (``next_attempt_at <= now``).
        ``per_patient``: the oldest unfinished row of each ``patient_key`` instead, up to
        ``limit``, so one patient's rows are never two in flight and never overtake
        (rows with an empty ``patient_key`` form one queue of their own).
        A row whose lease expired is handed out again (takeover after a node died);
        PostgreSQL claims with ``FOR UPDATE SKIP LOCKED`` so nodes never share a row."""
        ...

    def mark_delivered(self, row_id: int, node: str, ack: bytes, now: datetime) -> bool:
        """AA received: ``delivered``. False (and nothing changed) when ``node`` no longer
        holds the row (its lease was taken over)."""
        ...

    def mark_retry(self, row_id: int, node: str, error: str, next_attempt_at: datetime) -> bool:
        """Transient failure: back to ``pending``, due at ``next_attempt_at`` (it stays at
        the head of its queue). False when ``node`` no longer holds the row."""
        ...

    def claim_run(
        self, destination: str, node: str, now: datetime, lease_seconds: float, limit: int
    ) -> list[OutboxRow]:
        """FIFO delivery of several rows per claim: the first ``limit`` rows of the queue,
        from its head, stopping at the first that is not claimable now; all ``in_flight``
        for ``node``. Send them in order; record AAs with :meth:`mark_delivered_many` and
        give back what was not sent with :meth:`release_many`."""
        ...

    def mark_delivered_many(
        self, acks: Sequence[tuple[int, bytes]], node: str, now: datetime
    ) -> int:
        """:meth:`mark_delivered` for many ``(row_id, ack)`` in one transaction; rows
        ``node`` no longer holds are left alone. Returns how many were marked."""
        ...

    def settle_and_claim_run(
        self, acks: Sequence[tuple[int, bytes]], destination: str, node: str, now: datetime,
        lease_seconds: float, limit: int,
    ) -> tuple[int, list[OutboxRow]]:
        """:meth:`mark_delivered_many` of the run just sent, then :meth:`claim_run` of the
        next, in one transaction: a worker that keeps up commits once a run, not twice.
        Returns how many were marked and the rows claimed."""
        ...

    def release_many(self, row_ids: Sequence[int], node: str) -> int:
        """Give claimed rows back unsent: ``pending`` again, the claim not counted as an
        attempt. Only rows ``node`` still holds. Returns how many."""
        ...

    def mark_error(self, row_id: int, node: str, error: str, ack: bytes | None) -> bool:
        """Failed for good (AR/CR, or AE past the retry policy): ``error`` (the error
        queue); the queue moves on. False when ``node`` no longer holds the row."""
        ...

    def rotate(self, row_id: int, node: str, error: str, now: datetime) -> int | None:
        """Move a failing row behind its queue so it cannot block it forever: the row
        becomes ``cancelled`` (``last_error`` records why) and a copy (same payload and
        MSH-10, ``rotated_from`` set) is enqueued at the tail. Returns the new id, or None
        when ``node`` no longer holds the row."""
        ...

    def reprocess_outbox(self, row_id: int, now: datetime) -> int:
        """Send an ``error`` (or ``cancelled``) row again: a new pending row with the same
        payload and MSH-10, ``reprocess_of`` the original (which leaves the error queue).
        Raises NotFoundError / InvalidStateError."""
        ...

    def get_outbox(self, row_id: int) -> OutboxRow:
        """One outbox row; raises NotFoundError."""
        ...

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
        """Outbox rows matching every given filter, newest first (or oldest first):
        ``status`` one or several, ``accession`` the order a row is about,
        ``delivered_since`` (inclusive) / ``delivered_until`` (exclusive) the delivery
        time (the dashboard's delivered figure lists these rows), ``current`` only rows
        not superseded by a resend."""
        ...

    def error_queue(self, *, cursor: str | None = None, limit: int = 100) -> Page[ErrorEntry]:
        """Inbound messages with status ``error`` and outbox rows with status ``error``
        that have not been reprocessed, newest first."""
        ...

    def stats(self) -> dict[str, int]:
        """Counts for the whole store (all nodes): ``messages``, ``processed``,
        ``errors`` (error queue, inbound), ``rejected``, ``duplicates``,
        ``outbox_pending``, ``outbox_in_flight``, ``outbox_delivered``, ``outbox_error``
        (error queue, outbound), ``outbox_cancelled``."""
        ...

    def backlog(self) -> tuple[int, datetime | None]:
        """The inbox: how many messages are stored but not yet applied, and when the
        oldest of them was received (None when it is empty)."""
        ...

    def queue_depth(self) -> dict[tuple[str, str], int]:
        """Outbox rows per ``(destination, status)`` for the statuses an operator
        watches: waiting (``pending``, ``in_flight``) and the error queue (``error``,
        not yet reprocessed). One indexed GROUP BY, cheap enough for every scrape."""
        ...

    # -- housekeeping ---------------------------------------------------------------------
    def prune(self, older_than: datetime, block_size: int = 1000) -> int:
        """Retention: delete messages received before ``older_than`` with their search
        keys, dedupe claims and finished outbox rows, ``block_size`` per short
        transaction; returns how many messages were deleted. Never deletes a message
        that still has an outbox row pending, in flight or in error, one in the error
        queue, nor one still in the inbox (not yet applied). Consequence: once a message
        is pruned its MSH-10 claim is gone, so a resend of it after retention is applied
        again."""
        ...

    def try_job_lock(self, name: str, node: str, ttl_seconds: float, now: datetime) -> bool:
        """Take (or renew) background job ``name`` for ``node``; False when another node
        holds it. Run pruning/reconciliation only while this returns True. SQLite: a lease
        row until ``now + ttl_seconds``. PostgreSQL: a session advisory lock held until
        released, the store closed, or the node's session lost (``store/db/postgres.py``)."""
        ...

    def release_job_lock(self, name: str, node: str) -> None:
        """Give the job back now (only if ``node`` holds it through this store)."""
        ...

    def ping(self) -> bool:
        """True when the database answers (health checks)."""
        ...

    def close(self) -> None:
        """Release every connection."""
        ...


def sqlite_url(data_dir: str | Path) -> str:
    """The URL of the embedded store in a data directory: ``<data_dir>/accord.db``."""
    return f"sqlite:///{Path(data_dir).resolve() / 'accord.db'}"


def open_store(url: str) -> SqlStore:
    """Open (and migrate to the latest schema) the store at ``url``:
    ``sqlite:///path/accord.db`` or ``postgresql://user@host:port/db``. Several nodes may
    open one PostgreSQL database at once: migrations run under an advisory lock.

    The engine sees it as a :class:`Store`; the composition root (``accord.runtime``)
    also builds the store's other parts (workflow, views, accounts) on its
    ``database``."""
    from accord.store.gateway.store import SqlStore

    return SqlStore.open(url)
