"""Read and write helpers on a SQL store's database (transitional)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from accord.store import Store
from accord.store.db.paging import MAX_LIMIT, clamp, cursor_time, id_cursor, split_cursor

__all__ = ["MAX_LIMIT", "SqlArea", "clamp", "cursor_time", "id_cursor", "split_cursor"]


class SqlArea:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.database = store.database  # type: ignore[attr-defined]

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.database.read() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.database.write() as conn:
            yield conn
