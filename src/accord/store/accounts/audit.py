"""The audit log: who saw or changed what, when, from where, with what outcome.

Rules: append-only (nothing here updates or deletes a record); listed newest first,
keyset-paginated on ``id``; its filters (actor, patient, action) are indexed. What goes
in a record (never patient field values) is decided by ``accord.web.audit``.
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
from accord.store.schema.accounts import audit_log


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
    patient_id: str = ""
    count: int = 0
    detail: JsonDict = field(default_factory=dict)
    id: int = 0


def _audit(row: Any) -> AuditEntry:
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
    )


class AuditLog:
    """Writes and lists the audit records of one database."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        with self._db.write() as conn:
            conn.execute(
                insert(audit_log),
                [
                    {
                        "at": e.at,
                        "actor": e.actor[:64],
                        "role": e.role[:16],
                        "peer": e.peer[:64],
                        "action": e.action[:48],
                        "object_type": e.object_type[:32],
                        "object_id": e.object_id[:255],
                        "patient_id": e.patient_id[:64],
                        "outcome": e.outcome[:16],
                        "detail": e.detail,
                        "count": e.count,
                    }
                    for e in entries
                ],
            )

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
        a = audit_log.c
        where: list[ColumnElement[bool]] = []
        for col, value in ((a.actor, actor), (a.patient_id, patient_id), (a.action, action)):
            if value:
                where.append(col == value)
        if since is not None:
            where.append(a.at >= since)
        if until is not None:
            where.append(a.at < until)
        after = id_cursor(cursor)
        if after is not None:
            where.append(a.id < after)
        stmt = select(audit_log).where(*where).order_by(a.id.desc()).limit(limit + 1)
        with self._db.read() as conn:
            rows = [_audit(r) for r in conn.execute(stmt)]
        found, nxt = cut(rows, limit, lambda e: str(e.id))
        return Page(tuple(found), nxt)
