"""Background jobs on PostgreSQL run under a session advisory lock (several nodes share
one database; one node at a time runs a job). Two stores on one database play two
nodes; a node whose session is killed from outside (``pg_terminate_backend``, what a
crash or a vanished host amounts to) loses the job at once, not after a lease runs out.
The lease rows of SQLite are in ``test_store.py``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from accord.clock import SystemClock
from accord.config import StoreConfig
from accord.engine.jobs import pruning_loop
from accord.store import open_store
from accord.store.db.postgres import job_lock_key
from accord.store.gateway.store import SqlStore

from ..conftest import T0, _empty_pg

pytestmark = pytest.mark.postgres

HOUR = 3600.0


@pytest.fixture
def url(pg_database: str) -> str:
    _empty_pg(pg_database)
    return pg_database


@pytest.fixture
def nodes(url: str) -> Iterator[tuple[SqlStore, SqlStore]]:
    """Two stores on one database: node-a and node-b."""
    a, b = open_store(url), open_store(url)
    assert isinstance(a, SqlStore) and isinstance(b, SqlStore)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def holders(url: str, name: str) -> list[int]:
    """Backend pids holding job ``name``'s advisory lock (a bigint key shows in pg_locks
    as classid = high 32 bits, objid = low 32 bits, objsubid = 1)."""
    unsigned = job_lock_key(name) & 0xFFFF_FFFF_FFFF_FFFF
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
            (unsigned >> 32, unsigned & 0xFFFF_FFFF),
        ).fetchall()
    return [int(row[0]) for row in rows]


def kill_holder(url: str, name: str) -> int:
    """Terminate the one session holding job ``name``, as a crash would; its pid."""
    [pid] = holders(url, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
    assert holders(url, name) == []
    return pid


def shown_holder(url: str, name: str) -> str | None:
    """The node named in the ``job_locks`` visibility row."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT node FROM job_locks WHERE name = %s", (name,)).fetchone()
    return None if row is None else str(row[0])


def test_one_node_holds_the_job_while_its_session_lives(
    nodes: tuple[SqlStore, SqlStore], url: str
) -> None:
    a, b = nodes
    assert a.try_job_lock("prune", "node-a", 60, T0)
    assert not b.try_job_lock("prune", "node-b", 60, T0)
    # no lease: an hour later node-a still holds it (it never renewed in between)
    assert not b.try_job_lock("prune", "node-b", 60, T0 + timedelta(hours=1))
    assert a.try_job_lock("prune", "node-a", 60, T0 + timedelta(hours=1))
    assert not a.try_job_lock("prune", "node-c", 60, T0)  # same store, other node name
    assert b.try_job_lock("reconcile", "node-b", 60, T0)  # another job
    assert len(holders(url, "prune")) == 1
    assert len(holders(url, "reconcile")) == 1
    assert holders(url, "prune") != holders(url, "reconcile")  # one session per job
    assert shown_holder(url, "prune") == "node-a"
    assert shown_holder(url, "reconcile") == "node-b"


def test_released_job_goes_to_the_other_node_at_once(
    nodes: tuple[SqlStore, SqlStore], url: str
) -> None:
    a, b = nodes
    assert a.try_job_lock("prune", "node-a", HOUR, T0)
    b.release_job_lock("prune", "node-b")  # not the holder: no effect
    a.release_job_lock("prune", "node-b")  # this store holds it, but for node-a
    assert not b.try_job_lock("prune", "node-b", HOUR, T0)
    a.release_job_lock("prune", "node-a")
    assert holders(url, "prune") == []
    assert shown_holder(url, "prune") is None
    assert b.try_job_lock("prune", "node-b", HOUR, T0)
    assert not a.try_job_lock("prune", "node-a", HOUR, T0)


def test_killed_session_frees_the_job_for_the_other_node(
    nodes: tuple[SqlStore, SqlStore], url: str
) -> None:
    a, b = nodes
    assert a.try_job_lock("prune", "node-a", HOUR, T0)
    assert not b.try_job_lock("prune", "node-b", HOUR, T0)
    kill_holder(url, "prune")
    assert b.try_job_lock("prune", "node-b", HOUR, T0)
    # node-a finds its session dead, tries again and is refused: node-b holds the job
    assert not a.try_job_lock("prune", "node-a", HOUR, T0)
    assert shown_holder(url, "prune") == "node-b"


def test_holder_takes_the_job_again_when_its_session_died(
    nodes: tuple[SqlStore, SqlStore], url: str
) -> None:
    a, b = nodes
    assert a.try_job_lock("prune", "node-a", HOUR, T0)
    killed = kill_holder(url, "prune")
    assert a.try_job_lock("prune", "node-a", HOUR, T0)
    [now_holding] = holders(url, "prune")
    assert now_holding != killed
    assert not b.try_job_lock("prune", "node-b", HOUR, T0)


def test_closing_the_store_releases_every_job(url: str) -> None:
    a, b = open_store(url), open_store(url)
    try:
        assert a.try_job_lock("prune", "node-a", HOUR, T0)
        assert a.try_job_lock("reconcile", "node-a", HOUR, T0)
        a.close()
        assert holders(url, "prune") == holders(url, "reconcile") == []
        assert b.try_job_lock("prune", "node-b", HOUR, T0)
        assert b.try_job_lock("reconcile", "node-b", HOUR, T0)
    finally:
        b.close()


def test_threads_of_one_node_share_one_session(
    nodes: tuple[SqlStore, SqlStore], url: str
) -> None:
    a, _ = nodes
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(
            lambda _: a.try_job_lock("prune", "node-a", HOUR, T0), range(32)))
    assert all(results)
    assert len(holders(url, "prune")) == 1


TRY_IN_CHILD = """
import sys
from datetime import UTC, datetime
from accord.clock import SystemClock
from accord.config import StoreConfig
from accord.engine.jobs import pruning_loop
from accord.store import open_store
store = open_store(sys.argv[1])
try:
    print(store.try_job_lock("prune", "node-child", 60, datetime.now(UTC)))
finally:
    store.close()
"""


def _try_in_another_process(url: str) -> str:
    done = subprocess.run([sys.executable, "-c", TRY_IN_CHILD, url], capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout.strip()


def test_another_process_cannot_take_a_held_job(
    nodes: tuple[SqlStore, SqlStore], url: str
) -> None:
    a, _ = nodes
    assert a.try_job_lock("prune", "node-a", HOUR, T0)
    assert _try_in_another_process(url) == "False"
    a.release_job_lock("prune", "node-a")
    assert _try_in_another_process(url) == "True"
    assert holders(url, "prune") == []  # the child's store closed: released


def test_job_keys_are_stable_64_bit_and_distinct() -> None:
    assert job_lock_key("prune") == job_lock_key("prune")
    keys = {job_lock_key(name) for name in ("prune", "reconcile", "worklist-log")}
    assert len(keys) == 3
    assert all(-(2**63) <= key < 2**63 for key in keys)


async def test_pruning_loop_hands_the_job_back_on_stop(url: str, tmp_path: Path) -> None:
    a, b = open_store(url), open_store(url)
    settings = StoreConfig(data_dir=tmp_path, retention_days=30, prune_interval=HOUR)
    task = asyncio.create_task(pruning_loop(a, settings, SystemClock(), "node-a"))
    try:
        for _ in range(500):  # until node-a's first round has taken the job
            if holders(url, "prune"):
                break
            await asyncio.sleep(0.02)
        assert not b.try_job_lock("prune", "node-b", HOUR, T0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # node-a stopped (its store still open): the job was handed back, node-b takes it
        assert b.try_job_lock("prune", "node-b", HOUR, T0)
    finally:
        task.cancel()
        a.close()
        b.close()
