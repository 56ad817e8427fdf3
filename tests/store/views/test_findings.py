"""The findings view (``accord.store.views.findings``) on SQLite and PostgreSQL: lists
by kind, resolution, accession and patient, most recently seen first; resolving with a
note; potential duplicate pairs with both patients."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accord.store.gateway.store import SqlStore
from accord.store.views.findings import FindingViews
from accord.workflow.findings import FindingKind, Resolution

from ..conftest import T0
from .builders import finding, patient, save


@pytest.fixture
def findings(store: SqlStore) -> FindingViews:
    return FindingViews(store.database)


def _subjects(page: object) -> list[str]:
    return [sf.finding.subject for sf in page.items]  # type: ignore[attr-defined]


def test_lists_filter_and_page_newest_first(store: SqlStore, findings: FindingViews) -> None:
    save(store, *[finding(FindingKind.UNMAPPED_CODE, subject=f"C{n}",
                          at=T0 + timedelta(minutes=n % 3)) for n in range(7)],
         finding(FindingKind.UNKNOWN_ORDER, accession="A1", subject="U", patient_id="P1"))
    assert _subjects(findings.list(accession="A1")) == ["U"]
    assert _subjects(findings.list(patient_id="P1")) == ["U"]
    seen, cursor = [], None
    while True:
        page = findings.list(kind="unmapped_code", resolution="open", cursor=cursor, limit=3)
        seen += [(sf.finding.last_seen, sf.id) for sf in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 7 and seen == sorted(seen, reverse=True)


def test_resolve_adds_the_note_and_changes_the_state(store: SqlStore,
                                                    findings: FindingViews) -> None:
    save(store, finding(FindingKind.UNKNOWN_ORDER, accession="A1"))
    [sf] = findings.list().items
    done = findings.resolve(sf.id, Resolution.IGNORED, "ignored by alice", T0)
    assert done is not None and done.finding.resolution is Resolution.IGNORED
    assert done.finding.detail.endswith("; ignored by alice")
    assert findings.get(sf.id) == done
    assert findings.list(resolution="open").items == ()
    assert findings.resolve(999_999, Resolution.RESOLVED, "", T0) is None


def test_duplicate_pairs_come_with_both_patients(store: SqlStore,
                                                 findings: FindingViews) -> None:
    save(store, patient("P1"), patient("P2"),
         finding(FindingKind.POTENTIAL_DUPLICATE_PATIENT, patient_id="P1", subject="P2",
                 score=0.91),
         finding(FindingKind.UNKNOWN_ORDER, accession="A1"))
    [pair] = findings.duplicates().items
    assert (pair.a and pair.a.id, pair.b and pair.b.id, pair.score) == ("P1", "P2", 0.91)
    assert findings.pair(pair.finding.id) == pair
    other = next(sf for sf in findings.list().items if sf.id != pair.finding.id)
    assert findings.pair(other.id) is None  # not a duplicate pair
    findings.resolve(pair.finding.id, Resolution.RESOLVED, "merged", T0)
    assert findings.duplicates().items == ()
    assert len(findings.duplicates(include_resolved=True).items) == 1
