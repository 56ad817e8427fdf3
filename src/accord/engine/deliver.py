"""Delivery: outbox rows to downstream systems over MLLP, in order, at least once.

Rules (outbound delivery as docs/interface.md states it; HL7 v2.5.1 §2.9.2 for the ACK
codes, table 0008):

1. Rows are claimed from the store under a lease, so a node that dies mid-send loses
   nothing: the row is handed out again when the lease expires. FIFO per destination —
   one worker, claiming runs of rows from the head of the queue (up to ``MAX_RUN``,
   growing while deliveries succeed) and recording their AAs together; with
   ``per_patient`` several workers, the store never hands out two rows of one patient at
   once, so each patient's order is kept. A store failure (the database restarting)
   pauses a worker until the store answers again; it never ends it.
2. A reply counts only when MSA-2 equals the row's MSH-10 (``MllpClient.send_message``
   enforces it; a late or mismatched ACK raises and the connection is closed).
3. AA/CA → delivered. AR/CR → error queue at once (resending cannot help). AE/CE →
   resent after a capped exponential backoff, up to ``retries`` times, then error queue.
   No usable reply (refused, timeout, lost connection, wrong MSA-2) is an outage: resent
   with backoff for as long as it takes — or, with ``rotate``, moved behind its queue
   after ``retries`` failures so one message cannot block the others forever.
4. The row keeps its MSH-10 on every resend, so the receiver can recognise a resend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from accord.clock import Clock
from accord.config import Destination
from accord.errors import DeliveryError, StoreError
from accord.mllp.client import AckResult, MllpClient
from accord.mllp.tls import client_context
from accord.store import OutboxRow, Store, committing_as

log = logging.getLogger(__name__)

ClientFactory = Callable[[Destination], MllpClient]
ACCEPTED = frozenset({"AA", "CA"})
REJECTED = frozenset({"AR", "CR"})
MAX_RUN = 64
"""Most rows claimed at once by a FIFO worker (one transaction claims them, one records
their AAs, instead of two per row)."""
IDLE_POLL = 0.5
"""Seconds an idle worker waits before looking again (sooner when woken)."""
STORE_RETRY = 1.0
"""Seconds a worker waits before asking the store again after a StoreError (the
database restarting): the worker never ends on a store failure."""


def default_client_factory(dest: Destination) -> MllpClient:
    """An :class:`MllpClient` for ``dest`` with its timeouts and TLS settings."""
    ctx = None
    hostname = None
    if dest.tls is not None:
        ctx = client_context(dest.tls.ca, dest.tls.cert, dest.tls.key)
        hostname = dest.tls.server_hostname
    return MllpClient(dest.host, dest.port, ssl_context=ctx, server_hostname=hostname,
                      connect_timeout=dest.connect_timeout, ack_timeout=dest.ack_timeout)


@dataclass(eq=False)
class _Queue:
    """The workers of one destination, as configured when they started. A reload that
    changes or removes the destination retires them (``stopping``): each finishes the
    row it is sending, on its old settings, gives back the rest, and ends."""

    dest: Destination
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stopping: bool = False

    def retire(self) -> None:
        self.stopping = True
        self.wake.set()


class Deliverer:
    """One asyncio worker per destination (``workers`` of them when ``per_patient``)."""

    def __init__(self, store: Store, destinations: Sequence[Destination], clock: Clock,
                 node_id: str, client_factory: ClientFactory = default_client_factory,
                 *, idle_poll: float = IDLE_POLL, resume_own_leases: bool = False,
                 observe: Callable[[str, str, float], None] | None = None) -> None:
        self._store = store
        self._destinations = {d.name: d for d in destinations}
        self._clock = clock
        self._node = node_id
        self._factory = client_factory
        self._idle_poll = idle_poll
        self._queues: dict[str, _Queue] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._ae_answers: dict[int, int] = {}
        self.delivered = 0
        self._resume = resume_own_leases
        # Told (destination, MSA-1 code or "outage", seconds) after each send (metrics).
        self._observe = observe

    async def start(self) -> None:
        """Start the workers (idempotent)."""
        if self._queues:
            return
        if self._resume:
            await asyncio.to_thread(self._release_own_leases)
        for dest in self._destinations.values():
            self._start(dest)

    def _start(self, dest: Destination) -> None:
        queue = _Queue(dest)
        for slot in range(dest.workers if dest.per_patient else 1):
            queue.tasks.append(asyncio.create_task(
                self._worker(queue), name=f"accord-deliver-{dest.name}-{slot}"))
        self._queues[dest.name] = queue

    def _release_own_leases(self) -> None:
        """Blocking: rows this node still had in flight when it last stopped (it crashed)
        are given back at once instead of waiting out their lease. Only with a configured
        ``node_id``, which the operator keeps unique to one process."""
        ids: list[int] = []
        for name in self._destinations:
            cursor: str | None = None
            while True:
                page = self._store.list_outbox(destination=name, status="in_flight",
                                               cursor=cursor, limit=1000)
                ids += [row.id for row in page.items if row.claimed_by == self._node]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
        if ids:
            released = self._store.release_many(ids, self._node)
            log.info("node %s resumed %d outbox row(s) left in flight", self._node, released)

    def reconfigure(self, destinations: Sequence[Destination]) -> list[str]:
        """Swap to ``destinations`` (a configuration reload), on the event loop: a new
        destination gets workers now; a changed one gets new workers while the old ones
        finish the row they are sending on the old settings (the store hands a queue's
        head to one worker at a time, so order holds); a removed one's workers retire
        and its queued rows stay queued, sent if it is configured again. Returns the
        names of the destinations that changed."""
        new = {d.name: d for d in destinations}
        changed = sorted(name for name in new.keys() | self._destinations.keys()
                         if new.get(name) != self._destinations.get(name))
        self._destinations = new
        if not self._queues:  # not started: start() uses the new set
            return changed
        for name in changed:
            old = self._queues.pop(name, None)
            if old is not None:
                self._retire(old)
            if name in new:
                self._start(new[name])
        return changed

    def _retire(self, queue: _Queue) -> None:
        queue.retire()
        self._retiring.update(queue.tasks)
        for task in queue.tasks:
            task.add_done_callback(self._retiring.discard)

    async def stop(self, grace: float = 0.0) -> None:
        """Stop the workers. Within ``grace`` seconds each finishes the row it is sending
        (its ACK is recorded); after that, a row being sent stays leased and is sent
        again later. Rows claimed and not yet sent are given back."""
        queues, self._queues = list(self._queues.values()), {}
        for queue in queues:
            queue.retire()
        tasks = [t for q in queues for t in q.tasks] + list(self._retiring)
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self, destinations: Sequence[str] | None = None) -> None:
        """New rows were committed: let idle workers look now instead of at the next poll."""
        for name, queue in self._queues.items():
            if destinations is None or name in destinations:
                queue.wake.set()

    async def reprocess(self, row_id: int) -> int:
        """Send an error-queue row again: a new row linked to the original (its id)."""
        new_id = await asyncio.to_thread(self._store.reprocess_outbox, row_id,
                                         self._clock.now())
        self.wake()
        return new_id

    async def _worker(self, queue: _Queue) -> None:
        committing_as("delivery")  # this task's and its threads' commits (accord.store)
        dest, wake = queue.dest, queue.wake
        client = self._factory(dest)
        run = 1  # rows per claim: doubles after a clean run, back to 1 after a failure
        store_down = False
        # The AAs of a clean run, recorded with the next claim (one commit a run). Kept
        # through a store failure: the rows stay in flight under their lease meanwhile.
        settle: list[tuple[int, bytes]] = []
        try:
            while not queue.stopping:
                try:
                    rows = await asyncio.to_thread(self._claim, dest, run, settle)
                    settle = []
                    if rows:
                        clean, settle = await self._send_run(client, queue, rows)
                except StoreError as exc:
                    # The database went away (restart, network): rows this worker holds
                    # stay leased and are handed out again when the lease ends.
                    if not store_down:
                        log.warning("%s: store unavailable, delivery paused: %s",
                                    dest.name, exc)
                    store_down, run = True, 1
                    await asyncio.sleep(STORE_RETRY)
                    continue
                if store_down:
                    log.info("%s: store answers again, delivery resumed", dest.name)
                    store_down = False
                if not rows:
                    wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._idle_poll):
                            await wake.wait()
                    continue
                run = min(MAX_RUN, run * 2) if clean else 1
        finally:
            if settle:
                await asyncio.to_thread(self._finish_run, settle, [])
            await client.close()

    def _claim(self, dest: Destination, run: int,
               settle: list[tuple[int, bytes]]) -> list[OutboxRow]:
        now, lease = self._clock.now(), _lease_seconds(dest)
        if dest.per_patient:
            self._finish_run(settle, [])
            return self._store.claim(dest.name, self._node, now, lease, 1, True)
        marked, rows = self._store.settle_and_claim_run(settle, dest.name, self._node, now,
                                                        lease, run)
        self.delivered += marked
        return rows

    async def _send_run(self, client: MllpClient, queue: _Queue,
                        rows: list[OutboxRow]) -> tuple[bool, list[tuple[int, bytes]]]:
        """Send claimed rows in order; True when every one was accepted. The AAs of a
        run sent whole are returned, for the next claim to record; otherwise they are
        recorded here, and rows not sent (after a failure, past the time budget, or on
        stop) are given back unsent."""
        dest = queue.dest
        loop = asyncio.get_running_loop()
        budget = loop.time() + _lease_seconds(dest) / 2  # well inside the lease
        acks: list[tuple[int, bytes]] = []
        handled = 0
        whole = False
        try:
            for row in rows:
                if handled and (loop.time() > budget or queue.stopping):
                    return True, []
                try:
                    result = await client.send_message(row.payload, row.control_id)
                except DeliveryError as exc:
                    if self._observe is not None:
                        self._observe(dest.name, "outage", 0.0)
                    handled += 1
                    await self._outage(dest, row, str(exc))
                    return False, []
                handled += 1
                if self._observe is not None:
                    self._observe(dest.name, result.code, result.latency)
                if result.code not in ACCEPTED:
                    await asyncio.to_thread(self._record, dest, row, result)
                    return False, []
                self._ae_answers.pop(row.id, None)
                acks.append((row.id, result.ack))
            whole = not queue.stopping
            return True, acks if whole else []
        finally:
            if not whole:
                await asyncio.to_thread(self._finish_run, acks,
                                        [r.id for r in rows[handled:]])

    def _finish_run(self, acks: list[tuple[int, bytes]], unsent: list[int]) -> None:
        """Blocking: record the AAs of a run and give back its unsent rows."""
        if acks:
            self.delivered += self._store.mark_delivered_many(acks, self._node,
                                                              self._clock.now())
        if unsent:
            self._store.release_many(unsent, self._node)

    def _record(self, dest: Destination, row: OutboxRow, result: AckResult) -> None:
        """Blocking: write the outcome of one matched ACK."""
        now = self._clock.now()
        reason = f"{result.code}: {result.text}".strip()
        if result.code in REJECTED:
            log.warning("%s rejected outbox row %d (%s)", dest.name, row.id, result.code)
            self._store.mark_error(row.id, self._node, reason, result.ack)
            return
        answers = self._ae_answers.get(row.id, 0) + 1
        if answers > dest.retries:
            self._ae_answers.pop(row.id, None)
            log.warning("%s answered %s %d times for outbox row %d: error queue",
                        dest.name, result.code, answers, row.id)
            self._store.mark_error(row.id, self._node, reason, result.ack)
            return
        self._ae_answers[row.id] = answers
        due = now + timedelta(seconds=dest.backoff.delay(answers - 1))
        self._store.mark_retry(row.id, self._node, reason, due)

    async def _outage(self, dest: Destination, row: OutboxRow, error: str) -> None:
        now = self._clock.now()
        failures = max(1, row.attempts)
        if dest.rotate and failures > dest.retries:
            log.warning("%s: outbox row %d failed %d times, moved behind its queue: %s",
                        dest.name, row.id, failures, error)
            await asyncio.to_thread(self._store.rotate, row.id, self._node, error, now)
            return
        delay = dest.backoff.delay(failures - 1)
        log.info("%s unreachable (%s); outbox row %d retried in %.1f s",
                 dest.name, error, row.id, delay)
        await asyncio.to_thread(self._store.mark_retry, row.id, self._node, error,
                                now + timedelta(seconds=delay))


def _lease_seconds(dest: Destination) -> float:
    """Long enough for one connect + one ACK wait, with margin for a slow store."""
    return dest.connect_timeout + dest.ack_timeout + 5.0
