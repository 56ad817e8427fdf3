"""The dashboard view's whole-store counts (``/api/stats``) on SQLite and PostgreSQL.
Its figures are checked with the alert rules that read them (tests/web/test_alerts.py)."""

from __future__ import annotations

from accord.store.gateway.store import SqlStore
from accord.store.views.dashboard import DashboardView
from accord.workflow.findings import FindingKind
from accord.workflow.status import Status

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
