"""Findings as the console and the JSON API list them, and the potential duplicate
patient pairs among them.

Rules:
- Lists are newest first by last sighting, keyset-paginated on (last seen, id), and
  filtered on indexed columns (kind + resolution, accession, patient).
- A duplicate pair is a ``potential_duplicate_patient`` finding with both patients read
  (``patient_id`` and ``subject``), so a page shows both sides.
- The one write here is a person's decision: resolving (or ignoring, or reopening) a
  finding, with a note added to its detail, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, or_, select, update

from accord.store.db import Database
from accord.store.db.paging import clamp, cursor_time, cut, split_cursor
from accord.store.records import Page
from accord.store.schema.workflow import wf_findings
from accord.store.workflow import codec
from accord.store.workflow.identity import decide, frequencies
from accord.store.workflow.repository import patients_by_id
from accord.workflow.findings import Finding, FindingKind, Resolution
from accord.workflow.identity.compare import features
from accord.workflow.identity.fellegi_sunter import MatchResult
from accord.workflow.identity.matcher import DEFAULT_POPULATION, compare_patients
from accord.workflow.model import Patient


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A finding with its row id (what resolve and the pages link to)."""

    id: int
    finding: Finding


@dataclass(frozen=True, slots=True)
class DuplicatePair:
    """A potential duplicate with both patients (None where one no longer exists)."""

    finding: StoredFinding
    a: Patient | None
    b: Patient | None
    score: float


@dataclass(frozen=True, slots=True)
class DuplicateGroup:
    """Registrations linked by open duplicate pairs: one person registered 3+ times."""

    patients: tuple[Patient, ...]
    pairs: tuple[DuplicatePair, ...]


GROUP_LIMIT = 20  # patients shown as one group
QUEUE_SCAN = 5000  # open duplicate pairs read to find a group


def finding_rows(conn: Connection, *, kind: str | None = None, resolution: str | None = None,
                 accession: str | None = None, patient_id: str | None = None,
                 cursor: str | None = None, limit: int = 100) -> Page[StoredFinding]:
    """Findings matching every given filter, most recently seen first."""
    limit = clamp(limit)
    f = wf_findings.c
    where: list[ColumnElement[bool]] = [
        col == value
        for col, value in ((f.kind, kind), (f.resolution, resolution),
                           (f.accession, accession), (f.patient_id, patient_id))
        if value
    ]
    after = split_cursor(cursor, 2)
    if after:
        at, ident = cursor_time(after[0]), int(after[1])
        where.append(or_(f.last_seen < at, and_(f.last_seen == at, f.id < ident)))
    rows = conn.execute(
        select(f.id, f.last_seen, f.doc).where(*where)
        .order_by(f.last_seen.desc(), f.id.desc()).limit(limit + 1)
    ).all()
    page, nxt = cut(rows, limit, lambda r: f"{r.last_seen.isoformat()}|{r.id}")
    return Page(tuple(StoredFinding(r.id, codec.decode_finding(r.doc)) for r in page), nxt)


def _get(conn: Connection, finding_id: int) -> StoredFinding | None:
    row = conn.execute(select(wf_findings.c.doc).where(wf_findings.c.id == finding_id)).first()
    return StoredFinding(finding_id, codec.decode_finding(row.doc)) if row else None


class FindingViews:
    """Findings and duplicate pairs of one database (see the module rules)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def list(self, *, kind: str | None = None, resolution: str | None = None,
             accession: str | None = None, patient_id: str | None = None,
             cursor: str | None = None, limit: int = 100) -> Page[StoredFinding]:
        """Findings matching every given filter, most recently seen first."""
        with self._db.read() as conn:
            return finding_rows(conn, kind=kind, resolution=resolution, accession=accession,
                                patient_id=patient_id, cursor=cursor, limit=limit)

    def get(self, finding_id: int) -> StoredFinding | None:
        with self._db.read() as conn:
            return _get(conn, finding_id)

    def resolve(self, finding_id: int, resolution: Resolution, note: str,
                now: datetime, *, same_person: bool = False) -> StoredFinding | None:
        """A person resolves (or ignores, or reopens) a finding; the note is added to its
        detail. None when there is no such finding. For a duplicate pair the decision is
        remembered (``identity_decisions``): ignored is "not a duplicate" (never proposed
        again), ``same_person`` a merge, reopened forgets the decision."""
        with self._db.write() as conn:
            found = _get(conn, finding_id)
            if found is None:
                return None
            detail = found.finding.detail + (f"; {note}" if note else "")
            new = replace(found.finding, resolution=resolution, detail=detail)
            conn.execute(update(wf_findings).where(wf_findings.c.id == finding_id)
                         .values(resolution=resolution.value, doc=codec.encode_finding(new)))
            if new.kind is FindingKind.POTENTIAL_DUPLICATE_PATIENT and new.subject:
                _remember(conn, new, resolution, same_person, now)
        return StoredFinding(finding_id, new)

    def duplicates(self, *, cursor: str | None = None, limit: int = 100,
                   include_resolved: bool = False) -> Page[DuplicatePair]:
        """Potential duplicate patient pairs (open ones unless ``include_resolved``),
        most recently seen first, with both patients."""
        with self._db.read() as conn:
            page = finding_rows(
                conn, kind=FindingKind.POTENTIAL_DUPLICATE_PATIENT.value,
                resolution=None if include_resolved else Resolution.OPEN.value,
                cursor=cursor, limit=limit)
            people = patients_by_id(conn, (i for sf in page.items
                                           for i in (sf.finding.patient_id, sf.finding.subject)))
        return Page(tuple(_pair(sf, people) for sf in page.items), page.next_cursor)

    def explain(self, a: Patient, b: Patient) -> MatchResult:
        """The pair compared now, field by field, with the store's term counts (the
        console's review: its summary and its table both read this one comparison)."""
        with self._db.read() as conn:
            freqs = frequencies(conn, features(a.demographics))
        return compare_patients(a.demographics, b, freqs=freqs,
                                population=freqs.population or DEFAULT_POPULATION)

    def group(self, f: Finding, limit: int = GROUP_LIMIT) -> DuplicateGroup:
        """The open duplicate pairs linked to this one through shared patients (three
        or more registrations of one person are one group), up to ``limit`` patients.
        Read from the open duplicate findings (the review queue), newest first."""
        members = {f.patient_id, f.subject}
        with self._db.read() as conn:
            rows = conn.execute(
                select(wf_findings.c.id, wf_findings.c.doc)
                .where(wf_findings.c.kind == FindingKind.POTENTIAL_DUPLICATE_PATIENT.value,
                       wf_findings.c.resolution == Resolution.OPEN.value)
                .order_by(wf_findings.c.last_seen.desc()).limit(QUEUE_SCAN)).all()
            open_pairs = [StoredFinding(r.id, codec.decode_finding(r.doc)) for r in rows]
            linked = _component(members, open_pairs, limit)
            people = patients_by_id(conn, (i for sf in linked
                                           for i in (sf.finding.patient_id,
                                                     sf.finding.subject)))
        return DuplicateGroup(tuple(sorted(people.values(), key=lambda p: p.id)),
                              tuple(_pair(sf, people) for sf in linked))

    def pair(self, finding_id: int) -> DuplicatePair | None:
        """One duplicate pair by its finding's id (None when the finding is not one)."""
        with self._db.read() as conn:
            sf = _get(conn, finding_id)
            if sf is None or sf.finding.kind is not FindingKind.POTENTIAL_DUPLICATE_PATIENT:
                return None
            people = patients_by_id(conn, (sf.finding.patient_id, sf.finding.subject))
        return _pair(sf, people)


def _component(members: set[str], pairs: list[StoredFinding], limit: int
               ) -> list[StoredFinding]:
    """The pairs connected to ``members`` (grown to at most ``limit`` patients)."""
    linked: dict[int, StoredFinding] = {}
    grew = True
    while grew:
        grew = False
        for sf in pairs:
            ends = {sf.finding.patient_id, sf.finding.subject}
            if sf.id in linked or not ends & members:
                continue
            if len(members | ends) > limit:
                continue
            members |= ends
            linked[sf.id] = sf
            grew = True
    return sorted(linked.values(), key=lambda sf: sf.id)


def _remember(conn: Connection, f: Finding, resolution: Resolution, same_person: bool,
              now: datetime) -> None:
    decision = ("same" if same_person else "distinct" if resolution is Resolution.IGNORED
                else "" if resolution is Resolution.OPEN else None)
    if decision is not None:
        decide(conn, f.patient_id, f.subject, decision, now, f.explanation)


def _pair(sf: StoredFinding, people: dict[str, Patient]) -> DuplicatePair:
    f = sf.finding
    return DuplicatePair(sf, people.get(f.patient_id), people.get(f.subject),
                         float(f.score or 0.0))
