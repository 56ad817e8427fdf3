"""The ``store`` fixture: every store test runs against SQLite and PostgreSQL.

SQLite: a fresh file per test. PostgreSQL (127.0.0.1:5432, user postgres, or the admin
URL in ``ACCORD_TEST_PG``): a uniquely named database per test module (dropped after),
emptied before each test, so parallel runs never share data. When PostgreSQL cannot be
reached, ``scripts/ensure-services.sh`` is tried once; then the PostgreSQL cases FAIL in
CI (``CI`` set) and are skipped loudly elsewhere.
"""

from __future__ import annotations

import os
import subprocess
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from accord.store import open_store, sqlite_url
from accord.store.gateway.store import SqlStore

ADMIN_URL = os.environ.get("ACCORD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

_pg_state: dict[str, str | None] = {}


def _reachable() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def pg_unavailable() -> str | None:
    """Checked once per session; tries to start the service once."""
    if "reason" not in _pg_state:
        reason = _reachable()
        if reason is not None:
            script = ROOT / "scripts" / "ensure-services.sh"
            if script.exists():
                subprocess.run(["bash", str(script)], check=False, timeout=120)
            reason = _reachable()
        _pg_state["reason"] = reason
    return _pg_state["reason"]


def require_pg() -> None:
    reason = pg_unavailable()
    if reason is None:
        return
    message = f"PostgreSQL at {ADMIN_URL} unreachable: {reason}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must run the PostgreSQL store tests)")
    warnings.warn(f"{message}; PostgreSQL store tests SKIPPED", stacklevel=2)
    pytest.skip(message)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reason = _pg_state.get("reason")
    if reason is not None:
        terminalreporter.write_line(
            f"WARNING: PostgreSQL store contract tests did NOT run ({reason})",
            red=True,
            bold=True,
        )


def _admin_execute(statement: sql.Composable) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this module, migrated; dropped afterwards."""
    require_pg()
    name = f"accord_store_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _admin_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        open_store(url).close()
        yield url
    finally:
        _admin_execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _empty_pg(url: str) -> None:
    """Remove every row (and reset ids) but keep the migrated schema."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        ]
        if tables:
            names = sql.SQL(", ").join(sql.Identifier(t) for t in tables)
            conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(names))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated store of each kind."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "data")
    url: str = request.getfixturevalue("pg_database")
    _empty_pg(url)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    opened = open_store(store_url)
    assert isinstance(opened, SqlStore)
    try:
        yield opened
    finally:
        opened.close()
