"""The applier: messages answered on store are applied from the inbox, in arrival order.

Ingest answers a message in enhanced mode (HL7 v2.5 §2.9.3) CA, or one in original mode
AA with ``mllp.ack: on_store``, once its raw bytes, its dedupe claim and its inbox row
are durable (:mod:`accord.engine.ingest`). The applier does the rest: the processor
(the workflow), the outbound messages, and the application ACK MSH-16 asks for.

Rules:
- Arrival order: the oldest inbox rows first (message id order), one batch at a time,
  as large as the backlog allows up to ``batch``; one transaction (one fsync) per batch.
  A batch commits early once it has run ``hold`` seconds while ingest is busy (what is
  left waits for the next batch), so CAs do not wait behind it; before each batch the
  applier waits (up to ``YIELD_SECONDS``) for a gap in the senders' traffic, or, once
  the backlog has grown old (``CATCH_UP_SECONDS``), only for ingest's commit in hand.
- One applier across nodes: a batch is applied only while this node holds the ``apply``
  job lock (``Store.try_job_lock``), so arrival order, and with it each patient's order,
  is kept. A node that takes over starts from the oldest row left.
- Exactly once: a message's inbox row is deleted in the SAME transaction as its workflow
  changes, outbox rows and outcome (``Tx.inbox_remove``); a row already gone (applied by
  a node whose lease ran out meanwhile) is skipped.
- One transaction per batch, no savepoint per message (fast path): the messages are
  applied one after another, then their inbox rows taken, their records completed
  (header and search keys, status, outcome: what ingest left for later) and their
  outbox rows queued with one statement per table. When anything is out of the
  ordinary (a message raises, an inbox row is gone) the batch is rolled back to its one
  savepoint and redone one message at a time, each in its own savepoint (slow path).
- One message's failure never stalls the rest: on the slow path a message that raises
  is undone, stored as ``error`` (the error queue) with the reason, and its inbox row
  removed in the same transaction; the others apply.
- Application ACKs (§2.9.3.2, table 0155): MSH-16 AL always, ER only when not applied
  (AE/AR), SU only when applied (AA), NE never; the ACK (MSA-2 = the message's MSH-10)
  is queued in the outbox to the destination ``mllp.application_acks`` names for the
  sender, in the same transaction.
- On start the applier drains what is waiting (a crash may have left a backlog); then it
  is woken by ingest's commits, and looks every ``poll`` seconds anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime

from accord.clock import Clock, ControlIds
from accord.engine.processor import Outcome, Processor, encode_like
from accord.engine.records import internal, record_of
from accord.errors import AccordError, ParseError
from accord.hl7 import Message, parse
from accord.hl7.ack import AckError, application_ack_text, application_ack_wanted
from accord.store import (
    InboundMessage,
    JsonDict,
    MessageStatus,
    OutboxItem,
    Store,
    StoredMessage,
    Tx,
    committing_as,
)

log = logging.getLogger(__name__)

JOB = "apply"
THREAD = "accord-apply"
BATCH = 500
"""Most messages applied in one transaction (bounds how long a batch holds the writer)."""

FIRST_FETCH = 16
"""Rows read by the first batch; later ones read about twice what the last applied."""
MIN_FETCH = 4

HOLD_SECONDS = 0.05
"""A batch takes no more messages once it has run this long while ingest waits to
commit: ingest's commits, and so the CAs, never wait long for the write lock (SQLite
has one writer)."""

IDLE_HOLD_SECONDS = 1.0
"""The longest a batch runs when ingest has nothing to commit (draining a backlog)."""

LEASE_SECONDS = 15.0
"""How long the ``apply`` lease lasts without renewal (SQLite; PostgreSQL frees it when
the holder's session ends). A node killed holding it delays the next by at most this."""

YIELD_SECONDS = 0.5
"""Once the backlog is old (``CATCH_UP_SECONDS``), how long the applier waits before a
batch while ingest has messages to commit. Retrying at once after each batch starved
ingest: SQLite's busy handler sleeps up to 100 ms between tries (measured: CA p99 over
5 s)."""

CATCH_UP_SECONDS = 5.0
"""While the oldest message waiting is younger than this, the applier waits for a gap in
the senders' traffic before each batch (a sender waits for its answer before it sends
again, so there are gaps): the CAs go first, and a burst shares neither the GIL nor the
write lock with the workflow (applying one batch every half second during a burst
took ~40% of the server's GIL time, measured). Once it is older, the applier waits only
while ingest has a commit in hand: under a steady load the backlog's age stays bounded."""

GAP_POLL_SECONDS = 0.01
"""How often the applier looks for a gap (``ACTIVE_SECONDS`` of ingest is 50 ms)."""

POLL_SECONDS = 1.0
"""How often an idle applier looks anyway (another node's ingest does not wake it)."""

APPLICATION_ACK_CONDITIONS = ("AL", "ER", "SU")


@dataclass(slots=True)
class ApplierStats:
    """Counters for metrics: messages applied, batches committed, messages in error,
    batches redone one message at a time."""

    applied: int = 0
    batches: int = 0
    errors: int = 0
    slow_batches: int = 0


class _SlowPath(Exception):
    """The fast path cannot take this batch: roll it back, redo it one at a time."""


AckRoute = Callable[[str, str], str | None]
"""MSH-3, MSH-4 to the destination of the sender's application ACKs (None: none)."""


class Applier:
    """Drains the inbox (see the module rules). ``wake()`` on the event loop after a
    commit; ``start()`` / ``stop()`` run and stop its task."""

    def __init__(self, store: Store, clock: Clock, control_ids: ControlIds,
                 processor: Processor, node: str, *, ack_route: AckRoute,
                 batch: int = BATCH, hold: float = HOLD_SECONDS,
                 poll: float = POLL_SECONDS,
                 notify: Callable[[], None] | None = None,
                 ingest_busy: Callable[[], bool] | None = None,
                 ingest_active: Callable[[], bool] | None = None) -> None:
        self._store = store
        self._clock = clock
        self._ids = control_ids
        self._processor = processor
        self._node = node
        self._ack_route = ack_route
        self._batch = batch
        self._fetch = min(FIRST_FETCH, batch)  # rows read per batch (see apply_batch)
        self._hold = hold
        self._poll = poll
        self._notify = notify  # told after each batch commits (wakes the delivery workers)
        self._ingest_busy = ingest_busy  # ingest has messages to commit: let it go first
        self._ingest_active = ingest_active or ingest_busy  # senders are still sending
        self._renewed = float("-inf")  # when the lease was last taken or renewed
        # Monotonic time no later than the arrival of the oldest message waiting: the
        # last one applied arrived then (a message waiting arrived after it), or the
        # inbox was found empty then. -inf at start: a backlog left by a crash is old.
        self._arrived = float("-inf")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Its own named thread: batches run one at a time, and a thread dump (or a test's
        # fault aimed at one commit point) tells the applier's commits from ingest's.
        self._thread: ThreadPoolExecutor | None = None
        self._stopping = threading.Event()
        self.stats = ApplierStats()

    def wake(self) -> None:
        """New messages were stored: look now (call on the event loop)."""
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._thread = ThreadPoolExecutor(1, thread_name_prefix=THREAD)
            self._task = asyncio.create_task(self._run(), name="accord-applier")

    async def stop(self) -> None:
        """Finish the batch in progress, hand the lease back; what waits stays stored."""
        self._stopping.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._thread is not None:
            self._thread.shutdown(wait=False)  # its batch is done: the task awaited it
            self._thread = None
        try:
            await asyncio.to_thread(self._store.release_job_lock, JOB, self._node)
        except Exception as exc:  # the lease then simply runs out
            log.warning("could not hand back the apply lease: %s", exc)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                applied = await asyncio.get_running_loop().run_in_executor(
                    self._thread, self.drain)
            except Exception as exc:  # the store went away: the rows wait for the next round
                log.warning("applying stored messages failed, retried in %g s: %s",
                            self._poll, exc)
                applied = 0
            if applied and self._notify is not None:
                self._notify()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)

    def drain(self) -> int:
        """Blocking: apply batches while the inbox holds messages and this node holds
        the lease; returns how many messages were applied."""
        committing_as("apply")  # what the store's commit faults say (accord.store)
        total = 0
        while not self._stopping.is_set():
            if not self._lease():
                break
            self._let_ingest_first()
            done = self.apply_batch()
            total += done
            if done == 0:
                break
        return total

    def _lease(self) -> bool:
        """Take or renew the ``apply`` lease. SQLite's lease is a write: renewed only
        once a third of it has passed, so it does not compete with ingest per batch."""
        now = time.monotonic()
        if self._store.dialect == "sqlite" and now - self._renewed < LEASE_SECONDS / 3:
            return True
        if self._store.try_job_lock(JOB, self._node, LEASE_SECONDS, self._clock.now()):
            self._renewed = now
            return True
        self._renewed = float("-inf")
        return False

    def _let_ingest_first(self) -> None:
        """While the backlog is young, wait for a gap in the senders' traffic, for as
        long as it stays younger than ``CATCH_UP_SECONDS``; once it is old, wait (up to
        ``YIELD_SECONDS``) only while ingest has a commit in hand."""
        active = self._ingest_active
        if active is not None:
            # The oldest message waiting arrived no earlier than ``_arrived``.
            old_at = self._arrived + CATCH_UP_SECONDS
            while active():
                if time.monotonic() >= old_at:
                    break
                time.sleep(GAP_POLL_SECONDS)
            else:
                return  # a gap: the senders wait for answers, the applier may go
        busy = self._ingest_busy
        if busy is None:
            return
        deadline = time.monotonic() + YIELD_SECONDS
        while busy() and time.monotonic() < deadline:
            time.sleep(0.002)

    def apply_batch(self) -> int:
        """Blocking: one transaction applying the oldest waiting messages, up to
        ``batch``; returns how many it took out of the inbox."""
        started = time.monotonic()
        with self._store.transaction() as tx:
            waiting = tx.inbox_oldest(self._fetch)
            try:
                with tx.savepoint():
                    seen = self._apply_fast(tx, waiting, started)
                taken = len(seen)
            except _SlowPath:
                self.stats.slow_batches += 1
                seen, taken = self._apply_slow(tx, waiting, started)
        # Read next time about what a batch applies: twice this one, at least a few.
        self._fetch = min(self._batch, max(2 * len(seen), MIN_FETCH))
        if seen:
            lag = (self._clock.now() - seen[-1].received_at).total_seconds()
            self._arrived = time.monotonic() - max(lag, 0.0)
        elif taken == 0:
            self._arrived = time.monotonic()  # nothing waits: the next one arrives later
        if taken:
            self.stats.batches += 1
            self.stats.applied += taken
        return taken

    def _held_enough(self, elapsed: float) -> bool:
        """Commit now: past ``hold`` while ingest is given way to, or past
        ``IDLE_HOLD_SECONDS`` anyway."""
        if elapsed <= self._hold:
            return False
        busy = self._ingest_waits()
        return elapsed > IDLE_HOLD_SECONDS or (busy is not None and busy())

    def _ingest_waits(self) -> Callable[[], bool] | None:
        """What the applier gives way to: senders still sending while the backlog is
        young, only ingest's commit in hand once it is old."""
        young = time.monotonic() - self._arrived < CATCH_UP_SECONDS
        return self._ingest_active if young else self._ingest_busy

    # -- fast path: the batch at once ------------------------------------------------
    def _apply_fast(self, tx: Tx, waiting: list[StoredMessage],
                    started: float) -> list[StoredMessage]:
        """Apply messages in order until the batch has held the writer long enough,
        then write their records, outbox rows and inbox removals with one statement per
        table; returns the messages applied. Raises :class:`_SlowPath` (the caller rolls
        back) at the first surprise."""
        now = self._clock.now()
        seen: list[StoredMessage] = []
        applied: list[tuple[int, InboundMessage]] = []
        items: list[OutboxItem] = []
        for stored in waiting:
            seen.append(stored)
            try:
                msg = parse(stored.raw)
                outcome = self._processor.process(msg, tx, stored.received_at)
            except Exception:
                raise _SlowPath from None
            record, routed = self._outcome(stored, msg, outcome, now)
            applied.append((stored.id, record))
            items += routed
            if self._held_enough(time.monotonic() - started):
                break
        if not tx.inbox_take([stored.id for stored in seen]):
            raise _SlowPath  # some were applied meanwhile by another node
        tx.record_applied(applied)
        if items:
            tx.enqueue(items, now)
        return seen

    # -- slow path: one message at a time ----------------------------------------------
    def _apply_slow(self, tx: Tx, waiting: list[StoredMessage],
                    started: float) -> tuple[list[StoredMessage], int]:
        """The batch again, each message in its own savepoint; returns the messages
        looked at and how many were taken out of the inbox."""
        seen: list[StoredMessage] = []
        taken = 0
        for stored in waiting:
            seen.append(stored)
            taken += self._apply_one(tx, stored)
            if self._held_enough(time.monotonic() - started):
                break
        return seen, taken

    def _apply_one(self, tx: Tx, stored: StoredMessage) -> bool:
        now = self._clock.now()
        try:
            with tx.savepoint():
                if not tx.inbox_remove(stored.id):
                    return False  # applied meanwhile by the node that held the lease
                msg = parse(stored.raw)
                outcome = self._processor.process(msg, tx, stored.received_at)
                record, items = self._outcome(stored, msg, outcome, now)
                tx.record_applied([(stored.id, record)])
                if items:
                    tx.enqueue(items, now)
            return True
        except Exception as exc:
            self.stats.errors += 1
            with tx.savepoint():
                if not tx.inbox_remove(stored.id):
                    return False
                self._failed(tx, stored, exc, now)
            return True

    def _outcome(self, stored: StoredMessage, msg: Message, outcome: Outcome,
                 now: datetime) -> tuple[InboundMessage, list[OutboxItem]]:
        """The message's completed record and what it sends (its outbox rows and the
        application ACK MSH-16 asks for)."""
        items = [replace(i, source_message_id=stored.id) for i in outcome.outbox]
        error = outcome.error
        if error is None:
            record = self._record(stored, msg, "processed", outcome.detail)
            code = "AA"
        else:  # applied as far as it goes (writes kept), refused like ingest refuses
            code = "AR" if error.ack_code == "AR" else "AE"
            record = self._record(stored, msg, _status_of(code),
                                  {**outcome.detail, **_error_detail(error)})
        items += self._application_ack(stored, msg, code, error, now)
        return record, items

    @staticmethod
    def _record(stored: StoredMessage, msg: Message, status: MessageStatus,
                outcome: JsonDict) -> InboundMessage:
        """The record of an applied message: its header keys and, unless it was stored
        with them, its search keys."""
        record = record_of(msg, stored.raw, stored.received_at, stored.peer, stored.listener)
        if stored.patient_ids or stored.accessions:
            record = replace(record, patient_ids=(), accessions=())
        return replace(record, status=status, outcome=outcome)

    def _failed(self, tx: Tx, stored: StoredMessage, exc: Exception, now: datetime) -> None:
        """The message raised: nothing of it was kept; stored as ``error`` (AR when it is
        refused outright), in the error queue unless refused."""
        msg: Message | None = None
        with contextlib.suppress(ParseError):
            msg = parse(stored.raw)
        err = exc if isinstance(exc, AccordError) else internal(exc, stored)
        code = "AR" if err.ack_code == "AR" else "AE"
        log.info("%s %s not applied: %s at %s", stored.message_type, stored.control_id,
                 code, err.location or "-")
        if msg is None:
            tx.record_outcome(stored.id, _status_of(code), _error_detail(err))
            return
        tx.record_applied([(stored.id, self._record(stored, msg, _status_of(code),
                                                    _error_detail(err)))])
        items = self._application_ack(stored, msg, code, err, now)
        if items:
            tx.enqueue(items, now)

    def _application_ack(self, stored: StoredMessage, msg: Message, code: str,
                         error: AccordError | None, now: datetime) -> list[OutboxItem]:
        """The application ACK MSH-16 asks for, to the sender's configured destination."""
        condition = msg.get("MSH-16")
        if condition not in APPLICATION_ACK_CONDITIONS or not application_ack_wanted(msg,
                                                                                    code):
            return []
        destination = self._ack_route(stored.sending_app, stored.sending_facility)
        if destination is None:
            log.warning("no application ACK destination for sender %s^%s "
                        "(mllp.application_acks)", stored.sending_app,
                        stored.sending_facility)
            return []
        control_id = self._ids.next()
        text = application_ack_text(
            msg, code, now=now, control_id=control_id,
            error=AckError.from_exception(error) if error is not None else None)
        return [OutboxItem(destination=destination, payload=encode_like(text, msg),
                           control_id=control_id, kind="ack",
                           source_message_id=stored.id)]


def _status_of(code: str) -> MessageStatus:
    return "rejected" if code == "AR" else "error"


def _error_detail(err: AccordError) -> JsonDict:
    return {"error": str(err), "location": err.location, "error_code": err.error_code}
