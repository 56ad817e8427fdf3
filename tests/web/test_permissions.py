"""The role × route permission matrix, every cell: for every API route and
every principal (each role's own API token, the ``ACCORD_API_TOKEN``, and nobody), the
server answers 401 without credentials, 403 when the role may not take the route's
action, and something else when it may. The table below is checked against the app's
routes, so a new route without a row fails here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from web_support import API_TOKEN, FAST_HASHER, ROLES, Fed, bearer, config

from accord.runtime import build
from accord.web.app import create_app
from accord.web.auth import Auth
from accord.web.permissions import PERMISSIONS, Action, Role, allowed, allowed_on, table


@dataclass(frozen=True)
class Cell:
    method: str
    path: str  # with {placeholders} filled from the fed store
    action: Action
    body: Any = None


ROUTES: tuple[tuple[str, str, Action, Any], ...] = (
    ("GET", "/api/stats", Action.STATS_READ, None),
    ("GET", "/api/dashboard", Action.STATS_READ, None),
    ("GET", "/api/deliveries", Action.MESSAGES_READ, None),
    ("GET", "/api/deliveries/{row_id}", Action.MESSAGES_READ, None),
    ("GET", "/api/dicom", Action.MESSAGES_READ, None),
    ("GET", "/metrics", Action.METRICS_READ, None),
    ("GET", "/api/peers", Action.STATS_READ, None),
    ("GET", "/api/alerts", Action.STATS_READ, None),
    ("GET", "/api/messages", Action.MESSAGES_READ, None),
    ("GET", "/api/messages/{message_id}", Action.MESSAGES_READ, None),
    ("GET", "/api/errors", Action.ERRORS_READ, None),
    ("POST", "/api/errors/{error_id}/reprocess", Action.ERRORS_REPROCESS, None),
    ("POST", "/api/errors/reprocess", Action.ERRORS_REPROCESS, {"ids": ["m999999"]}),
    ("GET", "/api/patients", Action.PATIENTS_READ, None),
    ("GET", "/api/patients/{patient_id}", Action.PATIENTS_READ, None),
    ("POST", "/api/patients/{patient_id}/merge", Action.PATIENTS_MERGE, "merge"),
    ("GET", "/api/orders", Action.ORDERS_READ, None),
    ("GET", "/api/orders/{order_id}", Action.ORDERS_READ, None),
    ("GET", "/api/orders/{order_id}/trace", Action.ORDERS_READ, None),
    ("GET", "/api/worklist", Action.WORKLIST_READ, None),
    ("GET", "/api/duplicates", Action.DUPLICATES_READ, None),
    ("GET", "/api/findings", Action.FINDINGS_READ, None),
    ("POST", "/api/findings/{finding_id}/resolve", Action.FINDINGS_RESOLVE,
     {"resolution": "open"}),
    ("GET", "/api/users", Action.USERS_READ, None),
    ("POST", "/api/users", Action.USERS_WRITE, {"name": "x", "role": "viewer",
                                                "password": "short"}),
    ("PATCH", "/api/users/{user_id}", Action.USERS_WRITE, {"disabled": False}),
    ("GET", "/api/tokens", Action.TOKENS_OWN, None),
    ("POST", "/api/tokens", Action.TOKENS_OWN, {"name": "matrix"}),
    ("DELETE", "/api/tokens/{token_id}", Action.TOKENS_OWN, None),
    ("GET", "/api/audit", Action.AUDIT_READ, None),
    ("GET", "/api/audit/export", Action.AUDIT_EXPORT, None),
    ("GET", "/api/config", Action.CONFIG_READ, None),
    ("POST", "/api/config/reload", Action.CONFIG_WRITE, None),
)
# Routes any authenticated principal may use (no action of their own).
ANY_PRINCIPAL = (("GET", "/api/me"), ("GET", "/api/openapi.json"), ("GET", "/api/docs"),
                 ("POST", "/api/logout"))
OPEN = (("GET", "/api/health"), ("POST", "/api/login"))


@pytest.fixture(scope="module")
def world(fed_store: Fed, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str]]]:
    """One app for the whole matrix; a token per role; ids to fill the paths."""
    import shutil

    data: Path = tmp_path_factory.mktemp("matrix")
    shutil.copy(fed_store.data / "accord.db", data / "accord.db")
    rt = build(config(data))
    auth = Auth(rt.accounts, rt.clock, hasher=FAST_HASHER)
    tokens = {}
    for role in ROLES:
        user = auth.accounts.users.named(role)
        assert user is not None
        tokens[role] = auth.create_token(user.id, "matrix")[0]
    tokens["api-token"] = API_TOKEN
    app = create_app(rt, api_token=API_TOKEN, hasher=FAST_HASHER, extra_routers=[])
    with TestClient(app, base_url="https://testserver") as client:
        admin = bearer(API_TOKEN)
        orders = client.get("/api/orders", headers=admin).json()["items"]
        patients = client.get("/api/patients", headers=admin).json()["items"]
        viewer = auth.accounts.users.named("viewer")
        assert viewer is not None
        victim = auth.create_token(viewer.id, "victim")[1]
        ids = {
            "message_id": str(fed_store.message_ids["web_orm_o01_alice_ct.hl7"]),
            "error_id": f"m{fed_store.message_ids['web_orm_o01_no_pid3.hl7']}",
            "patient_id": patients[0]["id"], "other_patient": patients[1]["id"],
            "order_id": orders[0]["id"],
            "finding_id": str(client.get("/api/findings", headers=admin).json()
                              ["items"][0]["id"]),
            "user_id": str(viewer.id), "token_id": str(victim.id),
            "row_id": str(client.get("/api/deliveries", headers=admin).json()
                               ["items"][0]["id"]),
        }
        yield client, tokens, ids
    rt.store.close()


def _cell(route: tuple[str, str, Action, Any], ids: dict[str, str]) -> Cell:
    method, path, action, body = route
    if body == "merge":
        body = {"into": ids["other_patient"]}
    return Cell(method, path.format(**ids), action, body)


def _call(client: TestClient, cell: Cell, headers: dict[str, str]) -> int:
    r = client.request(cell.method, cell.path, headers=headers,
                       json=cell.body if cell.body is not None else None)
    return r.status_code


PRINCIPALS = (*ROLES, "api-token")


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_every_role_on_every_route(world: tuple[TestClient, dict[str, str], dict[str, str]],
                                   route: tuple[str, str, Action, Any]) -> None:
    client, tokens, ids = world
    cell = _cell(route, ids)
    assert _call(client, cell, {}) == 401, "no credential"
    assert _call(client, cell, bearer("acc_not-a-token")) == 401, "unknown token"
    for principal in PRINCIPALS:
        role = "admin" if principal == "api-token" else principal
        status = _call(client, cell, bearer(tokens[principal]))
        if allowed(role, cell.action):
            assert status not in (401, 403) and status < 500, (principal, cell, status)
        else:
            assert status == 403, (principal, cell, status)


@pytest.mark.parametrize("route", ANY_PRINCIPAL, ids=lambda r: f"{r[0]} {r[1]}")
def test_routes_for_any_principal(world: tuple[TestClient, dict[str, str], dict[str, str]],
                                  route: tuple[str, str]) -> None:
    client, tokens, _ = world
    assert client.request(route[0], route[1]).status_code == 401
    for principal in PRINCIPALS:
        assert client.request(route[0], route[1],
                              headers=bearer(tokens[principal])).status_code == 200


def test_table_covers_every_api_route(
        world: tuple[TestClient, dict[str, str], dict[str, str]]) -> None:
    client, _, _ = world
    served = {(m, r.path) for r in _walk(getattr(client.app, "routes", []))
              for m in r.methods if r.path.startswith(("/api", "/metrics"))}
    declared = {(m, p) for m, p, _, _ in ROUTES} | set(ANY_PRINCIPAL) | set(OPEN)
    assert served == declared


def _walk(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, through included routers."""
    for r in routes:
        if isinstance(r, APIRoute):
            yield r
        elif hasattr(r, "original_router"):
            yield from _walk(r.original_router.routes)


def test_the_table_itself() -> None:
    """The roles nest as the issue says; the auditor sees no patient data."""
    viewer, operator = PERMISSIONS[Role.VIEWER], PERMISSIONS[Role.OPERATOR]
    admin, auditor = PERMISSIONS[Role.ADMIN], PERMISSIONS[Role.AUDITOR]
    assert viewer < operator < admin
    assert {Action.MESSAGES_READ, Action.ERRORS_REPROCESS, Action.FINDINGS_RESOLVE,
            Action.PATIENTS_MERGE} <= operator - viewer
    assert {Action.USERS_WRITE, Action.CONFIG_WRITE} <= admin - operator
    assert auditor == {Action.AUDIT_READ, Action.AUDIT_EXPORT, Action.TOKENS_OWN}
    assert not (admin & {Action.AUDIT_READ, Action.AUDIT_EXPORT})
    assert not allowed("root", Action.STATS_READ)
    # audit.admin_can_read: admins read the log too, but do not export it.
    opened = table(admin_reads_audit=True)
    assert opened[Role.ADMIN] == admin | {Action.AUDIT_READ}
    assert allowed("admin", Action.AUDIT_READ, opened)
    assert not allowed("admin", Action.AUDIT_EXPORT, opened)
    assert table() is PERMISSIONS


def test_tokens_are_managed_by_their_owner_or_an_admin() -> None:
    assert allowed_on(1, "viewer", Action.TOKENS_OWN, 1)
    assert not allowed_on(1, "operator", Action.TOKENS_OWN, 2)
    assert allowed_on(1, "admin", Action.TOKENS_OWN, 2)
    assert not allowed_on(None, "admin", Action.TOKENS_OWN, None)
