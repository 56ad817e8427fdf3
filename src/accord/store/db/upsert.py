"""INSERT … ON CONFLICT DO UPDATE, written the same way for SQLite and PostgreSQL.

Why a module: building the statement (the dialect's ``insert`` with its ``excluded``
columns) costs more than running it, and the workflow upserts several rows per message;
each statement is built once per table, column set and key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

from accord.store.db.compiled import Runner

_BUILT: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], Any] = {}


def _statement(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]
) -> Any:
    dialect = conn.dialect.name
    cache_key = (table.name, dialect, tuple(rows[0]), tuple(keys))
    stmt = _BUILT.get(cache_key)
    if stmt is None:
        make = postgresql.insert if dialect == "postgresql" else sqlite.insert
        base = make(table)
        others = {c: base.excluded[c] for c in rows[0] if c not in keys}
        stmt = _BUILT[cache_key] = base.on_conflict_do_update(
            index_elements=list(keys), set_=others)
    return stmt


def upsert(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], keys: Sequence[str],
    runner: Runner | None = None,
) -> None:
    """Insert ``rows`` (all with the same columns), updating the row with the same
    ``keys`` where there is one; through ``runner`` when given (``compiled``)."""
    if not rows:
        return
    stmt = _statement(conn, table, rows, keys)
    if runner is not None:
        runner.run(stmt, rows)
    else:
        conn.execute(stmt, rows)
