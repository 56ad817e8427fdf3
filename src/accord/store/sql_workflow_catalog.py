"""Procedure code tables in the store: every version kept, with its time and author.

Rules: a version is written once and never changed (``procedure_versions`` +
``procedure_codes``, a full copy of the table per version: tables are small and a
version must read back exactly as it was). :func:`sync_code_table` makes the stored
table follow the configured one by adding a version only when the entries differ.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from accord.mapping.procedures import CodeTable, Procedure, TableVersion
from accord.store.schema_workflow import wf_procedure_codes, wf_procedure_versions
from accord.store.sql import SqlStore

_FIELDS = ("code", "description", "modality", "body_part", "duration_minutes", "radlex", "loinc")


def _encode(p: Procedure) -> dict[str, Any]:
    doc: dict[str, Any] = {k: getattr(p, k) for k in _FIELDS}
    doc["stations"] = list(p.stations)
    return doc


def _decode(doc: dict[str, Any]) -> Procedure:
    return Procedure(
        **{k: doc[k] for k in _FIELDS if k in doc}, stations=tuple(doc.get("stations", ()))
    )


def load_code_table(store: SqlStore, name: str = "procedures") -> CodeTable:
    """The stored table with every version, oldest first (no versions when none)."""
    v, c = wf_procedure_versions.c, wf_procedure_codes.c
    with store.engine.connect() as conn:
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


def save_versions(store: SqlStore, table: CodeTable, after: int) -> None:
    """Write the versions of ``table`` numbered above ``after``."""
    new = [version for version in table.versions if version.number > after]
    if not new:
        return
    with store.transaction() as tx:
        for version in new:
            tx.connection.execute(
                insert(wf_procedure_versions).values(
                    table_name=table.name,
                    number=version.number,
                    at=version.at,
                    author=version.author,
                    note=version.note,
                )
            )
            rows = [
                {
                    "table_name": table.name,
                    "number": version.number,
                    "code": code,
                    "doc": _encode(proc),
                }
                for code, proc in version.entries.items()
            ]
            if rows:
                tx.connection.execute(insert(wf_procedure_codes), rows)


def sync_code_table(
    store: SqlStore, configured: CodeTable, *, at: datetime, author: str
) -> CodeTable:
    """The stored table, with a new version when ``configured``'s entries differ."""
    stored = load_code_table(store, configured.name)
    want = configured.current.entries if configured.current else {}
    have = stored.current.entries if stored.current else {}
    if dict(want) == dict(have):
        return stored
    changed = stored.change(
        at=at,
        author=author,
        note="configuration changed",
        upsert=tuple(want.values()),
        remove=tuple(code for code in have if code not in want),
    )
    save_versions(store, changed, stored.current.number if stored.current else 0)
    return changed
