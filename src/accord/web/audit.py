"""The audit log: every view of patient data and every change, who/when/where/outcome.

Rules:
- A view of patient data writes ONE record, which lists every patient shown (the
  store keeps one indexed row per patient, so "who saw patient X" is one lookup); a
  change writes one record. Refusals (401 with a known name, 403) and failed logins are
  recorded too.
- Records are written BEFORE the data is returned: if the audit write fails, the
  request fails (500) and nothing is shown.
- ``detail`` holds what was asked (filters, counts, the action's result), never field
  values of the patient record itself; the ``patient_id`` column is Accord's id
  (``P-…``), not an MRN.
- Read by auditors (``audit.read``), exported as CSV or JSON Lines (``audit.export``).
- Routes and pages write through ``accord.web.deps.record`` (the request's principal).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from accord.clock import Clock
from accord.store import JsonDict
from accord.store.accounts import AuditEntry, AuditLog
from accord.web.auth import Principal

EXPORT_FIELDS = ("id", "at", "actor", "role", "peer", "action", "object_type", "object_id",
                 "patient_id", "outcome", "count", "detail", "patient_ids")
MAX_PATIENTS_PER_VIEW = 1000


class Auditor:
    """Writes and reads the audit records of the store's audit log."""

    def __init__(self, log: AuditLog, clock: Clock) -> None:
        self.log = log
        self.clock = clock

    def record(self, principal: Principal | None, action: str, *, outcome: str = "ok",
               object_type: str = "", object_id: str = "",
               patient_ids: Iterable[str] = (), detail: JsonDict | None = None,
               count: int = 0, peer: str = "", actor: str = "") -> None:
        """Write the record(s) of one action (see the module rules)."""
        now = self.clock.now()
        base = AuditEntry(
            at=now, actor=actor or (principal.name if principal else "anonymous"),
            role=principal.role if principal else "",
            peer=peer or (principal.peer if principal else ""), action=action,
            outcome=outcome, object_type=object_type, object_id=object_id,
            count=count, detail=dict(detail or {}))
        ids = tuple(dict.fromkeys(p for p in patient_ids if p))[:MAX_PATIENTS_PER_VIEW]
        self.log.add([replace(base, patient_ids=ids)])

    def export_rows(self, **filters: Any) -> Iterator[AuditEntry]:
        """Every record matching ``filters`` (as :meth:`AuditLog.page`), newest first,
        read page by page."""
        cursor: str | None = None
        while True:
            page = self.log.page(cursor=cursor, limit=1000, **filters)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


def as_json(entry: AuditEntry) -> JsonDict:
    """One record as the API shows it."""
    return {"id": entry.id, "at": entry.at.isoformat(), "actor": entry.actor,
            "role": entry.role, "peer": entry.peer, "action": entry.action,
            "object_type": entry.object_type, "object_id": entry.object_id,
            "patient_id": entry.patient_id, "outcome": entry.outcome, "count": entry.count,
            "detail": entry.detail, "patient_ids": list(entry.patient_ids)}


def csv_lines(entries: Iterable[AuditEntry]) -> Iterator[str]:
    """CSV export (header first; ``detail`` as compact JSON)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(EXPORT_FIELDS)
    for entry in entries:
        row = as_json(entry)
        row["detail"] = json.dumps(entry.detail, separators=(",", ":"), sort_keys=True)
        row["patient_ids"] = " ".join(entry.patient_ids)
        writer.writerow([row[k] for k in EXPORT_FIELDS])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    if buf.getvalue():
        yield buf.getvalue()


def json_lines(entries: Iterable[AuditEntry]) -> Iterator[str]:
    """JSON Lines export: one record per line."""
    for entry in entries:
        yield json.dumps(as_json(entry), separators=(",", ":")) + "\n"
