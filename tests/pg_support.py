"""A throwaway PostgreSQL database on the shared server, and taking one away (for the
scale-out and outage tests).

Used by the tests that need a database of their own to break: the scale-out tests
(``e2e/multinode.py``) and the delivery outage test. Importable from any test folder
(``tests/conftest.py`` puts this folder on the import path).
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

ADMIN_URL = os.environ.get("ACCORD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _admin(statement: sql.Composed) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(statement)


@contextmanager
def fresh_database(prefix: str, tests: str) -> Iterator[str]:
    """A uniquely named, empty database on the shared server (its URL); dropped after.
    Without PostgreSQL: a failure in CI (``CI`` set), a loud skip of ``tests`` elsewhere."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        reason = f"PostgreSQL at {ADMIN_URL} unreachable: {str(exc).strip()}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI must run the {tests})")
        warnings.warn(f"{reason}; {tests} SKIPPED", stacklevel=1)
        pytest.skip(reason)
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        _admin(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true")
               .format(sql.Identifier(name)))
        _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def database_away(url: str, away: bool) -> None:
    """Take this database away from every client (new connections refused, open ones
    cut, as a restart does to them) or give it back. Touches no other database."""
    name = url.rsplit("/", 1)[1]
    _admin(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}")
           .format(sql.Identifier(name), sql.Literal(not away)))
    if away:
        _admin(sql.SQL("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = {} AND pid <> pg_backend_pid()")
               .format(sql.Literal(name)))
