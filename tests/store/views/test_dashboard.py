"""The dashboard view's whole-store counts (``/api/stats``) on SQLite and PostgreSQL,
and its interfaces' figures kept from changes (equal to a fresh read as the window moves,
a message that commits after a later one included). The figures are also checked with
the alert rules that read them (tests/web/test_alerts.py)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from accord.store import open_store
from accord.store.gateway.store import SqlStore
from accord.store.views.dashboard import DashboardView, InterfaceFigures, InterfaceWindow
from accord.workflow.findings import FindingKind
from accord.workflow.status import Status

from ..conftest import T0
from ..factories import inbound
from .builders import finding, order, patient, save


def test_counts_live_patients_orders_by_status_and_open_findings(store: SqlStore) -> None:
    save(store, patient("P1"), patient("P0", merged_into="P1"), order("O1", "P1"),
         order("O2", "P1", status=Status.COMPLETED),
         finding(FindingKind.UNMAPPED_CODE, subject="X"),
         finding(FindingKind.UNKNOWN_ORDER, accession="A1"))
    with store.database.write() as conn:  # one finding decided by a person
        conn.exec_driver_sql("UPDATE findings SET resolution = 'ignored' "
                             "WHERE kind = 'unknown_order'")
    assert DashboardView(store.database).counts() == {
        "patients": 1, "orders": 2, "orders_scheduled": 1, "orders_completed": 1,
        "findings_open": 1, "findings_unmapped_code": 1}


def _received(store: SqlStore, n: int, at: datetime, sender: str = "RIS",
              status: str = "processed") -> None:
    with store.transaction() as tx:
        tx.save_inbound(inbound(n, at=at, sending_app=sender, status=status,
                                ack_code="AE" if status == "error" else "AA"))


def _cold(store: SqlStore, now: datetime, window: timedelta) -> list[InterfaceFigures]:
    with store.database.read() as conn:
        return InterfaceWindow(window).figures(conn, now)


def test_interface_figures_kept_from_changes_equal_a_fresh_read(store: SqlStore) -> None:
    rng = random.Random(5)
    window = timedelta(minutes=10)
    view = DashboardView(store.database)
    now, n = T0, 0
    for step in range(40):
        for _ in range(rng.randrange(0, 6)):
            n += 1
            _received(store, n, now - timedelta(seconds=rng.randrange(0, 30)),
                      rng.choice(("RIS", "HIS", "LAB")),
                      rng.choice(("processed", "processed", "error", "rejected")))
        now += timedelta(seconds=rng.randrange(1, 90))
        kept = view.figures(now, window).interfaces
        assert kept == tuple(_cold(store, now, window)), step
    assert view.figures(now - timedelta(seconds=2), window).interfaces == kept  # a moment
    earlier = now - timedelta(minutes=5)  # a clock set back: read afresh
    assert view.figures(earlier, window).interfaces == tuple(_cold(store, earlier, window))


def test_a_message_committed_after_a_later_one_is_counted(
        store: SqlStore, store_url: str) -> None:
    if store.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: message ids commit in order")
    other = open_store(store_url)
    window = timedelta(minutes=10)
    view = DashboardView(store.database)
    try:
        _received(store, 1, T0)
        assert [f.received for f in view.figures(T0, window).interfaces] == [1]
        slow = other.transaction()
        tx = slow.__enter__()
        tx.save_inbound(inbound(2, at=T0))  # takes id 2, commits last
        _received(store, 3, T0)
        assert [f.received for f in view.figures(T0, window).interfaces] == [2]
        slow.__exit__(None, None, None)
        assert [f.received for f in view.figures(T0, window).interfaces] == [3]
        later = T0 + window + timedelta(seconds=1)
        assert view.figures(later, window).interfaces == ()  # all three left again
    finally:
        other.close()
