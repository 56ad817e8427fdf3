"""Alerts (accord.web.alert_rules, accord.web.alerts): which conditions hold, one alert
per condition until it clears, and the webhook posts to a fake receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from accord.clock import ControlIds, FixedClock
from accord.config import load_config
from accord.engine.applier import Applier
from accord.engine.ingest import Ingestor
from accord.engine.router import Router
from accord.mllp.server import PeerInfo
from accord.store import CommitFault, StoreError, open_store, sqlite_url
from accord.store.views.dashboard import (
    Dashboard,
    DashboardView,
    DestinationFigures,
    InterfaceFigures,
)
from accord.web.alert_rules import AlertRule, AlertState, evaluate, rules_from_config
from accord.web.alerts import AlertMonitor, AlertSettings

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def dash(*, queued: int = 0, state: str = "up", received: int = 20, errored: int = 0,
         last_at: datetime | None = T0, findings: tuple[tuple[str, int], ...] = ()
         ) -> Dashboard:
    return Dashboard(
        since=T0 - timedelta(hours=1),
        interfaces=(InterfaceFigures("RIS^HOSP", received, errored, last_at),),
        destinations=(DestinationFigures("pacs", queued, 0, 5, 10.0, 20.0, state,
                                         "connection refused" if state == "retrying"
                                         else ""),),
        findings=findings)


def test_each_rule_kind_holds_on_its_figures() -> None:
    rules = (AlertRule("queue_depth", threshold=100), AlertRule("connection_down"),
             AlertRule("error_rate", threshold=0.2, min_messages=10),
             AlertRule("sender_silent", subject="RIS^HOSP", threshold=15),
             AlertRule("finding", subject="cancelled_but_performed", threshold=1))
    assert evaluate(rules, dash(), T0) == []
    bad = dash(queued=101, state="retrying", errored=5,
               findings=(("cancelled_but_performed", 2), ("unknown_order", 9)))
    keys = {c.key for c in evaluate(rules, bad, T0 + timedelta(minutes=16))}
    assert keys == {"queue_depth:pacs", "connection_down:pacs", "error_rate:RIS^HOSP",
                    "sender_silent:RIS^HOSP", "finding:cancelled_but_performed"}


def test_error_rate_needs_enough_messages_and_silence_counts_from_the_last() -> None:
    rule = AlertRule("error_rate", threshold=0.2, min_messages=10)
    assert evaluate([rule], dash(received=4, errored=4), T0) == []
    silent = AlertRule("sender_silent", subject="LAB^HOSP", threshold=5)
    assert [c.key for c in evaluate([silent], dash(), T0)] == ["sender_silent:LAB^HOSP"]


def test_one_alert_per_condition_until_it_clears() -> None:
    state = AlertState()
    rules = [AlertRule("queue_depth", threshold=10)]
    raised, cleared = state.step(evaluate(rules, dash(queued=50), T0), T0)
    assert [a.condition.key for a in raised] == ["queue_depth:pacs"] and cleared == []
    for minute in range(1, 30):  # holding for half an hour: nothing more
        now = T0 + timedelta(minutes=minute)
        assert state.step(evaluate(rules, dash(queued=50 + minute), now), now) == ([], [])
    now = T0 + timedelta(minutes=31)
    raised, cleared = state.step(evaluate(rules, dash(queued=0), now), now)
    assert raised == [] and [a.cleared for a in cleared] == [now]
    again, _ = state.step(evaluate(rules, dash(queued=50), now), now)
    assert len(again) == 1  # a new episode is a new alert


def test_rules_from_config_refuse_typos() -> None:
    assert rules_from_config([{"kind": "queue_depth", "threshold": 5}])[0].threshold == 5
    with pytest.raises(ValueError):
        rules_from_config([{"kind": "queue_depth", "treshold": 5}])
    with pytest.raises(ValueError):
        rules_from_config([{"kind": "disk_full"}])
    with pytest.raises(ValueError):
        AlertSettings.from_config({"webhook": "http://127.0.0.1:1/", "rulez": []})


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    fail = False

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).fail:
            self.send_response(503)
        else:
            type(self).received.append(json.loads(body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"received": [], "fail": False})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()
    server.server_close()


def test_monitor_posts_firing_once_then_resolved(
        tmp_path: Path, webhook: tuple[str, type[_Receiver]]) -> None:
    url, receiver = webhook
    store = open_store(sqlite_url(tmp_path))
    clock = FixedClock(T0)
    settings = AlertSettings(webhook=url, rules=(AlertRule("queue_depth", threshold=10),))
    monitor = AlertMonitor(DashboardView(store.database), clock, settings, destinations=("pacs",))

    async def go() -> None:
        receiver.fail = True  # the webhook is down: the transition waits
        monitor.evaluate_once(dash(queued=50))
        assert await monitor.post_pending() == 0
        receiver.fail = False
        monitor.evaluate_once(dash(queued=60))  # still holding: nothing new
        assert await monitor.post_pending() == 1
        monitor.evaluate_once(dash(queued=0))
        assert await monitor.post_pending() == 1

    asyncio.run(go())
    assert [(p["status"], p["key"]) for p in receiver.received] == [
        ("firing", "queue_depth:pacs"), ("resolved", "queue_depth:pacs")]
    assert monitor.open_alerts() == []
    store.close()


def test_monitor_reads_real_figures_from_the_store(tmp_path: Path) -> None:
    store = open_store(sqlite_url(tmp_path))
    monitor = AlertMonitor(DashboardView(store.database), FixedClock(T0), AlertSettings(),
                           destinations=("pacs",))
    figures = monitor.figures()
    assert [d.name for d in figures.destinations] == ["pacs"]
    assert figures.destinations[0].state == "idle"
    assert monitor.evaluate_once(figures) == ([], [])
    store.close()


def test_apply_lag_holds_while_the_oldest_waits_too_long() -> None:
    rule = AlertRule("apply_lag", threshold=60)
    waiting = Dashboard(T0, (), (), (), backlog=3, backlog_oldest=T0)
    assert evaluate([rule], waiting, T0 + timedelta(seconds=60)) == []
    [held] = evaluate([rule], waiting, T0 + timedelta(seconds=61))
    assert held.key == "apply_lag" and "3 messages" in held.summary
    assert evaluate([rule], Dashboard(T0, (), (), ()), T0 + timedelta(hours=1)) == []


async def test_backlog_counts_down_and_its_alert_fires_and_clears(tmp_path: Path) -> None:
    store = open_store(sqlite_url(tmp_path))
    clock = FixedClock(T0)
    cfg = load_config(None)
    ids = ControlIds("T")
    router = Router(cfg.destinations, ids)
    ingestor = Ingestor(store, clock, ids, router, cfg)
    applier = Applier(store, clock, ids, router, "n1", batch=2, hold=60.0,
                      ack_route=cfg.mllp.application_ack_destination)
    monitor = AlertMonitor(DashboardView(store.database), clock, AlertSettings(
        rules=(AlertRule("apply_lag", threshold=120),)))
    sample = (Path(__file__).parents[1] / "samples" / "gateway_adt_a04.hl7").read_bytes()
    head, sep, rest = sample.partition(b"\r")
    for n in range(5):  # enhanced mode (MSH-15 valued): answered CA once stored
        fields = head.split(b"|") + [b""] * 8
        fields[9], fields[14] = f"LAG{n}".encode(), b"AL"
        await ingestor.handle(b"|".join(fields[:18]) + sep + rest, PeerInfo("127.0.0.1", 1))
    await ingestor.close()
    assert monitor.evaluate_once() == ([], [])
    clock.advance(121)
    raised, _ = monitor.evaluate_once()
    assert [a.condition.key for a in raised] == ["apply_lag"]
    assert monitor.figures().backlog == 5
    left = []
    while applier.apply_batch():
        left.append(monitor.figures().backlog)
    assert left == [3, 1, 0]
    _, cleared = monitor.evaluate_once()
    assert [a.condition.key for a in cleared] == ["apply_lag"]
    store.close()


def _fault(component: str, failures: int = 3) -> CommitFault:
    return CommitFault(component, T0, T0 + timedelta(seconds=9), failures, "OperationalError",
                       "database or disk is full")


def test_storage_fault_holds_per_failing_component_and_says_what_happened() -> None:
    rules = [AlertRule("storage_fault", severity="error")]
    assert evaluate(rules, dash(), T0) == []
    held = evaluate(rules, dash(), T0, [_fault("ingest"), _fault("delivery", 1)])
    assert [(c.key, c.subject, c.severity) for c in held] == [
        ("storage_fault:ingest", "ingest", "error"),
        ("storage_fault:delivery", "delivery", "error")]
    assert held[0].summary == (
        "the store cannot commit ingest writes: failed 3 times since 2026-03-02 09:00:00 "
        "UTC (OperationalError: database or disk is full)")
    assert "failed once since" in held[1].summary
    only = [AlertRule("storage_fault", subject="delivery")]
    assert [c.key for c in evaluate(only, dash(), T0, [_fault("ingest"), _fault("delivery")])
            ] == ["storage_fault:delivery"]


def test_storage_fault_is_a_default_rule() -> None:
    assert "storage_fault" in {r.kind for r in AlertSettings().rules}


async def test_storage_faults_are_evaluated_when_the_figures_cannot_be_read(
        tmp_path: Path) -> None:
    """The store's file is no database any more: the figures cannot be read, the last
    ones stand in, and the storage fault is raised all the same; the other alerts stay."""
    store = open_store(sqlite_url(tmp_path / "data"))
    faults: list[CommitFault] = []
    monitor = AlertMonitor(DashboardView(store.database), FixedClock(T0), AlertSettings(
        interval=0.05, rules=(AlertRule("storage_fault"), AlertRule("sender_silent",
                                                                     subject="RIS^HOSP"))),
        storage_faults=lambda: faults)
    monitor.evaluate_once(monitor.figures())
    assert [a.condition.key for a in monitor.open_alerts()] == ["sender_silent:RIS^HOSP"]
    store.close()
    for path in (tmp_path / "data").glob("accord.db*"):
        path.write_bytes(b"not a database, " * 1024)
    with pytest.raises(StoreError):
        monitor.figures()
    faults.append(_fault("apply"))
    task = asyncio.create_task(monitor.run())
    try:
        async with asyncio.timeout(10):
            while len(monitor.open_alerts()) < 2:
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert {a.condition.key for a in monitor.open_alerts()} == {
        "sender_silent:RIS^HOSP", "storage_fault:apply"}
