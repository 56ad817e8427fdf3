"""Alerts: evaluate the rules on the store's figures every interval, post changes to a
webhook, and keep the open ones for the dashboard.

Rules:
- One alert per condition until it clears (:class:`accord.web.alert_rules.AlertState`):
  a webhook receives ``"firing"`` once when a condition appears and ``"resolved"`` once
  when it goes away; a condition that keeps holding sends nothing more.
- A webhook that fails is retried at the next evaluation for the same transition only
  (the transition stays pending); it never blocks the engine, and its errors are logged
  without the payload.
- The payload (JSON) carries rule, subject (interface, destination or finding kind),
  summary, severity and times: no patient data (see ``alert_rules``).
- Storage faults are evaluated even when the store cannot be read: the figures are then
  the last ones read, so the other alerts stay as they were rather than clear.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from accord.clock import Clock
from accord.store import CommitFault, StoreError
from accord.store.views.dashboard import Dashboard, DashboardView
from accord.web.alert_rules import (
    DEFAULT_RULES,
    Alert,
    AlertRule,
    AlertState,
    evaluate,
    rules_from_config,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """``alerts:`` in the config: ``webhook`` URL (none: shown on the dashboard only),
    ``interval`` seconds between evaluations (the figures read then are the ones the
    dashboard shows), ``window_minutes`` for rates, ``rules``."""

    webhook: str = ""
    interval: float = 5.0  # also how fresh the dashboard's shared figures are
    window_minutes: float = 60.0
    timeout: float = 5.0
    rules: tuple[AlertRule, ...] = DEFAULT_RULES

    @classmethod
    def from_config(cls, raw: Mapping[str, Any]) -> AlertSettings:
        """From the config mapping; unknown keys are an error (a typo must not silence
        alerts)."""
        allowed = {"webhook", "interval", "window_minutes", "timeout", "rules"}
        unknown = set(raw) - allowed
        if unknown:
            raise ValueError(f"alerts: unknown keys {sorted(unknown)}")
        rules = rules_from_config(raw["rules"]) if "rules" in raw else DEFAULT_RULES
        return cls(webhook=str(raw.get("webhook", "")),
                   interval=float(raw.get("interval", 5.0)),
                   window_minutes=float(raw.get("window_minutes", 60.0)),
                   timeout=float(raw.get("timeout", 5.0)), rules=rules)


def payload(alert: Alert, status: str) -> dict[str, Any]:
    """The webhook body for one transition (``firing`` or ``resolved``)."""
    c = alert.condition
    return {"status": status, "key": c.key, "rule": c.rule, "subject": c.subject,
            "summary": c.summary, "severity": c.severity, "since": alert.since.isoformat(),
            "cleared": alert.cleared.isoformat() if alert.cleared else None,
            "source": "accord"}


@dataclass
class AlertMonitor:
    """Evaluates the rules against the store's figures (every node may run one; each
    posts its own transitions) and remembers the open alerts for the dashboard."""

    dashboard: DashboardView
    clock: Clock
    settings: AlertSettings = field(default_factory=AlertSettings)
    destinations: Sequence[str] = ()
    stations: Callable[[], Sequence[str]] = lambda: ()  # listed even when silent
    storage_faults: Callable[[], Sequence[CommitFault]] = lambda: ()  # failing commits
    state: AlertState = field(default_factory=AlertState)
    _outbox: list[dict[str, Any]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    sent: int = 0
    latest: Dashboard | None = None  # the last figures read, shared with the dashboard
    latest_at: datetime | None = None

    def open_alerts(self) -> list[Alert]:
        """The alerts whose condition holds, oldest first."""
        return sorted(self.state.active.values(), key=lambda a: a.since)

    def figures(self) -> Dashboard:
        """Read the figures now (and keep them as :attr:`latest`)."""
        window = timedelta(minutes=self.settings.window_minutes)
        now = self.clock.now()
        found = self.dashboard.figures(now, window, self.destinations, self.stations())
        self.latest, self.latest_at = found, now
        return found

    def snapshot(self, max_age: timedelta) -> Dashboard:
        """The latest figures when at most ``max_age`` old, else fresh ones: however many
        people watch the dashboard, the store computes them once per ``max_age``."""
        latest, at = self.latest, self.latest_at
        if latest is not None and at is not None and self.clock.now() - at <= max_age:
            return latest
        return self.figures()

    def evaluate_once(self, figures: Dashboard | None = None) -> tuple[list[Alert], list[Alert]]:
        """One evaluation: ``(raised, cleared)``; their webhook posts are queued."""
        dash = figures if figures is not None else self.figures()
        now = self.clock.now()
        holding = evaluate(self.settings.rules, dash, now, self.storage_faults())
        raised, cleared = self.state.step(holding, now)
        self._outbox += [payload(a, "firing") for a in raised]
        self._outbox += [payload(a, "resolved") for a in cleared]
        for a in raised:
            log.warning("alert raised: %s", a.condition.summary)
        for a in cleared:
            log.info("alert cleared: %s", a.condition.key)
        return raised, cleared

    async def post_pending(self) -> int:
        """Post the queued transitions in order; stops at the first failure (kept for
        the next round). Returns how many were posted."""
        if not self.settings.webhook:
            self._outbox.clear()
            return 0
        posted = 0
        async with httpx.AsyncClient(timeout=self.settings.timeout, trust_env=False) as client:
            while self._outbox:
                try:
                    resp = await client.post(self.settings.webhook, json=self._outbox[0])
                    resp.raise_for_status()
                except httpx.HTTPError as exc:
                    log.warning("alert webhook failed (%s); %d transition(s) kept",
                                type(exc).__name__, len(self._outbox))
                    break
                self._outbox.pop(0)
                posted += 1
        self.sent += posted
        return posted

    async def run(self) -> None:
        """Evaluate and post every ``interval`` seconds until cancelled."""
        while True:
            try:
                try:
                    figures = await asyncio.to_thread(self.figures)
                except StoreError as exc:  # still evaluated: the storage faults
                    if self.latest is None:
                        raise
                    log.warning("alert figures not read (%s); the last ones are used", exc)
                    figures = self.latest
                self.evaluate_once(figures)
                await self.post_pending()
            except Exception:  # the monitor must outlive a store hiccup
                log.exception("alert evaluation failed")
            await asyncio.sleep(self.settings.interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="accord-alerts")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
