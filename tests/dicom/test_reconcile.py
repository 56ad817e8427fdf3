"""Completed but not found: decisions (pure) and one job run against a fake PACS."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dicom_support import order, patient
from pydicom.dataset import Dataset
from pynetdicom import AE, evt

from accord.dicom.reconcile import (
    COMPLETED_STUDY_MISSING,
    STUDY_WITHOUT_ORDER,
    CompletedOrder,
    StudyRecord,
    completed_study_missing,
    due,
    studies_without_order,
)
from accord.dicom.reconcile_job import ReconcileSettings, ask_pacs
from accord.dicom.scu import STUDY_ROOT_FIND, PacsClient, PacsPeer, reconcile
from accord.errors import DeliveryError
from accord.workflow.model import Order
from accord.workflow.status import Status

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
P = patient("1001", "Doe", "John")


def _completed(oid: str, accession: str, minutes_ago: int) -> CompletedOrder:
    o = order(oid, P, accession=accession, status=Status.COMPLETED)
    return CompletedOrder(o, NOW - timedelta(minutes=minutes_ago))


def test_only_orders_older_than_the_grace_period_are_due() -> None:
    orders = [_completed("o1", "A001", 90), _completed("o2", "A002", 10)]
    assert [c.order.id for c in due(orders, NOW, timedelta(minutes=30))] == ["o1"]


def test_found_by_uid_or_accession_is_not_missing() -> None:
    c = _completed("o1", "A001", 90)
    assert completed_study_missing(c, [StudyRecord("1.2.826.0.1.1")], NOW) is None
    assert completed_study_missing(c, [StudyRecord("9.9", accession="A001")], NOW) is None
    finding = completed_study_missing(c, [StudyRecord("9.9", accession="OTHER")], NOW)
    assert finding is not None
    assert (finding.kind, finding.accession, finding.order_id) == (
        COMPLETED_STUDY_MISSING, "A001", "o1")
    assert "90 min" in finding.detail


def test_studies_no_order_knows() -> None:
    studies = [StudyRecord("1.1", "A001"), StudyRecord("1.2", ""), StudyRecord("1.3", "X9")]
    found = studies_without_order(studies, {"1.2"}, {"A001"})
    assert [(f.kind, f.study_instance_uid) for f in found] == [(STUDY_WITHOUT_ORDER, "1.3")]


def _study(uid: str, accession: str, day: str) -> Dataset:
    ds = Dataset()
    ds.StudyInstanceUID, ds.AccessionNumber, ds.StudyDate = uid, accession, day
    ds.PatientID, ds.ModalitiesInStudy = "1001", "CT"
    return ds


def _pacs_find(event: Any, studies: list[Dataset]) -> Iterator[tuple[int, Dataset | None]]:
    q = event.identifier
    low, _, high = str(q.StudyDate or "").partition("-")
    for s in studies:
        if q.StudyInstanceUID and s.StudyInstanceUID != q.StudyInstanceUID:
            continue
        if q.AccessionNumber and s.AccessionNumber != q.AccessionNumber:
            continue
        if low and not (low <= s.StudyDate <= (high or low)):
            continue
        out = Dataset()
        out.QueryRetrieveLevel = "STUDY"
        for key in ("StudyInstanceUID", "AccessionNumber", "StudyDate", "PatientID",
                    "ModalitiesInStudy"):
            setattr(out, key, getattr(s, key))
        yield 0xFF00, out


@pytest.fixture
def pacs() -> Iterator[PacsPeer]:
    studies = [_study("1.2.826.0.1.1", "A001", "20260302"),
               _study("7.7.7", "", "20260302"),  # typed at the console: no order knows it
               _study("1.2.826.0.1.3", "A003", "20260301")]
    ae = AE(ae_title="PACS")
    ae.add_supported_context(STUDY_ROOT_FIND)
    server = ae.start_server(("127.0.0.1", 0), block=False,
                             evt_handlers=[(evt.EVT_C_FIND, _pacs_find, [studies])])
    yield PacsPeer("127.0.0.1", server.server_address[1], "PACS", "ACCORD", timeout=10)
    server.shutdown()


def test_job_against_a_fake_pacs(pacs: PacsPeer) -> None:
    completed = [_completed("o1", "A001", 120),  # archived
                 _completed("o2", "A002", 120),  # missing
                 _completed("o4", "A004", 5)]  # too recent to judge
    findings = reconcile(pacs, completed, now=NOW, after=timedelta(minutes=30),
                         study_date="20260302", known_uids={"1.2.826.0.1.1"},
                         known_accessions={"A001", "A002"})
    assert [(f.kind, f.accession or f.study_instance_uid) for f in findings] == [
        (COMPLETED_STUDY_MISSING, "A002"), (STUDY_WITHOUT_ORDER, "7.7.7")]


class _Completed:
    """The store reads of the job, over a fixed list of completed orders."""

    def __init__(self, completed: list[CompletedOrder]) -> None:
        self.completed = completed

    def completed_between(self, start: datetime, end: datetime,
                          limit: int = 1000) -> list[tuple[Order, datetime]]:
        return [(c.order, c.completed_at) for c in self.completed
                if start <= c.completed_at <= end]

    def known_studies(self, study_uids: Sequence[str],
                      accessions: Sequence[str]) -> tuple[set[str], set[str]]:
        return {"1.2.826.0.1.1"} & set(study_uids), {"A001", "A002"} & set(accessions)


def test_job_round_asks_the_pacs(pacs: PacsPeer) -> None:
    source = _Completed([_completed("o1", "A001", 120),  # archived
                         _completed("o2", "A002", 120),  # missing
                         _completed("o4", "A004", 5)])  # too recent to judge
    findings = ask_pacs(pacs, source, ReconcileSettings(pacs, after=timedelta(minutes=30)),
                        NOW)
    assert [(f.kind, f.accession or f.study_instance_uid) for f in findings] == [
        (COMPLETED_STUDY_MISSING, "A002"), (STUDY_WITHOUT_ORDER, "7.7.7")]


def test_find_by_date_range(pacs: PacsPeer) -> None:
    with PacsClient(pacs) as client:
        found = client.find_studies(study_date="20260301-20260302")
        assert sorted(s.study_instance_uid for s in found) == [
            "1.2.826.0.1.1", "1.2.826.0.1.3", "7.7.7"]
        assert client.find_studies(accession="A003")[0].modalities == ("CT",)


def test_unreachable_pacs_is_a_delivery_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DeliveryError):
        reconcile(PacsPeer("127.0.0.1", port, timeout=2), [], now=NOW,
                  after=timedelta(minutes=30))
