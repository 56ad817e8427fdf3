"""SQLite durability: the pragmas are in force on every pooled connection, and no URL
option can weaken them (``src/accord/store/sqlite.py``)."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text

from accord.errors import ConfigError
from accord.store import open_store, sqlite_url
from accord.store.gateway.store import SqlStore

from ..conftest import T0
from ..factories import item


def _pragmas(store: SqlStore) -> tuple[int, str, int, int]:
    with store.database.engine.connect() as conn:
        return (
            conn.execute(text("PRAGMA synchronous")).scalar_one(),
            conn.execute(text("PRAGMA journal_mode")).scalar_one(),
            conn.execute(text("PRAGMA foreign_keys")).scalar_one(),
            conn.execute(text("PRAGMA busy_timeout")).scalar_one(),
        )


def test_durability_pragmas_on_every_connection(tmp_path: Path) -> None:
    store = open_store(sqlite_url(tmp_path))
    assert isinstance(store, SqlStore)
    seen: list[tuple[int, str, int, int]] = []
    barrier = threading.Barrier(4)

    def check() -> None:
        with store.database.engine.connect() as conn:  # four connections open at once
            barrier.wait(30)
            seen.append(
                (
                    conn.execute(text("PRAGMA synchronous")).scalar_one(),
                    conn.execute(text("PRAGMA journal_mode")).scalar_one(),
                    conn.execute(text("PRAGMA foreign_keys")).scalar_one(),
                    conn.execute(text("PRAGMA busy_timeout")).scalar_one(),
                )
            )

    threads = [threading.Thread(target=check) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert seen == [(2, "wal", 1, 30_000)] * 4  # 2 = FULL
        assert _pragmas(store) == (2, "wal", 1, 30_000)
    finally:
        store.close()


def test_store_file_lives_in_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "accord-data"
    store = open_store(sqlite_url(data))
    store.close()
    assert (data / "accord.db").is_file()
    assert sqlite_url(data) == f"sqlite:///{data.resolve()}/accord.db"


@pytest.mark.parametrize(
    "query",
    ["?synchronous=OFF", "?journal_mode=MEMORY", "?isolation_level=AUTOCOMMIT", "?mode=ro"],
)
def test_url_options_that_could_weaken_durability_are_refused(tmp_path: Path, query: str) -> None:
    with pytest.raises(ConfigError):
        open_store(sqlite_url(tmp_path) + query)


def test_in_memory_store_is_refused() -> None:
    with pytest.raises(ConfigError):
        open_store("sqlite://")
    with pytest.raises(ConfigError):
        open_store("sqlite:///:memory:")


def _open_and_write(url: str) -> int:
    store = open_store(url)
    try:
        with store.transaction() as tx:
            tx.enqueue([item()], T0)
        return store.stats()["outbox_pending"]
    finally:
        store.close()


def test_processes_opening_a_new_file_together(tmp_path: Path) -> None:
    """Switching to WAL and migrating wait for each other (busy_timeout first)."""
    url = sqlite_url(tmp_path / "shared")
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(3, mp_context=ctx) as pool:
        counts = sorted(pool.map(_open_and_write, [url] * 3, timeout=120))
    assert counts[-1] == 3
    store = open_store(url)
    try:
        assert store.stats()["outbox_pending"] == 3
    finally:
        store.close()
