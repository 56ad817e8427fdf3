"""The clinical pages (``console/exams.py``): order search by each key and by cursor,
the order page (banner, timeline, openable trace), the patient page, audited views."""

from __future__ import annotations

import re
from pathlib import Path

from console_support import CANARY, console_app, login, page_ids
from fastapi.testclient import TestClient
from sqlalchemy import select

from accord.runtime import Runtime
from accord.store.schema.accounts import audit_log


def test_the_order_page_shows_banner_timeline_and_openable_trace(
        rt: Runtime, app_client: TestClient) -> None:
    login(app_client, "operator")
    page = app_client.get(page_ids(rt)["{order}"]).text
    assert "CANARY7f3a, ROBERT" in page and "1975-06-12" in page
    assert "CANARY7f3aMRN1" in page and "HOSP" in page  # identifier with its authority
    assert "scheduled" in page
    assert re.search(r'href="/messages/\d+">RIS/CON0003', page)
    assert "1.2.826.0.1.3680043.10.543.7301" in page


def test_a_viewer_sees_the_order_but_no_raw_message_link(
        rt: Runtime, app_client: TestClient) -> None:
    login(app_client, "viewer")
    page = app_client.get(page_ids(rt)["{order}"]).text
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


def test_patient_views_are_audited_with_the_patient(rt: Runtime, app_client: TestClient
                                                    ) -> None:
    login(app_client, "viewer")
    url = page_ids(rt)["{patient}"]
    assert CANARY in app_client.get(url).text
    patient_id = url.rsplit("/", 1)[1]
    with rt.store.database.read() as conn:
        rows = conn.execute(select(audit_log.c.actor).where(
            audit_log.c.patient_id == patient_id, audit_log.c.action == "patients.read")).all()
    assert ("viewer",) in [tuple(r) for r in rows]


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


def test_the_worklist_page_lists_what_the_api_lists(rt: Runtime,
                                                    app_client: TestClient) -> None:
    login(app_client, "viewer")
    page = app_client.get("/worklist?date=20260302").text
    api = app_client.get("/api/worklist", params={"date": "20260302"}).json()["items"]
    assert api, "the fed store has a scheduled step that day"
    on_page = re.findall(r'<a href="/orders/[^"]+">([^<]+)</a>', page)
    assert on_page == [w["accession"] for w in api]  # one read model, one order


def test_the_order_search_lists_what_the_api_lists(rt: Runtime,
                                                   app_client: TestClient) -> None:
    login(app_client, "viewer")
    page = app_client.get("/orders?status=scheduled").text
    api = app_client.get("/api/orders", params={"status": "scheduled"}).json()["items"]
    assert api, "the fed store has a scheduled order"
    on_page = re.findall(r'<a href="/orders/[^"]+">([^<]+)</a>', page)
    assert on_page == [o["accession"] or o["id"] for o in api]
