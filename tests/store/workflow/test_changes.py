"""The repository tells a sink, after its transaction commits, the worklist-log rows it
wrote with the orders and patients it saved (``changes.py``): nothing before the commit,
nothing of a rolled-back savepoint or transaction; a patient's update names each of its
orders. SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest
from sqlalchemy import select

from accord.store.gateway.store import SqlStore
from accord.store.schema.workflow import wf_worklist_log
from accord.store.workflow.changes import LoggedChange
from accord.store.workflow.repository import repository_for
from accord.workflow.model import PersonName

from ..conftest import T0
from .test_repository import order, patient


class Sink:
    def __init__(self) -> None:
        self.told: list[list[LoggedChange]] = []

    def __call__(self, changes: Sequence[LoggedChange]) -> None:
        self.told.append(list(changes))


def log_rows(store: SqlStore) -> list[tuple[int, str]]:
    with store.database.read() as conn:
        c = wf_worklist_log.c
        return [(int(r.id), str(r.order_id))
                for r in conn.execute(select(c.id, c.order_id).order_by(c.id))]


def test_saved_orders_are_told_with_their_log_ids_after_the_commit(store: SqlStore) -> None:
    sink = Sink()
    p = patient()
    with store.transaction() as tx:
        repo = repository_for(tx, T0, changes=sink)
        repo.save_patient(p)
        repo.save_order(order("O1"))
        repo.save_order(order("O2", accession="A2"))
        repo.flush()
        assert sink.told == []  # not before the commit
    [told] = sink.told
    assert [(c.log_id, c.order_id) for c in told] == log_rows(store)
    assert [c.order for c in told] == [order("O1"), order("O2", accession="A2")]
    assert all(c.patient == p for c in told)


def test_a_patient_update_names_each_of_its_orders(store: SqlStore) -> None:
    with store.transaction() as tx:
        repo = repository_for(tx, T0)
        repo.save_patient(patient())
        repo.save_order(order("O1"))
        repo.save_order(order("O2", accession="A2"))
    before = len(log_rows(store))
    sink = Sink()
    renamed = replace(patient(), demographics=replace(patient().demographics,
                                                      name=PersonName("Meier", "Anna")))
    with store.transaction() as tx:
        repo = repository_for(tx, T0, changes=sink)
        assert repo.patient("P1") == patient()
        repo.save_patient(renamed)
    [told] = sink.told
    assert [(c.log_id, c.order_id) for c in told] == log_rows(store)[before:]
    assert {c.order_id for c in told} == {"O1", "O2"}
    assert all(c.order is None and c.patient == renamed for c in told)


def test_nothing_of_a_rolled_back_savepoint_or_transaction(store: SqlStore) -> None:
    sink = Sink()
    with store.transaction() as tx:
        repository_for(tx, T0).save_patient(patient())
    with store.transaction() as tx:
        with pytest.raises(RuntimeError), tx.savepoint():
            repo = repository_for(tx, T0, changes=sink)
            repo.patient("P1")
            repo.save_order(order("O1"))
            raise RuntimeError("this message failed")
        repo = repository_for(tx, T0, changes=sink)
        repo.patient("P1")
        repo.save_order(order("O2", accession="A2"))
    with pytest.raises(RuntimeError), store.transaction() as tx:
        repo = repository_for(tx, T0, changes=sink)
        repo.save_order(order("O3", accession="A3"))
        raise RuntimeError("the batch failed")
    assert [[c.order_id for c in told] for told in sink.told] == [["O2"]]


def test_a_patient_the_message_did_not_read_is_not_guessed(store: SqlStore) -> None:
    with store.transaction() as tx:
        repository_for(tx, T0).save_patient(patient())
    sink = Sink()
    with store.transaction() as tx:
        repository_for(tx, T0, changes=sink).save_order(order("O1"))
    [[change]] = sink.told
    assert change.order == order("O1") and change.patient is None
