"""The dashboard's maintenance panel (``console/maintenance.py``): the store's size and
its growth per day for every reader of the dashboard; the "Reload configuration" action
for admins only, audited whether the file is applied or refused."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from console_support import audited, deps_for, login
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert

from accord.config import Config
from accord.errors import ConfigError
from accord.runtime import Runtime
from accord.store.schema import store_sizes
from accord.web.app import create_app

MIB = 1024 * 1024


def test_the_panel_shows_size_and_growth(rt: Runtime, app_client: TestClient) -> None:
    day = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
    with rt.store.database.write() as conn:
        conn.execute(delete(store_sizes))
        conn.execute(insert(store_sizes), [
            {"day": (day + timedelta(days=i)).date().isoformat(),
             "at": day + timedelta(days=i), "bytes": (10 + 2 * i) * MIB} for i in range(4)])
    login(app_client, "viewer")
    panel = app_client.get("/dashboard/maintenance").text
    assert "growing 2.0 MiB per day over the last 4 days" in panel
    assert "2026-03-04" in panel and "+2.0 MiB" in panel and "16.0 MiB" in panel
    assert "Reload configuration" not in panel
    assert 'hx-get="/dashboard/maintenance"' in app_client.get("/").text
    assert rt.views.storage.size().growth_per_day == 2 * MIB


def test_reload_is_for_admins_and_audited(rt: Runtime, app_client: TestClient) -> None:
    csrf = login(app_client, "operator")
    assert app_client.post("/config/reload", data={"csrf_token": csrf}).status_code == 403
    csrf = login(app_client, "admin")
    assert "Reload configuration" in app_client.get("/dashboard/maintenance").text
    no_engine = app_client.post("/config/reload", data={"csrf_token": csrf},
                                follow_redirects=False)
    assert "failed=1" in no_engine.headers["location"]

    async def reload() -> dict[str, Any]:
        return (await rt.reload()).as_json()

    app = create_app(replace(deps_for(rt), reload=reload))
    with TestClient(app, base_url="https://testserver") as client:
        _reloads(rt, client, login(client, "admin"))


def _reloads(rt: Runtime, app_client: TestClient, csrf: str) -> None:
    refused = app_client.post("/config/reload", data={"csrf_token": csrf},
                              follow_redirects=False)
    assert refused.status_code == 303 and "failed=1" in refused.headers["location"]
    assert "without+a+configuration+file" in refused.headers["location"]
    assert audited(rt, "config.reload", "refused") == 1

    def bad() -> Config:
        raise ConfigError("destinations[0].port: must be an integer (accord.yaml line 7)")

    rt.loader = bad
    page = app_client.post("/config/reload", data={"csrf_token": csrf})
    assert "line 7" in page.text and "not reloaded" in page.text
    before = rt.config
    rt.loader = lambda: before.model_copy(update={"shutdown_grace": 5.0, "node_id": "x"})
    page = app_client.post("/config/reload", data={"csrf_token": csrf})
    assert "Configuration reloaded. Applied: shutdown_grace." in page.text
    assert "Waiting for a restart: node_id." in page.text
    assert rt.config.shutdown_grace == 5.0 and rt.config.node_id == before.node_id
    assert audited(rt, "config.reload", "refused") == 2
    assert audited(rt, "config.reload") == 1
    rt.loader = None
