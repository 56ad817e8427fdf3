"""The worklist view (``accord.store.views.worklist``) on SQLite and PostgreSQL: what the
MWL serves (scheduled or arrived, not held), in start order, filtered by station,
modality and date, pages that are never short while more steps match, and each row with
the open findings about it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accord.store.gateway.store import SqlStore
from accord.store.views.worklist import WorklistView
from accord.workflow.status import Status

from ..conftest import T0
from .builders import DAY, finding, order, patient, save


@pytest.fixture
def worklist(store: SqlStore) -> WorklistView:
    return WorklistView(store.database)


def _orders(page: object) -> list[str]:
    return [row.order.id for row in page.items]  # type: ignore[attr-defined]


def test_held_orders_are_skipped_by_the_query_so_pages_are_full(
        store: SqlStore, worklist: WorklistView) -> None:
    save(store, patient("P1"), *[
        order(f"O{n}", "P1", at=T0 + timedelta(minutes=10 * n), held=n in (1, 2, 4))
        for n in range(1, 8)])
    first = worklist.steps(date=DAY, limit=2)
    assert _orders(first) == ["O3", "O5"]  # O1, O2 held: not a short page of one
    second = worklist.steps(date=DAY, cursor=first.next_cursor, limit=2)
    assert _orders(second) == ["O6", "O7"]
    assert second.next_cursor is None
    assert all(row.patient is not None and row.patient.id == "P1" for row in first.items)


def test_only_statuses_the_mwl_serves(store: SqlStore, worklist: WorklistView) -> None:
    save(store, patient("P1"), order("O1", "P1"), order("O2", "P1", status=Status.ARRIVED),
         order("O3", "P1", status=Status.IN_PROGRESS),
         order("O4", "P1", status=Status.CANCELLED))
    assert sorted(_orders(worklist.steps())) == ["O1", "O2"]


def test_steps_past_the_horizon_are_not_listed(store: SqlStore, worklist: WorklistView) -> None:
    save(store, patient("P1"), order("O1", "P1", at=T0 - timedelta(hours=2)),
         order("O2", "P1", at=T0 + timedelta(hours=1)))
    assert _orders(worklist.steps()) == ["O1", "O2"]
    assert _orders(worklist.steps(started_after=T0 - timedelta(hours=1))) == ["O2"]
    assert _orders(worklist.steps(started_after=T0 + timedelta(hours=2))) == []


def test_filters_and_the_filter_choices(store: SqlStore, worklist: WorklistView) -> None:
    save(store, patient("P1"), order("O1", "P1", station="CT1", modality="CT"),
         order("O2", "P1", station="MR1", modality="MR", at=T0 + timedelta(hours=1)),
         order("O3", "P1", station="CT1", at=T0 + timedelta(days=1)))
    assert _orders(worklist.steps(station="CT1", date=DAY)) == ["O1"]
    assert _orders(worklist.steps(modality="MR")) == ["O2"]
    assert _orders(worklist.steps(date="20260304")) == []
    assert worklist.choices(DAY) == (["CT1", "MR1"], ["CT", "MR"])


def test_every_step_once_in_start_order_across_pages(store: SqlStore,
                                                     worklist: WorklistView) -> None:
    save(store, patient("P1"), *[
        order(f"O{n:02d}", "P1", at=T0 + timedelta(minutes=n % 4), steps=2)
        for n in range(9)])
    seen, cursor = [], None
    while True:
        page = worklist.steps(cursor=cursor, limit=4)
        assert len(page.items) == 4 or page.next_cursor is None
        seen += [(row.step.start, row.order.id, row.step.sps_id) for row in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 18 and seen == sorted(seen)


def test_a_cursor_not_made_here_is_refused(worklist: WorklistView) -> None:
    with pytest.raises(ValueError):
        worklist.steps(cursor="nonsense")


def test_a_row_carries_its_open_findings_and_a_stationless_one_its_code(
        store: SqlStore, worklist: WorklistView) -> None:
    from dataclasses import replace

    from accord.workflow.findings import FindingKind, Resolution

    nm = order("O2", "P1", at=T0 + timedelta(minutes=5))
    nm = replace(nm, procedure_code="NM-BONE",
                 steps=tuple(replace(s, station_ae_titles=()) for s in nm.steps))
    fixed = replace(finding(FindingKind.UNKNOWN_ORDER, accession="ACC-O1"),
                    resolution=Resolution.RESOLVED)
    save(store, patient("P1"), order("O1", "P1"), nm,
         finding(FindingKind.SCHEDULED_IN_PAST, accession="ACC-O1"), fixed,
         finding(FindingKind.UNMAPPED_CODE, subject="NM-BONE"),
         finding(FindingKind.UNMAPPED_CODE, subject="XR-OTHER"))
    first, second = worklist.steps(date=DAY).items
    assert [sf.finding.kind for sf in first.findings] == [FindingKind.SCHEDULED_IN_PAST]
    assert not first.stationless and second.stationless
    assert [(sf.finding.kind, sf.finding.subject) for sf in second.findings] == [
        (FindingKind.UNMAPPED_CODE, "NM-BONE")]
