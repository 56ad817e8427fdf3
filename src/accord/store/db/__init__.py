"""The store's database layer: engines for SQLite and PostgreSQL, the
:class:`Database` every SQL part is built on, and what all of them share (paging,
text cleaning, compiled statements, upserts, pinned write connections)."""

from accord.store.db.database import Database, connect

__all__ = ["Database", "connect"]
