"""The console and API under attack: security headers on every answer (errors and static
files too), no stack trace in any error page, CSRF on every state-changing route (found
from the app's route table, so a new route that forgets it fails here), no session
fixation, and login brute force throttled per account and per address."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from console_support import PASSWORD
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from web_support import API_TOKEN, FAST_HASHER, bearer

from accord.runtime import Runtime
from accord.web.app import create_app
from accord.web.auth import SESSION_COOKIE

HEADERS = {"content-security-policy", "x-content-type-options", "x-frame-options",
           "referrer-policy", "cross-origin-opener-policy"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
SECRET = "s3cret-detail-of-a-bug"
# Unsafe routes that hold no session yet, so a session's CSRF token cannot apply: each is
# protected otherwise, and the tests below check how.
NO_SESSION_YET = {
    ("POST", "/login"): "double-submit form token (accord_login_csrf cookie)",
    ("POST", "/setup"): "double-submit form token and the one-time setup secret",
    ("POST", "/api/login"): "JSON body only (a cross-site form cannot send one); "
                            "rate-limited",
}


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    app = create_app(runtime, api_token=API_TOKEN, hasher=FAST_HASHER)

    def boom() -> None:
        raise RuntimeError(SECRET)

    app.add_api_route("/api/boom", boom, methods=["GET"])
    app.add_api_route("/boom", boom, methods=["GET"])
    return app


@pytest.fixture
def web(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as c:
        yield c


def _login(client: TestClient, name: str = "admin") -> str:
    r = client.post("/api/login", json={"name": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["csrf_token"])


def _missing_headers(response: object) -> set[str]:
    return HEADERS - set(response.headers)  # type: ignore[attr-defined]


def test_every_kind_of_answer_carries_the_security_headers(web: TestClient) -> None:
    _login(web)
    answers = {
        "page": web.get("/"),
        "api": web.get("/api/stats"),
        "static": web.get("/static/" + _a_static_file(web)),
        "404 page": web.get("/no-such-page"),
        "404 api": web.get("/api/no-such-route"),
        "405": web.put("/api/stats"),
        "redirect": web.get("/login?next=/", follow_redirects=False),
        "500 api": web.get("/api/boom"),
        "500 page": web.get("/boom"),
        "413": web.post("/api/errors/reprocess", content=b"x" * (2 * 1024 * 1024),
                        headers={"Content-Type": "application/json"}),
    }
    web.cookies.clear()
    answers["401"] = web.get("/api/stats")
    answers["login redirect"] = web.get("/orders", follow_redirects=False)
    missing = {name: _missing_headers(r) for name, r in answers.items() if _missing_headers(r)}
    assert missing == {}
    assert answers["500 api"].status_code == answers["500 page"].status_code == 500


def _a_static_file(client: TestClient) -> str:
    found = re.search(r'src="/static/([^"]+)"', client.get("/").text)
    assert found is not None
    return found.group(1)


def test_no_error_page_shows_a_stack_trace(web: TestClient,
                                           caplog: pytest.LogCaptureFixture) -> None:
    _login(web)
    for path in ("/api/boom", "/boom"):
        r = web.get(path)
        assert r.status_code == 500
        assert "Traceback" not in r.text and SECRET not in r.text
        assert "RuntimeError" not in r.text and ".py" not in r.text
    assert SECRET in caplog.text  # the operator finds it in the log
    bad = web.get("/api/messages", params={"since": "yesterday"})
    assert bad.status_code == 400 and "Traceback" not in bad.text
    for r in (web.get("/orders/no-such-order"), web.get("/api/orders/no-such-order")):
        assert r.status_code == 404 and "Traceback" not in r.text


def _walk(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, through included routers."""
    for r in routes:
        if isinstance(r, APIRoute):
            yield r
        elif hasattr(r, "original_router"):
            yield from _walk(r.original_router.routes)


def _unsafe_routes(app: FastAPI) -> list[tuple[str, str]]:
    return [(m, r.path) for r in _walk(app.routes) for m in sorted(r.methods) if m in UNSAFE]


def test_every_state_changing_route_refuses_a_session_without_its_csrf_token(
    app: FastAPI, web: TestClient,
) -> None:
    routes = _unsafe_routes(app)
    assert len(routes) > 10  # the table is really read
    _login(web)
    accepted = []
    for method, path in routes:
        if (method, path) in NO_SESSION_YET:
            continue
        url = re.sub(r"\{[^}]+\}", "1", path)
        for kind in ("json", "form"):
            body = ({"json": {"ids": ["m1"]}} if kind == "json"
                    else {"data": {"csrf_token": "forged", "x": "1"}})
            r = web.request(method, url, **body)  # type: ignore[arg-type]
            if r.status_code != 403:
                accepted.append((method, path, kind, r.status_code))
    assert accepted == []


def test_routes_without_a_session_yet_are_protected_their_own_way(web: TestClient) -> None:
    assert web.post("/login", data={"username": "admin", "password": PASSWORD,
                                    "csrf_token": "forged"}).status_code == 403
    assert web.post("/setup", data={"token": "x", "username": "a", "password": "p" * 12,
                                    "csrf_token": "forged"}).status_code == 403
    form = web.post("/api/login", data={"name": "admin", "password": PASSWORD})
    assert form.status_code == 422 and SESSION_COOKIE not in web.cookies


def test_a_planted_session_cookie_is_never_adopted(web: TestClient) -> None:
    planted = {"Cookie": f"{SESSION_COOKIE}=attacker-chosen-session-id"}
    assert web.get("/api/stats", headers=planted).status_code == 401  # unknown: no session
    r = web.post("/api/login", json={"name": "operator", "password": PASSWORD},
                 headers=planted)
    assert r.status_code == 200
    issued = r.cookies.get(SESSION_COOKIE)
    assert issued and issued != "attacker-chosen-session-id"
    web.cookies.clear()
    assert web.get("/api/stats", headers=planted).status_code == 401  # still nobody's
    ok = web.get("/api/stats", headers={"Cookie": f"{SESSION_COOKIE}={issued}"})
    assert ok.status_code == 200


def test_each_login_issues_a_new_session_id(web: TestClient) -> None:
    _login(web, "viewer")
    first = web.cookies.get(SESSION_COOKIE)
    web.cookies.clear()
    _login(web, "viewer")
    assert web.cookies.get(SESSION_COOKIE) not in (None, first)


def test_console_login_issues_a_new_session_id_over_a_planted_one(web: TestClient) -> None:
    planted = "attacker-chosen-session-id"
    page = web.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    login_csrf = web.cookies.get("accord_login_csrf")
    r = web.post("/login", data={"username": "viewer", "password": PASSWORD,
                                 "csrf_token": token.group(1)}, follow_redirects=False,
                 headers={"Cookie": f"{SESSION_COOKIE}={planted}; "
                                    f"accord_login_csrf={login_csrf}"})
    assert r.status_code == 303
    assert SESSION_COOKIE in r.headers["set-cookie"] and planted not in r.headers["set-cookie"]


def test_login_brute_force_is_throttled_per_account(web: TestClient) -> None:
    for _ in range(5):
        r = web.post("/api/login", json={"name": "admin", "password": "wrong password!"})
        assert r.status_code == 401
    assert web.post("/api/login", json={"name": "admin", "password": PASSWORD}
                    ).status_code == 429  # even the right password
    assert web.post("/api/login", json={"name": "viewer", "password": PASSWORD}
                    ).status_code == 200  # another account is not locked


def test_login_brute_force_is_throttled_per_address(web: TestClient) -> None:
    for n in range(20):  # a spray: one try for each of many names, from one address
        r = web.post("/api/login", json={"name": f"guess{n}", "password": "wrong password!"})
        assert r.status_code == 401
    assert web.post("/api/login", json={"name": "viewer", "password": PASSWORD}
                    ).status_code == 429
    assert web.get("/api/stats", headers=bearer(API_TOKEN)).status_code == 200
