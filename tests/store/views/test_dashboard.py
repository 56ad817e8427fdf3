"""The dashboard view on SQLite and PostgreSQL: its figures, whatever made the rows they
count, each the length of the list behind it; the whole-store counts of ``/api/stats``.
The alert rules that read the figures are tested in tests/web/test_alerts.py."""

from __future__ import annotations

from datetime import datetime, timedelta

from accord.store.gateway.store import SqlStore
from accord.store.views.dashboard import DashboardView
from accord.store.views.dicom import DicomLogView
from accord.store.workflow.dicom_events import DicomEvent, DicomEventLog
from accord.workflow.findings import FindingKind
from accord.workflow.status import Status

from ..conftest import T0
from ..factories import inbound, item
from .builders import DAY, finding, order, patient, save


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


def _deliver(store: SqlStore, destination: str, at: datetime) -> None:
    """The delivery worker's part: claim each head of the queue in turn, record its AA."""
    while rows := store.claim(destination, "node-a", at, 60.0):
        for row in rows:
            assert store.mark_delivered(row.id, "node-a", b"MSA|AA", at)


def test_figures_count_rows_whatever_made_them(store: SqlStore) -> None:
    """A received message (MLLP), an MPPS (no message: the DICOM log), a person at the
    console (an A40 from ACCORD^CONSOLE, a resend) and a job all count, each in the
    window it happened in."""
    now = T0 + timedelta(minutes=30)
    with store.transaction() as tx:
        mllp = tx.save_inbound(inbound(1))
        tx.save_inbound(inbound(2, status="rejected", ack_code="AR", sending_app="",
                                sending_facility=""))
        console = tx.save_inbound(inbound(3, sending_app="ACCORD", sending_facility="CONSOLE",
                                          message_type="ADT^A40"))
        tx.enqueue([item("pacs", 1, source_message_id=mllp),
                    item("pacs", 2, source_message_id=console, kind="adt"),
                    item("ris", 3, kind="status", accession="ACC9")],  # an MPPS's update
                   T0 + timedelta(minutes=1))
    DicomEventLog(store.database).add([
        DicomEvent(T0 + timedelta(minutes=2), "find", "CT1", matches=2),
        DicomEvent(T0 + timedelta(minutes=3), "mpps", "CT1", status="IN PROGRESS")])
    _deliver(store, "pacs", T0 + timedelta(minutes=5))
    _deliver(store, "ris", T0 + timedelta(minutes=6))
    # A job (or a person) sends a delivered row again: a new row, delivered later.
    [ris_row] = store.list_outbox(destination="ris").items
    with store.database.write() as conn:  # a resend is allowed from error/cancelled only
        conn.exec_driver_sql(f"UPDATE outbox SET status = 'cancelled' WHERE id = {ris_row.id}")
    store.reprocess_outbox(ris_row.id, T0 + timedelta(minutes=7))
    _deliver(store, "ris", T0 + timedelta(minutes=8))
    save(store, patient("P1"), order("O1", "P1", modality="CT"),
         order("O2", "P1", modality="MR", status=Status.IN_PROGRESS),
         order("O3", "P1", modality="CT", at=T0 + timedelta(days=1)))

    dash = DashboardView(store.database).figures(now, timedelta(hours=1), ["pacs", "ris"],
                                                 ["MR1"])
    by_sender = {i.sender: (i.received, i.errored, i.rejected) for i in dash.interfaces}
    assert by_sender == {"RIS^HOSP": (1, 0, 0), "-": (1, 1, 1), "ACCORD^CONSOLE": (1, 0, 0)}
    delivered = {d.name: d.delivered for d in dash.destinations}
    assert delivered == {"pacs": 2, "ris": 2}
    stations = {s.station: (s.queries, s.mpps, s.known) for s in dash.stations}
    assert stations == {"CT1": (1, 1, True), "MR1": (0, 0, True)}
    assert dash.day == DAY and dash.orders_today == (("CT", "scheduled", 1),
                                                     ("MR", "in_progress", 1))
    # Each figure is the length of the list behind it, with the same bounds.
    since, until = dash.since, dash.until
    for name, count in delivered.items():
        rows = store.list_outbox(destination=name, delivered_since=since,
                                 delivered_until=until).items
        assert len(rows) == count
    assert len(store.search_messages(sender="-", since=since, until=until).items) == 1
    assert len(store.search_messages(sender="RIS^HOSP", status=("error", "rejected"),
                                     since=since, until=until).items) == 0
    log = DicomLogView(store.database)
    assert len(log.list(station="CT1", kind="mpps", since=since, until=until).items) == 1
    # Out of the window: nothing.
    later = DashboardView(store.database).figures(now + timedelta(hours=2),
                                                  timedelta(minutes=30), ["pacs", "ris"])
    assert later.interfaces == () and {d.delivered for d in later.destinations} == {0}
