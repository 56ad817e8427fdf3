"""The procedure code table followed live (set in the configuration, edited on the
console's mappings page): a runtime on a real SQLite store, orders over MLLP, the
worklist read over the real HTTP API. An edit stored while the engine runs changes the
station of the NEXT order (orders already on the worklist keep theirs); a restart keeps
a console edit; a changed configuration table is applied at the next start; a stale
console form is answered 409.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from accord.clock import ControlIds, FixedClock
from accord.config import Config
from accord.engine.ingest import Ingestor
from accord.engine.workflow import Outbound, WorkflowProcessor
from accord.mapping.dialect import Dialects
from accord.mapping.procedures import Catalog, CodeTable, Procedure, catalog_from_config
from accord.mllp.client import MllpClient
from accord.mllp.server import PeerInfo
from accord.runtime import Runtime, build
from accord.store import Tx, open_store, sqlite_url
from accord.store.gateway.store import SqlStore
from accord.store.workflow.catalog import CodeTables, StoredCodeTable
from accord.store.workflow.repository import reading, repository_for
from accord.web.auth import Auth
from accord.workflow.memory import SequentialIds
from pg_support import fresh_database

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "catalog_orm_o01_ctchest.hl7"
TOKEN = "catalog-live-test-token"
PASSWORD = "correct horse battery"
T1 = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
PEER = PeerInfo("127.0.0.1", 40000)


def catalog(chest: str = "CT1", head: str = "CT1") -> dict[str, Any]:
    return {"procedures": [
        {"code": "CTCHEST", "description": "CT chest", "modality": "CT", "stations": [chest]},
        {"code": "CTHEAD", "description": "CT head", "modality": "CT", "stations": [head]}]}


def config(data: Path, table: dict[str, Any], **more: Any) -> Config:
    return Config.model_validate({
        "store": {"data_dir": str(data)}, "mllp": {"port": 0}, "http": {"port": 0},
        # Its orders are on a fixed day (T1), long past: the worklist keeps them.
        "dicom": {"enabled": False, "worklist_horizon_hours": 1000000},
        "workflow": {"catalog": table}, **more})


def order(n: int) -> bytes:
    """The sample under its own MSH-10, placer number and accession."""
    return (SAMPLE.read_bytes().replace(b"CAT0001", f"CAT000{n}".encode())
            .replace(b"CATPL1", f"CATPL{n}".encode()).replace(b"CATACC1", f"CATACC{n}".encode()))


def stations(rt: Runtime, code: str) -> tuple[str, ...]:
    """The stations the stored table's current version gives ``code``."""
    found = rt.code_tables.load().lookup(code)
    assert found is not None
    return found[0].stations


@pytest.fixture
async def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Runtime]:
    monkeypatch.setenv("ACCORD_API_TOKEN", TOKEN)
    rt = build(config(tmp_path, catalog()))
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


async def send(rt: Runtime, n: int) -> None:
    client = MllpClient("127.0.0.1", rt.mllp_port, ack_timeout=10.0)
    try:
        assert b"MSA|AA|" in await client.send(order(n))
    finally:
        await client.close()


async def worklist(rt: Runtime) -> dict[str, list[str]]:
    """Accession → stations, as GET /api/worklist serves them."""
    assert rt.http is not None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.http.port}") as http:
        resp = await http.get("/api/worklist", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 200, resp.text
    return {item["accession"]: item["station"] for item in resp.json()["items"]}


async def test_a_stored_edit_changes_the_station_of_the_next_order(engine: Runtime) -> None:
    await send(engine, 1)
    engine.code_tables.save_change(expected=1, at=T1, author="alice", note="chest moved",
                upsert=(Procedure("CTCHEST", "CT chest", "CT", stations=("CT2",)),))
    await send(engine, 2)
    assert await worklist(engine) == {"CATACC1": ["CT1"], "CATACC2": ["CT2"]}


async def test_a_second_node_on_the_same_store_follows_an_edit(
        engine: Runtime, tmp_path: Path) -> None:
    other = build(config(tmp_path, catalog()))  # same data dir: one store, two nodes
    await other.start()
    try:
        await send(other, 1)
        engine.code_tables.save_change(expected=1, at=T1, author="alice", note="",
                    upsert=(Procedure("CTCHEST", "CT chest", "CT", stations=("CT3",)),))
        await send(other, 2)
        assert await worklist(engine) == {"CATACC1": ["CT1"], "CATACC2": ["CT3"]}
    finally:
        await other.stop()


async def test_a_console_save_reaches_the_engine_and_a_stale_form_is_409(
        engine: Runtime) -> None:
    Auth(engine.accounts, engine.clock).add_user("admin", "admin", PASSWORD)
    assert engine.http is not None
    # The engine's own console app; https so the Secure session cookie is sent back.
    with TestClient(engine.http.app, base_url="https://testserver") as http:
        login = http.post("/api/login", json={"name": "admin", "password": PASSWORD})
        assert login.status_code == 200, login.text
        csrf = login.json()["csrf_token"]
        page = http.get("/mappings").text
        version = re.search(r'name="version" value="(\d+)"', page)
        assert version is not None and version.group(1) == "1"
        form = {"csrf_token": csrf, "version": "1", "code": "CTCHEST", "modality": "CT",
                "stations": "CT4"}
        saved = http.post("/mappings", data=form, follow_redirects=False)
        assert saved.status_code == 303, saved.text
        stale = http.post("/mappings", data={**form, "stations": "CT5"})
        assert stale.status_code == 409
        assert "Not saved" in stale.text and 'value="CT5"' in stale.text  # kept to retry
        assert 'name="version" value="2"' in stale.text  # the current version, to retry on
    await send(engine, 1)
    assert stations(engine, "CTCHEST") == ("CT4",)
    assert await worklist(engine) == {"CATACC1": ["CT4"]}


def test_a_restart_keeps_console_edits_and_applies_config_changes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rt = build(config(tmp_path, catalog()))
    rt.code_tables.save_change(expected=1, at=T1, author="alice", note="chest moved",
                upsert=(Procedure("CTCHEST", "CT chest", "CT", stations=("CT2",)),))
    rt.store.close()

    rt = build(config(tmp_path, catalog()))  # the same configuration: the edit stays
    assert stations(rt, "CTCHEST") == ("CT2",)
    assert len(rt.code_tables.load().versions) == 2
    rt.store.close()

    with caplog.at_level(logging.WARNING, logger="accord.store.workflow.catalog"):
        rt = build(config(tmp_path, catalog(head="CT9")))  # the config changed CTHEAD only
    assert (stations(rt, "CTHEAD"), stations(rt, "CTCHEST")) == (("CT9",), ("CT2",))
    assert "changed codes CTHEAD" in caplog.text and "both sides" in caplog.text
    rt.store.close()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="accord.store.workflow.catalog"):
        rt = build(config(tmp_path, catalog(chest="CT7", head="CT9")))  # edited both ways
    assert stations(rt, "CTCHEST") == ("CT7",)  # the configuration wins for that code
    assert "both sides, configuration wins: CTCHEST" in caplog.text
    history = rt.code_tables.load().versions
    assert [(v.author, v.note) for v in history] == [
        ("configuration", "seeded from configuration"), ("alice", "chest moved"),
        ("configuration", "configuration changed: CTHEAD"),
        ("configuration", "configuration changed: CTCHEST")]
    rt.store.close()


class CountingTable:
    """The real stored table, counting its reads (the cost the processor pays)."""

    def __init__(self) -> None:
        self.inner = StoredCodeTable()
        self.versions = self.tables = 0

    def version(self, tx: Tx) -> int:
        self.versions += 1
        return self.inner.version(tx)

    def table(self, tx: Tx) -> CodeTable:
        self.tables += 1
        return self.inner.table(tx)


async def test_a_batch_reads_the_version_once_and_the_table_only_when_it_moved(
        tmp_path: Path) -> None:
    store = open_store(sqlite_url(tmp_path))
    assert isinstance(store, SqlStore)
    tables = CodeTables(store.database)
    table = tables.sync(catalog_from_config(catalog(), at=T1, author="c").table,
                        at=T1, author="configuration")
    live = CountingTable()
    dialects = Dialects.from_config({})
    processor = WorkflowProcessor(
        dialects=dialects, outbound=Outbound((), dialects, ControlIds("OUT")),
        ids=SequentialIds(), repository=repository_for, catalog=Catalog(table=table),
        live=live)
    ingestor = Ingestor(store, FixedClock(T1), ControlIds("ACK"), processor, Config())
    try:
        acks = await asyncio.gather(*(ingestor.handle(order(n), PEER) for n in range(1, 7)))
        assert all(b"MSA|AA|" in ack for ack in acks)
        assert live.versions < 6 and live.tables == 0  # one read per batch, no reload
        tables.save_change(expected=1, at=T1, author="alice", note="",
                           upsert=(Procedure("CTCHEST", "CT chest", "CT", stations=("CT2",)),))
        assert b"MSA|AA|" in await ingestor.handle(order(7), PEER)
        assert live.tables == 1
        with reading(store.database, T1) as repo:
            step = repo.orders_by("accession", "CATACC7")[0].steps[0]
        assert step.station_ae_titles == ("CT2",)
    finally:
        await ingestor.close()
        store.close()


@pytest.mark.postgres
async def test_two_nodes_on_postgresql_follow_an_edit_made_on_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCORD_API_TOKEN", TOKEN)
    with fresh_database("accord_catalog", "code table scale-out test") as url:
        nodes = []
        for name in ("a", "b"):
            nodes.append(build(config(tmp_path / name, catalog(), node_id=f"node-{name}",
                                      store={"url": url})))
        a, b = nodes
        for node in nodes:
            await node.start()
        try:
            await send(b, 1)
            a.code_tables.save_change(expected=1, at=T1, author="alice", note="",
                        upsert=(Procedure("CTCHEST", "CT chest", "CT", stations=("CT6",)),))
            await send(b, 2)
            assert await worklist(a) == {"CATACC1": ["CT1"], "CATACC2": ["CT6"]}
        finally:
            for node in nodes:
                await node.stop()
