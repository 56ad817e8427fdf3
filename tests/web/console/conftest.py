"""Fixtures of the console tests: one runtime per test module, on a tmp SQLite store fed
the canary samples (``console_support``), and a client of its console app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from console_support import console_app, runtime
from fastapi.testclient import TestClient

from accord.runtime import Runtime


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    yield from runtime(tmp_path_factory.mktemp("console"))


@pytest.fixture
def app_client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(console_app(rt), base_url="https://testserver") as client:
        yield client
