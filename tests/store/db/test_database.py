"""Database.write: a transaction marked not durable skips its commit's sync for itself
alone (SQLite ``synchronous=NORMAL``, PostgreSQL ``synchronous_commit=off``); every
other transaction, on the same pooled connection too, stays durable."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from accord.errors import StoreError
from accord.store.db import faults
from accord.store.gateway.store import SqlStore

SETTING = {"sqlite": "PRAGMA synchronous", "postgresql": "SHOW synchronous_commit"}
DURABLE = {"sqlite": 2, "postgresql": "on"}  # FULL; on
RELAXED = {"sqlite": 1, "postgresql": "off"}  # NORMAL; off


def test_a_relaxed_write_is_relaxed_alone(store: SqlStore) -> None:
    db = store.database
    query = text(SETTING[db.dialect])
    for _ in range(3):  # the pool hands the same connection back: it must be durable again
        with db.write(durable=False) as conn:
            assert conn.execute(query).scalar_one() == RELAXED[db.dialect]
        with db.write() as conn:
            assert conn.execute(query).scalar_one() == DURABLE[db.dialect]
    try:
        with db.write(durable=False) as conn:
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    with db.write() as conn:
        assert conn.execute(query).scalar_one() == DURABLE[db.dialect]


def test_a_relaxed_write_whose_commit_fails_is_a_store_error_and_leaves_no_relaxed_connection(
        store: SqlStore, tmp_path: Path) -> None:
    db = store.database
    control = tmp_path / "fault"
    assert faults.install(db.engine, str(control))
    control.write_text("io", encoding="utf-8")
    with pytest.raises(StoreError), db.write(durable=False) as conn:
        conn.execute(text("SELECT 1"))
    control.write_text("", encoding="utf-8")
    for _ in range(3):
        with db.write() as conn:
            assert conn.execute(text(SETTING[db.dialect])).scalar_one() == DURABLE[db.dialect]
