"""The DICOM bridge on the store, SQLite and PostgreSQL: a worklist in one node follows
order changes committed by another node sharing the database (including a transaction
that commits after a later one), and those its own node committed without reading them
back (never one that rolled back); MPPS instances are stored with their outcome in one
transaction, and the reconciliation job runs on one node at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import cast

import pytest
from pydicom.dataset import Dataset

from accord.clock import ControlIds, FixedClock
from accord.dicom.bridge import StoreMpps, StoreWorklist, worklist_view
from accord.dicom.index import WorklistIndex
from accord.dicom.mpps import MppsInstance, UnscheduledProcedure
from accord.dicom.query import Query, compile_query
from accord.dicom.reconcile import ReconcileFinding
from accord.dicom.reconcile_job import ReconcileSettings, reconcile_once
from accord.dicom.scu import PacsPeer
from accord.engine.workflow import Outbound
from accord.errors import StoreError
from accord.mapping.dialect import Dialects
from accord.store import Store, Tx, open_store
from accord.store.gateway.store import SqlStore, SqlTx
from accord.store.workflow.changes import LoggedChange
from accord.store.workflow.repository import reading, repository_for
from accord.store.workflow.worklist import SqlWorklistReader, prune_worklist_log, save_mpps
from accord.workflow.memory import SequentialIds
from accord.workflow.model import Identifier, Order, Patient, ProcedureStep
from accord.workflow.status import Status

from ..conftest import T0


@pytest.fixture
def node_b(store_url: str, store: SqlStore) -> Iterator[SqlStore]:
    """A second node on the same database (its own engine and connections)."""
    other = open_store(store_url)
    assert isinstance(other, SqlStore)
    yield other
    other.close()


def _order(oid: str, status: Status = Status.SCHEDULED, station: str = "CT1") -> Order:
    step = ProcedureStep(f"S{oid}", "CT", (station,), start=T0 + timedelta(hours=1))
    return Order(
        oid, "P1", status, accession=f"A{oid}", study_instance_uid=f"1.2.{oid[1:]}", steps=(step,)
    )


def _save(store: SqlStore, *orders: Order, patient: Patient | None = None) -> None:
    with store.transaction() as tx:
        repo = repository_for(tx, T0)
        if patient is not None:
            repo.save_patient(patient)
        for o in orders:
            repo.save_order(o)


def _accessions(worklist: StoreWorklist) -> list[str]:
    query = compile_query(Dataset())  # universal matching
    assert isinstance(query, Query)
    return sorted(e.item.order.accession for e in worklist.candidates(query))


PATIENT = Patient("P1", (Identifier("MRN1", "HOSP"),))


def test_worklist_follows_changes_made_by_another_node(store: SqlStore, node_b: SqlStore) -> None:
    _save(store, _order("O1"), patient=PATIENT)
    worklist = StoreWorklist(SqlWorklistReader(node_b.database), WorklistIndex())
    assert worklist.load() == 1
    _save(store, _order("O2"), replace(_order("O1"), status=Status.CANCELLED))
    assert _accessions(worklist) == ["AO2"]  # the cancel removed O1, O2 appeared
    _save(store, replace(_order("O2"), hold_reason="unmapped code"))
    assert _accessions(worklist) == []  # held: off the worklist
    assert worklist_view(_order("O3")) is not None


def test_a_transaction_committing_after_a_later_one_is_not_missed(
    store: SqlStore, node_b: SqlStore
) -> None:
    if store.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: log ids commit in order")
    _save(store, patient=PATIENT)
    worklist = StoreWorklist(SqlWorklistReader(node_b.database), WorklistIndex())
    worklist.load()
    slow = store.transaction()
    tx = slow.__enter__()
    repository_for(tx, T0).save_order(_order("O1"))  # takes log id 1, not committed yet
    _save(node_b, _order("O2"))  # log id 2, committed first
    assert _accessions(worklist) == ["AO2"]
    slow.__exit__(None, None, None)
    assert _accessions(worklist) == ["AO1", "AO2"]  # id 1 was kept as a gap and re-read


def _feed(store: SqlStore, worklist: StoreWorklist, *orders: Order,
          patient: Patient | None = None) -> None:
    """Save as the engine does on the node whose worklist is ``worklist``: the patient
    read (or saved) first, the commit told to the worklist."""
    with store.transaction() as tx:
        repo = repository_for(tx, T0, changes=worklist.committed)
        if patient is not None:
            repo.save_patient(patient)
        else:
            repo.patient("P1")
        for o in orders:
            repo.save_order(o)


def _items(worklist: StoreWorklist) -> list[tuple[str, str, str]]:
    return sorted((i.order.accession, i.order.status.value, i.patient.demographics.name.family)
                  for i in worklist.index.items())


def test_own_commits_reach_the_worklist_without_being_read_back(
    store: SqlStore, node_b: SqlStore
) -> None:
    worklist = StoreWorklist(SqlWorklistReader(store.database), WorklistIndex())
    worklist.load()
    _feed(store, worklist, _order("O1"), _order("O2"), patient=PATIENT)
    assert _accessions(worklist) == ["AO1", "AO2"]
    assert worklist.read_back == 0
    # Own and other nodes' changes in one refresh: the other node's alone are read back.
    _feed(store, worklist, replace(_order("O1"), status=Status.CANCELLED))
    _save(node_b, replace(_order("O2"), steps=(replace(_order("O2").steps[0],
                                                        start=T0 + timedelta(hours=3)),)))
    assert _accessions(worklist) == ["AO2"]
    assert worklist.read_back == 1
    # A new name: the items of the patient's orders show it.
    renamed = replace(PATIENT, demographics=replace(PATIENT.demographics,
                                                    name=replace(PATIENT.demographics.name,
                                                                 family="Meier")))
    with store.transaction() as tx:
        repo = repository_for(tx, T0, changes=worklist.committed)
        repo.patient("P1")
        repo.save_patient(renamed)
    worklist.refresh()
    assert worklist.read_back == 1
    fresh = StoreWorklist(SqlWorklistReader(store.database), WorklistIndex())
    fresh.load()
    assert _items(worklist) == _items(fresh) == [("AO2", "scheduled", "Meier")]


def test_steps_past_the_horizon_leave_the_worklist_and_never_come_back(
    store: SqlStore,
) -> None:
    # _order's steps start at T0 + 1 h; the horizon is 6 h.
    clock = FixedClock(T0 + timedelta(hours=2))
    late = replace(_order("O9"), steps=(replace(_order("O9").steps[0], start=T0 - timedelta(
        hours=6)),))
    _save(store, _order("O1"), late, patient=PATIENT)
    worklist = StoreWorklist(SqlWorklistReader(store.database), WorklistIndex(),
                             horizon=timedelta(hours=6), clock=clock)
    worklist.load()
    assert _accessions(worklist) == ["AO1"]  # O9 was due 8 h ago: not loaded
    clock.advance(6.5 * 3600)  # O1 was due 7.5 h ago now
    _feed(store, worklist, _order("O2"))  # an own change after the horizon passed
    assert _accessions(worklist) == ["AO1"]  # the change: O2, also past it, not added
    assert worklist.expire() == 1
    assert _accessions(worklist) == []
    rescheduled = replace(_order("O1"), steps=(replace(_order("O1").steps[0],
                                                      start=clock.now()),))
    _feed(store, worklist, rescheduled)  # moved to now: back on the worklist
    assert _accessions(worklist) == ["AO1"]
    assert worklist.expire() == 0


def test_an_order_rolled_back_never_reaches_the_worklist(store: SqlStore) -> None:
    worklist = StoreWorklist(SqlWorklistReader(store.database), WorklistIndex())
    _save(store, patient=PATIENT)
    worklist.load()
    with store.transaction() as tx:
        with pytest.raises(RuntimeError), tx.savepoint():
            repo = repository_for(tx, T0, changes=worklist.committed)
            repo.patient("P1")
            repo.save_order(_order("O1"))
            raise RuntimeError("this message failed")
        repo = repository_for(tx, T0, changes=worklist.committed)
        repo.patient("P1")
        repo.save_order(_order("O2"))
    with pytest.raises(RuntimeError), store.transaction() as tx:
        repo = repository_for(tx, T0, changes=worklist.committed)
        repo.patient("P1")
        repo.save_order(_order("O3"))
        raise RuntimeError("the batch failed")
    assert _accessions(worklist) == ["AO2"]
    assert worklist.read_back == 0


def test_an_own_commit_after_a_later_one_is_applied_from_the_commit(
    store: SqlStore, node_b: SqlStore
) -> None:
    if store.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: log ids commit in order")
    _save(store, patient=PATIENT)
    worklist = StoreWorklist(SqlWorklistReader(store.database), WorklistIndex())
    worklist.load()
    slow = store.transaction()
    tx = slow.__enter__()
    repo = repository_for(tx, T0, changes=worklist.committed)
    repo.patient("P1")
    repo.save_order(_order("O1"))  # takes log id 1, not committed yet
    _save(node_b, _order("O2"))  # log id 2, committed first
    assert _accessions(worklist) == ["AO2"]
    slow.__exit__(None, None, None)
    assert _accessions(worklist) == ["AO1", "AO2"]  # the gap, filled from the commit
    assert worklist.read_back == 1  # O2 only


def test_own_changes_the_log_passed_are_forgotten(store: SqlStore) -> None:
    worklist = StoreWorklist(SqlWorklistReader(store.database), WorklistIndex())
    _save(store, patient=PATIENT)
    worklist.load()
    told: list[list[LoggedChange]] = []
    with store.transaction() as tx:  # committed, but told to the worklist only later
        repo = repository_for(tx, T0, changes=lambda c: told.append(list(c)))
        repo.patient("P1")
        repo.save_order(_order("O1"))
    assert _accessions(worklist) == ["AO1"]  # read back: the refresh came first
    assert worklist.read_back == 1
    worklist.committed(told[0])
    worklist.refresh()
    assert _accessions(worklist) == ["AO1"] and worklist.read_back == 1
    assert worklist.waiting == 0  # nothing kept for a position already passed


def test_mpps_is_stored_with_its_outcome_in_one_transaction(store: SqlStore) -> None:
    reader = SqlWorklistReader(store.database)
    sink = StoreMpps(
        store,
        reader,
        repository=repository_for,
        outbound=Outbound((), Dialects(), ControlIds("T")),
        ids=SequentialIds(),
        clock=FixedClock(T0),
        save=save_mpps,
    )
    ds = Dataset()
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.PatientName = "Müller^Jürgen"
    ds.SpecificCharacterSet = "ISO_IR 192"
    outcome = UnscheduledProcedure(
        "1.2.9", Status.IN_PROGRESS, "X1", "Müller^Jürgen", "", "ACC9", "1.2.9.9", "CT", "CT1"
    )
    sink.record(MppsInstance("1.2.9", "IN PROGRESS", ds), outcome)
    stored = sink.instance("1.2.9")
    assert stored is not None and stored.status == "IN PROGRESS"
    assert str(stored.dataset.PatientName) == "Müller^Jürgen"
    with reading(store.database, T0) as repo:
        kinds = [f.kind.value for f in repo.findings_about(accession="ACC9")]
        assert kinds == ["unscheduled_procedure"]
        assert repo.trace(accession="ACC9")[0].outcome == "unscheduled"
    assert sink.instance("1.2.unknown") is None


def test_mpps_of_several_modalities_share_one_commit_and_fail_alone(
        store: SqlStore) -> None:
    """While one MPPS commits, the records queued behind it are committed together in
    the next transaction; a record that cannot be written fails alone."""
    entered, release = threading.Event(), threading.Event()
    transactions: list[int] = []

    def save(tx: Tx, uid: str, status: str, dataset: bytes, now: datetime) -> None:
        if uid == "1.2.1":  # the first commit waits while the others queue behind it
            entered.set()
            release.wait(10)
        if uid == "1.2.3":
            raise StoreError("disk says no")
        save_mpps(tx, uid, status, dataset, now)

    class Counting:  # the store, counting its write transactions
        def transaction(self) -> AbstractContextManager[SqlTx]:
            transactions.append(1)
            return store.transaction()

    sink = StoreMpps(
        cast(Store, Counting()),
        SqlWorklistReader(store.database),
        repository=repository_for,
        outbound=Outbound((), Dialects(), ControlIds("T")),
        ids=SequentialIds(),
        clock=FixedClock(T0),
        save=save,
    )
    errors: dict[str, Exception] = {}

    def record(uid: str) -> None:
        ds = Dataset()
        ds.PerformedProcedureStepStatus = "IN PROGRESS"
        outcome = UnscheduledProcedure(
            uid, Status.IN_PROGRESS, "X1", "Doe^J", "", f"ACC{uid}", f"{uid}.9", "CT", "CT1")
        try:
            sink.record(MppsInstance(uid, "IN PROGRESS", ds), outcome)
        except StoreError as exc:
            errors[uid] = exc

    first = threading.Thread(target=record, args=("1.2.1",))
    first.start()
    assert entered.wait(10)
    others = [threading.Thread(target=record, args=(uid,)) for uid in ("1.2.2", "1.2.3")]
    for thread in others:
        thread.start()
    while len(sink._queue) < 2:  # both queued behind the first commit
        time.sleep(0.01)
    release.set()
    for thread in (first, *others):
        thread.join(10)
    assert len(transactions) == 2  # the first alone, then the two queued together
    assert list(errors) == ["1.2.3"] and "disk says no" in str(errors["1.2.3"])
    assert sink.instance("1.2.1") is not None and sink.instance("1.2.2") is not None
    assert sink.instance("1.2.3") is None
    with reading(store.database, T0) as repo:
        assert repo.trace(accession="ACC1.2.2")
        assert not repo.trace(accession="ACC1.2.3")  # its savepoint rolled back


def test_reconciliation_runs_on_one_node_and_records_findings(store: SqlStore) -> None:
    settings = ReconcileSettings(PacsPeer("127.0.0.1", 9))
    asked: list[str] = []

    def ask(peer: PacsPeer, *_: object) -> list[ReconcileFinding]:
        asked.append(peer.host)
        return [ReconcileFinding("completed_study_missing", "A1", "1.2.1", "not in PACS")]

    reader = SqlWorklistReader(store.database)
    clock = FixedClock(T0)
    assert reconcile_once(store, reader, repository_for, settings, clock, "n1", ask) == 1
    assert reconcile_once(store, reader, repository_for, settings, clock, "n2", ask) is None
    assert reconcile_once(store, reader, repository_for, settings, clock, "n1", ask) == 1
    assert asked == ["127.0.0.1", "127.0.0.1"]
    with reading(store.database, T0) as repo:
        found = repo.findings_about(accession="A1")
    assert [(f.kind.value, f.count) for f in found] == [("completed_study_missing", 2)]


def test_old_worklist_log_rows_are_pruned(store: SqlStore) -> None:
    _save(store, _order("O1"), patient=PATIENT)
    reader = SqlWorklistReader(store.database)
    assert [order_id for _, order_id in reader.changes(0)] == ["O1"]
    assert prune_worklist_log(store.database, T0) == 0  # written at T0: not before it
    assert prune_worklist_log(store.database, T0 + timedelta(seconds=1)) == 1
    assert reader.changes(0) == []
