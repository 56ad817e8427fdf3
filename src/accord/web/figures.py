"""The figures the dashboard shows, read once for the page and for its API route
(``GET /api/dashboard``), so the two never disagree; and the whole-store counts of
``GET /api/stats``.

Rules:
- The dashboard's figures come from the alert monitor's last read when it is fresh
  (every viewer and every API client share it; the store computes them once per monitor
  interval), else from the dashboard view directly.
- The stations the dashboard always lists (even when they never called) are those the
  stored procedure code table schedules on, read at most once a minute.
- Whole-store counts count whole tables: ``/api/stats`` answers them when asked; the
  dashboard reads them at most every :data:`STATS_EVERY` (for figures only they have,
  such as a backlog another part of the engine adds to them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from fastapi import Request

from accord.store.views.dashboard import Dashboard
from accord.web.deps import WebDeps, get_deps

WINDOW = timedelta(hours=1)  # when no alert monitor runs
STATS_EVERY = 30.0  # seconds
STATIONS_EVERY = 60.0


class _Cache:
    """One value per key, read again when older than its age (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, tuple[float, Any]] = {}

    def get(self, key: str, age: float, read: Any) -> Any:
        now = time.monotonic()
        with self._lock:
            held = self._held.get(key)
        if held is not None and now - held[0] < age:
            return held[1]
        value = read()
        with self._lock:
            self._held[key] = (now, value)
        return value


def _cache(deps: WebDeps) -> _Cache:
    cache: _Cache = deps.caches.setdefault("figures", _Cache())
    return cache


def destinations(deps: WebDeps) -> list[str]:
    """The configured destinations (listed even when idle)."""
    return [d.name for d in getattr(deps.config, "destinations", ())]


def stations(deps: WebDeps) -> Sequence[str]:
    """The station AE titles the stored procedure code table schedules on."""
    def read() -> tuple[str, ...]:
        table = deps.code_tables.load()
        current = table.current
        found = {s for p in current.entries.values() for s in p.stations} if current else set()
        return tuple(sorted(found))

    found: tuple[str, ...] = _cache(deps).get("stations", STATIONS_EVERY, read)
    return found


def dashboard(request: Request) -> tuple[Dashboard, float]:
    """The dashboard's figures and their window in minutes (module rules)."""
    deps = get_deps(request)
    monitor = getattr(request.app.state, "alerts", None)
    if monitor is not None:
        return (monitor.snapshot(timedelta(seconds=3 * monitor.settings.interval)),
                float(monitor.settings.window_minutes))
    dash = deps.views.dashboard.figures(deps.clock.now(), WINDOW, destinations(deps),
                                        stations(deps))
    return dash, WINDOW.total_seconds() / 60


def whole_store(deps: WebDeps) -> dict[str, Any]:
    """``/api/stats``: the gateway's counts, the workflow's, the inbox (``backlog``:
    stored, not yet applied; ``backlog_oldest_seconds``: the age of the oldest, None when
    nothing waits), and the store's size."""
    counts: dict[str, Any] = dict(deps.store.stats())
    counts.update(deps.views.dashboard.counts())
    waiting, oldest = deps.store.backlog()  # answered on store, not yet applied
    age = None if oldest is None else max(0.0, (deps.clock.now() - oldest).total_seconds())
    counts.update(backlog=waiting, backlog_oldest_seconds=age)
    size = deps.views.storage.size()
    counts.update(store_bytes=size.bytes, store_growth_per_day=size.growth_per_day)
    return counts


def whole_store_recent(deps: WebDeps) -> dict[str, Any]:
    """:func:`whole_store` as read at most :data:`STATS_EVERY` seconds ago."""
    found: dict[str, Any] = _cache(deps).get("stats", STATS_EVERY, lambda: whole_store(deps))
    return found
