"""Time and identifiers, injected so that pure code never reads the system clock.

Rule: nothing under ``hl7/``, ``workflow/``, ``mapping/`` or ``mllp/framing.py`` calls
``datetime.now``; it takes a :class:`Clock`.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

log = logging.getLogger(__name__)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The wall clock, always timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class SteadyClock:
    """The wall clock without its steps: what the engine runs on.

    Leases and due times are instants kept in the store and compared with later
    readings: an outbox row's lease and its next attempt, a job's lock. A system clock
    stepped back an hour (NTP correcting it) would hold every retry and every row queued
    before the step for that hour, and one stepped forward would expire live leases, so
    that another worker sends a row again while it is in flight, out of its patient's
    order. So this clock advances with the monotonic clock; it follows the system clock
    while the two agree within ``step`` seconds (NTP's slewing, never backwards), and
    when they differ by more it logs the step once and closes the gap by at most
    ``slew`` of the time elapsed (5%: an hour's step in 20 hours). Leases and backoffs
    are then measured within ``slew`` of real time, in either direction.
    """

    def __init__(self, wall: Callable[[], datetime] = lambda: datetime.now(UTC),
                 monotonic: Callable[[], float] = time.monotonic, *, step: float = 1.0,
                 slew: float = 0.05) -> None:
        self._wall, self._monotonic, self._step, self._slew = wall, monotonic, step, slew
        self._lock = threading.Lock()
        self._last, self._last_mono = wall(), monotonic()
        self._stepped = False

    def now(self) -> datetime:
        with self._lock:
            mono = self._monotonic()
            elapsed = max(0.0, mono - self._last_mono)
            steady = self._last + timedelta(seconds=elapsed)
            wall = self._wall()
            offset = (wall - steady).total_seconds()
            if abs(offset) <= self._step:
                if self._stepped:
                    log.warning("the system clock and the engine's agree again")
                    self._stepped = False
                t = max(wall, self._last)
            else:
                if not self._stepped:
                    log.warning("the system clock stepped %+.0f s; the engine's clock keeps "
                                "steady and closes the gap by %.0f%% of the time elapsed",
                                offset, self._slew * 100)
                    self._stepped = True
                gap = max(-self._slew * elapsed, min(self._slew * elapsed, offset))
                t = steady + timedelta(seconds=gap)
            self._last, self._last_mono = t, mono
            return t


@dataclass
class FixedClock:
    """A clock for tests: returns ``t`` until advanced."""

    t: datetime = field(default_factory=lambda: datetime(2026, 1, 1, 8, 0, tzinfo=UTC))

    def now(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t = self.t + timedelta(seconds=seconds)


class ControlIds:
    """Unique MSH-10 values for messages Accord originates.

    A node prefix plus a counter: unique across nodes sharing one store as long as
    each node has its own prefix (default: a random 8-hex prefix per process).
    """

    def __init__(self, prefix: str | None = None) -> None:
        self._prefix = prefix if prefix is not None else os.urandom(4).hex().upper()
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            n = next(self._counter)
        return f"{self._prefix}{n:010d}"


def uid_from_uuid(u: uuid.UUID | None = None) -> str:
    """A DICOM UID under the 2.25 root (PS3.5 §B.2), from a UUID."""
    return f"2.25.{(u or uuid.uuid4()).int}"
