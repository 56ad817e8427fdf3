"""Authentication (accord.web.auth, accord.web.deps, the app's guard): passwords,
sessions and their timeouts, cookie flags, CSRF, login rate limits, bearer tokens, the
one-time setup link, the body cap and the security headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete
from web_support import API_TOKEN, FAST_HASHER, PASSWORD, bearer, login, token_for

from accord.clock import FixedClock
from accord.runtime import Runtime
from accord.store.schema.accounts import users
from accord.web.auth import Auth, AuthError

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def fixed_auth(runtime: Runtime) -> tuple[Auth, FixedClock]:
    clock = FixedClock(T0)
    return Auth(runtime.accounts, clock, hasher=FAST_HASHER), clock


def test_passwords_are_argon2id_hashes(runtime: Runtime) -> None:
    auth = Auth(runtime.accounts, runtime.clock)  # the production parameters
    user = auth.add_user("dora", "viewer", "a long passphrase")
    assert user.password_hash.startswith("$argon2id$")
    assert "a long passphrase" not in user.password_hash
    assert auth.login("dora", "a long passphrase", "10.0.0.1").principal.role == "viewer"


@pytest.mark.parametrize(("name", "role", "password"), [
    ("Upper", "viewer", PASSWORD), ("ok", "root", PASSWORD), ("ok", "viewer", "short"),
    ("", "viewer", PASSWORD), ("sp ace", "viewer", PASSWORD)])
def test_bad_users_are_refused(runtime: Runtime, name: str, role: str, password: str) -> None:
    auth, _ = fixed_auth(runtime)
    with pytest.raises(AuthError):
        auth.add_user(name, role, password)


def test_login_sets_a_strict_session_cookie(client: TestClient) -> None:
    r = client.post("/api/login", json={"name": "viewer", "password": PASSWORD})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    for flag in ("Secure", "HttpOnly", "SameSite=strict", "Path=/"):
        assert flag.lower() in cookie.lower()
    me = client.get("/api/me").json()
    assert (me["name"], me["role"], me["kind"]) == ("viewer", "viewer", "session")
    assert "orders.read" in me["actions"] and "messages.read" not in me["actions"]


def test_wrong_password_and_unknown_user_look_the_same(client: TestClient) -> None:
    a = client.post("/api/login", json={"name": "viewer", "password": "wrong password!"})
    b = client.post("/api/login", json={"name": "nobody", "password": "wrong password!"})
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()


def test_unsafe_requests_with_a_session_need_the_csrf_token(client: TestClient) -> None:
    csrf = login(client, "operator")
    body = {"resolution": "ignored"}
    assert client.post("/api/findings/1/resolve", json=body).status_code == 403
    wrong = {"X-CSRF-Token": "not-it"}
    assert client.post("/api/findings/1/resolve", json=body, headers=wrong).status_code == 403
    ok = client.post("/api/findings/1/resolve", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200, ok.text
    assert client.get("/api/findings").status_code == 200  # safe methods need none


def test_bearer_requests_need_no_csrf_token(client: TestClient) -> None:
    r = client.post("/api/findings/1/resolve", json={"resolution": "ignored"},
                    headers=bearer(API_TOKEN))
    assert r.status_code == 200


def test_logout_ends_the_session(client: TestClient) -> None:
    csrf = login(client, "viewer")
    assert client.post("/api/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.get("/api/me").status_code == 401


def test_session_idle_timeout_is_15_minutes(runtime: Runtime) -> None:
    auth, clock = fixed_auth(runtime)
    new = auth.login("viewer", PASSWORD, "10.0.0.1")
    clock.advance(14 * 60)
    assert auth.session(new.cookie, "10.0.0.1") is not None  # and this use renews it
    clock.advance(14 * 60)
    assert auth.session(new.cookie, "10.0.0.1") is not None
    clock.advance(15 * 60 + 1)
    assert auth.session(new.cookie, "10.0.0.1") is None
    assert auth.session(new.cookie, "10.0.0.1") is None  # and it is gone for good


def test_session_absolute_timeout_is_12_hours(runtime: Runtime) -> None:
    auth, clock = fixed_auth(runtime)
    new = auth.login("viewer", PASSWORD, "10.0.0.1")
    for _ in range(12 * 6):  # active every 10 minutes for 12 hours
        clock.advance(10 * 60)
        alive = auth.session(new.cookie, "10.0.0.1")
    assert alive is not None
    clock.advance(10 * 60)
    assert auth.session(new.cookie, "10.0.0.1") is None


def test_a_changed_user_loses_their_sessions(client: TestClient) -> None:
    session = TestClient(client.app, base_url="https://testserver")
    login(session, "viewer")
    assert session.get("/api/me").status_code == 200
    users = client.get("/api/users", headers=bearer(API_TOKEN)).json()["items"]
    viewer = next(u for u in users if u["name"] == "viewer")
    r = client.patch(f"/api/users/{viewer['id']}", json={"disabled": True},
                     headers=bearer(API_TOKEN))
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert session.get("/api/me").status_code == 401
    assert client.post("/api/login", json={"name": "viewer",
                                           "password": PASSWORD}).status_code == 401


def test_login_rate_limit_per_user(runtime: Runtime) -> None:
    auth, clock = fixed_auth(runtime)
    for _ in range(5):
        with pytest.raises(AuthError) as bad:
            auth.login("viewer", "wrong password!", "10.0.0.1")
        assert bad.value.status == 401
    with pytest.raises(AuthError) as limited:  # even the right password, from elsewhere
        auth.login("viewer", PASSWORD, "10.0.0.2")
    assert limited.value.status == 429
    assert auth.login("operator", PASSWORD, "10.0.0.1")  # other users are not locked
    clock.advance(15 * 60 + 1)
    assert auth.login("viewer", PASSWORD, "10.0.0.1")


def test_login_rate_limit_per_address(runtime: Runtime) -> None:
    auth, _ = fixed_auth(runtime)
    for n in range(20):
        with pytest.raises(AuthError):
            auth.login(f"guess{n}", "wrong password!", "10.6.6.6")
    with pytest.raises(AuthError) as limited:
        auth.login("viewer", PASSWORD, "10.6.6.6")
    assert limited.value.status == 429
    assert auth.login("viewer", PASSWORD, "10.0.0.1")


def test_rate_limited_login_answers_429(client: TestClient) -> None:
    for _ in range(5):
        client.post("/api/login", json={"name": "admin", "password": "wrong password!"})
    r = client.post("/api/login", json={"name": "admin", "password": PASSWORD})
    assert r.status_code == 429


def test_user_tokens_are_hashed_and_revocable(client: TestClient, runtime: Runtime) -> None:
    secret = token_for(client, "operator")
    assert client.get("/api/errors", headers=bearer(secret)).status_code == 200
    tokens = client.get("/api/tokens", headers=bearer(secret)).json()["items"]
    assert secret not in str(tokens) and tokens[0]["prefix"] == secret[:12]
    other = token_for(client, "viewer")
    revoke_other = client.delete(f"/api/tokens/{tokens[0]['id']}", headers=bearer(other))
    assert revoke_other.status_code == 404  # someone else's token is not shown to exist
    r = client.delete(f"/api/tokens/{tokens[0]['id']}", headers=bearer(secret))
    assert r.status_code == 200
    assert client.get("/api/errors", headers=bearer(secret)).status_code == 401


def test_a_token_made_with_an_expiry_is_refused_after_it(runtime: Runtime) -> None:
    auth, clock = fixed_auth(runtime)
    user = runtime.accounts.users.named("viewer")
    assert user is not None
    secret, token = auth.create_token(user.id, "ci", timedelta(days=30))
    assert token.expires_at == clock.now() + timedelta(days=30)
    assert auth.bearer(secret, "10.0.0.1") is not None
    clock.advance(30 * 86400 - 1)
    assert auth.bearer(secret, "10.0.0.1") is not None
    clock.advance(1)
    assert auth.bearer(secret, "10.0.0.1") is None
    forever, _ = auth.create_token(user.id, "no expiry")
    clock.advance(3650 * 86400)
    assert auth.bearer(forever, "10.0.0.1") is not None


def test_tokens_through_the_api_with_an_expiry(client: TestClient) -> None:
    csrf = login(client, "operator")
    r = client.post("/api/tokens", json={"name": "ci", "expires_in_days": 7},
                    headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201 and r.json()["expires_at"] and r.json()["token"]
    bad = client.post("/api/tokens", json={"expires_in_days": 0},
                      headers={"X-CSRF-Token": csrf})
    assert bad.status_code == 422
    mine = client.get("/api/tokens").json()["items"]
    assert [t["name"] for t in mine] == ["ci"] and mine[0]["expires_at"]
    operator = mine[0]["user_id"]
    # Another user's tokens: an admin may list them, a non-admin is told of none.
    admin = bearer(API_TOKEN)
    listed = client.get("/api/tokens", params={"user_id": operator}, headers=admin)
    assert [t["name"] for t in listed.json()["items"]] == ["ci"]
    viewer = bearer(token_for(client, "viewer"))
    assert client.get("/api/tokens", params={"user_id": operator},
                      headers=viewer).status_code == 404


def test_env_token_is_admin_and_wrong_tokens_fail(client: TestClient) -> None:
    assert client.get("/api/me", headers=bearer(API_TOKEN)).json()["role"] == "admin"
    assert client.get("/api/me", headers=bearer(API_TOKEN + "x")).status_code == 401
    assert client.get("/api/me", headers={"Authorization": "Basic abc"}).status_code == 401


def _no_users(runtime: Runtime) -> None:
    """As in a fresh store."""
    with runtime.store.database.write() as conn:
        conn.execute(delete(users))


def test_setup_link_creates_the_first_admin_once(runtime: Runtime) -> None:
    auth, _ = fixed_auth(runtime)
    assert auth.setup_link("http://127.0.0.1:8080") is None  # users exist already
    _no_users(runtime)
    link = auth.setup_link("http://127.0.0.1:8080")
    assert link is not None and link.startswith("http://127.0.0.1:8080/setup?token=")
    secret = link.split("token=")[1]
    with pytest.raises(AuthError):
        auth.complete_setup("not-the-token", "boss", PASSWORD)
    admin = auth.complete_setup(secret, "boss", PASSWORD)
    assert admin.role == "admin"
    with pytest.raises(AuthError):  # used
        auth.complete_setup(secret, "boss2", PASSWORD)
    assert auth.setup_link("http://127.0.0.1:8080") is None


def test_setup_link_expires(runtime: Runtime) -> None:
    auth, clock = fixed_auth(runtime)
    _no_users(runtime)
    link = auth.setup_link("http://x")
    assert link is not None
    clock.advance(timedelta(hours=24, seconds=1).total_seconds())
    with pytest.raises(AuthError):
        auth.complete_setup(link.split("token=")[1], "boss", PASSWORD)


def test_nothing_answers_without_credentials(client: TestClient) -> None:
    assert client.get("/api/health").status_code in (200, 503)
    for path in ("/api/stats", "/api/anything", "/metrics", "/api/docs", "/api/openapi.json"):
        r = client.get(path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"
    # a page asked for by a browser without a session: only the way to the login page
    r = client.get("/somewhere", follow_redirects=False)
    assert (r.status_code, r.headers["location"], r.content) == (
        303, "/login?next=%2Fsomewhere", b"")
    assert client.get("/static/swagger/swagger-ui.css").status_code == 200


def test_request_bodies_are_capped_before_parsing(client: TestClient) -> None:
    big = b"x" * (1024 * 1024 + 1)
    r = client.post("/api/login", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413

    def chunks() -> object:  # no Content-Length: counted while it streams
        for _ in range(17):
            yield b"y" * 65536

    r = client.post("/api/login", content=chunks(),  # type: ignore[arg-type]
                    headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_security_headers(client: TestClient) -> None:
    r = client.get("/api/stats", headers=bearer(API_TOKEN))
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "unsafe-inline" not in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"


def test_docs_are_served_locally(client: TestClient) -> None:
    page = client.get("/api/docs", headers=bearer(API_TOKEN))
    assert page.status_code == 200
    assert "/static/swagger/swagger-ui-bundle.js" in page.text and "http" not in page.text
    spec = client.get("/api/openapi.json", headers=bearer(API_TOKEN)).json()
    assert {"/api/orders", "/api/worklist", "/api/duplicates"} <= set(spec["paths"])
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-init.js"):
        assert client.get(f"/static/swagger/{asset}").status_code == 200


def test_a_browser_without_a_session_is_sent_to_the_login_page(client: TestClient) -> None:
    page = client.get("/orders?accession=X", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Forders"
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    # the API and metrics keep answering 401 with a JSON body (docs/interface.md)
    api = client.get("/api/stats", follow_redirects=False)
    assert api.status_code == 401 and api.json() == {"detail": "authentication required"}
    assert client.get("/metrics", follow_redirects=False).status_code == 401
    assert client.post("/orders", follow_redirects=False).status_code == 401
