"""The store's size and how fast it grows: the dashboard's storage panel and
``/api/stats`` (``store_bytes``, ``store_growth_per_day``).

Rule: the size now is measured (``accord.store.storage``); the growth comes from the
daily figures the retention job keeps (``store_sizes``), so it reflects what pruning
takes away as well as what traffic adds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from accord.store.db import Database
from accord.store.schema import store_sizes
from accord.store.storage import measure


@dataclass(frozen=True, slots=True)
class DaySize:
    """The store's size at the last measurement of ``day``, and the change since the
    day before it (None for the first day known)."""

    day: date
    bytes: int
    change: int | None


@dataclass(frozen=True, slots=True)
class StoreSize:
    """The size now, the last ``days`` daily figures (newest first), and the average
    change per day over them (None with fewer than two days)."""

    bytes: int
    days: tuple[DaySize, ...]

    @property
    def growth_per_day(self) -> float | None:
        known = [d for d in self.days if d.change is not None]
        if not known:
            return None
        first, last = self.days[-1], self.days[0]
        span = (last.day - first.day).days
        return (last.bytes - first.bytes) / span if span else None


class StorageView:
    """The storage figures of one database."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def size(self, days: int = 14) -> StoreSize:
        with self._db.read() as conn:
            rows = conn.execute(select(store_sizes.c.day, store_sizes.c.bytes)
                                .order_by(store_sizes.c.day.desc()).limit(days + 1)).all()
        figures = [(date.fromisoformat(day), int(size)) for day, size in rows]
        out = []
        for i, (day, size) in enumerate(figures[:days]):
            before = figures[i + 1][1] if i + 1 < len(figures) else None
            out.append(DaySize(day, size, size - before if before is not None else None))
        return StoreSize(measure(self._db), tuple(out))
