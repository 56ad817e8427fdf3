"""Fixtures for the JSON API tests: a real runtime on a tmp SQLite store, fed the
``web_*`` samples through ingest, and ``create_app`` on it, with one user per role.

The store is fed once per module (ingest through the workflow is the slow part) and
copied for each test, so every test starts from the same state and may change it.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from accord.config import Config
from accord.runtime import Runtime, build
from accord.web.app import create_app
from accord.web.auth import Auth

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
PASSWORD = "correct horse battery"
API_TOKEN = "test-admin-token-0123456789"
ROLES = ("viewer", "operator", "admin", "auditor")
FEED = ("web_adt_a04_alice.hl7", "web_adt_a04_alice_twin.hl7", "web_adt_a04_bob.hl7",
        "web_orm_o01_alice_ct.hl7", "web_orm_o01_bob_mr.hl7", "web_orm_o01_bob_us.hl7",
        "web_orm_o01_no_pid3.hl7", "web_oru_r01_unknown_order.hl7", "web_not_hl7.hl7")
CATALOG = {"procedures": [
    {"code": "CTHEAD", "description": "CT head", "modality": "CT", "stations": ["CT1"]},
    {"code": "MRKNEE", "description": "MR knee", "modality": "MR", "stations": ["MR1"]},
    {"code": "USABD", "description": "US abdomen", "modality": "US", "stations": ["US1"]},
]}
# Cheap Argon2id parameters: the tests check the logic, not the cost.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def config(data: Path) -> Config:
    return Config.model_validate({
        "store": {"data_dir": str(data)},
        "mllp": {"port": 0},
        "http": {"port": 0},
        "dicom": {"enabled": False},
        "workflow": {"catalog": CATALOG},
        "destinations": [{"name": "pacs", "host": "127.0.0.1", "port": 9,
                          "send": ["adt", "orders", "reports"], "retries": 0,
                          "connect_timeout": 0.5, "ack_timeout": 1.0}],
    })


@dataclass
class Fed:
    """The fed store: its directory and the ids of the fed messages, by sample name."""

    data: Path
    message_ids: dict[str, int]


@pytest.fixture(scope="module")
def fed_store(tmp_path_factory: pytest.TempPathFactory) -> Fed:
    data = tmp_path_factory.mktemp("fed")
    rt = build(config(data))

    async def go() -> list[int]:
        return [await rt.ingestor.inject(sample(n), "127.0.0.1:1234") for n in FEED]

    ids = asyncio.run(go())
    auth = Auth(rt.store, rt.clock, hasher=FAST_HASHER)
    for role in ROLES:
        auth.add_user(role, role, PASSWORD)
    rt.store.close()
    return Fed(data, dict(zip(FEED, ids, strict=True)))


@pytest.fixture
def runtime(fed_store: Fed, tmp_path: Path) -> Iterator[Runtime]:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(fed_store.data / "accord.db", data / "accord.db")
    rt = build(config(data))
    yield rt
    rt.store.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    app = create_app(runtime, api_token=API_TOKEN, hasher=FAST_HASHER, extra_routers=[])
    with TestClient(app, base_url="https://testserver") as c:
        yield c


def login(client: TestClient, role: str) -> str:
    """Log in as the user of ``role`` (the session cookie stays on ``client``); returns
    the CSRF token."""
    r = client.post("/api/login", json={"name": role, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["csrf_token"])


def token_for(client: TestClient, role: str) -> str:
    """A bearer token of the user of ``role`` (created through the API)."""
    csrf = login(client, role)
    r = client.post("/api/tokens", json={"name": "test"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    client.post("/api/logout", headers={"X-CSRF-Token": csrf})
    client.cookies.clear()
    return str(r.json()["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
