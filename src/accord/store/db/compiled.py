"""Prebuilt statements run straight on SQLite's DB-API cursor (the workflow's hot path).

Why: ingest runs about ten small workflow statements per message in the one writer
thread, and SQLAlchemy's per-execution work (execution context, parameter processing,
result set-up) cost about three times what SQLite itself spent on them (measured with
py-spy on a group-commit loop: ~30% of the writer's time). A :class:`Runner` compiles
each statement once per dialect, keeps its SQL text, parameter order and the column
types' own bind/result processors (so values are stored exactly as SQLAlchemy stores
them: UTC datetimes as text, JSON as text), and runs it on the connection's DB-API
cursor, inside the same transaction and savepoints.

Rules:
- SQLite only, and only statements without expanding (``IN``) parameters or
  Python-side column defaults; anything else, and every other database, goes through
  ``Connection.execute`` unchanged. Rows come back as plain tuples either way.
- A driver error is raised as SQLAlchemy raises it (``IntegrityError`` …), so callers
  and ``db_errors`` see no difference.
- The statement objects are module constants (or cached builds), so compiled forms are
  kept by identity and the column set of an INSERT's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # positional parameter order
    defaults: tuple[Any, ...]  # a bound literal's own value, used when not passed
    binds: tuple[Processor, ...]
    results: tuple[Processor, ...]
    # The three above zipped once, and the processors that are there: arguments are
    # built per row, often ten times per message.
    params: tuple[tuple[str, Any, Processor], ...] = ()
    processed: bool = True  # any bind processor
    converted: bool = True  # any result processor


_COMPILED: dict[tuple[int, tuple[str, ...]], _Compiled | None] = {}
_KEEP: list[Any] = []  # statements compiled here stay alive, so their ids stay theirs


def _compile(conn: Connection, stmt: Any, keys: tuple[str, ...]) -> _Compiled | None:
    dialect = conn.dialect
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys) or None)
    assert isinstance(compiled, SQLCompiler)
    binds = compiled.binds
    if (compiled.positiontup is None or compiled.insert_prefetch or compiled.update_prefetch
            or any(b.expanding for b in binds.values())
            or any(binds[n].callable is not None for n in compiled.positiontup)):
        return None
    names = tuple(binds[n].key for n in compiled.positiontup)
    defaults = tuple(binds[n].value for n in compiled.positiontup)
    bind_procs = tuple(binds[n].type.dialect_impl(dialect).bind_processor(dialect)
                       for n in compiled.positiontup)
    results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None)
                    for c in getattr(stmt, "selected_columns", ()))
    return _Compiled(compiled.string, names, defaults, bind_procs, results,
                     tuple(zip(names, defaults, bind_procs, strict=True)),
                     any(bind_procs), any(results))


def _args(c: _Compiled, params: Mapping[str, Any]) -> list[Any]:
    get = params.get
    if not c.processed:
        return [get(n, d) for n, d, _ in c.params]
    return [get(n, d) if p is None else p(get(n, d)) for n, d, p in c.params]


class Runner:
    """Runs prebuilt statements on one connection (see the module rules)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._raw = conn.dialect.name == "sqlite"
        self._cur: Any = None
        self._error: type[Exception] = conn.dialect.loaded_dbapi.Error

    def _compiled(self, stmt: Any, keys: tuple[str, ...]) -> _Compiled | None:
        cache_key = (id(stmt), keys)
        if cache_key not in _COMPILED:
            _KEEP.append(stmt)
            _COMPILED[cache_key] = _compile(self._conn, stmt, keys)
        return _COMPILED[cache_key]

    def _cursor(self) -> Any:
        if self._cur is None:
            self._cur = self._conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        return self._cur

    def rows(self, stmt: Any, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of a SELECT, as tuples of processed column values."""
        c = self._compiled(stmt, ()) if self._raw else None
        if c is None:
            return [tuple(r) for r in self._conn.execute(stmt, dict(params))]
        try:
            found = self._cursor().execute(c.sql, _args(c, params)).fetchall()
        except self._error as exc:
            raise _wrapped(c.sql, exc, self._error) from exc
        if not c.converted:
            return found  # type: ignore[no-any-return]
        return [tuple(v if p is None else p(v) for v, p in zip(row, c.results, strict=True))
                for row in found]

    def run(self, stmt: Any, rows: Sequence[Mapping[str, Any]]) -> int:
        """Execute a DML statement once per parameter set (all with the same keys);
        returns the rows an UPDATE or DELETE changed, all parameter sets together (the
        driver's ``rowcount``: PostgreSQL does not count a many-row INSERT)."""
        if not rows:
            return 0
        c = self._compiled(stmt, tuple(rows[0])) if self._raw else None
        if c is None:
            return int(self._conn.execute(stmt, [dict(r) for r in rows]).rowcount)
        cursor = self._cursor()
        try:
            if len(rows) == 1:
                cursor.execute(c.sql, _args(c, rows[0]))
            else:
                cursor.executemany(c.sql, [_args(c, r) for r in rows])
        except self._error as exc:
            raise _wrapped(c.sql, exc, self._error) from exc
        return int(cursor.rowcount)

    def insert_ids(self, stmt: Any, rows: Sequence[Mapping[str, Any]]) -> list[int] | None:
        """Insert ``rows`` one by one and return each new row's id (SQLite's rowid), or
        None when this connection cannot (another database, or a statement the module
        rules leave to SQLAlchemy): the caller then uses INSERT … RETURNING."""
        c = self._compiled(stmt, tuple(rows[0])) if self._raw and rows else None
        if c is None:
            return None
        cursor, ids = self._cursor(), []
        try:
            for row in rows:
                cursor.execute(c.sql, _args(c, row))
                ids.append(int(cursor.lastrowid))
        except self._error as exc:
            raise _wrapped(c.sql, exc, self._error) from exc
        return ids


def _wrapped(sql: str, exc: Exception, base: type[Exception]) -> StatementError:
    """A driver error as SQLAlchemy raises it; parameters left out: they may carry
    patient data. (Inline ``try`` rather than a context manager: it runs per statement.)"""
    return DBAPIError.instance(sql, None, exc, base)
