"""Users and API tokens (``console/accounts.py``): an admin adds a user, sets a role,
disables and enables, resets a password, with the API's rules (not one's own role, not
the last admin); everyone makes, lists and revokes their own tokens, the secret shown
once; an admin sees and revokes anyone's but makes none in their name."""

from __future__ import annotations

import re

from console_support import PASSWORD, audited, login
from fastapi.testclient import TestClient

from accord.runtime import Runtime


def _user_id(rt: Runtime, name: str) -> int:
    user = rt.accounts.users.named(name)
    assert user is not None
    return user.id


def test_an_admin_manages_users(rt: Runtime, app_client: TestClient) -> None:
    csrf = login(app_client, "admin")
    page = app_client.get("/users").text
    assert 'data-name="viewer"' in page and "Add a user" in page
    made = app_client.post("/users", data={"name": "erin", "role": "operator",
                                           "password": "a long passphrase!", "csrf_token": csrf},
                           follow_redirects=False)
    assert made.status_code == 303 and "added" in made.headers["location"]
    erin = _user_id(rt, "erin")
    for change, extra in (("role", {"role": "viewer"}), ("disable", {}), ("enable", {}),
                          ("password", {"password": "another long one!"})):
        r = app_client.post(f"/users/{erin}", data={"change": change, "csrf_token": csrf,
                                                    **extra}, follow_redirects=False)
        assert r.status_code == 303 and "failed" not in r.headers["location"], change
    user = rt.accounts.users.named("erin")
    assert user is not None and (user.role, user.disabled) == ("viewer", False)
    short = app_client.post("/users", data={"name": "x", "role": "viewer",
                                            "password": "short", "csrf_token": csrf},
                            follow_redirects=False)
    assert "failed=1" in short.headers["location"]
    me = _user_id(rt, "admin")
    own = app_client.post(f"/users/{me}", data={"change": "role", "role": "viewer",
                                                "csrf_token": csrf}, follow_redirects=False)
    assert "failed=1" in own.headers["location"] and "own+role" in own.headers["location"]
    last = app_client.post(f"/users/{me}", data={"change": "disable", "csrf_token": csrf},
                           follow_redirects=False)
    assert "last+enabled+admin" in last.headers["location"]
    assert audited(rt, "users.change") == 4 and audited(rt, "users.add") == 1
    login(app_client, "operator")
    assert app_client.get("/users").status_code == 403
    assert app_client.post("/users", data={"name": "y", "role": "viewer",
                                           "password": PASSWORD}).status_code == 403


def test_tokens_are_made_shown_once_used_and_revoked(rt: Runtime,
                                                     app_client: TestClient) -> None:
    csrf = login(app_client, "viewer")
    made = app_client.post("/tokens", data={"name": "script", "days": "30",
                                            "csrf_token": csrf})
    assert made.status_code == 201
    secret = re.search(r'<pre class="raw" id="token">(acc_[^<]+)</pre>', made.text)
    assert secret is not None
    assert secret.group(1) not in app_client.get("/tokens").text  # shown once
    api = app_client.__class__(app_client.app, base_url="https://testserver")
    me = api.get("/api/me", headers={"Authorization": f"Bearer {secret.group(1)}"})
    assert me.json()["name"] == "viewer"
    [token] = rt.accounts.tokens.of_user(_user_id(rt, "viewer"))
    assert token.expires_at is not None and token.name == "script"
    # An admin sees the viewer's tokens and revokes one, but makes none for them.
    admin_csrf = login(app_client, "admin")
    listed = app_client.get(f"/users/{_user_id(rt, 'viewer')}/tokens").text
    assert token.prefix in listed and "New token" not in listed
    r = app_client.post(f"/tokens/{token.id}/revoke", data={"csrf_token": admin_csrf},
                        follow_redirects=False)
    assert r.status_code == 303 and "revoked" in r.headers["location"]
    assert api.get("/api/me", headers={"Authorization": f"Bearer {secret.group(1)}"}
                   ).status_code == 401
    # Someone else's token is not shown to exist.
    login(app_client, "operator")
    assert app_client.get(f"/users/{_user_id(rt, 'viewer')}/tokens").status_code == 403
    assert app_client.post(f"/tokens/{token.id}/revoke",
                           data={"csrf_token": login(app_client, "operator")}
                           ).status_code == 404
