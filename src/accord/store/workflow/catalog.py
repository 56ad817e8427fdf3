"""Procedure code tables in the store: every version kept, with its time and author.

Rules:

- A version is written once and never changed (``procedure_versions`` +
  ``procedure_codes``, a full copy of the table per version: tables are small and a
  version must read back exactly as it was). Version numbers only grow, so the highest
  number is the table's *catalog version*: :func:`table_version` reads it with one
  primary-key lookup, which is how every node of a shared database notices a change
  (:class:`StoredCodeTable`, read by the workflow processor once per ingest batch).
- Every write is optimistic: it names the version it changed (``expected``); when the
  table moved on meanwhile (another admin, another node) it raises
  :class:`VersionConflict` instead of writing over it. Two writers racing for the same
  number collide on the primary key, and that is the same conflict.
- Seeding from the configuration file (:meth:`CodeTables.sync`, at every start) never
  silently overwrites console edits. The configuration's table as last seeded is kept as
  its own versioned table (``procedures:configured``; it stands for a hash of the seeded
  table and also says *which* codes changed). Then:

  * the store has no table yet → the configuration's table is stored (version 1);
  * the configuration's table equals the one last seeded → nothing is written, the
    store's table (with any console edits) stays as it is;
  * the configuration's table changed since it was last seeded → only the codes whose
    configuration entries changed (added, altered, removed) are applied on top of the
    store's table, as a new version by ``author``. Console edits to other codes are kept.
    When the store also has console edits, a WARNING names the codes the configuration
    applied and those edited on both sides (the configuration wins for those: it is the
    newer, deliberate change; the older console version stays in the history). Code
    values are not patient data;
  * a store seeded before this baseline was kept (nothing remembered) keeps its table;
    the configuration's table becomes the baseline, and a WARNING names the codes where
    the two differ.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError

from accord.errors import StoreError
from accord.mapping.procedures import CodeTable, Procedure, TableVersion
from accord.store import Tx
from accord.store.db import Database
from accord.store.db.compiled import Runner
from accord.store.gateway.store import connection_of
from accord.store.schema.workflow import wf_procedure_codes, wf_procedure_versions

log = logging.getLogger(__name__)

TABLE = "procedures"
SEEDED = ":configured"  # suffix of the table that remembers what the config seeded

_FIELDS = ("code", "description", "modality", "body_part", "duration_minutes", "radlex", "loinc")


class VersionConflict(StoreError):
    """The table changed since the version a writer edited (answered 409 by the console)."""

    def __init__(self, name: str, expected: int, current: int | None) -> None:
        now = "a newer version" if current is None else f"version {current}"
        super().__init__(f"{name}: version {expected} was edited, but the table is at {now}")
        self.expected, self.current = expected, current


def _encode(p: Procedure) -> dict[str, Any]:
    doc: dict[str, Any] = {k: getattr(p, k) for k in _FIELDS}
    doc["stations"] = list(p.stations)
    return doc


def _decode(doc: dict[str, Any]) -> Procedure:
    return Procedure(
        **{k: doc[k] for k in _FIELDS if k in doc}, stations=tuple(doc.get("stations", ()))
    )


# Built once: ingest reads it per batch, and building a statement costs more than running
# it (``statements.py``).
_VERSION = select(func.max(wf_procedure_versions.c.number)).where(
    wf_procedure_versions.c.table_name == bindparam("name"))


def table_version(conn: Connection, name: str = TABLE) -> int:
    """The highest version number of table ``name`` (0 when it has none): its catalog
    version, one primary-key lookup."""
    found = Runner(conn).rows(_VERSION, {"name": name})
    return int(found[0][0] or 0) if found else 0


def read_code_table(conn: Connection, name: str = TABLE) -> CodeTable:
    """The stored table with every version, oldest first, read on ``conn``."""
    v, c = wf_procedure_versions.c, wf_procedure_codes.c
    versions = conn.execute(
        select(v.number, v.at, v.author, v.note).where(v.table_name == name).order_by(v.number)
    ).all()
    codes: dict[int, dict[str, Procedure]] = {}
    for row in conn.execute(select(c.number, c.doc).where(c.table_name == name)):
        proc = _decode(row.doc)
        codes.setdefault(int(row.number), {})[proc.code] = proc
    return CodeTable(
        name,
        tuple(
            TableVersion(int(r.number), r.at, r.author, r.note, codes.get(int(r.number), {}))
            for r in versions
        ),
    )


@dataclass(frozen=True, slots=True)
class StoredCodeTable:
    """The stored code table as the workflow processor reads it on its ingest transaction
    (its ``LiveTable``): the cheap version first, the table when it moved."""

    name: str = TABLE

    def version(self, tx: Tx) -> int:
        return table_version(connection_of(tx), self.name)

    def table(self, tx: Tx) -> CodeTable:
        return read_code_table(connection_of(tx), self.name)


def _insert(conn: Connection, name: str, versions: Iterable[TableVersion]) -> None:
    for version in versions:
        conn.execute(insert(wf_procedure_versions).values(
            table_name=name, number=version.number, at=version.at, author=version.author,
            note=version.note))
        rows = [{"table_name": name, "number": version.number, "code": code,
                 "doc": _encode(proc)} for code, proc in version.entries.items()]
        if rows:
            conn.execute(insert(wf_procedure_codes), rows)


@contextmanager
def _conflicts(name: str, expected: int) -> Iterator[None]:
    """A primary-key collision on a version number (a racing writer) is a conflict."""
    try:
        yield
    except StoreError as exc:
        if isinstance(exc.__cause__, IntegrityError):
            raise VersionConflict(name, expected, None) from exc
        raise


@dataclass(frozen=True, slots=True)
class _Plan:
    entries: dict[str, Procedure]  # the store's table after seeding
    note: str
    applied: tuple[str, ...] = ()  # configuration codes written over the store's table
    both: tuple[str, ...] = ()  # ...of which the console had edited too
    kept: tuple[str, ...] = ()  # codes where the kept store table differs from the config


def _plan(have: Mapping[str, Procedure], seeded: Mapping[str, Procedure] | None,
          want: Mapping[str, Procedure], has_table: bool) -> _Plan:
    """The store's table after seeding ``want`` (rules in the module docstring)."""
    if not has_table:
        return _Plan(dict(want), "seeded from configuration", applied=tuple(sorted(want)))
    if seeded is None:
        kept = sorted(c for c in {*have, *want} if have.get(c) != want.get(c))
        return _Plan(dict(have), "", kept=tuple(kept))
    changed = sorted(c for c in {*seeded, *want} if seeded.get(c) != want.get(c))
    entries = dict(have)
    for code in changed:
        if code in want:
            entries[code] = want[code]
        else:
            entries.pop(code, None)
    both = tuple(c for c in changed if have.get(c) != seeded.get(c))
    note = "configuration changed: " + ", ".join(changed) if changed else ""
    return _Plan(entries, note[:1000], applied=tuple(changed), both=both)


class CodeTables:
    """The stored procedure code tables of one database: read, edit, seed (module rules)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def load(self, name: str = TABLE) -> CodeTable:
        """The stored table with every version, oldest first (no versions when none)."""
        with self._db.read() as conn:
            return read_code_table(conn, name)

    def save_versions(self, table: CodeTable, after: int) -> None:
        """Write the versions of ``table`` numbered above ``after``; :class:`VersionConflict`
        when the stored table is no longer at version ``after``."""
        new = [version for version in table.versions if version.number > after]
        if not new:
            return
        with _conflicts(table.name, after), self._db.write() as conn:
            current = table_version(conn, table.name)
            if current != after:
                raise VersionConflict(table.name, after, current)
            _insert(conn, table.name, new)

    def save_change(
        self, *, expected: int, at: datetime, author: str, note: str,
        upsert: tuple[Procedure, ...] = (), remove: tuple[str, ...] = (), name: str = TABLE,
    ) -> CodeTable:
        """One edit of the table made on version ``expected`` (what the editor saw), stored
        as the next version; :class:`VersionConflict` when the table moved on meanwhile."""
        with _conflicts(name, expected), self._db.write() as conn:
            stored = read_code_table(conn, name)
            current = stored.current.number if stored.current else 0
            if current != expected:
                raise VersionConflict(name, expected, current)
            changed = stored.change(at=at, author=author, note=note, upsert=upsert,
                                    remove=remove)
            _insert(conn, name, changed.versions[-1:])
        return changed

    def sync(self, configured: CodeTable, *, at: datetime, author: str) -> CodeTable:
        """Seed the store from the configuration's table (rules in the module docstring);
        returns the stored table. A node starting at the same moment is retried over."""
        for attempt in range(3):
            try:
                return self._sync(configured, at=at, author=author)
            except VersionConflict:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _sync(self, configured: CodeTable, *, at: datetime, author: str) -> CodeTable:
        name = configured.name
        want = dict(configured.current.entries) if configured.current else {}
        with _conflicts(name, 0), self._db.write() as conn:
            stored = read_code_table(conn, name)
            baseline = read_code_table(conn, name + SEEDED)
            seeded = dict(baseline.current.entries) if baseline.current else None
            if seeded == want:
                return stored
            have = dict(stored.current.entries) if stored.current else {}
            plan = _plan(have, seeded, want, stored.current is not None)
            _insert(conn, name + SEEDED, baseline.change(
                at=at, author=author, note="configuration seeded", upsert=tuple(want.values()),
                remove=tuple(c for c in seeded or () if c not in want)).versions[-1:])
            if plan.entries != have:
                stored = stored.change(at=at, author=author, note=plan.note,
                                       upsert=tuple(plan.entries.values()),
                                       remove=tuple(c for c in have if c not in plan.entries))
                _insert(conn, name, stored.versions[-1:])
        _report(name, plan, have, seeded)
        return stored


def _report(name: str, plan: _Plan, have: Mapping[str, Procedure],
            seeded: Mapping[str, Procedure] | None) -> None:
    if plan.kept:
        log.warning("%s: the stored table is kept (seeded before the configuration's table "
                    "was remembered); codes that differ from the configuration: %s",
                    name, ", ".join(plan.kept))
    elif seeded is not None and have != seeded and plan.applied:
        log.warning("%s: the configuration file changed codes %s since it was last seeded; "
                    "applied over the console's edits (edited on both sides, configuration "
                    "wins: %s; other console edits kept)", name, ", ".join(plan.applied),
                    ", ".join(plan.both) or "none")
    elif plan.applied:
        log.info("%s: configuration codes applied: %s", name, ", ".join(plan.applied))
