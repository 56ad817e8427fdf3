"""Copying a whole store into another, empty one (``accord db copy``, and restoring a
SQLite backup into PostgreSQL).

Rules:
- The source is read in ONE read transaction (SQLite: a WAL snapshot; PostgreSQL:
  REPEATABLE READ, read only), so the copy is consistent even while an engine writes to
  the source; the target is written in ONE transaction, so a failed copy leaves it empty
  and the command can simply be run again.
- Both stores are at this code's schema head: the source must be (``accord db upgrade``
  first), the target is migrated to it; each table is copied through its ``Table``
  definition, so times, JSON and bytes convert between the two databases.
- The target must be empty: only housekeeping rows (:data:`HOUSEKEEPING`: job leases, the
  first-start setup link, the size history) may be there, and job leases are not copied
  (they belong to the nodes of the source).
- Ids are copied as they are (links between rows are plain ids); PostgreSQL's id
  sequences are then moved past the highest id, so new rows never collide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Table, delete, func, insert, select, text

from accord.errors import StoreError
from accord.store.db import Database, connect
from accord.store.db.errors import db_errors
from accord.store.schema import metadata
from accord.store.schema.migrations import current_revision, head_revision

HOUSEKEEPING = frozenset({"job_locks", "setup_tokens", "store_sizes"})
"""Tables whose rows say nothing about patients, orders or messages: a store holding
only these is empty."""
NOT_COPIED = frozenset({"job_locks"})
BLOCK = 1000

Progress = Callable[[str, int, int], None]
"""Told ``(table, rows copied so far, rows in the table)`` after each block."""


class NotEmptyError(StoreError):
    """The target store holds data already."""


@dataclass(frozen=True, slots=True)
class Copied:
    """What a copy did: rows per table (in the order they were copied)."""

    revision: str
    rows: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def occupied(database: Database) -> dict[str, int]:
    """Tables of ``database`` that hold rows (housekeeping tables aside), with their
    counts; empty for an empty or never-migrated store."""
    found: dict[str, int] = {}
    with database.read() as conn:
        if current_revision(conn) is None:
            return found
        for table in metadata.sorted_tables:
            if table.name in HOUSEKEEPING:
                continue
            count = conn.scalar(select(func.count()).select_from(table)) or 0
            if count:
                found[table.name] = int(count)
    return found


_KNOWN = ("messages", "patients", "orders")


def refuse_unless_empty(database: Database, what: str) -> None:
    """Raise :class:`NotEmptyError` naming what ``database`` (called ``what``) holds."""
    found = occupied(database)
    if found:
        # The tables an operator knows first (what was received, who, what was ordered),
        # then the fullest: the message names what the store holds, not schema order.
        named = sorted(found.items(), key=lambda item: (
            _KNOWN.index(item[0]) if item[0] in _KNOWN else len(_KNOWN), -item[1]))
        held = ", ".join(f"{name}: {n} row{'' if n == 1 else 's'}" for name, n in named[:3])
        raise NotEmptyError(f"{what} is not empty ({held}); it must be an empty store")


def copy_store(source_url: str, target_url: str, *, block: int = BLOCK,
               progress: Progress | None = None) -> Copied:
    """Copy every table of the store at ``source_url`` into the empty store at
    ``target_url`` (module rules); returns the rows copied per table."""
    from accord.store.gateway.store import SqlStore

    source = connect(source_url)
    try:
        target = SqlStore.open(target_url)  # migrated to head
        try:
            refuse_unless_empty(target.database, "the target store")
            return _copy(source, target.database, block, progress)
        finally:
            target.close()
    finally:
        source.close()


def _copy(source: Database, target: Database, block: int,
          progress: Progress | None) -> Copied:
    head = head_revision()
    rows: dict[str, int] = {}
    with snapshot(source) as src:
        revision = current_revision(src)
        if revision != head:
            raise StoreError(f"the source store is at schema revision {revision or 'none'}, "
                             f"not {head}: run accord db upgrade on it first")
        with target.write() as dst:
            for table in metadata.sorted_tables:
                if table.name in NOT_COPIED:
                    continue
                if table.name in HOUSEKEEPING:  # the source's wins over the target's
                    dst.execute(delete(table))
                rows[table.name] = _copy_table(src, dst, table, block, progress)
            if target.dialect == "postgresql":
                _move_sequences(dst)
    return Copied(revision=head, rows=rows)


@contextmanager
def snapshot(database: Database) -> Iterator[Connection]:
    """A read transaction that sees one consistent state of ``database`` throughout."""
    with db_errors(), database.engine.connect() as conn:
        if database.dialect == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ",
                                          postgresql_readonly=True)
        with conn.begin():
            yield conn


def _copy_table(src: Connection, dst: Connection, table: Table, block: int,
                progress: Progress | None) -> int:
    total = int(src.scalar(select(func.count()).select_from(table)) or 0)
    done = 0
    if progress is not None:
        progress(table.name, 0, total)
    order = list(table.primary_key.columns) or list(table.columns)
    result = src.execution_options(yield_per=block).execute(select(table).order_by(*order))
    for part in result.partitions(block):
        dst.execute(insert(table), [dict(row._mapping) for row in part])
        done += len(part)
        if progress is not None:
            progress(table.name, done, total)
    return done


def _move_sequences(conn: Connection) -> None:
    """PostgreSQL: each id sequence past the highest id copied."""
    for table in metadata.sorted_tables:
        for column in table.primary_key.columns:
            if column.autoincrement is not True:
                continue
            seq = conn.scalar(text("SELECT pg_get_serial_sequence(:t, :c)"),
                              {"t": table.name, "c": column.name})
            if seq is None:
                continue
            highest = conn.scalar(select(func.max(column)))
            conn.execute(text("SELECT setval(:s, :v, :called)"),
                         {"s": seq, "v": highest or 1, "called": highest is not None})
