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


def test_the_client_connections_panel_shows_trouble_per_address(
    rt: Runtime, app_client: TestClient,
) -> None:
    page = app_client.get("/", follow_redirects=False)
    login(app_client, "viewer")
    assert 'hx-get="/dashboard/peers"' in app_client.get("/").text
    assert "No client has connected yet" in app_client.get("/dashboard/peers").text
    junk = rt.mllp.peer_table.seen("10.9.8.7", 0.0)
    junk.junk, junk.silent = 3, 1
    rt.mllp.peer_table.seen("10.9.8.6", 0.0).messages = 12
    panel = app_client.get("/dashboard/peers").text
    assert panel.index("10.9.8.7") < panel.index("10.9.8.6")  # trouble first
    assert '<td class="n bad">3</td>' in panel
    assert page.status_code == 303
