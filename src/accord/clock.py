"""Time and identifiers, injected so that pure code never reads the system clock.

Rule: nothing under ``hl7/``, ``workflow/``, ``mapping/`` or ``mllp/framing.py`` calls
``datetime.now``; it takes a :class:`Clock`.
"""

from __future__ import annotations

import itertools
import os
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The wall clock, always timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


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
