"""Every scenario YAML again, through the real path: MLLP payload → Ingestor (group
commit, savepoints, dedupe) → WorkflowProcessor → SQL repository → commit → ACK (a
message in enhanced mode: CA once stored, then the applier applies it), on SQLite and
PostgreSQL. The ACK codes and ERR locations are read from the ACK bytes, the findings
and outbound categories from the stored outcome, and the final state is read back from
the tables and checked with the same expectations as the in-memory run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql
from sqlalchemy import select
from test_scenarios import (  # the in-memory runner of the same files
    SCENARIOS,
    T0,
    _catalog,
    _changed,
    _check_findings,
    _check_orders,
    _check_patients,
    _check_reports,
    _check_trace,
    _checks,
    _message,
)

from accord.clock import ControlIds, FixedClock
from accord.config import Config
from accord.engine.applier import Applier
from accord.engine.ingest import Ingestor
from accord.engine.workflow import Outbound, WorkflowProcessor
from accord.mapping.dialect import Dialects
from accord.mllp.server import PeerInfo
from accord.store import open_store, sqlite_url
from accord.store.gateway.store import SqlStore
from accord.store.schema.workflow import (
    wf_findings,
    wf_orders,
    wf_patients,
    wf_reports,
    wf_trace_events,
)
from accord.store.workflow import codec
from accord.store.workflow.repository import repository_for
from accord.workflow.identity import Matcher
from accord.workflow.memory import MemoryRepository, SequentialIds

PEER = PeerInfo("127.0.0.1", 40000)
ADMIN_URL = os.environ.get("ACCORD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    name = f"accord_scen_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


def _empty(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'")]
        if tables:
            conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in tables)))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "data")
    else:
        url = request.getfixturevalue("pg_url")
        open_store(url).close()  # migrate once, then empty
        _empty(url)
    opened = open_store(url)
    assert isinstance(opened, SqlStore)
    yield opened
    opened.close()


def snapshot(store: SqlStore) -> MemoryRepository:
    """The workflow state as stored, in a MemoryRepository (for the shared checks)."""
    repo = MemoryRepository()
    with store.database.engine.connect() as conn:
        for row in conn.execute(select(wf_patients.c.doc)):
            repo.save_patient(codec.decode_patient(row.doc))
        for row in conn.execute(select(wf_orders.c.doc)):
            repo.save_order(codec.decode_order(row.doc))
        for row in conn.execute(select(wf_reports.c.doc)):
            repo.save_report(codec.decode_report(row.doc))
        for row in conn.execute(select(wf_findings.c.doc)):
            repo.save_finding(codec.decode_finding(row.doc))
        for row in conn.execute(select(wf_trace_events.c.doc).order_by(wf_trace_events.c.id)):
            repo.add_trace(codec.decode_trace(row.doc))
    return repo


def _check_step(store: SqlStore, step: dict[str, Any], ack: bytes, before: dict[str, int],
                where: str) -> None:
    stored = store.search_messages(limit=1).items[0]
    assert stored.ack == ack  # the answer is the stored one
    expected = step.get("ack", "AA")
    if stored.ack_code == "CA" and expected == "AA":
        # Enhanced mode (MSH-15 valued): the commit ACK once stored, then applied.
        assert stored.outcome.get("applied") is not False, (where, stored.outcome)
    else:
        assert stored.ack_code == expected, (where, stored.outcome)
    if "error_location" in step:
        assert stored.outcome.get("location") == step["error_location"], where
    workflow = stored.outcome.get("workflow", {})
    if "outbound" in step:
        assert sorted(workflow.get("events", [])) == sorted(step["outbound"]), where
    if "new_findings" in step:
        now = snapshot(store).findings
        new = sorted(f.kind.value for k, f in now.items() if before.get(k) != f.count)
        assert new == sorted(step["new_findings"]), (where, [f.detail for f in now.values()])


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
async def test_scenario_through_the_store(path: Path, store: SqlStore) -> None:
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    catalog = _catalog(spec.get("catalog"))
    ids = ControlIds("T")
    processor = WorkflowProcessor(
        dialects=Dialects.from_config(spec.get("dialects") or {}),
        outbound=Outbound((), Dialects(), ids), ids=SequentialIds(),
        repository=repository_for, catalog=catalog,
        matcher=Matcher() if spec.get("matcher") else None, checks=_checks(spec.get("checks")))
    clock = FixedClock(T0)
    ingestor = Ingestor(store, clock, ids, processor, Config())
    applier = Applier(store, clock, ids, processor, "n1", ack_route=lambda *_: None)
    try:
        for n, step in enumerate(spec["steps"], start=1):
            clock.t = T0 + timedelta(minutes=n)
            if "catalog_change" in step:
                processor.catalog = _changed(processor.catalog, step["catalog_change"], clock.t)
            text = _message(step)
            before = {k: f.count for k, f in snapshot(store).findings.items()}
            ack = await ingestor.handle(text.encode("utf-8"), PEER)
            applier.drain()  # what enhanced mode answered on store
            _check_step(store, step, ack, before, f"step {n}")
    finally:
        await ingestor.close()
    expect = spec.get("expect") or {}
    state = snapshot(store)
    _check_patients(state, expect)
    _check_orders(state, expect)
    _check_reports(state, expect)
    _check_findings(state, expect)
    _check_trace(state, expect)
