"""Ingest: every received message is stored, processed and answered in ONE transaction,
or, when answered on store, stored and answered, then applied by the applier.

Rules (the ACK rules of docs/interface.md; HL7 v2.5.1 §2.9.2 original-mode
acknowledgment, §2.9.3 enhanced mode):

1. Persist, then acknowledge. The raw bytes, header keys, parse outcome, processing
   outcome, dedupe claim and outbox rows are written in one store transaction; the ACK
   bytes are handed back only after it committed. If the commit fails nobody gets an ACK
   (the MLLP server closes the connection; the sender resends).
2. Group commit (:mod:`accord.engine.group_commit`). One writer thread takes every
   message waiting and commits them together, so concurrent connections share one fsync,
   on a connection it keeps (``Store.pinned_transaction``). Fast path: each table written
   with one statement for the whole batch. When anything is out of the ordinary (a processor
   error, a resend, a lost dedupe race) that attempt is rolled back and the batch is
   redone one message at a time, each in its own ``tx.savepoint()``, so one message's
   failure touches no other.
3. Every input is stored, whatever its answer: unparseable → ``rejected`` + AR; sender not
   on the allow-list → ``rejected`` + AR; cannot be applied (:class:`ApplyError`) →
   ``error`` + AE with an ERR segment naming the field; resend with the same MSH-3 +
   MSH-4 + MSH-10 → ``duplicate``, answered with the FIRST ACK bytes, applied once.
4. Processing is a seam (:class:`~accord.engine.processor.Processor`).
5. Everything that needs no transaction (parse, search keys, allow-list, the AA answer,
   a processor's ``prepare``: the workflow's mapping) is worked out once per message
   (:meth:`accord.engine.records.Records.prepare`), and a batch redone on the slow path
   reuses it. It runs where the batch commits (the writer thread; the loop for an inline commit),
   not at submit time: on the event loop it made 8 senders ~15% slower (measured), as
   both threads then contend for the GIL while an fsync is in flight. And it runs before
   the transaction begins: on SQLite the write turn is the process's one writer lock,
   which MPPS, delivery and the jobs wait for while a batch holds it.
6. ACK on store. A message in enhanced mode (MSH-15 or MSH-16 valued), or any accepted
   message with ``mllp.ack: on_store``, is not processed here: what custody needs (its
   raw bytes, its dedupe key and claim, its ACK for resends, an inbox row) is committed
   and it is answered CA (AA in original mode) at once; :mod:`accord.engine.applier`
   applies it in arrival order and writes the rest of its record (header and search
   keys, outcome). What is refused (AR) is answered as before.
7. Inline commit (SQLite): a lone message from a sole sender, when the writer is idle,
   commits on the event loop without waiting for any lock (``INLINE_MAX``,
   ``SOLE_SENDER_SECONDS``, :mod:`accord.engine.group_commit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from accord.clock import Clock, ControlIds
from accord.config import Config
from accord.engine.group_commit import GroupCommit, WouldBlock
from accord.engine.processor import Outcome, Processor
from accord.engine.records import Pending, Records, internal
from accord.errors import AccordError, ParseError, StoreBusy
from accord.hl7 import Message, parse
from accord.mllp.server import PeerInfo
from accord.store import InboundMessage, OutboxItem, Store, Tx, committing_as

log = logging.getLogger(__name__)

MAX_BATCH = 500
"""Most messages committed together (bounds the latency of the first one in a batch)."""

SOLE_SENDER_SECONDS = 0.5
"""Inline commits only after this long with one connection alone submitting."""

ACTIVE_SECONDS = 0.05
"""Ingest counts as active (:meth:`Ingestor.active`) this long after a message arrived:
senders waiting for their next answer send again within it, and the applier then waits
for a gap rather than take the GIL and the write lock from their commits."""

INLINE_MAX = 1
"""SQLite: a lone message, when the writer is idle, commits on the event loop (no thread
hand-off; the ``inline`` rule of ``accord.engine.group_commit``): one connection ~10%
faster, eight unchanged (A/B, medians of 4; allowing up to 8 cost eight connections ~8%:
socket work no longer overlapped the fsync). The loop is held for one message's commit (~0.5 ms,
~2 ms with the workflow), never for a network or another writer's lock."""


@dataclass(slots=True)
class IngestStats:
    """Counters for metrics: messages answered, commits (fsyncs), largest batch, and
    batches that needed the one-at-a-time path."""

    messages: int = 0
    commits: int = 0
    failed_commits: int = 0
    largest_batch: int = 0
    slow_batches: int = 0
    duplicates: int = 0  # resends answered with their first ACK (a metric)


@dataclass(frozen=True, slots=True)
class _Planned:
    record: InboundMessage
    claim: bool
    outbox: tuple[OutboxItem, ...] = ()
    inbox: bool = False  # stored now, applied later (ACK on store)


class _SlowPath(Exception):
    """The fast path cannot take this batch: roll it back, redo one at a time."""


class _ClaimLost(Exception):
    """Another message claimed the same MSH-3 + MSH-4 + MSH-10 first (a race)."""


class Ingestor:
    """The MLLP handler: ``await ingestor.handle(payload, peer)`` returns the ACK bytes,
    after the message is durably committed (see the module rules)."""

    def __init__(self, store: Store, clock: Clock, control_ids: ControlIds,
                 processor: Processor, config: Config, *, listener: str = "mllp",
                 notify: Callable[[], None] | None = None,
                 to_apply: Callable[[], None] | None = None) -> None:
        self._store = store
        self._clock = clock
        self._ids = control_ids
        self._processor = processor
        self._records = Records(control_ids, listener, config.mllp.allowed_senders,
                                getattr(processor, "prepare", None),
                                on_store=config.mllp.ack == "on_store")
        self._listener = listener
        self._notify = notify  # told after each commit (wakes the delivery workers)
        # Told after a commit that put messages in the inbox (wakes the applier): not
        # after every commit, as an applier woken for nothing opens a transaction.
        self._to_apply = to_apply
        self._inboxed = False  # a commit since the last telling stored messages to apply
        # The writer's own thread: a busy shared pool (delivery, console) never delays a
        # commit, and so never an ACK.
        local = getattr(store, "dialect", "") == "sqlite"  # inline: the disk, no network
        self._writer: GroupCommit[Pending, bytes] = GroupCommit(
            self._commit, max_batch=MAX_BATCH, name="accord-ingest",
            on_committed=self._committed,
            inline=self._commit_inline if local else None, inline_max=INLINE_MAX)
        self.stats = IngestStats()
        self._last_peer = ""  # the connection that submitted last, and since when
        self._peer_changed = 0.0
        self._last_submit = float("-inf")  # monotonic time of the last message received
        self._down_since: float | None = None  # monotonic time of the first failed commit

    def _committed(self) -> None:
        """On the event loop, after a batch committed: tell who waits for its rows."""
        if self._notify is not None:
            self._notify()
        if self._inboxed and self._to_apply is not None:
            self._inboxed = False
            self._to_apply()

    async def handle(self, payload: bytes, peer: PeerInfo) -> bytes:
        """Store, process and answer one MLLP payload (the MllpServer handler)."""
        return await self._submit(payload, peer, None)

    async def on_oversize(self, size: int, peer: PeerInfo) -> bytes:
        """A block over ``max_message_bytes``: recorded (without its bytes) and refused."""
        return await self._submit(b"", peer, f"message of {size} bytes exceeds the limit")

    async def on_empty(self, peer: PeerInfo) -> bytes:
        """An empty block: recorded and refused."""
        return await self._submit(b"", peer, "empty MLLP block")

    async def reprocess(self, message_id: int) -> int:
        """Run an error-queue message (AE, or AR) through processing again, as a new
        message with ``reprocess_of`` set; it takes over the MSH-10 dedupe claim so later
        resends get the new ACK. Returns the new message id (the console's reprocess).
        Raises NotFoundError / InvalidStateError from the store."""
        original = await asyncio.to_thread(self._store.reprocess_message, message_id)
        new_id = await asyncio.to_thread(self._apply_local, original.raw, original.peer,
                                         original.id)
        if self._notify is not None:
            self._notify()
        return new_id

    async def inject(self, payload: bytes, origin: str) -> int:
        """Store and apply a message Accord originates (a console merge as ADT^A40) in
        one transaction like any received message; the sender allow-list does not apply
        (the console authenticated its user). Returns the new message id."""
        new_id = await asyncio.to_thread(self._apply_local, payload, origin, None)
        if self._notify is not None:
            self._notify()
        return new_id

    def _apply_local(self, payload: bytes, origin: str, reprocess_of: int | None) -> int:
        """Blocking: one message, one transaction, the slow path's savepoint rules."""
        now = self._clock.now()
        with self._store.transaction() as tx:
            try:
                msg = parse(payload)
            except ParseError as exc:
                return tx.save_inbound(InboundMessage(
                    received_at=now, raw=payload, peer=origin, listener=self._listener,
                    parse_error=str(exc), status="rejected", ack_code="AR", ack=b"",
                    outcome={"error": str(exc)}, reprocess_of=reprocess_of))
            base = self._records.record_of(msg, payload, now, origin, reprocess_of)
            try:
                with tx.savepoint():
                    outcome = self._processor.process(msg, tx, now)
                    record, outbox = self._records.processed(msg, base, outcome), outcome.outbox
                    mid = tx.save_inbound(record)
            except Exception as exc:
                err = exc if isinstance(exc, AccordError) else internal(exc, base)
                record, outbox = self._records.failed(msg, base, err), ()
                mid = tx.save_inbound(record)
            tx.claim_control_id(record.sending_app, record.sending_facility,
                                record.control_id, mid, takeover_from=reprocess_of)
            if outbox:
                tx.enqueue([dataclasses.replace(i, source_message_id=mid) for i in outbox],
                           now)
        return mid

    def busy(self) -> bool:
        """Messages are waiting to be committed, or being committed (the applier lets
        them take the write lock first)."""
        return not self._writer.idle

    def active(self) -> bool:
        """:meth:`busy`, or a message arrived in the last ``ACTIVE_SECONDS``: senders
        are still sending (the applier waits for a gap while its backlog is young)."""
        return time.monotonic() - self._last_submit < ACTIVE_SECONDS or self.busy()

    async def close(self, timeout: float = 10.0) -> None:
        """Let waiting messages commit (up to ``timeout`` s), then stop the writer."""
        await self._writer.drain(timeout)
        await asyncio.to_thread(self._writer.close)

    async def _submit(self, payload: bytes, peer: PeerInfo, refused: str | None) -> bytes:
        where = f"{peer.host}:{peer.port}"
        self._last_submit = time.monotonic()
        if where != self._last_peer:  # another connection is sending (see _commit_inline)
            self._last_peer, self._peer_changed = where, self._last_submit
        pending = Pending(payload, where, self._clock.now(), refused)
        return await self._writer.submit(pending)

    def _process(self, p: Pending, msg: Message, tx: Tx) -> Outcome:
        if p.step is not None:
            return p.step(tx)
        return self._processor.process(msg, tx, p.received_at)

    def _commit_inline(self, batch: list[Pending]) -> list[bytes | Exception]:
        """On the event loop (``GroupCommit`` inline): never wait for another writer,
        and only while one connection alone is sending. With several, their next
        messages would wait behind the loop's commit: eight workflow senders lost ~8%
        and their ACK p99 went from 13 to 21 ms (A/B, measured)."""
        if time.monotonic() - self._peer_changed < SOLE_SENDER_SECONDS:
            raise WouldBlock
        try:
            return self._commit(batch, wait=False)
        except StoreBusy:
            raise WouldBlock from None

    def _commit(self, batch: list[Pending], wait: bool = True) -> list[bytes | Exception]:
        """Blocking: the whole batch in one transaction (fast path, else one at a time)."""
        committing_as("ingest")  # what the store's commit faults say (accord.store)
        for pending in batch:  # rule 5: before the write turn, which others wait for
            self._records.prepare_once(pending)
        try:
            results = self._commit_fast(batch, wait)
        except _SlowPath:
            self.stats.slow_batches += 1
            results = self._commit_slow(batch, wait)
        except StoreBusy:
            raise  # nothing was done: the writer thread does it
        except Exception as exc:
            self.stats.failed_commits += 1  # GroupCommit logs it; no ACK is sent
            self._store_failed(exc)
            raise
        self._store_answers()
        self.stats.commits += 1
        self.stats.messages += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        return results

    def _store_failed(self, exc: Exception) -> None:
        """The first failed commit of an outage says so once (the store's error text has
        no message content: ``accord.store.db.errors``); senders get no ACK meanwhile and
        resend."""
        if self._down_since is None:
            self._down_since = time.monotonic()
            reason = str(exc) if isinstance(exc, AccordError) else type(exc).__name__
            log.error("store cannot commit (%s): inbound messages get no ACK until it can",
                      reason)

    def _store_answers(self) -> None:
        if self._down_since is not None:
            log.warning("store commits again after %.0f s: inbound messages acknowledged",
                        time.monotonic() - self._down_since)
            self._down_since = None

    # -- fast path: one statement per table for the batch ---------------------------------
    def _commit_fast(self, batch: list[Pending], wait: bool) -> list[bytes | Exception]:
        with self._store.pinned_transaction(wait=wait) as tx:
            plans = [self._plan(tx, p) for p in batch]
            if all(plan.inbox for plan in plans):  # all answered on store: custody only
                if tx.save_custody_many([plan.record for plan in plans]) is None:
                    raise _SlowPath  # a resend (or the same message twice in this batch)
                waiting = True
            else:
                waiting = self._save_fast(tx, plans, batch[0])
        self._inboxed = self._inboxed or waiting  # committed: the applier may look
        return [plan.record.ack for plan in plans]

    def _save_fast(self, tx: Tx, plans: list[_Planned], first: Pending) -> bool:
        """The batch's records, claims, outbox and inbox rows; whether any waits to be
        applied. Raises :class:`_SlowPath` when a claim is held already."""
        ids = tx.save_inbound_many([plan.record for plan in plans])
        claims = [(plan.record.sending_app, plan.record.sending_facility,
                   plan.record.control_id, mid)
                  for plan, mid in zip(plans, ids, strict=True) if plan.claim]
        if (len({c[:3] for c in claims}) < len(claims)
                or not tx.claim_control_ids(claims, keep_usable=False)):
            raise _SlowPath  # a resend (or the same message twice in this batch)
        items = [dataclasses.replace(item, source_message_id=mid)
                 for plan, mid in zip(plans, ids, strict=True) for item in plan.outbox]
        if items:
            tx.enqueue(items, first.received_at)
        waiting = [(mid, plan.record.received_at)
                   for plan, mid in zip(plans, ids, strict=True) if plan.inbox]
        if waiting:
            tx.inbox_add(waiting)
        return bool(waiting)

    def _plan(self, tx: Tx, p: Pending) -> _Planned:
        """Process one message; any surprise sends the batch to the slow path."""
        ready = self._records.ready(p)
        if isinstance(ready, InboundMessage):
            return _Planned(ready, claim=False)
        msg, base = ready
        if p.store_first:
            return _Planned(base, claim=True, inbox=True)  # its custody record
        try:
            outcome = self._process(p, msg, tx)
        except Exception:
            raise _SlowPath from None  # its writes cannot be undone alone without a savepoint
        return _Planned(self._records.processed(msg, base, outcome, p.ack), claim=True,
                        outbox=outcome.outbox)

    # -- slow path: one savepoint per message ------------------------------------------
    def _commit_slow(self, batch: list[Pending], wait: bool) -> list[bytes | Exception]:
        results: list[bytes | Exception] = []
        with self._store.pinned_transaction(wait=wait) as tx:
            for pending in batch:
                try:
                    results.append(self._one(tx, pending))
                except Exception as exc:  # this message alone gets no ACK
                    log.exception("could not store a message from %s", pending.peer)
                    results.append(exc)
        self._inboxed = self._inboxed or any(p.store_first for p in batch)
        return results

    def _one(self, tx: Tx, p: Pending) -> bytes:
        ready = self._records.ready(p)
        if isinstance(ready, InboundMessage):
            return self._save(tx, ready)
        msg, base = ready
        first = tx.find_first(base.sending_app, base.sending_facility, base.control_id)
        if p.store_first:
            if first is None:
                with contextlib.suppress(_ClaimLost):
                    return self._save(tx, base, claim=True, inbox=True)
                first = tx.find_first(base.sending_app, base.sending_facility,
                                      base.control_id)
            base = self._records.inbound(p, msg)  # not stored first: the whole record
        if first is None:
            try:
                with tx.savepoint():
                    outcome = self._process(p, msg, tx)
                    return self._save(tx, self._records.processed(msg, base, outcome, p.ack),
                                      claim=True, outbox=outcome.outbox)
            except _ClaimLost:
                pass
            except Exception as exc:
                err = exc if isinstance(exc, AccordError) else internal(exc, base)
                with contextlib.suppress(_ClaimLost):
                    return self._save(tx, self._records.failed(msg, base, err), claim=True)
            first = tx.find_first(base.sending_app, base.sending_facility, base.control_id)
        if first is None:
            raise RuntimeError("dedupe claim lost but no holder found")
        log.info("duplicate %s %s answered with the first ACK", base.message_type,
                 base.control_id)
        self.stats.duplicates += 1
        return self._save(tx, dataclasses.replace(
            base, status="duplicate", duplicate_of=first.id, ack=first.ack,
            ack_code=first.ack_code, outcome={"duplicate_of": first.id}))

    def _save(self, tx: Tx, record: InboundMessage, *, claim: bool = False,
              outbox: tuple[OutboxItem, ...] = (), inbox: bool = False) -> bytes:
        with tx.savepoint():
            mid = tx.save_inbound(record)
            if claim and not tx.claim_control_id(record.sending_app,
                                                 record.sending_facility,
                                                 record.control_id, mid):
                raise _ClaimLost
            if inbox:
                tx.inbox_add([(mid, record.received_at)])
            if outbox:
                tx.enqueue([dataclasses.replace(i, source_message_id=mid) for i in outbox],
                           record.received_at)
        return record.ack


