"""The audit log over SQLAlchemy Core (table ``audit_log`` in ``schema_web``): append-only,
keyset-listed by id, newest first; its filters (actor, patient, action) are indexed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, insert, select

from accord.store import JsonDict, Page
from accord.store.schema.accounts import audit_log
from accord.store.sql_area import SqlArea, id_cursor


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


class AuditLog(SqlArea):
    """Writes and lists audit records (``AuthStore`` inherits these)."""

    def add_audit(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        with self.write() as conn:
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

    def list_audit(
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
        with self.read() as conn:
            rows = [_audit(r) for r in conn.execute(stmt)]
        nxt = str(rows[limit - 1].id) if len(rows) > limit else None
        return Page(tuple(rows[:limit]), nxt)
