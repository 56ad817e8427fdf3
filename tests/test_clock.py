"""Tests for accord.clock.SteadyClock: the wall clock without its steps.

The system clock and the monotonic clock are injected: a step is one assignment.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from accord.clock import SteadyClock

T0 = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


class Source:
    """A system clock and a monotonic clock that tests move by hand."""

    def __init__(self) -> None:
        self.wall, self.mono = T0, 100.0

    def run(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds

    def clock(self) -> SteadyClock:
        return SteadyClock(lambda: self.wall, lambda: self.mono)


def test_follows_the_system_clock_while_it_does_not_step() -> None:
    src = Source()
    clock = src.clock()
    for _ in range(10):
        src.run(0.5)
        src.wall += timedelta(milliseconds=20)  # NTP slewing it: followed
        assert clock.now() == src.wall


@pytest.mark.parametrize("step", [-3600.0, 3600.0], ids=["back", "forward"])
def test_a_step_is_not_followed_and_is_closed_slowly(
        step: float, caplog: pytest.LogCaptureFixture) -> None:
    src = Source()
    clock = src.clock()
    before = clock.now()
    src.wall += timedelta(seconds=step)
    with caplog.at_level(logging.WARNING, logger="accord.clock"):
        readings = []
        for _ in range(100):  # 100 s of real time, read every second
            src.run(1.0)
            readings.append(clock.now())
    assert readings == sorted(readings) and readings[0] > before
    # every second of real time is a second of the engine's, within the slew (5%)
    gaps = [(b - a).total_seconds() for a, b in zip([before, *readings], readings,
                                                    strict=False)]
    assert all(0.95 <= g <= 1.05 for g in gaps), gaps
    assert abs((readings[-1] - before).total_seconds() - 100) <= 5.0 + 1e-6
    assert sum("stepped" in r.message for r in caplog.records) == 1


def test_the_gap_closes_and_the_clock_follows_again() -> None:
    src = Source()
    clock = src.clock()
    src.wall -= timedelta(seconds=60)
    for _ in range(2000):  # 60 s at 5%: closed within 1,200 s
        src.run(1.0)
        clock.now()
    assert clock.now() == src.wall


def test_never_goes_back_for_a_small_step_back() -> None:
    src = Source()
    clock = src.clock()
    first = clock.now()
    src.wall -= timedelta(seconds=0.5)
    assert clock.now() >= first
