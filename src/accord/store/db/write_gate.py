"""The write gate: this process's SQLite writers take turns on a lock of their own.

Why: SQLite has one writer at a time, and a writer that finds the lock taken waits in
its busy handler, which sleeps and polls with growing naps (up to 100 ms) and wakes no
sooner when the lock is freed. With ingest, the applier, delivery claims and MPPS
writing from their own threads, those naps were much of an MPPS request's time and
let one busy writer starve the others (measured on ``accord serve`` under the soak:
threads asleep in BEGIN IMMEDIATE). Waiting on a lock in this process instead wakes
the next writer the moment the last one commits, and hands the turn over in arrival
order.

Rules:
- One gate per SQLite engine, held from before BEGIN IMMEDIATE until the transaction
  has committed or rolled back. Other databases (PostgreSQL) have none: their writers
  lock rows, not the database.
- First come, first served: a releasing writer hands the turn to the longest waiter,
  so a thread that writes batch after batch cannot take it back before the others.
- Re-entrant for the thread that holds it (a nested write transaction then meets
  SQLite's own lock as it did before).
- ``wait=False`` takes the turn only if it is free at once; a wait longer than
  ``timeout`` gives up (the caller raises StoreBusy, as SQLite's busy timeout did).
- Other processes writing the same file (the CLI, a backup) are not in the gate: they
  and this process still meet at SQLite's lock and its busy handler.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from weakref import WeakKeyDictionary

from sqlalchemy import Engine

from accord.errors import StoreBusy, StoreError


class WriteGate:
    """A first-come, first-served re-entrant lock (see the module rules)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: deque[threading.Lock] = deque()
        self._owner: int | None = None
        self._depth = 0
        self._held = False

    def acquire(self, wait: bool = True, timeout: float = -1) -> bool:
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                self._depth += 1
                return True
            if not self._held:
                self._held, self._owner, self._depth = True, me, 1
                return True
            if not wait:
                return False
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        if not turn.acquire(timeout=timeout):
            with self._mutex:
                if turn in self._waiters:  # not handed over: give up
                    self._waiters.remove(turn)
                    return False
            turn.acquire()  # handed over just now: released already, no wait
        with self._mutex:
            self._owner, self._depth = me, 1  # ``_held`` stayed True through the hand-over
        return True

    def release(self) -> None:
        with self._mutex:
            if self._owner != threading.get_ident():
                raise RuntimeError("the write gate is released by a thread not holding it")
            self._depth -= 1
            if self._depth:
                return
            self._owner = None
            if self._waiters:
                self._waiters.popleft().release()  # the turn passes on, still held
            else:
                self._held = False

    @contextmanager
    def turn(self, wait: bool = True, timeout: float = -1) -> Iterator[None]:
        """Hold the gate for the block: StoreBusy if ``wait`` is False and it is taken,
        StoreError if ``timeout`` s pass first (a writer that never finishes)."""
        if not self.acquire(wait, timeout):
            if not wait:
                raise StoreBusy("another writer holds the database")
            raise StoreError(f"another writer held the database for {timeout:.0f} s")
        try:
            yield
        finally:
            self.release()


_GATES: WeakKeyDictionary[Engine, WriteGate] = WeakKeyDictionary()
_GATES_LOCK = threading.Lock()


def write_gate(engine: Engine) -> WriteGate | None:
    """The gate of a SQLite engine (made on first use); None for other databases."""
    if engine.dialect.name != "sqlite":
        return None
    with _GATES_LOCK:
        gate = _GATES.get(engine)
        if gate is None:
            gate = _GATES[engine] = WriteGate()
        return gate


@contextmanager
def write_turn(engine: Engine, *, wait: bool = True, timeout: float = -1) -> Iterator[None]:
    """This thread's turn to write on ``engine`` (nothing to take on PostgreSQL)."""
    gate = write_gate(engine)
    if gate is None:
        yield
        return
    with gate.turn(wait, timeout):
        yield
