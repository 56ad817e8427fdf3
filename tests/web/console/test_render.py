"""Every console page gated on the server (``console/render.py``): each page answers
each role as the table says, and without a session every page leads to the login page;
names and identifiers read as people read them."""

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
    "/patients": frozenset({"viewer", "operator", "admin"}),
    "/patients?name=robert%20canary7f3a": frozenset({"viewer", "operator", "admin"}),
    "/messages": frozenset({"operator", "admin"}),
    "{message}/raw": frozenset({"operator", "admin"}),
    "/deliveries": frozenset({"operator", "admin"}),
    "/deliveries/1": frozenset({"operator", "admin"}),
    "/dicom": frozenset({"operator", "admin"}),
    "/users": frozenset({"admin"}),
    "/tokens": frozenset({"viewer", "operator", "admin", "auditor"}),
}


def _urls(rt: Runtime) -> list[tuple[str, frozenset[str]]]:
    ids = page_ids(rt)
    out = []
    for path, roles in PAGES.items():
        for key, value in ids.items():
            path = path.replace(key, value)
        out.append((path, roles))
    return out


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


def test_names_identifiers_and_hl7_people_read_as_people_read_them() -> None:
    from datetime import date

    from accord.web.console.render import hl7_person, identifier_text, people_in, person_name
    from accord.workflow.model import Demographics, Identifier, Patient, PersonName

    p = Patient("P-" + "a" * 32, (Identifier("MRN9863826", "HOSP", "MR"),),
                Demographics(PersonName("Dietz", "Ines"), date(1979, 3, 12), "F"))
    assert (person_name(p), identifier_text(p)) == ("Dietz, Ines", "MRN9863826 · HOSP")
    assert hl7_person("1234^Welby^Marcus") == "Marcus Welby"
    assert hl7_person("Welby^Marcus") == "Marcus Welby"
    text = f"new patient {p.id} resembles P-{'b' * 32} <b>"
    shown = str(people_in(text, {p.id: p}, link=True))
    assert f'<a href="/patients/{p.id}">Dietz, Ines (MRN9863826 · HOSP)</a>' in shown
    assert f"P-{'b' * 32}" in shown and "&lt;b&gt;" in shown  # unknown ids stay, escaped
    assert "<a" not in str(people_in(text, {p.id: p}, link=False))
