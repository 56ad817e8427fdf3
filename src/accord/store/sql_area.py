"""The SQL store's engine for store modules with tables of their own (console/API):
short read and write transactions, and keyset cursor helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, Engine

from accord.store import Store


def _engine(store: Store) -> Engine:
    engine = getattr(store, "engine", None)
    if not isinstance(engine, Engine):
        raise TypeError(f"not a SQL store: {type(store).__name__}")
    return engine


class SqlArea:
    """Read and write helpers on a SQL store's engine (shared by ``sql_web``)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = _engine(store)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        from accord.store.sql import db_errors

        with db_errors(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.store.transaction() as tx:
            yield tx.connection  # type: ignore[attr-defined]


def id_cursor(cursor: str | None) -> int | None:
    """Keyset cursors on integer ids are the last id as decimal text."""
    if not cursor:
        return None
    if not cursor.isdigit():
        raise ValueError(f"invalid cursor {cursor!r}")
    return int(cursor)


MAX_LIMIT = 1000


def clamp(limit: int) -> int:
    """Page sizes are 1..1000 (CONTRACT)."""
    return max(1, min(int(limit), MAX_LIMIT))


def split_cursor(cursor: str | None, parts: int) -> list[str] | None:
    """The ``|``-separated fields of a keyset cursor (None for no cursor)."""
    if not cursor:
        return None
    fields = cursor.split("|")
    if len(fields) != parts:
        raise ValueError(f"invalid cursor {cursor!r}")
    return fields


def cursor_time(text: str) -> datetime:
    """A time field of a keyset cursor (ISO 8601)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"invalid cursor time {text!r}") from exc
