"""Console pages (accord.web.console, console_ops, console_admin, console_auth): each page
for each role, the actions (reprocess, resolve, merge, not a duplicate, mapping edit),
CSRF, login, audit records — on a real runtime and SQLite store fed the samples."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_support import CANARY, PASSWORD, console_app, login, runtime
from fastapi.testclient import TestClient
from sqlalchemy import select

from accord.runtime import Runtime
from accord.store.schema import outbox
from accord.store.schema.accounts import audit_log

# (path, roles allowed). Detail pages use ids found at run time (see ``_urls``).
PAGES: dict[str, frozenset[str]] = {
    "/": frozenset({"viewer", "operator", "admin"}),
    "/dashboard/live": frozenset({"viewer", "operator", "admin"}),
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


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    yield from runtime(tmp_path_factory.mktemp("console"))


@pytest.fixture
def app_client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(console_app(rt), base_url="https://testserver") as client:
        yield client


def _ids(rt: Runtime) -> dict[str, str]:
    from accord.store.schema.workflow import wf_findings, wf_orders

    with rt.store.database.read() as conn:
        order = conn.execute(select(wf_orders.c.id, wf_orders.c.patient_id)
                             .where(wf_orders.c.accession == "CANARY7f3aACC")).one()
        dup = conn.scalar(select(wf_findings.c.id)
                          .where(wf_findings.c.kind == "potential_duplicate_patient"))
        unknown = conn.scalar(select(wf_findings.c.id)
                              .where(wf_findings.c.kind == "unknown_order"))
    return {"{order}": f"/orders/{order.id}", "{patient}": f"/patients/{order.patient_id}",
            "{finding}": f"/findings/{unknown}", "{message}": "/messages/3",
            "{duplicate}": f"/duplicates/{dup}"}


def _urls(rt: Runtime) -> list[tuple[str, frozenset[str]]]:
    ids = _ids(rt)
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


def test_the_order_page_shows_banner_timeline_and_openable_trace(
        rt: Runtime, app_client: TestClient) -> None:
    login(app_client, "operator")
    page = app_client.get(_ids(rt)["{order}"]).text
    assert "CANARY7f3a, ROBERT" in page and "1975-06-12" in page
    assert "CANARY7f3aMRN1" in page and "HOSP" in page  # identifier with its authority
    assert "scheduled" in page
    assert re.search(r'href="/messages/\d+">RIS/CON0003', page)
    assert "1.2.826.0.1.3680043.10.543.7301" in page


def test_a_viewer_sees_the_order_but_no_raw_message_link(
        rt: Runtime, app_client: TestClient) -> None:
    login(app_client, "viewer")
    page = app_client.get(_ids(rt)["{order}"]).text
    assert "CANARY7f3aACC" in page
    assert "/messages/" not in page
    assert app_client.get("/messages/3").status_code == 403


def test_order_search_by_each_key(rt: Runtime, app_client: TestClient) -> None:
    login(app_client, "viewer")
    for query in ("accession=CANARY7f3aACC", "mrn=CANARY7f3aMRN1", "name=canary7f3a",
                  "name=CANARY7f3a%5Erob", "study_uid=1.2.826.0.1.3680043.10.543.7301",
                  "status=scheduled", "date=20260302"):
        assert "CANARY7f3aACC" in app_client.get(f"/orders?{query}").text, query
    for query in ("accession=NOPE", "name=canary7f3a%5Ezed", "status=final"):
        assert "No order matches" in app_client.get(f"/orders?{query}").text, query
    assert app_client.get("/orders?status=bogus").status_code == 400
    assert app_client.get("/orders?status=scheduled&cursor=garbage").status_code == 400


def test_message_viewer_names_fields_and_shows_ack(rt: Runtime, app_client: TestClient) -> None:
    login(app_client, "operator")
    page = app_client.get("/messages/3").text
    assert "PID-3" in page and "Patient Identifier List" in page
    assert "MSA|AA|CON0003" in page  # the ACK sent
    assert "pacs" in page  # its delivery
    assert app_client.get("/messages/999999").status_code == 404


def test_reprocess_from_the_error_queue_needs_csrf_and_is_audited(
        rt: Runtime, app_client: TestClient) -> None:
    csrf = login(app_client, "operator")
    assert "CON0004" in app_client.get("/errors").text
    refused = app_client.post("/errors/reprocess", data={"ids": "message:4"},
                              follow_redirects=False)
    assert refused.status_code == 403
    done = app_client.post("/errors/reprocess", data={"ids": "message:4",
                                                      "csrf_token": csrf},
                           follow_redirects=False)
    assert done.status_code == 303 and "Reprocessed+1" in done.headers["location"]
    assert rt.store.get_message(4).superseded_by is not None
    again = app_client.post("/errors/reprocess", data={"ids": "message:4"},
                            headers={"X-CSRF-Token": csrf}, follow_redirects=False)
    assert "could+not+be" in again.headers["location"]
    assert app_client.post("/errors/reprocess", data={"ids": "bogus:1"},
                           headers={"X-CSRF-Token": csrf}).status_code == 400
    assert _audited(rt, "errors.reprocess") == 1
    assert _audited(rt, "errors.reprocess", outcome="refused") == 1


def test_resolve_a_finding(rt: Runtime, app_client: TestClient) -> None:
    url = _ids(rt)["{finding}"]
    login(app_client, "viewer")
    assert "Resolve" not in app_client.get(url).text
    assert app_client.post(f"{url}/resolve", data={"resolution": "resolved"},
                           headers={"X-CSRF-Token": "x"}).status_code == 403
    csrf = login(app_client, "operator")
    page = app_client.get(url).text
    assert "never received" in page or "never" in page
    resp = app_client.post(f"{url}/resolve", data={"resolution": "resolved", "note": "late",
                                                   "csrf_token": csrf})
    assert resp.status_code == 200 and "resolved" in resp.text
    assert app_client.post(f"{url}/resolve", data={"resolution": "nope",
                                                   "csrf_token": csrf}).status_code == 400
    assert app_client.post("/findings/999999/resolve", data={
        "resolution": "ignored", "csrf_token": csrf}).status_code == 404


def test_duplicates_review_marks_fields_and_merge_sends_a40(
        rt: Runtime, app_client: TestClient) -> None:
    url = _ids(rt)["{duplicate}"]
    csrf = login(app_client, "operator")
    page = app_client.get(url).text
    assert page.count('class="agree"') >= 5 and 'class="disagree"' in page  # MRNs differ
    before = _outbox_adt(rt)
    resp = app_client.post(f"{url}/merge", data={"survivor": "a", "csrf_token": csrf},
                           follow_redirects=False)
    assert resp.status_code == 303 and "Merged" in resp.headers["location"]
    assert _outbox_adt(rt) == before + 1  # the ADT^A40 queued for the pacs
    assert "resolved" in app_client.get(url).text
    again = app_client.post(f"{url}/merge", data={"survivor": "a", "csrf_token": csrf})
    assert again.status_code == 409
    assert _audited(rt, "patients.merge") == 2  # one record per patient of the pair


def test_mapping_edit_keeps_history(rt: Runtime, app_client: TestClient) -> None:
    csrf = login(app_client, "admin")
    page = app_client.get("/mappings").text
    assert "CTHEAD" in page and "version 1" in page
    resp = app_client.post("/mappings", data={"code": "MRKNEE", "description": "MR knee",
                                              "modality": "mr", "stations": "MR1",
                                              "version": "1", "csrf_token": csrf})
    assert resp.status_code == 200
    assert "MRKNEE" in resp.text and "version 2" in resp.text and "version 1" in resp.text
    login(app_client, "operator")
    assert app_client.post("/mappings", data={"code": "X", "version": "2", "csrf_token": csrf}
                           ).status_code == 403


def test_login_failures_are_refused_and_audited(rt: Runtime, app_client: TestClient) -> None:
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
    assert _audited(rt, "login", outcome="denied") >= 1


def test_patient_views_are_audited_with_the_patient(rt: Runtime, app_client: TestClient
                                                    ) -> None:
    login(app_client, "viewer")
    url = _ids(rt)["{patient}"]
    assert CANARY in app_client.get(url).text
    patient_id = url.rsplit("/", 1)[1]
    with rt.store.database.read() as conn:
        rows = conn.execute(select(audit_log.c.actor).where(
            audit_log.c.patient_id == patient_id, audit_log.c.action == "patients.read")).all()
    assert ("viewer",) in [tuple(r) for r in rows]


def test_logout_ends_the_session(rt: Runtime, app_client: TestClient) -> None:
    csrf = login(app_client, "viewer")
    resp = app_client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert resp.status_code == 303
    assert app_client.get("/orders", follow_redirects=False).status_code in (303, 401)


def _audited(rt: Runtime, action: str, outcome: str = "ok") -> int:
    with rt.store.database.read() as conn:
        return len(conn.execute(select(audit_log.c.id).where(
            audit_log.c.action == action, audit_log.c.outcome == outcome)).all())


def _outbox_adt(rt: Runtime) -> int:
    with rt.store.database.read() as conn:
        return len(conn.execute(select(outbox.c.id).where(outbox.c.kind == "adt")).all())


def test_samples_dir_exists() -> None:
    assert (Path(__file__).parents[1] / "samples" / "console_README.md").exists()


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


def test_order_search_pages_by_cursor(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from console_support import add_users, config
    from sqlalchemy import insert

    from accord.runtime import build
    from accord.store.schema.workflow import wf_orders
    from accord.store.workflow import codec
    from accord.workflow.model import Order
    from accord.workflow.status import Status

    fresh = build(config(tmp_path))
    try:
        add_users(fresh)
        t0 = datetime(2026, 3, 2, tzinfo=UTC)
        rows = [{"id": f"O-{n:04d}", "patient_id": "P-none", "status": "scheduled",
                 "accession": f"PAGE{n:04d}", "updated_at": t0 + timedelta(minutes=n % 7),
                 "doc": codec.encode_order(Order(f"O-{n:04d}", "P-none", Status.SCHEDULED,
                                                 accession=f"PAGE{n:04d}"))}
                for n in range(120)]
        with fresh.store.transaction() as tx:
            tx.connection.execute(insert(wf_orders), rows)  # type: ignore[attr-defined]
        with TestClient(console_app(fresh), base_url="https://testserver") as client:
            login(client, "viewer")
            url: str | None = "/orders?status=scheduled"
            seen: list[str] = []
            while url:
                page = client.get(url.replace("&amp;", "&")).text
                seen += re.findall(r">(PAGE\d{4})</a>", page)
                nxt = re.search(r'href="([^"]+)">Next page', page)
                url = nxt.group(1) if nxt else None
        assert sorted(seen) == sorted(r["accession"] for r in rows)  # each once, none lost
    finally:
        fresh.store.close()
