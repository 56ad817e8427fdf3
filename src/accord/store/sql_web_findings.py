"""Findings and potential duplicates for the console and the JSON API (issue 6): lists
keyset-paginated on (last seen, id), newest first; the one write, resolving a finding,
is a person's decision."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update

from accord.store import Page
from accord.store.schema.workflow import wf_findings, wf_patients
from accord.store.sql_area import SqlArea, clamp, cursor_time, split_cursor
from accord.store.workflow import codec
from accord.workflow.findings import Finding, FindingKind, Resolution
from accord.workflow.model import Patient


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A finding with its row id (what resolve and the console link to)."""

    id: int
    finding: Finding


@dataclass(frozen=True, slots=True)
class DuplicatePair:
    """A potential duplicate (a ``potential_duplicate_patient`` finding) with both sides."""

    finding: StoredFinding
    a: Patient | None
    b: Patient | None
    score: float


class FindingQueries(SqlArea):
    """Findings, their resolution, and duplicate pairs (``WebQueries`` inherits these)."""

    def _patients(self, ids: Any) -> dict[str, Patient]:
        wanted = sorted({i for i in ids if i})
        with self.read() as conn:
            rows = conn.execute(select(wf_patients.c.doc).where(wf_patients.c.id.in_(wanted)))
            found = [codec.decode_patient(r.doc) for r in rows]
        return {p.id: p for p in found}

    def findings(
        self,
        *,
        kind: str | None = None,
        resolution: str | None = None,
        accession: str | None = None,
        patient_id: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page[StoredFinding]:
        """Findings matching every filter, most recently seen first."""
        limit = clamp(limit)
        f = wf_findings.c
        where: list[ColumnElement[bool]] = []
        for col, value in (
            (f.kind, kind),
            (f.resolution, resolution),
            (f.accession, accession),
            (f.patient_id, patient_id),
        ):
            if value:
                where.append(col == value)
        after = split_cursor(cursor, 2)
        if after:
            at, ident = cursor_time(after[0]), int(after[1])
            where.append(or_(f.last_seen < at, and_(f.last_seen == at, f.id < ident)))
        stmt = (
            select(f.id, f.last_seen, f.doc)
            .where(*where)
            .order_by(f.last_seen.desc(), f.id.desc())
            .limit(limit + 1)
        )
        with self.read() as conn:
            rows = conn.execute(stmt).all()
        items = tuple(StoredFinding(r.id, codec.decode_finding(r.doc)) for r in rows[:limit])
        nxt = None
        if len(rows) > limit:
            last = rows[limit - 1]
            nxt = f"{last.last_seen.isoformat()}|{last.id}"
        return Page(items, nxt)

    def finding(self, finding_id: int) -> StoredFinding | None:
        with self.read() as conn:
            row = conn.execute(
                select(wf_findings.c.doc).where(wf_findings.c.id == finding_id)
            ).first()
        return StoredFinding(finding_id, codec.decode_finding(row.doc)) if row else None

    def resolve_finding(
        self, finding_id: int, resolution: Resolution, note: str, now: datetime
    ) -> StoredFinding | None:
        """A person resolves (or ignores) a finding; the note is added to its detail."""
        found = self.finding(finding_id)
        if found is None:
            return None
        detail = found.finding.detail + (f"; {note}" if note else "")
        new = replace(found.finding, resolution=resolution, detail=detail)
        with self.write() as conn:
            conn.execute(
                update(wf_findings)
                .where(wf_findings.c.id == finding_id)
                .values(resolution=resolution.value, doc=codec.encode_finding(new))
            )
        return StoredFinding(finding_id, new)

    def duplicates(
        self, *, cursor: str | None = None, limit: int = 100, include_resolved: bool = False
    ) -> Page[DuplicatePair]:
        """Open potential duplicate patient pairs with both patients, newest first."""
        page = self.findings(
            kind=FindingKind.POTENTIAL_DUPLICATE_PATIENT.value,
            resolution=None if include_resolved else Resolution.OPEN.value,
            cursor=cursor,
            limit=limit,
        )
        patients = self._patients(
            i for sf in page.items for i in (sf.finding.patient_id, sf.finding.subject)
        )
        return Page(
            tuple(
                DuplicatePair(
                    sf,
                    patients.get(sf.finding.patient_id),
                    patients.get(sf.finding.subject),
                    float(sf.finding.score or 0.0),
                )
                for sf in page.items
            ),
            page.next_cursor,
        )
