"""``accord --version`` and ``accord db current|upgrade|copy`` as subprocesses, and
``accord serve`` refusing a store newer than its code: one-line errors, exit 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import func, select, text

from accord import __version__
from accord.store import sqlite_url
from accord.store.db import connect
from accord.store.schema import messages, metadata
from accord.store.schema.migrations import alembic_config, head_revision, revisions
from ops_support import (
    AckPeer,
    accord,
    destination,
    one_line_error,
    order,
    send,
    serving,
    write_config,
)
from pg_support import fresh_database


def at_revision(data: Path, revision: str) -> None:
    """A SQLite store in ``data`` migrated to ``revision`` only."""
    database = connect(sqlite_url(data))
    try:
        with database.write() as conn:
            command.upgrade(alembic_config(conn), revision)
    finally:
        database.close()


def test_version_names_the_release_and_the_schema_head() -> None:
    r = accord("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"accord {__version__} (schema {head_revision()})"


def test_current_and_upgrade(tmp_path: Path) -> None:
    data = tmp_path / "data"
    one_line_error(accord("db", "current", "--data", str(data)), "no store at")
    assert not data.exists()  # reading never creates a store
    at_revision(data, revisions()[0])
    r = accord("db", "current", "--data", str(data))
    assert r.returncode == 0 and r.stdout.startswith(f"{revisions()[0]} ("), r.stdout
    assert "accord db upgrade" in r.stdout
    r = accord("db", "upgrade", "--data", str(data))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"upgraded the store from {revisions()[0]} to {head_revision()}"
    assert accord("db", "upgrade", "--data", str(data)).stdout.strip().endswith("nothing to do")
    assert accord("db", "current", "--data", str(data)).stdout.strip() == \
        f"{head_revision()} (head)"


def test_a_store_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert accord("db", "upgrade", "--data", str(data)).returncode == 0
    database = connect(sqlite_url(data))
    with database.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0999_future'"))
    database.close()
    r = accord("db", "current", "--data", str(data))
    assert r.returncode == 0 and "0999_future (newer than this release" in r.stdout
    one_line_error(accord("db", "upgrade", "--data", str(data)), "0999_future", "newer")
    config = write_config(tmp_path / "accord.yaml")
    r = accord("serve", "--config", str(config), "--data", str(data), "--mllp-port", "0",
               "--http-port", "0", timeout=60)
    one_line_error(r, "schema revision 0999_future, newer than this Accord knows")


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    """A SQLite store filled by a real engine: 30 orders, delivered to a peer."""
    data, peer = tmp_path / "source", AckPeer()
    config = write_config(tmp_path / "source.yaml",
                          destinations=[destination("pacs", peer.port)])
    try:
        with serving(["--config", str(config), "--data", str(data)],
                     tmp_path / "source.log") as eng:
            acks = [send(eng.mllp_port, order(n)) for n in range(30)]
            assert all(b"MSA|AA|" in a for a in acks)
            assert eng.stop() == 0
    finally:
        peer.close()
    return data


def _rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    database = connect(url)
    try:
        with database.read() as conn:
            return {t.name: [tuple(r) for r in conn.execute(
                select(t).order_by(*(list(t.primary_key.columns) or list(t.columns))))]
                for t in metadata.sorted_tables if t.name != "job_locks"}
    finally:
        database.close()


@pytest.mark.postgres
def test_copy_sqlite_to_postgresql(filled: Path) -> None:
    with fresh_database("accord_copy", "db copy tests") as url:
        r = accord("db", "copy", "--from", sqlite_url(filled), "--to", url)
        assert r.returncode == 0, r.stderr
        copied = int(re.match(r"copied (\d+) rows", r.stdout).group(1))  # type: ignore[union-attr]
        before, after = _rows(sqlite_url(filled)), _rows(url)
        assert copied == sum(len(rows) for rows in before.values())
        assert {k: len(v) for k, v in after.items()} == {k: len(v) for k, v in before.items()}
        assert after["messages"] == before["messages"]  # raw bytes, times, JSON outcome
        assert after["outbox"] == before["outbox"]
        assert after["orders"] == before["orders"]
        assert len(after["messages"]) == 30 and len(after["outbox"]) == 60  # adt + orders
        # The id sequences moved on: an engine on the copy stores new messages.
        with serving(["--db", url, "--config", str(write_config(filled / "pg.yaml"))],
                     filled / "pg.log") as eng:
            assert b"MSA|AA|" in send(eng.mllp_port, order(31))
        database = connect(url)
        with database.read() as conn:
            assert conn.scalar(select(func.count()).select_from(messages)) == 31
        database.close()
        # Into a store that now holds data: refused, nothing written.
        one_line_error(accord("db", "copy", "--from", sqlite_url(filled), "--to", url),
                       "not empty", "messages: 31 rows")


def test_copy_refuses_a_source_behind_head(tmp_path: Path) -> None:
    at_revision(tmp_path / "old", revisions()[0])
    one_line_error(accord("db", "copy", "--from", str(tmp_path / "old"),
                          "--to", str(tmp_path / "new")), "accord db upgrade")
