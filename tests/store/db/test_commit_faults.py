"""Commit faults (accord.store.db.commit_faults): a failed commit is remembered per
component until that component commits again; errors of the statement are not storage
faults. Driven through a real SQLite store with the commit-fault seam of
``accord.store.db.faults``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from accord.errors import StoreError
from accord.store import committing_as, open_store, sqlite_url
from accord.store.db import faults
from accord.store.db.commit_faults import CommitFaults, storage_failure
from accord.store.gateway.store import SqlStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = open_store(sqlite_url(tmp_path / "data"))
    control = tmp_path / "fault"
    faults.install(s.database.engine, str(control))
    ticks = iter(T0 + timedelta(seconds=n) for n in range(1000))
    s.database.commits = CommitFaults(lambda: next(ticks))
    try:
        yield s
    finally:
        s.close()


def write(store: SqlStore, component: str) -> None:
    """One write transaction named ``component``, on a thread of its own (as each
    component commits on its own thread or task)."""
    errors: list[BaseException] = []

    def run() -> None:
        committing_as(component)
        try:
            with store.transaction() as tx:
                tx.connection.execute(text("SELECT 1"))
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if errors:
        raise errors[0]


def test_a_failed_commit_is_kept_per_component_until_its_next_success(
        store: SqlStore, tmp_path: Path) -> None:
    commits = store.database.commits
    write(store, "ingest")
    assert commits.failing() == []
    (tmp_path / "fault").write_text("io", encoding="utf-8")
    for component in ("ingest", "delivery", "ingest"):
        with pytest.raises(StoreError):
            write(store, component)
    ingest, delivery = commits.failing()
    assert (ingest.component, ingest.failures, ingest.since) == ("ingest", 2, T0)
    assert ingest.at > ingest.since
    assert (ingest.error_class, ingest.error) == ("InjectedFault", "disk I/O error")
    assert (delivery.component, delivery.failures) == ("delivery", 1)
    (tmp_path / "fault").write_text("", encoding="utf-8")
    write(store, "ingest")  # ingest commits again; delivery has not tried yet
    assert [f.component for f in commits.failing()] == ["delivery"]
    write(store, "delivery")
    assert commits.failing() == []


def test_a_commit_no_component_named_is_other(store: SqlStore, tmp_path: Path) -> None:
    (tmp_path / "fault").write_text("full", encoding="utf-8")
    with pytest.raises(StoreError):
        write(store, "other")
    [fault] = store.database.commits.failing()
    assert fault.component == "other" and fault.error == "database or disk is full"


def test_an_error_of_the_statement_is_not_a_storage_fault(store: SqlStore) -> None:
    with pytest.raises(StoreError), store.transaction() as tx:
        tx.connection.execute(text("SELECT * FROM no_such_table"))
    with pytest.raises(RuntimeError), store.transaction():
        raise RuntimeError("the caller's own error: rolled back, no fault")
    assert store.database.commits.failing() == []


def test_storage_failure_tells_the_storage_from_the_statement() -> None:
    gone = OperationalError("COMMIT", None, Exception("server closed the connection"))
    assert storage_failure(gone)
    wrapped = StoreError("database error")
    wrapped.__cause__ = gone
    assert storage_failure(wrapped)
    assert not storage_failure(IntegrityError("INSERT", None, Exception("unique")))
    assert not storage_failure(ValueError("not a database error"))
