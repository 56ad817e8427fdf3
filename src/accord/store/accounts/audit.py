"""The audit log: who saw or changed what, when, from where, with what outcome.

Rules: append-only (nothing here updates or deletes a record); listed newest first,
keyset-paginated on ``id``; its filters (actor, patient, action) are indexed. A record
is about any number of patients (``patient_ids``): one row of ``audit_patients`` each,
so a search that showed fifty patients is one record, and "who saw patient X" is still
one indexed look-up. What goes in a record (never patient field values) is decided by
``accord.web.audit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, insert, select

from accord.store.db import Database
from accord.store.db.paging import clamp, cut, id_cursor
from accord.store.records import JsonDict, Page
from accord.store.schema.accounts import audit_log, audit_patients


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit record: who, when, from where, what on which object (and patient), and
    the outcome (``ok``, ``denied``, ``not_found``, ``failed``)."""

    at: datetime
    actor: str
    action: str
    outcome: str
    role: str = ""
    peer: str = ""
    object_type: str = ""
    object_id: str = ""
    patient_id: str = ""  # the patient, when the record is about exactly one
    count: int = 0
    detail: JsonDict = field(default_factory=dict)
    id: int = 0
    patient_ids: tuple[str, ...] = ()  # every patient the record is about

    def __post_init__(self) -> None:
        if self.patient_id and not self.patient_ids:
            object.__setattr__(self, "patient_ids", (self.patient_id,))


def _audit(row: Any, patients: tuple[str, ...] = ()) -> AuditEntry:
    m = row._mapping
    return AuditEntry(
        at=m["at"],
        actor=m["actor"],
        action=m["action"],
        outcome=m["outcome"],
        role=m["role"],
        peer=m["peer"],
        object_type=m["object_type"],
        object_id=m["object_id"],
        patient_id=m["patient_id"],
        count=m["count"],
        detail=dict(m["detail"] or {}),
        id=m["id"],
        patient_ids=patients or ((m["patient_id"],) if m["patient_id"] else ()),
    )


class AuditLog:
    """Writes and lists the audit records of one database."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, entries: Sequence[AuditEntry]) -> None:
        """Write records, each with a row of ``audit_patients`` per patient it is about."""
        if not entries:
            return
        with self._db.write() as conn:
            for e in entries:
                ids = tuple(dict.fromkeys(p[:64] for p in e.patient_ids if p))
                audit_id = conn.execute(insert(audit_log).returning(audit_log.c.id), {
                    "at": e.at,
                    "actor": e.actor[:64],
                    "role": e.role[:16],
                    "peer": e.peer[:64],
                    "action": e.action[:48],
                    "object_type": e.object_type[:32],
                    "object_id": e.object_id[:255],
                    "patient_id": (e.patient_id or (ids[0] if len(ids) == 1 else ""))[:64],
                    "outcome": e.outcome[:16],
                    "detail": e.detail,
                    "count": e.count,
                }).scalar_one()
                if ids:
                    conn.execute(insert(audit_patients),
                                 [{"audit_id": audit_id, "patient_id": p} for p in ids])

    def page(
        self,
        *,
        actor: str | None = None,
        patient_id: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page[AuditEntry]:
        """Audit records matching every filter, newest first."""
        limit = clamp(limit)
        a, ap = audit_log.c, audit_patients.c
        where: list[ColumnElement[bool]] = []
        for col, value in ((a.actor, actor), (a.action, action)):
            if value:
                where.append(col == value)
        if patient_id:
            where.append(a.id.in_(select(ap.audit_id).where(ap.patient_id == patient_id)))
        if since is not None:
            where.append(a.at >= since)
        if until is not None:
            where.append(a.at < until)
        after = id_cursor(cursor)
        if after is not None:
            where.append(a.id < after)
        stmt = select(audit_log).where(*where).order_by(a.id.desc()).limit(limit + 1)
        with self._db.read() as conn:
            rows = conn.execute(stmt).all()
            patients: dict[int, list[str]] = {}
            if rows:
                for audit_id, pid in conn.execute(
                        select(ap.audit_id, ap.patient_id)
                        .where(ap.audit_id.in_([r.id for r in rows]))
                        .order_by(ap.audit_id, ap.patient_id)):
                    patients.setdefault(audit_id, []).append(pid)
        entries = [_audit(r, tuple(patients.get(r.id, ()))) for r in rows]
        found, nxt = cut(entries, limit, lambda e: str(e.id))
        return Page(tuple(found), nxt)
