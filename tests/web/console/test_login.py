"""Login, logout and the first-admin setup page (``console/login.py``)."""

from __future__ import annotations

import re
from pathlib import Path

from console_support import PASSWORD, audited, console_app, login
from fastapi.testclient import TestClient

from accord.runtime import Runtime


def test_login_failures_are_refused_andaudited(rt: Runtime, app_client: TestClient) -> None:
    page = app_client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    bad = app_client.post("/login", data={"username": "viewer", "password": "wrong password!",
                                          "csrf_token": token.group(1)})
    assert bad.status_code == 401 and "wrong user name or password" in bad.text
    forged = app_client.post("/login", data={"username": "viewer", "password": PASSWORD,
                                             "csrf_token": "forged"})
    assert forged.status_code == 403
    token = re.search(r'name="csrf_token" value="([^"]+)"', app_client.get("/login").text)
    assert token is not None
    offsite = app_client.post("/login", data={"username": "viewer", "password": PASSWORD,
                                              "csrf_token": token.group(1),
                                              "next": "//evil.example"},
                              follow_redirects=False)
    assert offsite.headers["location"] == "/"
    assert "Secure" in offsite.headers["set-cookie"]
    assert "HttpOnly" in offsite.headers["set-cookie"]
    assert audited(rt, "login", outcome="denied") >= 1


def test_logout_ends_the_session(rt: Runtime, app_client: TestClient) -> None:
    csrf = login(app_client, "viewer")
    resp = app_client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert resp.status_code == 303
    assert app_client.get("/orders", follow_redirects=False).status_code in (303, 401)


def test_setup_page_creates_the_first_admin_once(tmp_path: Path) -> None:
    from console_support import config

    from accord.runtime import build

    fresh = build(config(tmp_path))
    try:
        app = console_app(fresh)
        link = app.state.deps.auth.setup_link("https://testserver")
        assert link is not None
        with TestClient(app, base_url="https://testserver") as client:
            page = client.get(link.replace("https://testserver", ""))
            form = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            token = re.search(r'name="token" value="([^"]+)"', page.text)
            assert form is not None and token is not None
            data = {"csrf_token": form.group(1), "token": token.group(1),
                    "username": "chief", "password": PASSWORD}
            done = client.post("/setup", data=data, follow_redirects=False)
            assert done.status_code == 303
            page = client.get("/setup?token=x")
            form = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert form is not None
            again = client.post("/setup", data={**data, "csrf_token": form.group(1),
                                                "username": "second"})
            assert again.status_code == 403
            assert login(client, "chief")
    finally:
        fresh.store.close()
