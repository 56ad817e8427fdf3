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
    sys.setswitchinterval(0.005)  # CPython's default
    gil.shorten_switch_interval()
    assert sys.getswitchinterval() == pytest.approx(gil.SWITCH_INTERVAL)
    assert gil.SWITCH_INTERVAL < 0.005
