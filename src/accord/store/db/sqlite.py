"""SQLite specifics: durable pragmas on every connection, explicit BEGIN.

Rules:
- WAL with ``synchronous=FULL`` on EVERY connection: a commit is on disk before the ACK
  (``NORMAL`` in WAL skips the sync at commit and would lose acknowledged messages on
  power loss). Nothing in the URL may weaken this: unknown query options are refused.
  The one exception is a transaction the store itself marks not durable
  (``Database.write(durable=False)``: delivery leases and AAs, whose loss on power
  failure means a message is sent again): its connection runs ``NORMAL`` for that
  transaction alone and is set back to ``FULL`` before it is used again.
- pysqlite's implicit transactions are turned off and we emit BEGIN ourselves, so that
  write transactions take the write lock up front (``BEGIN IMMEDIATE``) and a
  read-then-write never fails with SQLITE_BUSY_SNAPSHOT.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from accord.errors import ConfigError

BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "accord_write"
DURABLE_SYNC = "FULL"
PRAGMAS = (
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",  # first: switching to WAL may wait for a lock
    "PRAGMA journal_mode=WAL",
    f"PRAGMA synchronous={DURABLE_SYNC}",
    "PRAGMA foreign_keys=ON",
)


def check_url(url: URL) -> None:
    """Refuse URL options: none is needed, and some (``synchronous``, ``journal_mode``
    via URI filenames, ``isolation_level``) would weaken durability or transactions."""
    if url.query:
        raise ConfigError(f"SQLite URL options are not accepted: {sorted(url.query)}")
    if not url.database or url.database == ":memory:":
        raise ConfigError("the SQLite store needs a file path (sqlite:///path/accord.db)")


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
    cursor = dbapi_connection.cursor()
    try:
        for pragma in PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _on_begin(conn: Any) -> None:
    immediate = conn.get_execution_options().get(WRITE_OPTION, False)
    # Straight on the DB-API connection: through ``exec_driver_sql`` this statement cost
    # as much CPU as a one-message ingest's INSERTs (py-spy --gil).
    sql = "BEGIN IMMEDIATE" if immediate else "BEGIN"
    try:
        conn.connection.dbapi_connection.execute(sql)
    except sqlite3.Error as exc:  # raised as SQLAlchemy raises it, for db_errors
        raise DBAPIError.instance(sql, None, exc, sqlite3.Error) from exc


def create_sqlite_engine(url: str) -> Engine:
    """An engine whose every connection is in WAL, synchronous=FULL, foreign keys on."""
    parsed = make_url(url)
    check_url(parsed)
    assert parsed.database is not None
    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    return engine
