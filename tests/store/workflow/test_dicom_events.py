"""The DICOM log's writes (``accord.store.workflow.dicom_events``) and its list
(``accord.store.views.dicom``) on SQLite and PostgreSQL: rows in their own transaction or
the caller's, newest first, filtered by station, kind, accession and time, pruned by
age."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accord.store.gateway.store import SqlStore
from accord.store.views.dicom import DicomLogView
from accord.store.workflow.dicom_events import DicomEvent, DicomEventLog

from ..conftest import T0


def test_rows_are_listed_newest_first_by_every_filter(store: SqlStore) -> None:
    log, view = DicomEventLog(store.database), DicomLogView(store.database)
    log.add([DicomEvent(T0, "find", "CT1", "10.0.0.5", "ok", 3, summary="station CT1"),
             DicomEvent(T0 + timedelta(minutes=1), "find", "MR1", status="ok")])
    with store.transaction() as tx:  # an MPPS: on the transaction that stores it
        log.add_in(tx, DicomEvent(T0 + timedelta(minutes=2), "mpps", "CT1",
                                  status="IN PROGRESS", accession="A1",
                                  sop_instance_uid="1.2.3"))
    everything = view.list()
    assert [(e.kind, e.station) for e in everything.items] == [
        ("mpps", "CT1"), ("find", "MR1"), ("find", "CT1")]
    assert everything.items[2].matches == 3 and everything.items[2].peer == "10.0.0.5"
    assert [e.kind for e in view.list(station="CT1").items] == ["mpps", "find"]
    assert [e.station for e in view.list(kind="find").items] == ["MR1", "CT1"]
    assert [e.sop_instance_uid for e in view.list(accession="A1").items] == ["1.2.3"]
    window = view.list(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=2))
    assert [e.station for e in window.items] == ["MR1"]
    first = view.list(limit=2)
    assert len(first.items) == 2 and first.next_cursor is not None
    assert len(view.list(limit=2, cursor=first.next_cursor).items) == 1


def test_old_rows_are_pruned_in_blocks(store: SqlStore) -> None:
    log = DicomEventLog(store.database)
    log.add([DicomEvent(T0 + timedelta(minutes=n), "find", "CT1") for n in range(5)])
    assert log.prune(T0 + timedelta(minutes=3), block=2) == 2
    assert log.prune(T0 + timedelta(minutes=3), block=2) == 1
    assert log.prune(T0 + timedelta(minutes=3), block=2) == 0
    assert len(DicomLogView(store.database).list().items) == 2


def test_a_kind_is_find_or_mpps() -> None:
    with pytest.raises(ValueError):
        DicomEvent(T0, "echo", "CT1")
