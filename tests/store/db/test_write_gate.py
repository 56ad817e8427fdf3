"""The write gate: SQLite writers of one process take turns, first come first served."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from accord.errors import StoreBusy, StoreError
from accord.store.db.database import connect
from accord.store.db.write_gate import WriteGate, write_gate


def _queue_up(gate: WriteGate, name: str, order: list[str]) -> threading.Thread:
    """A thread that waits for its turn, then notes its name; returns once it waits."""
    waiting = len(gate._waiters)

    def take() -> None:
        with gate.turn():
            order.append(name)

    thread = threading.Thread(target=take)
    thread.start()
    while len(gate._waiters) == waiting:
        threading.Event().wait(0.005)
    return thread


def _refusals_in_a_thread(gate: WriteGate, wait: bool = True,
                          timeout: float = -1) -> list[StoreError]:
    """Another thread asks for a turn; the StoreErrors it got (the turn was refused)."""
    refused: list[StoreError] = []

    def ask() -> None:
        try:
            with gate.turn(wait, timeout):
                pass
        except StoreError as exc:
            refused.append(exc)

    thread = threading.Thread(target=ask)
    thread.start()
    thread.join(5)
    return refused


def test_turns_are_given_in_arrival_order() -> None:
    gate, order = WriteGate(), list[str]()
    gate.acquire()
    threads = []
    for name in ("first", "second", "third"):
        threads.append(_queue_up(gate, name, order))
    gate.release()
    for thread in threads:
        thread.join(5)
    assert order == ["first", "second", "third"]
    assert not gate._held and not gate._waiters


def test_a_releasing_writer_cannot_take_the_turn_back_before_a_waiter() -> None:
    gate, order = WriteGate(), list[str]()
    gate.acquire()
    waiter = _queue_up(gate, "waiter", order)
    gate.release()
    assert not gate.acquire(wait=False)  # handed over: no longer free for anyone
    waiter.join(5)
    assert order == ["waiter"]
    assert gate.acquire(wait=False)
    gate.release()


def test_reentrant_for_its_holder_and_busy_for_others() -> None:
    gate = WriteGate()
    with gate.turn(), gate.turn():  # a nested transaction of the same thread
        seen = _refusals_in_a_thread(gate, wait=False)
        assert len(seen) == 1 and isinstance(seen[0], StoreBusy)
    assert not gate._held


def test_a_wait_past_the_timeout_gives_up_and_leaves_the_queue() -> None:
    gate = WriteGate()
    gate.acquire()
    failed = _refusals_in_a_thread(gate, timeout=0.05)
    assert len(failed) == 1 and not isinstance(failed[0], StoreBusy)
    assert not gate._waiters
    gate.release()
    assert not gate._held


def test_only_its_holder_releases_it() -> None:
    gate = WriteGate()
    with pytest.raises(RuntimeError):
        gate.release()


def test_a_sqlite_database_writes_through_its_gate(tmp_path: Path) -> None:
    database = connect(f"sqlite:///{tmp_path / 'gate.db'}")
    gate = write_gate(database.engine)
    assert gate is not None and write_gate(database.engine) is gate
    with database.write() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        assert gate._owner == threading.get_ident()
    assert not gate._held
    held = threading.Event()
    done = threading.Event()

    def writer() -> None:
        with database.write() as conn:
            held.set()
            done.wait(5)
            conn.execute(text("INSERT INTO t VALUES (1)"))

    thread = threading.Thread(target=writer)
    thread.start()
    assert held.wait(5)
    assert not gate.acquire(wait=False)  # the writer's transaction holds the turn
    done.set()
    thread.join(5)
    with database.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 1
    database.close()
