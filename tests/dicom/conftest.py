"""Fixtures for the DICOM bridge tests (helpers live in dicom_support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dicom_support import Department, SqliteMppsSink, department, serve

from accord.dicom.scp import DicomServer


@pytest.fixture
def dept() -> Department:
    return department()


@pytest.fixture
def sink(tmp_path: Path) -> SqliteMppsSink:
    return SqliteMppsSink(tmp_path / "mpps.sqlite")


@pytest.fixture
def scp(dept: Department, sink: SqliteMppsSink) -> Iterator[DicomServer]:
    server = serve(dept, sink)
    yield server
    server.stop()
