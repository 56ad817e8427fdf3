"""Pinned write connections: a thread keeps its connection between transactions.

Why: for ingest's one-message transactions, the pool's checkout + reset + checkin cost
~15% of the CPU (py-spy --gil). The ingest writer (and, for inline commits, the event
loop) each keep one connection instead.

Rules:
- One connection per thread, kept until a transaction on it fails: then it is closed
  and the next call takes a new one (a broken connection is never reused).
- ``wait=False`` (SQLite): the write lock is taken at BEGIN IMMEDIATE at once or not at
  all, with :class:`~accord.errors.StoreBusy` raised and nothing started; once held,
  nothing later in a WAL write transaction waits. Such a connection runs with
  ``busy_timeout=0`` and is discarded, not pooled, when it is let go. Other databases
  ignore ``wait``. The write gate (:mod:`accord.store.db.write_gate`) is taken first,
  the same way: at once or StoreBusy.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from accord.errors import StoreBusy
from accord.store.db.sqlite import BUSY_TIMEOUT_MS, WRITE_OPTION
from accord.store.db.write_gate import write_turn


class PinnedConnections:
    """Per-thread write connections of one engine (see the module rules)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._local = threading.local()
        self._all: list[Connection] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def transaction(self, wait: bool) -> Iterator[Connection]:
        """A write transaction on this thread's connection; commit at exit."""
        conn: Connection | None = getattr(self._local, "conn", None)
        try:
            conn = self._connection(conn, wait)
            with write_turn(self._engine, wait=wait, timeout=BUSY_TIMEOUT_MS / 1000):
                try:
                    transaction = conn.begin()
                except OperationalError as exc:
                    if not wait and "locked" in str(exc.orig):
                        raise StoreBusy("another writer holds the database") from None
                    raise
                with transaction:
                    yield conn
        except StoreBusy:
            raise  # nothing started: the connection stays as it is
        except BaseException:
            self._unpin(conn)
            raise

    def close(self) -> None:
        """Close every pinned connection (their threads may be gone)."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()

    def _connection(self, conn: Connection | None, wait: bool) -> Connection:
        if conn is None:
            conn = self._engine.connect()
            conn.execution_options(**{WRITE_OPTION: True})  # SQLite: BEGIN IMMEDIATE
            self._local.conn, self._local.wait = conn, True
            with self._lock:
                self._all.append(conn)
        if self._sqlite and self._local.wait != wait:
            raw = conn.connection.dbapi_connection  # not through SQLAlchemy: no autobegin
            assert raw is not None
            raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS if wait else 0}")
            self._local.wait = wait
        return conn

    def _unpin(self, conn: Connection | None) -> None:
        self._local.conn = None
        if conn is None:
            return
        with self._lock, contextlib.suppress(ValueError):
            self._all.remove(conn)
        with contextlib.suppress(Exception):  # a broken connection: nothing to keep
            if not getattr(self._local, "wait", True):
                conn.invalidate()  # never back to the pool with busy_timeout=0
            conn.close()
