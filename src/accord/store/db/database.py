"""The store's database: one SQLAlchemy engine and the two ways to use it.

Rules:
- A read runs on a connection of its own (:meth:`Database.read`); a write is one
  transaction that commits when the block exits and rolls back when it raises
  (:meth:`Database.write`; on SQLite ``BEGIN IMMEDIATE``, so a read-then-write never
  fails with ``SQLITE_BUSY_SNAPSHOT``). Both raise database failures as StoreError.
  A SQLite writer first takes its turn at this process's write gate
  (:mod:`accord.store.db.write_gate`).
- Every write transaction reports its end to :attr:`Database.commits`
  (:mod:`accord.store.db.commit_faults`): what fails to commit, per component, for the
  alerts and ``/api/health``.
- Every SQL part of the store (gateway, workflow, views, accounts) is given a Database
  when it is built; none finds an engine through another object.
- :func:`connect` picks the engine from the URL: ``sqlite:///path/accord.db``
  (``sqlite.py``) or ``postgresql://user@host:port/db`` (``postgres.py``).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from accord.errors import ConfigError
from accord.store.db import faults
from accord.store.db.commit_faults import CommitFaults
from accord.store.db.errors import db_errors
from accord.store.db.sqlite import BUSY_TIMEOUT_MS, DURABLE_SYNC, WRITE_OPTION
from accord.store.db.write_gate import write_turn


class Database:
    """One engine (SQLite or PostgreSQL), safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect: str = engine.dialect.name
        self.commits = CommitFaults()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads; nothing written on it is committed."""
        with db_errors(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Connection]:
        """A write transaction: committed at exit, rolled back if the block raises.

        ``durable=False`` is for bookkeeping whose loss only repeats work (a delivery's
        lease and its AA): its commit does not wait for the disk. It is never lost to
        a crash of this process, and a power loss can take it only with every later
        commit: each durable commit syncs the log (SQLite's WAL, PostgreSQL's) up to
        itself, the relaxed ones before it included.
        """
        with db_errors(), self.commits.watch(), \
                write_turn(self.engine, timeout=BUSY_TIMEOUT_MS / 1000), \
                self.engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with _relaxed(conn, self.dialect) if not durable else contextlib.nullcontext(), \
                    conn.begin():
                if not durable and self.dialect == "postgresql":
                    conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                yield conn

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


@contextmanager
def _relaxed(conn: Connection, dialect: str) -> Iterator[None]:
    """SQLite: this connection's commits skip their sync until the block ends (the
    pragma is per connection and is set outside the transaction)."""
    if dialect != "sqlite":
        yield
        return
    raw = conn.connection.dbapi_connection  # not through SQLAlchemy: no autobegin
    assert raw is not None
    raw.execute("PRAGMA synchronous=NORMAL")
    try:
        yield
    finally:
        try:
            if raw.in_transaction:  # a failed COMMIT: rolled back by the pool only later
                raw.rollback()
            raw.execute(f"PRAGMA synchronous={DURABLE_SYNC}")
        except sqlite3.Error:
            # Never back to the pool relaxed; the block's own outcome (committed, or
            # its StoreError) is what the caller hears.
            conn.invalidate()


def connect(url: str) -> Database:
    """The database at ``url`` (nothing is read or migrated yet)."""
    if url.startswith("sqlite"):
        from accord.store.db.sqlite import create_sqlite_engine

        engine = create_sqlite_engine(url)
    elif url.startswith(("postgresql", "postgres:")):
        from accord.store.db.postgres import create_postgres_engine

        engine = create_postgres_engine(url)
    else:
        raise ConfigError(f"unsupported store URL scheme: {url.split(':', 1)[0]}")
    faults.install(engine)  # only with ACCORD_TEST_STORE_FAULTS set (tests)
    return Database(engine)
