"""The order view (``accord.store.views.orders``) on SQLite and PostgreSQL: the search by
every key, newest change first, keyset pages that are full while more orders match
(also when a given name is checked after the indexed family prefix), one order with its
patient, and the order page's detail."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accord.store.gateway.store import SqlStore
from accord.store.views.orders import OrderQuery, OrderViews
from accord.workflow.findings import FindingKind
from accord.workflow.status import Status
from accord.workflow.trace import TraceEvent

from ..conftest import T0
from .builders import DAY, finding, order, patient, save


@pytest.fixture
def orders(store: SqlStore) -> OrderViews:
    return OrderViews(store.database)


def _ids(page: object) -> list[str]:
    return [row.order.id for row in page.items]  # type: ignore[attr-defined]


def _fill(store: SqlStore) -> None:
    save(store, patient("P1", "Berg", "Anna", mrn="M1"), patient("P2", "Bergman", "Otto"),
         patient("P3", "Stone", "Anna"))
    for n, pid in enumerate(("P1", "P2", "P3", "P1")):
        status = Status.COMPLETED if n == 3 else Status.SCHEDULED
        save(store, order(f"O{n}", pid, status=status, at=T0 + timedelta(days=n)),
             now=T0 + timedelta(minutes=n))


def test_search_by_each_key_newest_change_first(store: SqlStore, orders: OrderViews) -> None:
    _fill(store)
    assert _ids(orders.search(OrderQuery())) == ["O3", "O2", "O1", "O0"]
    assert _ids(orders.search(OrderQuery(accession="ACC-O1"))) == ["O1"]
    assert _ids(orders.search(OrderQuery(mrn="M1"))) == ["O3", "O0"]
    assert _ids(orders.search(OrderQuery(name="berg"))) == ["O3", "O1", "O0"]
    assert _ids(orders.search(OrderQuery(name="Berg^an"))) == ["O3", "O0"]
    assert _ids(orders.search(OrderQuery(name="berg, otto"))) == ["O1"]
    assert _ids(orders.search(OrderQuery(status="completed"))) == ["O3"]
    assert _ids(orders.search(OrderQuery(date=DAY))) == ["O0"]
    assert _ids(orders.search(OrderQuery(date="2026-03-03"))) == ["O1"]
    assert _ids(orders.search(OrderQuery(patient_ids=("P2", "P3")))) == ["O2", "O1"]
    assert _ids(orders.search(OrderQuery(patient_ids=()))) == []
    uid = orders.search(OrderQuery(accession="ACC-O2")).items[0].order.study_instance_uid
    assert _ids(orders.search(OrderQuery(study_uid=uid))) == ["O2"]
    row = orders.search(OrderQuery(accession="ACC-O1")).items[0]
    assert row.patient is not None and row.patient.id == "P2"
    assert row.updated_at == T0 + timedelta(minutes=1)


def test_pages_are_full_when_the_given_name_is_checked_after_reading(
        store: SqlStore, orders: OrderViews) -> None:
    save(store, patient("PA", "Berg", "Anna"), patient("PO", "Berg", "Otto"))
    # One matching order in five, newest first: a page of 3 needs several reads.
    for n in range(40):
        save(store, order(f"O{n:02d}", "PA" if n % 5 == 0 else "PO"),
             now=T0 + timedelta(seconds=n))
    seen, cursor, pages = [], None, 0
    while True:
        page = orders.search(OrderQuery(name="berg^anna"), cursor, limit=3)
        pages += 1
        assert len(page.items) == 3 or page.next_cursor is None
        seen += _ids(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"O{n:02d}" for n in range(35, -1, -5)] and pages == 3


def test_keyset_pages_walk_every_order_once(store: SqlStore, orders: OrderViews) -> None:
    save(store, patient("P1"))
    for n in range(12):  # several orders changed at the same moment: ties broken by id
        save(store, order(f"O{n:02d}", "P1"), now=T0 + timedelta(seconds=n // 4))
    seen, cursor = [], None
    while True:
        page = orders.search(OrderQuery(status="scheduled"), cursor, limit=5)
        seen += _ids(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == [f"O{n:02d}" for n in range(12)] and len(set(seen)) == 12
    with pytest.raises(ValueError):
        orders.search(OrderQuery(), cursor="not|a|cursor")


def test_one_order_its_trace_and_the_detail_by_id_or_accession(
        store: SqlStore, orders: OrderViews) -> None:
    early = TraceEvent(T0, "RIS/C1", "RIS", "report before its order", accession="ACC-O1")
    later = TraceEvent(T0 + timedelta(minutes=1), "RIS/C2", "RIS", "order placed",
                       order_id="O1", accession="ACC-O1")
    save(store, patient("P1"), order("O1", "P1"), later, early,
         finding(FindingKind.UNKNOWN_ORDER, accession="ACC-O1"))
    row = orders.get("O1")
    assert row is not None and row.patient is not None and row.patient.id == "P1"
    assert orders.get("O-nothing") is None
    for key in ("O1", "ACC-O1"):
        detail = orders.detail(key)
        assert detail is not None and detail.order.id == "O1"
        assert [sf.finding.kind for sf in detail.findings] == [FindingKind.UNKNOWN_ORDER]
    assert orders.detail("nothing") is None
    assert orders.trace(row.order) == [early, later]  # by accession too, oldest first
    detail = orders.detail("O1")
    assert detail is not None and [e for e, _ in detail.trace] == [early, later]
    assert [m for _, m in detail.trace] == [None, None]  # no stored message carries them


def test_accession_and_mrn_are_forgiving(store: SqlStore, orders: OrderViews) -> None:
    save(store, patient("P1", mrn="MRN9863826"), patient("P2", mrn="MRN1863826"),
         order("AX46", "P1"), order("BX47", "P2"), order("CQ9", "P2"))
    assert _ids(orders.search(OrderQuery(accession="acc-ax46"))) == ["AX46"]  # any case
    assert _ids(orders.search(OrderQuery(accession="x46"))) == ["AX46"]  # a suffix
    assert _ids(orders.search(OrderQuery(accession="-cq"))) == ["CQ9"]  # a unique fragment
    assert _ids(orders.search(OrderQuery(accession="acc-"))) == []  # not unique: nothing
    assert _ids(orders.search(OrderQuery(mrn="mrn9863826"))) == ["AX46"]
    assert sorted(_ids(orders.search(OrderQuery(mrn="863826")))) == ["AX46", "BX47", "CQ9"]
    assert _ids(orders.search(OrderQuery(mrn="98638"))) == ["AX46"]
    assert _ids(orders.search(OrderQuery(mrn="MRN9863826 · HOSP"))) == ["AX46"]
    assert _ids(orders.search(OrderQuery(mrn="MRN9863826^^^OTHER"))) == []


def test_a_name_as_people_write_it(store: SqlStore, orders: OrderViews) -> None:
    save(store, patient("P1", "Dietz", "Ines"), patient("P2", "Ines", "Dieter"),
         patient("P3", "Dietz", "Anna"), order("O1", "P1"), order("O2", "P2"),
         order("O3", "P3"))
    for typed in ("Ines Dietz", "Dietz, Ines", "dietz^ines", "Dietz Ines", "  ines   dietz "):
        assert _ids(orders.search(OrderQuery(name=typed))) == ["O1"], typed
    assert sorted(_ids(orders.search(OrderQuery(name="dietz")))) == ["O1", "O3"]
    assert _ids(orders.search(OrderQuery(name="Dieter Ines"))) == ["O2"]  # given first


def test_modality_with_the_date_of_the_same_step(store: SqlStore, orders: OrderViews) -> None:
    save(store, patient("P1"), order("O1", "P1", modality="CT"),
         order("O2", "P1", modality="MR"),
         order("O3", "P1", modality="MR", at=T0 + timedelta(days=1)))
    assert sorted(_ids(orders.search(OrderQuery(modality="MR")))) == ["O2", "O3"]
    assert _ids(orders.search(OrderQuery(modality="MR", date=DAY))) == ["O2"]
    assert _ids(orders.search(OrderQuery(modality="CT", date=DAY))) == ["O1"]


def test_what_went_out_about_an_order_and_orders_by_accession(
        store: SqlStore, orders: OrderViews) -> None:
    from accord.store import OutboxItem

    save(store, patient("P1"), order("O1", "P1"), order("O2", "P1"))
    with store.transaction() as tx:  # as an MPPS queues a status update: no message
        tx.enqueue([OutboxItem(destination="ris", payload=b"MSH|", control_id="X1",
                               kind="status", accession="ACC-O1"),
                    OutboxItem(destination="pacs", payload=b"MSH|", control_id="X2",
                               kind="adt")], T0)
    detail = orders.detail("O1")
    assert detail is not None
    assert [(d.destination, d.control_id) for d in detail.deliveries] == [("ris", "X1")]
    found = orders.by_accession(["ACC-O1", "ACC-O2", "ACC-none", ""])
    assert sorted(found) == ["ACC-O1", "ACC-O2"]
    assert found["ACC-O1"].patient is not None and found["ACC-O1"].patient.id == "P1"
    assert sorted(orders.by_id(["O2", "O-none", ""])) == ["O2"]
