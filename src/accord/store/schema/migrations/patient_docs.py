"""The live patients' documents, as the migrations that backfill identity data read
them: block by block, their demographics only (the store's codec lives above the
schema, and a migration must not import it: ``store/workflow/codec.py`` writes these
documents), and the counts they file."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import Any

import sqlalchemy as sa

from accord.workflow.model import Address, Demographics, PersonName


def demographics(doc: dict[str, Any]) -> Demographics:
    """The fields of a patient document matching reads."""
    name, address = doc.get("name") or {}, doc.get("address") or {}
    birth = doc.get("birth_date")
    return Demographics(
        name=PersonName(**{k: str(name.get(k, "")) for k in
                           ("family", "given", "middle", "suffix", "prefix")}),
        birth_date=date.fromisoformat(birth) if birth else None,
        sex=str(doc.get("sex") or ""),
        address=Address(**{k: str(address.get(k, "")) for k in
                           ("street", "other", "city", "state", "postal_code", "country")}),
        phone=str(doc.get("phone") or ""),
        national_id=str(doc.get("national_id") or ""),
        mothers_maiden_name=str(doc.get("mothers_maiden_name") or ""),
    )


BLOCK = 1000
_PATIENTS = sa.table("patients", sa.column("id"), sa.column("doc"), sa.column("merged_into"))
_COUNTS = sa.table("identity_counts", sa.column("key"), sa.column("count"))


def live_patients(conn: sa.Connection) -> Iterator[list[tuple[str, Demographics]]]:
    """The live (not merged) patients in id order, ``BLOCK`` at a time: (id,
    demographics)."""
    last = ""
    while True:
        rows = conn.execute(
            sa.select(_PATIENTS.c.id, _PATIENTS.c.doc)
            .where(_PATIENTS.c.id > last, _PATIENTS.c.merged_into.is_(None))
            .order_by(_PATIENTS.c.id).limit(BLOCK)).all()
        if not rows:
            return
        yield [(str(row.id), demographics(json.loads(row.doc) if isinstance(row.doc, str)
                                          else row.doc)) for row in rows]
        last = rows[-1].id


def insert_counts(conn: sa.Connection, counts: Counter[str]) -> None:
    """``identity_counts`` rows for the keys counted (none there yet)."""
    items = [{"key": k[:255], "count": n} for k, n in sorted(counts.items()) if n]
    for start in range(0, len(items), BLOCK * 10):
        conn.execute(sa.insert(_COUNTS), items[start:start + BLOCK * 10])


def forget_counts(conn: sa.Connection, prefix: str) -> None:
    """Remove the ``identity_counts`` rows of the keys starting with ``prefix``, so that a
    backfill counts each patient once whatever earlier steps left."""
    conn.execute(sa.delete(_COUNTS).where(_COUNTS.c.key.like(f"{prefix}%")))
