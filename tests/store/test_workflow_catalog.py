"""Procedure code tables in the store (``accord.store.sql_workflow_catalog``), on SQLite
and PostgreSQL: optimistic saves (a stale or racing save is a VersionConflict, never a
lost edit), the cheap catalog version, and seeding that keeps console edits."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from accord.mapping.procedures import CodeTable, Procedure, catalog_from_config
from accord.store import open_store
from accord.store.gateway.store import SqlStore
from accord.store.sql_workflow_catalog import (
    StoredCodeTable,
    VersionConflict,
    load_code_table,
    save_change,
    sync_code_table,
)

from .conftest import T0


def configured(**stations: str) -> CodeTable:
    return catalog_from_config({"procedures": [
        {"code": code, "modality": "CT", "stations": [ae]} for code, ae in stations.items()]},
        at=T0, author="configuration").table


def ct(code: str, station: str) -> Procedure:
    return Procedure(code, modality="CT", stations=(station,))


def test_a_stale_save_is_a_conflict_and_writes_nothing(store: SqlStore) -> None:
    sync_code_table(store, configured(CTHEAD="CT1"), at=T0, author="configuration")
    save_change(store, expected=1, at=T0, author="alice", note="", upsert=(ct("CTHEAD", "CT2"),))
    with pytest.raises(VersionConflict) as caught:
        save_change(store, expected=1, at=T0, author="bob", note="",
                    upsert=(ct("CTHEAD", "CT3"),))
    assert caught.value.current == 2
    table = load_code_table(store)
    assert [v.author for v in table.versions] == ["configuration", "alice"]
    with store.transaction() as tx:
        assert StoredCodeTable().version(tx) == 2
        assert StoredCodeTable().table(tx) == table


def test_two_saves_at_the_same_moment_one_wins_one_conflicts(store_url: str) -> None:
    stores: list[SqlStore] = []
    for _ in range(2):
        opened = open_store(store_url)
        assert isinstance(opened, SqlStore)
        stores.append(opened)
    start = threading.Barrier(2)
    results: list[str] = []

    def edit(store: SqlStore, station: str) -> None:
        start.wait()
        try:
            save_change(store, expected=0, at=T0, author=station, note="",
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
        assert len(load_code_table(stores[0]).versions) == 1
    finally:
        for s in stores:
            s.close()


def test_seeding_keeps_console_edits_and_applies_changed_config_codes(
        store: SqlStore) -> None:
    sync_code_table(store, configured(CTHEAD="CT1", CTCHEST="CT1"), at=T0, author="configuration")
    save_change(store, expected=1, at=T0, author="alice", note="", upsert=(ct("CTCHEST", "CT2"),))
    later = T0 + timedelta(days=1)
    same = sync_code_table(store, configured(CTHEAD="CT1", CTCHEST="CT1"), at=later,
                           author="configuration")
    assert same.lookup("CTCHEST") == (ct("CTCHEST", "CT2"), 2)  # unchanged config: kept
    moved = sync_code_table(store, configured(CTHEAD="CT5"), at=later, author="configuration")
    assert moved.lookup("CTHEAD") == (ct("CTHEAD", "CT5"), 3)
    assert moved.lookup("CTCHEST") is None  # the configuration removed it: applied
    assert sync_code_table(store, configured(CTHEAD="CT5"), at=later,
                           author="configuration") == moved  # nothing new to seed


def test_a_store_seeded_before_the_baseline_keeps_its_table(store: SqlStore) -> None:
    save_change(store, expected=0, at=T0, author="alice", note="", upsert=(ct("CTHEAD", "CT2"),))
    kept = sync_code_table(store, configured(CTHEAD="CT1"), at=T0, author="configuration")
    assert kept.lookup("CTHEAD") == (ct("CTHEAD", "CT2"), 1)
    changed = sync_code_table(store, configured(CTHEAD="CT3"), at=T0, author="configuration")
    assert changed.lookup("CTHEAD") == (ct("CTHEAD", "CT3"), 2)  # later config changes apply
