"""Group commit: items submitted on the event loop are committed in batches by one thread.

Why a thread of its own and not ``loop.run_in_executor`` per batch: the executor hop
(a concurrent future, ``wrap_future``, callbacks chained both ways) cost about a tenth of
the event loop's time per one-message batch, measured with ``py-spy --gil`` on
``accord serve``. Here the loop appends to a list and, only when the thread sleeps,
notifies it; the thread hands each batch's results back with one
``call_soon_threadsafe``.

Rules:
- ``submit`` is called on the event loop; the returned future gets the commit's result
  for that item (an Exception result is set as the future's exception).
- One batch at a time, in submission order, at most ``max_batch`` items: items that
  arrive while a batch commits form the next one, so concurrent senders share a commit.
  A sleeping thread is woken at the end of the loop iteration that submitted to it, so
  everything submitted in one iteration (one read of many sockets) shares a batch.
- ``commit(items)`` returns one result per item; if it raises, every item of the batch
  gets that exception (nothing was acknowledged).
- A future already done (its connection went away) is left alone.
- ``inline(items)``, if given: a batch of at most ``inline_max`` items found when the
  thread is idle is committed by it on the event loop itself. Handing a batch to the
  thread and its results back costs two thread wake-ups, ~110 us of a one-message
  round trip (measured on ``accord serve``). ``inline`` must not wait for anything but
  the local disk: when it would (another writer holds the lock) it raises
  :class:`WouldBlock` having done nothing, and the batch goes to the thread. Bigger
  batches, and any that arrive while the thread commits, go to the thread, so a burst
  never holds the loop for long.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)


class WouldBlock(Exception):
    """Raised by an ``inline`` commit that would have to wait: nothing was done."""

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """One committing thread fed from the event loop (see the module rules)."""

    def __init__(self, commit: Callable[[list[T]], list[R | Exception]], *, max_batch: int,
                 name: str, on_committed: Callable[[], None] | None = None,
                 inline: Callable[[list[T]], list[R | Exception]] | None = None,
                 inline_max: int = 1) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._inline = inline
        self._inline_max = min(inline_max, max_batch)
        self._name = name
        self._on_committed = on_committed
        self._cond = threading.Condition(threading.Lock())
        self._items: list[tuple[T, asyncio.Future[R]]] = []
        self._waiting = True  # the thread is not committing (or not started yet)
        self._wake_due = False  # a wake-up is scheduled on the loop
        self._go = False  # the thread may take the items queued now
        self._generation = 0  # bumped when a thread for another event loop starts
        self._unsettled = 0  # batches taken by the thread whose results are not set yet
        self._closed = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def submit(self, item: T) -> asyncio.Future[R]:
        """Queue ``item`` for the next batch; its future gets the result (on the loop)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        with self._cond:
            if self._closed:
                raise RuntimeError(f"{self._name} is closed")
            if self._thread is None or self._loop is not loop:
                self._start(loop)
            self._items.append((item, fut))
            wake = self._waiting and not self._wake_due
            self._wake_due = self._wake_due or wake
        if wake:  # at the end of this loop iteration: what else it submits joins the batch
            loop.call_soon(self._wake)
        return fut

    def _wake(self) -> None:
        with self._cond:
            self._wake_due = False
            inline = (self._inline is not None and self._waiting and not self._unsettled
                      and not self._closed and 0 < len(self._items) <= self._inline_max)
            if not inline:
                self._go = True
                self._cond.notify()
                return
            batch, self._items = self._items, []
            self._unsettled += 1
        assert self._inline is not None
        try:
            results = self._run_batch([item for item, _ in batch], self._inline)
        except WouldBlock:  # another writer holds the lock: the thread waits for it
            with self._cond:
                self._items[:0] = batch
                self._unsettled -= 1
                self._go = True
                self._cond.notify()
            return
        self._settle(batch, results)

    @property
    def idle(self) -> bool:
        """Nothing queued and no batch in flight."""
        with self._cond:
            return not self._items and not self._unsettled

    async def drain(self, timeout: float) -> None:
        """Wait (up to ``timeout`` s) until every submitted item is settled."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.idle and loop.time() < deadline:
            await asyncio.sleep(0.01)

    def close(self) -> None:
        """Stop the thread after what is queued is committed; later submits start a new
        one."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        with self._cond:
            self._closed = self._go = False
            self._waiting = True

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        # A thread left from another event loop stops before taking anything more.
        self._generation += 1
        self._cond.notify_all()
        self._loop = loop
        self._thread = threading.Thread(target=self._run, args=(loop, self._generation),
                                        name=self._name, daemon=True)
        self._thread.start()

    def _run(self, loop: asyncio.AbstractEventLoop, generation: int) -> None:
        just_committed = False
        while True:
            batch = self._take(generation, just_committed)
            if batch is None:
                return
            results = self._run_batch([item for item, _ in batch])
            try:
                loop.call_soon_threadsafe(self._settle, batch, results)
            except RuntimeError:  # the loop is closed: nobody waits for these answers
                with self._cond:
                    self._unsettled -= 1
                return
            just_committed = True

    def _take(self, generation: int,
              just_committed: bool) -> list[tuple[T, asyncio.Future[R]]] | None:
        """The next batch, or None when this thread must stop. Items queued while the
        last batch committed are taken at once (nobody scheduled a wake-up for them:
        the thread was not waiting); otherwise wait for the loop's wake-up."""
        with self._cond:
            if not (just_committed and self._items):
                while not (self._items and (self._go or self._closed)):
                    if generation != self._generation or (
                            self._closed and not self._items):
                        return None
                    self._waiting = True
                    self._cond.wait()
            if generation != self._generation:
                return None
            self._waiting = self._go = False
            batch = self._items[:self._max_batch]
            del self._items[:self._max_batch]
            self._unsettled += 1
            return batch

    def _run_batch(self, items: list[T],
                   commit: Callable[[list[T]], list[R | Exception]] | None = None,
                   ) -> list[R | Exception]:
        try:
            results = (commit or self._commit)(items)
        except WouldBlock:
            raise
        except Exception as exc:
            log.error("%s: commit of %d item(s) failed, none answered: %s", self._name,
                      len(items), exc)
            return [exc] * len(items)
        if len(results) != len(items):
            err = RuntimeError(f"{self._name}: {len(results)} results for {len(items)} items")
            return [err] * len(items)
        return results

    def _settle(self, batch: list[tuple[T, asyncio.Future[R]]],
                results: list[R | Exception]) -> None:
        with self._cond:
            self._unsettled -= 1
        for (_, fut), result in zip(batch, results, strict=True):
            if fut.done():
                continue
            if isinstance(result, Exception):
                fut.set_exception(result)
            else:
                fut.set_result(result)
        if self._on_committed is not None and any(
                not isinstance(r, Exception) for r in results):
            self._on_committed()
