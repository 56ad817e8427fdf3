"""The patient view (``accord.store.views.patients``) on SQLite and PostgreSQL: search by
identifier (with or without its authority) and by family-name prefix, keyset pages, the
patients a message names, and the patient page."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from accord.store.gateway.store import SqlStore
from accord.store.views.patients import PatientViews
from accord.workflow.findings import FindingKind, Resolution
from accord.workflow.model import Identifier

from ..conftest import T0
from .builders import finding, order, patient, save


@pytest.fixture
def patients(store: SqlStore) -> PatientViews:
    return PatientViews(store.database)


def _ids(page: object) -> list[str]:
    return [p.id for p in page.items]  # type: ignore[attr-defined]


def test_search_by_identifier_and_family_prefix(store: SqlStore,
                                                patients: PatientViews) -> None:
    ann = replace(patient("P1", "Berg"), identifiers=(
        Identifier("M1", "HOSP", "MR"), Identifier("900", "NATL", "PI")))
    save(store, ann, patient("P2", "Bergman"), patient("P3", "Stone"))
    assert _ids(patients.search(identifier="900")) == ["P1"]
    assert _ids(patients.search(identifier="900", authority="NATL")) == ["P1"]
    assert _ids(patients.search(identifier="900", authority="HOSP")) == []
    assert _ids(patients.search(family="BERG")) == ["P1", "P2"]
    assert patients.ids_by_identifier("M1") == ["P1"]
    assert patients.ids_naming(["M1", "MRN-P3", "unknown", ""]) == ["P1", "P3"]
    assert patients.get("P2") is not None and patients.get("P9") is None
    assert set(patients.by_id(["P1", "P3", "P9"])) == {"P1", "P3"}


@pytest.mark.parametrize("family", [None, "test"])
def test_keyset_pages_walk_every_patient_once(store: SqlStore, patients: PatientViews,
                                              family: str | None) -> None:
    save(store, *[patient(f"P{n:02d}", f"Testfamily{n % 3}") for n in range(10)])
    seen, cursor = [], None
    while True:
        page = patients.search(family=family, cursor=cursor, limit=3)
        assert len(page.items) == 3 or page.next_cursor is None
        seen += _ids(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == [f"P{n:02d}" for n in range(10)] and len(set(seen)) == 10


def test_the_patient_page(store: SqlStore, patients: PatientViews) -> None:
    save(store, patient("P1"), patient("P2"), patient("P0", merged_into="P1"),
         finding(FindingKind.POTENTIAL_DUPLICATE_PATIENT, patient_id="P1", subject="P2",
                 score=0.93),
         finding(FindingKind.UNKNOWN_ORDER, patient_id="P1"))
    for n in range(3):
        save(store, order(f"O{n}", "P1"), now=T0 + timedelta(minutes=n))
    detail = patients.detail("P1")
    assert detail is not None
    assert [o.id for o in detail.orders] == ["O2", "O1", "O0"]  # newest change first
    assert [sf.finding.subject for sf in detail.duplicates] == ["P2"]  # open ones only
    assert detail.duplicates[0].finding.resolution is Resolution.OPEN
    assert [p.id for p in detail.merged_from] == ["P0"]
    assert detail.visits == ()
    assert patients.detail("P9") is None


def test_a_name_as_people_write_it_and_a_forgiving_identifier(
        store: SqlStore, patients: PatientViews) -> None:
    save(store, patient("P1", "Dietz", "Ines", mrn="MRN9863826"),
         patient("P2", "Dietz", "Anna"), patient("P3", "Ines", "Dieter"))
    for typed in ("Ines Dietz", "Dietz, Ines", "dietz^ines", "DIETZ INES"):
        assert _ids(patients.search(family=typed)) == ["P1"], typed
    assert _ids(patients.search(family="dietz")) == ["P1", "P2"]
    assert _ids(patients.search(identifier="mrn9863826")) == ["P1"]
    assert _ids(patients.search(identifier="3826")) == ["P1"]
    assert _ids(patients.search(identifier="3826", family="anna dietz")) == []
