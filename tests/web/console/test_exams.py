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


def test_forgiving_order_search_and_identifiers_as_people_read_them(
        rt: Runtime, app_client: TestClient) -> None:
    login(app_client, "viewer")
    for query in ("accession=canary7f3aacc", "accession=3aACC", "mrn=canary7f3amrn1",
                  "mrn=MRN1", "name=Robert%20Canary7f3a", "name=canary7f3a,%20robert",
                  "modality=CT&date=20260302"):
        page = app_client.get(f"/orders?{query}").text
        assert "CANARY7f3aACC" in page, query
        assert "CANARY7f3aMRN1 · HOSP" in page and "^^^" not in page, query


def test_patient_search_by_name_and_mrn_is_one_audit_record(
        rt: Runtime, app_client: TestClient) -> None:
    from console_support import audited

    login(app_client, "viewer")
    before = audited(rt, "patients.read")
    page = app_client.get("/patients?name=robert%20canary7f3a").text
    assert "CANARY7f3a, ROBERT" in page and "CANARY7f3aMRN1 · HOSP" in page
    assert audited(rt, "patients.read") == before + 1
    assert "CANARY7f3a, ROBERT" in app_client.get("/patients?mrn=7f3amrn1").text
    assert "No patient matches" in app_client.get("/patients?mrn=nothing-like-it").text


def test_a_stationless_row_is_flagged_and_links_its_finding(
        rt: Runtime, app_client: TestClient) -> None:
    import asyncio

    unmapped = "\r".join((
        "MSH|^~\\&|RIS|HOSP|ACCORD|HOSP|20260302080200||ORM^O01^ORM_O01|CON0099|P|2.5.1",
        "PID|1||CANARY7f3aMRN1^^^HOSP^MR||CANARY7f3a^ROBERT||19750612|M",
        "ORC|NW|CANARY7f3aP9^RIS|CANARY7f3aACC9^PACS||SC||^^^202603021000^^R",
        "OBR|1|CANARY7f3aP9^RIS|CANARY7f3aACC9^PACS|NMBONE^NM bone^LOCAL|||202603021000"
        "|||||||||||CANARY7f3aACC9|RP9|SPS9||||NM|||1^^^202603021000^^R")).encode()

    async def go() -> int:
        return await rt.ingestor.inject(unmapped, "127.0.0.1:test")

    asyncio.run(go())
    login(app_client, "viewer")
    page = app_client.get("/worklist?date=20260302").text
    row = re.search(r'<tr class="flagged" data-accession="CANARY7f3aACC9">(.*?)</tr>', page,
                    re.S)
    assert row is not None
    assert "none" in row.group(1)  # the station
    link = re.search(r'href="/findings/(\d+)"[^>]*>⚠ Unmapped procedure code', row.group(1))
    assert link is not None
    assert "NMBONE" in app_client.get(f"/findings/{link.group(1)}").text
    flags = app_client.get("/api/worklist", params={"date": "20260302"},
                           headers={"X-Requested-With": "x"})
    assert flags.status_code == 200
    [item] = [w for w in flags.json()["items"] if w["accession"] == "CANARY7f3aACC9"]
    # No PV1, no ZDS: the order also breaks the IHE SWF profile, and says so.
    assert item["stationless"] and sorted(f["kind"] for f in item["findings"]) == [
        "profile_violation", "unmapped_code"]
