"""The runtime shortens the interpreter's switch interval (accord.engine.gil)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from accord.engine import gil


@pytest.fixture
def restore() -> Iterator[None]:
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


def test_the_switch_interval_is_shortened(restore: None) -> None:
    default = 0.005  # CPython's
    sys.setswitchinterval(default)
    gil.shorten_switch_interval()
    assert sys.getswitchinterval() == pytest.approx(gil.SWITCH_INTERVAL)
    assert sys.getswitchinterval() < default
