"""Every console page gated on the server (``console/render.py``): each page answers
each role as the table says, and without a session every page leads to the login page."""

from __future__ import annotations

from pathlib import Path

import pytest
from console_support import login, page_ids
from fastapi.testclient import TestClient

from accord.runtime import Runtime

# (path, roles allowed). Detail pages use ids found at run time (see ``_urls``).
PAGES: dict[str, frozenset[str]] = {
    "/": frozenset({"viewer", "operator", "admin"}),
    "/dashboard/live": frozenset({"viewer", "operator", "admin"}),
    "/dashboard/maintenance": frozenset({"viewer", "operator", "admin"}),
    "/worklist?date=20260302": frozenset({"viewer", "operator", "admin"}),
    "/orders": frozenset({"viewer", "operator", "admin"}),
    "/orders?accession=CANARY7f3aACC": frozenset({"viewer", "operator", "admin"}),
    "{order}": frozenset({"viewer", "operator", "admin"}),
    "{patient}": frozenset({"viewer", "operator", "admin"}),
    "/findings": frozenset({"viewer", "operator", "admin"}),
    "{finding}": frozenset({"viewer", "operator", "admin"}),
    "{message}": frozenset({"operator", "admin"}),
    "/errors": frozenset({"operator", "admin"}),
    "/duplicates": frozenset({"operator", "admin"}),
    "{duplicate}": frozenset({"operator", "admin"}),
    "/mappings": frozenset({"admin"}),
    "/audit": frozenset({"auditor"}),
}


def _urls(rt: Runtime) -> list[tuple[str, frozenset[str]]]:
    ids = page_ids(rt)
    return [(ids.get(path, path), roles) for path, roles in PAGES.items()]


@pytest.mark.parametrize("role", ["viewer", "operator", "admin", "auditor"])
def test_every_page_answers_each_role_as_the_table_says(
        rt: Runtime, app_client: TestClient, role: str) -> None:
    login(app_client, role)
    for url, roles in _urls(rt):
        resp = app_client.get(url, follow_redirects=False)
        if url == "/" and role == "auditor":
            assert resp.status_code == 303 and resp.headers["location"] == "/audit"
            continue
        want = 200 if role in roles else 403
        assert resp.status_code == want, (role, url, resp.status_code)
        assert resp.headers["cache-control"] == "no-store"


def test_without_a_session_pages_redirect_to_login_and_forms_are_refused(
        rt: Runtime, app_client: TestClient) -> None:
    for url, _ in _urls(rt):  # no cookie at all: straight to the login page, nothing else
        resp = app_client.get(url, follow_redirects=False)
        assert (resp.status_code, resp.content) == (303, b"")
        assert resp.headers["location"].startswith("/login")
    app_client.cookies.set("accord_session", "expired-or-unknown")
    for url, _ in _urls(rt):
        resp = app_client.get(url, follow_redirects=False)
        assert resp.status_code == 303
        assert resp.headers["location"].startswith("/login")
    resp = app_client.post("/errors/reprocess", data={"ids": "message:4"})
    assert resp.status_code == 401
    assert app_client.get("/static/htmx.min.js").status_code == 200


def test_samples_dir_exists() -> None:
    assert (Path(__file__).parents[2] / "samples" / "console_README.md").exists()
