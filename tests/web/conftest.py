"""Fixtures for the JSON API tests: a real runtime on a tmp SQLite store, fed the
``web_*`` samples through ingest, and ``create_app`` on it, with one user per role.

The store is fed once per module (ingest through the workflow is the slow part) and
copied for each test, so every test starts from the same state and may change it.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from web_support import API_TOKEN, FAST_HASHER, FEED, PASSWORD, ROLES, Fed, config, sample

from accord.runtime import Runtime, build
from accord.web.app import create_app
from accord.web.auth import Auth


@pytest.fixture(scope="module")
def fed_store(tmp_path_factory: pytest.TempPathFactory) -> Fed:
    data = tmp_path_factory.mktemp("fed")
    rt = build(config(data))

    async def go() -> list[int]:
        return [await rt.ingestor.inject(sample(n), "127.0.0.1:1234") for n in FEED]

    ids = asyncio.run(go())
    auth = Auth(rt.accounts, rt.clock, hasher=FAST_HASHER)
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


