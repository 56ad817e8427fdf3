"""Procedure code tables in the store (``accord.store.workflow.catalog``), on SQLite
and PostgreSQL: optimistic saves (a stale or racing save is a VersionConflict, never a
lost edit), the cheap catalog version, and seeding that keeps console edits."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from accord.mapping.procedures import CodeTable, Procedure, catalog_from_config
from accord.store import open_store
from accord.store.gateway.store import SqlStore
from accord.store.workflow.catalog import CodeTables, StoredCodeTable, VersionConflict

from ..conftest import T0


def configured(**stations: str) -> CodeTable:
    return catalog_from_config({"procedures": [
        {"code": code, "modality": "CT", "stations": [ae]} for code, ae in stations.items()]},
        at=T0, author="configuration").table


def ct(code: str, station: str) -> Procedure:
    return Procedure(code, modality="CT", stations=(station,))


@pytest.fixture
def tables(store: SqlStore) -> CodeTables:
    return CodeTables(store.database)


def test_a_stale_save_is_a_conflict_and_writes_nothing(store: SqlStore,
                                                       tables: CodeTables) -> None:
    tables.sync(configured(CTHEAD="CT1"), at=T0, author="configuration")
    tables.save_change(expected=1, at=T0, author="alice", note="", upsert=(ct("CTHEAD", "CT2"),))
    with pytest.raises(VersionConflict) as caught:
        tables.save_change(expected=1, at=T0, author="bob", note="",
                           upsert=(ct("CTHEAD", "CT3"),))
    assert caught.value.current == 2
    table = tables.load()
    assert [v.author for v in table.versions] == ["configuration", "alice"]
    with store.transaction() as tx:
        assert StoredCodeTable().version(tx) == 2
        assert StoredCodeTable().table(tx) == table


def test_two_saves_at_the_same_moment_one_wins_one_conflicts(store_url: str) -> None:
    stores = [open_store(store_url) for _ in range(2)]
    start = threading.Barrier(2)
    results: list[str] = []

    def edit(store: SqlStore, station: str) -> None:
        start.wait()
        try:
            CodeTables(store.database).save_change(expected=0, at=T0, author=station, note="",
                                                   upsert=(ct("CTHEAD", station),))
            results.append("saved")
        except VersionConflict:
            results.append("conflict")

    try:
        threads = [threading.Thread(target=edit, args=(s, f"CT{n}"))
                   for n, s in enumerate(stores)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["conflict", "saved"]
        assert len(CodeTables(stores[0].database).load().versions) == 1
    finally:
        for s in stores:
            s.close()


def test_seeding_keeps_console_edits_and_applies_changed_config_codes(
        tables: CodeTables) -> None:
    tables.sync(configured(CTHEAD="CT1", CTCHEST="CT1"), at=T0, author="configuration")
    tables.save_change(expected=1, at=T0, author="alice", note="",
                       upsert=(ct("CTCHEST", "CT2"),))
    later = T0 + timedelta(days=1)
    same = tables.sync(configured(CTHEAD="CT1", CTCHEST="CT1"), at=later,
                       author="configuration")
    assert same.lookup("CTCHEST") == (ct("CTCHEST", "CT2"), 2)  # unchanged config: kept
    moved = tables.sync(configured(CTHEAD="CT5"), at=later, author="configuration")
    assert moved.lookup("CTHEAD") == (ct("CTHEAD", "CT5"), 3)
    assert moved.lookup("CTCHEST") is None  # the configuration removed it: applied
    assert tables.sync(configured(CTHEAD="CT5"), at=later,
                       author="configuration") == moved  # nothing new to seed


def test_a_store_seeded_before_the_baseline_keeps_its_table(tables: CodeTables) -> None:
    tables.save_change(expected=0, at=T0, author="alice", note="",
                       upsert=(ct("CTHEAD", "CT2"),))
    kept = tables.sync(configured(CTHEAD="CT1"), at=T0, author="configuration")
    assert kept.lookup("CTHEAD") == (ct("CTHEAD", "CT2"), 1)
    changed = tables.sync(configured(CTHEAD="CT3"), at=T0, author="configuration")
    assert changed.lookup("CTHEAD") == (ct("CTHEAD", "CT3"), 2)  # later config changes apply
