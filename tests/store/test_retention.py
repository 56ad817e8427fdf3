"""Retention of trace events, resolved findings, finished MPPS instances and the audit
log (``store/retention.py``), in blocks, on SQLite and PostgreSQL; and the store's daily
size (``store/storage.py``, ``views/storage.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select

from accord.store.gateway.store import SqlStore
from accord.store.retention import Retention
from accord.store.schema import audit_log, store_sizes, wf_findings, wf_mpps, wf_trace_events
from accord.store.storage import measure, record
from accord.store.views.storage import StorageView

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _fill(store: SqlStore) -> None:
    days = [T0 + timedelta(days=d) for d in range(10)]
    with store.database.write() as conn:
        conn.execute(insert(wf_trace_events), [
            {"at": at, "order_id": "O1", "accession": "A1", "message": "RIS/1", "doc": {}}
            for at in days for _ in range(3)])
        conn.execute(insert(audit_log), [
            {"at": at, "actor": "admin", "action": "orders.view", "outcome": "ok",
             "detail": {}} for at in days])
        conn.execute(insert(wf_findings), [
            {"key": f"k{i}", "kind": "unknown_order", "severity": "warning",
             "first_seen": at, "last_seen": at, "count": 1, "doc": {},
             "resolution": "open" if i % 2 else "resolved"} for i, at in enumerate(days)])
        conn.execute(insert(wf_mpps), [
            {"sop_instance_uid": f"1.2.{i}", "dataset": b"x", "updated_at": at,
             "status": "IN PROGRESS" if i % 2 else "COMPLETED"} for i, at in enumerate(days)])


def _count(store: SqlStore, table: object) -> int:
    with store.database.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


def test_each_kind_keeps_what_is_recent_or_still_needed(store: SqlStore) -> None:
    _fill(store)
    cut = T0 + timedelta(days=5)  # days 0-4 are older
    pruned = Retention(store.database).prune(
        {"trace": cut, "findings": cut, "mpps": cut, "audit": cut}, block=4)
    assert pruned == {"trace": 15, "findings": 3, "mpps": 3, "audit": 5}
    assert _count(store, wf_trace_events) == 15
    assert _count(store, audit_log) == 5
    with store.database.read() as conn:
        kept = {(r.key, r.resolution) for r in conn.execute(select(wf_findings))}
        mpps = set(conn.scalars(select(wf_mpps.c.status)))
    assert ("k1", "open") in kept and ("k3", "open") in kept  # open findings stay, however old
    assert {k for k, _ in kept} == {"k1", "k3", *(f"k{i}" for i in range(5, 10))}
    assert "IN PROGRESS" in mpps and _count(store, wf_mpps) == 7
    # Only the kinds given are pruned; a second round finds nothing more.
    assert Retention(store.database).prune({"audit": cut}) == {"audit": 0}


def test_an_append_only_table_stops_at_the_first_recent_row(store: SqlStore) -> None:
    with store.database.write() as conn:  # ids grow with time, one late row out of order
        conn.execute(insert(audit_log), [
            {"at": T0 + timedelta(days=d), "actor": "a", "action": "x", "outcome": "ok",
             "detail": {}} for d in (0, 1, 9, 2, 3)])
    assert Retention(store.database).prune({"audit": T0 + timedelta(days=5)}, block=2) == \
        {"audit": 2}
    assert _count(store, audit_log) == 3  # pruned again once the day-9 row is old enough


def test_daily_size_and_growth(store: SqlStore) -> None:
    assert measure(store.database) > 0
    for d in range(3):
        record(store.database, T0 + timedelta(days=d, hours=1))
        record(store.database, T0 + timedelta(days=d, hours=23))  # the day's last wins
    assert _count(store, store_sizes) == 3
    size = StorageView(store.database).size(days=2)
    assert [d.day.isoformat() for d in size.days] == ["2026-01-03", "2026-01-02"]
    assert all(d.change is not None for d in size.days)
    assert size.bytes > 0
