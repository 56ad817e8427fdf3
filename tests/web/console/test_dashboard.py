"""The dashboard (``console/dashboard.py``): open alerts are shown, and go when they
clear."""

from __future__ import annotations

from console_support import login
from fastapi.testclient import TestClient

from accord.runtime import Runtime


def test_open_alerts_show_on_the_dashboard(rt: Runtime, app_client: TestClient) -> None:
    from accord.store.views.dashboard import Dashboard, DestinationFigures
    from accord.web.alert_rules import AlertRule

    app = app_client.app
    monitor = app.state.alerts  # type: ignore[attr-defined]
    monitor.settings = type(monitor.settings)(rules=(AlertRule("connection_down"),))
    down = Dashboard(rt.clock.now(), (), (DestinationFigures(
        "pacs", 3, 0, 0, None, None, "retrying", "connection refused"),), ())
    monitor.evaluate_once(down)
    login(app_client, "viewer")
    page = app_client.get("/dashboard/live").text
    assert "connection_down" in page and "pacs is not accepting messages" in page
    monitor.evaluate_once(Dashboard(rt.clock.now(), (), (), ()))
    assert "No open alerts" in app_client.get("/dashboard/live").text
