"""The audit log's store (``accord.store.accounts.audit``) on SQLite and PostgreSQL: one
record per view names every patient it showed, and each patient finds it."""

from __future__ import annotations

from datetime import timedelta

from accord.store.accounts import AuditEntry, AuditLog
from accord.store.gateway.store import SqlStore

from ..conftest import T0


def test_one_record_names_every_patient_and_each_finds_it(store: SqlStore) -> None:
    log = AuditLog(store.database)
    log.add([AuditEntry(T0, "ann", "orders.read", "ok", patient_ids=("P1", "P2", "P1")),
             AuditEntry(T0 + timedelta(seconds=1), "ann", "patients.read", "ok",
                        patient_id="P2"),
             AuditEntry(T0 + timedelta(seconds=2), "bob", "login", "ok")])
    search, view, login = log.page().items[::-1]
    assert search.patient_ids == ("P1", "P2") and search.patient_id == ""
    assert view.patient_ids == ("P2",) and view.patient_id == "P2"
    assert login.patient_ids == ()
    assert [e.action for e in log.page(patient_id="P2").items] == ["patients.read",
                                                                  "orders.read"]
    assert [e.action for e in log.page(patient_id="P1").items] == ["orders.read"]
    assert log.page(patient_id="P1", actor="bob").items == ()
