"""The store's size on disk, measured and kept once a day (``store_sizes``), so an
operator sees how fast it grows (the dashboard, ``accord_store_bytes`` in the metrics).

SQLite: the database file and its write-ahead log. PostgreSQL:
``pg_database_size`` (PostgreSQL 15 §9.27.7), the database with its indexes and TOAST.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import text

from accord.store.db import Database
from accord.store.db.upsert import upsert
from accord.store.schema import store_sizes


def measure(database: Database) -> int:
    """The store's size in bytes now."""
    if database.dialect == "postgresql":
        with database.read() as conn:
            return int(conn.scalar(text("SELECT pg_database_size(current_database())")) or 0)
    path = database.engine.url.database
    if not path:
        return 0
    return sum(p.stat().st_size for p in (Path(path), Path(f"{path}-wal")) if p.exists())


def record(database: Database, now: datetime) -> int:
    """Measure, and keep the figure as today's (UTC); returns it."""
    size = measure(database)
    with database.write() as conn:
        upsert(conn, store_sizes, [{"day": now.date().isoformat(), "at": now, "bytes": size}],
               keys=("day",))
    return size
