"""A store made at the first schema revision (``fixtures/store_0001.sql``, written by
``fixtures/make_store_0001.py``) upgraded to head with ``accord db upgrade``, on SQLite
and PostgreSQL: ``accord db current`` says where it stands before and after, and a real
``accord serve`` on it reads every message back (raw bytes, ACKs, search keys), answers a
resend with the first ACK, and delivers what was still queued with its MSH-10."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import MetaData, insert, select, text

from accord.store import sqlite_url
from accord.store.db import connect
from accord.store.schema.migrations import alembic_config, head_revision
from ops_support import AckPeer, accord, destination, send, serve_env, serving, write_config
from pg_support import fresh_database

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "store_0001.sql"
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
TOKEN = "upgrade-test-admin-token-0123456789"
TABLES = ("messages", "message_keys", "dedupe", "outbox", "job_locks")


def load_0001(data: Path) -> str:
    """The fixture as a SQLite store in ``data``; its URL."""
    data.mkdir(parents=True)
    with sqlite3.connect(data / "accord.db") as db:
        db.executescript(FIXTURE.read_text(encoding="utf-8"))
    return sqlite_url(data)


def into_postgresql(sqlite: str, url: str) -> None:
    """The same store on PostgreSQL: the 0001 schema made by its migration, the rows
    copied as they are."""
    from alembic import command

    source, target = connect(sqlite), connect(url)
    try:
        with target.write() as conn:
            command.upgrade(alembic_config(conn), "0001_gateway")
        old = MetaData()
        with source.read() as src, target.write() as dst:
            old.reflect(src, only=TABLES)
            for name in TABLES:
                rows = [dict(r._mapping) for r in src.execute(select(old.tables[name]))]
                dst.execute(insert(old.tables[name]), rows)
            for name in ("messages", "outbox"):
                dst.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                 f"(SELECT max(id) FROM {name}))"))
    finally:
        source.close()
        target.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_0001(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = load_0001(tmp_path / "data")
    if request.param == "sqlite":
        yield url
        return
    with fresh_database("accord_upgrade", "upgrade tests") as pg:
        into_postgresql(url, pg)
        yield pg


def test_a_store_made_at_0001_upgrades_and_reads_back(store_0001: str, tmp_path: Path) -> None:
    url = store_0001
    r = accord("db", "current", "--db", url)
    assert r.returncode == 0 and r.stdout.startswith("0001_gateway ("), r.stdout
    r = accord("db", "upgrade", "--db", url)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"upgraded the store from 0001_gateway to {head_revision()}"
    assert accord("db", "current", "--db", url).stdout.strip() == f"{head_revision()} (head)"

    pacs, ris = AckPeer(), AckPeer()
    config = write_config(tmp_path / "accord.yaml", destinations=[
        destination("pacs", pacs.port), destination("ris", ris.port, ["orders", "reports"])])
    try:
        with serving(["--config", str(config), "--db", url], tmp_path / "serve.log",
                     env={**serve_env(), "ACCORD_API_TOKEN": TOKEN}) as eng:
            api = httpx.Client(base_url=eng.url, headers={"Authorization": f"Bearer {TOKEN}"})
            _reads_back(api)
            # A resend of GW00000001 is a duplicate: answered with the first ACK's bytes.
            resent = send(eng.mllp_port, _sample("gateway_adt_a04.hl7"))
            assert b"K000000001" in resent and b"MSA|AA|GW00000001" in resent
            # The row pending for pacs and the one left in flight (its lease long over)
            # go out, each with its own MSH-10; delivered and refused rows do not.
            deadline = time.monotonic() + 60
            while (pacs.received, ris.received) != (["A0000000002"], ["A0000000003"]):
                assert time.monotonic() < deadline, (pacs.received, ris.received)
                time.sleep(0.1)
            errors = api.get("/api/errors").json()["items"]
            assert {e["id"] for e in errors} >= {"m3", "o4"}
            assert eng.stop() == 0
    finally:
        pacs.close()
        ris.close()


def _sample(name: str) -> bytes:
    lines = (SAMPLES / name).read_text(encoding="utf-8").splitlines()
    return "\r".join(line for line in lines if line).encode()


def _reads_back(api: httpx.Client) -> None:
    listed = api.get("/api/messages", params={"limit": 100}).json()["items"]
    assert sorted((m["id"], m["status"]) for m in listed) == [
        (1, "processed"), (2, "processed"), (3, "error"), (4, "duplicate"), (5, "rejected")]
    order = api.get("/api/messages/2").json()
    assert order["raw"].replace("\r", "\n").strip() == \
        (SAMPLES / "gateway_orm_o01_nw.hl7").read_text(encoding="utf-8").strip()
    assert order["accessions"] == ["ACC26030200001"] and "MSA|AA|GW00000003" in order["ack"]
    assert sorted((d["destination"], d["control_id"]) for d in order["deliveries"]) == [
        ("pacs", "A0000000002"), ("ris", "A0000000003")]
    found = api.get("/api/messages", params={"accession": "ACC26030200001"}).json()["items"]
    assert [m["id"] for m in found] == [2]
    assert api.get("/api/messages/5").json()["parse_error"] == "no MSH segment"
