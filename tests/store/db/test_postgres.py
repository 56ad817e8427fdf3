"""PostgreSQL specifics (``src/accord/store/postgres.py``): nodes starting together
migrate once under the advisory lock; pooled connections survive a server-side
disconnect (as after a database restart); URLs map to psycopg 3."""

from __future__ import annotations

import multiprocessing
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import psycopg
import pytest
from psycopg import sql

from accord.errors import ConfigError, StoreError
from accord.store import open_store
from accord.store.db.postgres import psycopg_url
from accord.store.gateway.store import SqlStore
from accord.store.schema.migrations import head_revision

from ..conftest import ADMIN_URL, require_pg
from ..factories import inbound


def _open_and_count(url: str) -> int:
    store = open_store(url)
    try:
        return store.stats()["messages"]
    finally:
        store.close()


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """An empty (never migrated) database."""
    require_pg()
    name = f"accord_fresh_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.mark.postgres
def test_nodes_starting_together_migrate_once(fresh_database: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(3, mp_context=ctx) as pool:
        counts = list(pool.map(_open_and_count, [fresh_database] * 3, timeout=120))
    assert counts == [0, 0, 0]
    with psycopg.connect(fresh_database) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (head_revision(),)
        ]


@pytest.mark.postgres
def test_reconnects_after_server_side_disconnect(fresh_database: str) -> None:
    store = open_store(fresh_database)
    assert isinstance(store, SqlStore)
    try:
        with store.transaction() as tx:
            tx.save_inbound(inbound(1))
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (fresh_database.rsplit("/", 1)[1],),
            )
        assert store.stats()["messages"] == 1  # the pool pinged and reconnected
        with store.transaction() as tx:
            tx.save_inbound(inbound(2))
        assert store.ping()
    finally:
        store.close()


def test_postgres_urls_use_psycopg3() -> None:
    assert psycopg_url("postgresql://u@h:5432/db").drivername == "postgresql+psycopg"
    assert psycopg_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    with pytest.raises(ConfigError):
        psycopg_url("postgresql+asyncpg://u@h/db")
    with pytest.raises(ConfigError):
        open_store("mysql://u@h/db")


def test_unreachable_database_is_a_store_error() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2")
    assert "OperationalError" in str(caught.value)
