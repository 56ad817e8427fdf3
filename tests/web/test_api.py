"""The JSON API, route by route (docs/interface.md): shapes, filters, keyset
pagination, detail pages, actions (reprocess, resolve, merge → A40 in the outbox), and
/api/health on a running engine."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from web_support import API_TOKEN, FEED, Fed, bearer, config

from accord.runtime import Runtime, build

ADMIN = bearer(API_TOKEN)


def get(client: TestClient, path: str, **params: Any) -> Any:
    r = client.get(path, params=params, headers=ADMIN)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


def all_pages(client: TestClient, path: str, limit: int, **params: Any) -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        page = get(client, path, limit=limit, **({"cursor": cursor} if cursor else {}),
                   **params)
        assert set(page) == {"items", "next"}
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next"]
        if cursor is None:
            return items


def test_stats_counts_the_whole_store(client: TestClient) -> None:
    stats = get(client, "/api/stats")
    assert stats["messages"] == len(FEED)
    assert (stats["errors"], stats["rejected"]) == (1, 1)
    assert (stats["patients"], stats["orders"]) == (3, 3)
    assert stats["outbox_pending"] > 0 and stats["findings_open"] >= 3
    assert (stats["backlog"], stats["backlog_oldest_seconds"]) == (0, None)


def test_messages_list_filters_and_pages(client: TestClient) -> None:
    everything = all_pages(client, "/api/messages", 2)
    assert len(everything) == len(FEED)
    assert len({m["id"] for m in everything}) == len(FEED)
    assert [m["id"] for m in everything] == sorted((m["id"] for m in everything), reverse=True)
    assert [m["control_id"] for m in get(client, "/api/messages",
                                         control_id="WEB0011")["items"]] == ["WEB0011"]
    errors = get(client, "/api/messages", status="error")["items"]
    assert [m["ack_code"] for m in errors] == ["AE"]
    by_patient = get(client, "/api/messages", patient="WEBB1")["items"]
    assert {m["control_id"] for m in by_patient} == {"WEB0003", "WEB0012", "WEB0013"}
    by_accession = get(client, "/api/messages", accession="WEBACC2")["items"]
    assert [m["control_id"] for m in by_accession] == ["WEB0012"]
    assert get(client, "/api/messages", type="ADT")["items"][0]["message_type"].startswith("ADT")


@pytest.mark.parametrize("params", [{"status": "nope"}, {"cursor": "abc"},
                                    {"since": "yesterday"}, {"since": "2026-03-02T08:00:00"}])
def test_bad_filters_are_400(client: TestClient, params: dict[str, str]) -> None:
    assert client.get("/api/messages", params=params, headers=ADMIN).status_code == 400


def test_limit_is_1_to_1000(client: TestClient) -> None:
    for bad in (0, 1001):
        assert client.get("/api/orders", params={"limit": bad}, headers=ADMIN).status_code == 422
    assert len(get(client, "/api/orders", limit=1000)["items"]) == 3


def test_message_detail_has_raw_parsed_outcome_ack_deliveries(client: TestClient,
                                                              fed_store: Fed) -> None:
    mid = fed_store.message_ids["web_orm_o01_alice_ct.hl7"]
    m = get(client, f"/api/messages/{mid}")
    assert m["raw"].startswith("MSH|^~\\&|RIS|HOSP") and "WEBACC1" in m["raw"]
    segments = [s["id"] if "id" in s else s.get("name") for s in m["parsed"]["segments"]]
    assert "OBR" in str(segments)
    assert m["status"] == "processed" and m["ack_code"] == "AA" and "MSA|AA" in m["ack"]
    assert m["outcome"]["routed"] and m["deliveries"][0]["destination"] == "pacs"
    bad = get(client, f"/api/messages/{fed_store.message_ids['web_not_hl7.hl7']}")
    assert bad["parsed"] is None and bad["parse_error"] and bad["status"] == "rejected"
    assert client.get("/api/messages/999999", headers=ADMIN).status_code == 404


def test_patients_by_identifier_with_and_without_authority(client: TestClient) -> None:
    [bob] = get(client, "/api/patients", identifier="WEBB1")["items"]
    assert {"id": "900001", "authority": "NATL", "type": "PI"} in bob["identifiers"]
    assert bob["demographics"]["name"]["given"] == "BOB"
    assert bob["demographics"]["birth_date"] == "1960-05-05"
    assert get(client, "/api/patients", identifier="900001^^^NATL")["items"][0]["id"] == bob["id"]
    assert get(client, "/api/patients", identifier="900001^^^HOSP")["items"] == []
    assert len(get(client, "/api/patients", name="webtest")["items"]) == 3
    assert len(all_pages(client, "/api/patients", 1)) == 3
    assert len(all_pages(client, "/api/patients", 2, name="WEB")) == 3


def test_patient_detail(client: TestClient) -> None:
    [bob] = get(client, "/api/patients", identifier="WEBB1")["items"]
    detail = get(client, f"/api/patients/{bob['id']}")
    assert {o["accession"] for o in detail["orders"]} == {"WEBACC2", "WEBACC3"}
    assert detail["identifiers"] == bob["identifiers"] and detail["merged"] == []
    assert client.get("/api/patients/P-nobody", headers=ADMIN).status_code == 404


def test_orders_filters(client: TestClient) -> None:
    [order] = get(client, "/api/orders", accession="WEBACC1")["items"]
    assert order["status"] == "scheduled"
    assert order["study_instance_uid"] == "1.2.826.0.1.3680043.10.543.9001"
    assert order["patient"]["identifiers"][0]["id"] == "WEBA1"
    bobs = get(client, "/api/orders", patient="WEBB1^^^HOSP")["items"]
    assert {o["accession"] for o in bobs} == {"WEBACC2", "WEBACC3"}
    by_id = get(client, "/api/orders", patient=bobs[0]["patient"]["id"])["items"]
    assert {o["accession"] for o in by_id} == {"WEBACC2", "WEBACC3"}
    assert len(all_pages(client, "/api/orders", 1, status="scheduled")) == 3
    assert get(client, "/api/orders", status="final")["items"] == []
    assert client.get("/api/orders", params={"status": "bogus"}, headers=ADMIN).status_code == 400
    uid = get(client, "/api/orders", study_instance_uid=order["study_instance_uid"])
    assert [o["id"] for o in uid["items"]] == [order["id"]]


def test_order_detail_and_trace(client: TestClient) -> None:
    [order] = get(client, "/api/orders", accession="WEBACC1")["items"]
    assert get(client, f"/api/orders/{order['id']}") == order
    trace = get(client, f"/api/orders/{order['id']}/trace")
    assert trace["accession"] == "WEBACC1" and trace["events"]
    assert trace["events"][0]["message"] == "RIS/WEB0011"
    assert trace["explain"][-1].startswith("now: scheduled")
    assert [m["control_id"] for m in trace["messages"]] == ["WEB0011"]
    assert client.get("/api/orders/O-nothing/trace", headers=ADMIN).status_code == 404


def test_worklist_as_the_mwl_serves_it(client: TestClient) -> None:
    everything = get(client, "/api/worklist")["items"]
    assert [w["accession"] for w in everything] == ["WEBACC1", "WEBACC2", "WEBACC3"]
    ct = get(client, "/api/worklist", station="CT1", date="20260302")["items"]
    assert [(w["accession"], w["station"], w["modality"]) for w in ct] == [
        ("WEBACC1", ["CT1"], "CT")]
    assert ct[0]["patient"]["demographics"]["name"]["family"] == "WEBTEST"
    assert [w["accession"] for w in get(client, "/api/worklist", modality="US")["items"]] == [
        "WEBACC3"]
    assert get(client, "/api/worklist", date="20260304")["items"] == []
    paged = all_pages(client, "/api/worklist", 1)  # keyset on (date, start, order, step)
    assert [w["accession"] for w in paged] == ["WEBACC1", "WEBACC2", "WEBACC3"]
    assert client.get("/api/worklist", params={"date": "2026-03-02"},
                      headers=ADMIN).status_code == 422


def test_duplicates_are_pairs_with_a_score(client: TestClient) -> None:
    [pair] = get(client, "/api/duplicates")["items"]
    ids = {i["id"] for side in ("a", "b") for i in pair[side]["identifiers"]}
    assert ids == {"WEBA1", "WEBA2"}
    assert 0.5 < pair["score"] <= 1.0
    terms = pair["explanation"]
    assert terms[0]["field"] == "prior" and {t["field"] for t in terms} >= {
        "family_name", "given_name", "birth_date"}
    assert abs(sum(t["weight"] for t in terms) - pair["match_weight"]) < 1e-6
    assert 2 ** pair["match_weight"] / (1 + 2 ** pair["match_weight"]) == pytest.approx(
        pair["score"], abs=1e-3)


def test_findings_and_resolve(client: TestClient) -> None:
    found = get(client, "/api/findings")["items"]
    kinds = {f["kind"] for f in found}
    assert {"unknown_order", "missing_required_field", "potential_duplicate_patient"} <= kinds
    [unknown] = get(client, "/api/findings", kind="unknown_order")["items"]
    assert unknown["accession"] == "WEBACC8" and unknown["detail"]
    assert get(client, "/api/findings", accession="WEBACC8")["items"] == [unknown]
    r = client.post(f"/api/findings/{unknown['id']}/resolve",
                    json={"resolution": "ignored", "note": "test order"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["resolution"] == "ignored"
    assert "test order" in r.json()["detail"]
    assert unknown["id"] not in {f["id"] for f in get(client, "/api/findings",
                                                      resolution="open")["items"]}
    assert client.post("/api/findings/99999/resolve", json={},
                       headers=ADMIN).status_code == 404
    assert client.get("/api/findings", params={"kind": "x"}, headers=ADMIN).status_code == 400


def test_error_queue_and_reprocess(client: TestClient, fed_store: Fed) -> None:
    [entry] = get(client, "/api/errors")["items"]
    mid = fed_store.message_ids["web_orm_o01_no_pid3.hl7"]
    assert entry["id"] == f"m{mid}" and entry["location"] == "PID-3"
    r = client.post(f"/api/errors/m{mid}/reprocess", headers=ADMIN)
    assert r.status_code == 200, r.text
    again = r.json()
    assert again["new_id"] > mid and again["ack_code"] == "AE"  # still no PID-3
    original = get(client, f"/api/messages/{mid}")
    assert original["superseded_by"] == again["new_id"]
    assert get(client, f"/api/messages/{again['new_id']}")["reprocess_of"] == mid
    assert client.post(f"/api/errors/m{mid}/reprocess", headers=ADMIN).status_code == 409
    assert client.post("/api/errors/m424242/reprocess", headers=ADMIN).status_code == 404
    assert client.post("/api/errors/x1/reprocess", headers=ADMIN).status_code == 400
    many = client.post("/api/errors/reprocess", json={"ids": [f"m{again['new_id']}",
                                                              "m424242"]}, headers=ADMIN)
    assert [i["ok"] for i in many.json()["items"]] == [True, False]


def test_merge_sends_an_a40_downstream(client: TestClient, runtime: Runtime) -> None:
    [pair] = get(client, "/api/duplicates")["items"]
    merged, survivor = pair["a"], pair["b"]
    r = client.post(f"/api/patients/{merged['id']}/merge", json={"into": survivor["id"]},
                    headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["ack_code"] == "AA"
    assert get(client, f"/api/patients/{merged['id']}")["merged_into"] == survivor["id"]
    assert [p["id"] for p in get(client, f"/api/patients/{survivor['id']}")["merged"]] == [
        merged["id"]]
    rows = runtime.store.list_outbox(source_message_id=r.json()["message_id"]).items
    assert rows and rows[0].destination == "pacs"
    assert b"ADT^A40" in rows[0].payload and merged["identifiers"][0]["id"].encode() in (
        rows[0].payload)
    again = client.post(f"/api/patients/{merged['id']}/merge", json={"into": survivor["id"]},
                        headers=ADMIN)
    assert again.status_code == 409
    assert client.post(f"/api/patients/{survivor['id']}/merge", json={"into": survivor["id"]},
                       headers=ADMIN).status_code == 400


def test_users_endpoints(client: TestClient) -> None:
    r = client.post("/api/users", json={"name": "erin", "role": "operator",
                                        "password": "another long one"}, headers=ADMIN)
    assert r.status_code == 201 and r.json()["role"] == "operator"
    assert client.post("/api/users", json={"name": "erin", "role": "viewer",
                                           "password": "another long one"},
                       headers=ADMIN).status_code == 409
    assert client.post("/api/users", json={"name": "fay", "role": "viewer",
                                           "password": "short"}, headers=ADMIN).status_code == 400
    users = all_pages(client, "/api/users", 2)
    assert {"viewer", "operator", "admin", "auditor", "erin"} <= {u["name"] for u in users}
    assert "password_hash" not in str(users)
    admin = next(u for u in users if u["name"] == "admin")
    last = client.patch(f"/api/users/{admin['id']}", json={"role": "viewer"}, headers=ADMIN)
    assert last.status_code == 409  # the last enabled admin


def test_config_hides_database_passwords(client: TestClient) -> None:
    cfg = get(client, "/api/config")
    assert cfg["mllp"]["port"] == 0 and cfg["destinations"][0]["name"] == "pacs"
    deps = client.app.state.deps  # type: ignore[attr-defined]
    store = deps.config.store.model_copy(update={"url": "postgresql://acc:s3cret@db:5432/a"})
    deps.config = deps.config.model_copy(update={"store": store})
    shown = get(client, "/api/config")["store"]["url"]
    assert shown == "postgresql://acc:***@db:5432/a"


def test_health_is_ok_once_every_listener_is_up(tmp_path: Path) -> None:
    rt = build(config(tmp_path))

    async def go() -> tuple[int, dict[str, Any]]:
        await rt.start()
        try:
            assert rt.http is not None and rt.http.port
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.http.port}") as c:
                r = await c.get("/api/health")
                assert (await c.get("/api/stats")).status_code == 401
                return r.status_code, r.json()
        finally:
            await rt.stop()

    status, body = asyncio.run(go())
    assert status == 200
    assert body["status"] == "ok" and body["listeners"] == {"mllp": True, "http": True}


def test_health_is_503_while_the_engine_is_not_listening(client: TestClient) -> None:
    r = client.get("/api/health")
    assert r.status_code == 503 and r.json()["status"] == "starting"


def test_messages_by_ack_code_several_statuses_and_no_sender(client: TestClient) -> None:
    assert [m["control_id"] for m in get(client, "/api/messages", ack="ae")["items"]] == [
        "WEB0021"]  # the order without PID-3
    failed = get(client, "/api/messages", status="error,rejected")["items"]
    assert sorted(m["ack_code"] for m in failed) == ["AE", "AR"]
    [junk] = get(client, "/api/messages", sender="-")["items"]
    assert junk["status"] == "rejected" and junk["message_type"] == ""
    assert client.get("/api/messages", params={"ack": "ZZ"}, headers=ADMIN).status_code == 400
    assert client.get("/api/messages", params={"status": "error,nope"},
                      headers=ADMIN).status_code == 400


def test_deliveries_list_filters_and_one_row(client: TestClient) -> None:
    rows = all_pages(client, "/api/deliveries", 3)
    assert rows and {r["destination"] for r in rows} == {"pacs"}
    orders = [r for r in rows if r["kind"] == "orders"]
    assert {r["accession"] for r in orders} == {"WEBACC1", "WEBACC2", "WEBACC3"}
    about = get(client, "/api/deliveries", accession="WEBACC2",
                status="pending,in_flight")["items"]
    assert about and {r["accession"] for r in about} == {"WEBACC2"}
    one = about[0]
    detail = get(client, f"/api/deliveries/{one['id']}")
    assert detail["payload"].startswith("MSH|") and "WEBACC2" in detail["payload"]
    assert detail["ack"] == "" and detail["ack_code"] == ""
    assert get(client, "/api/deliveries", status="delivered")["items"] == []
    assert client.get("/api/deliveries/999999", headers=ADMIN).status_code == 404
    assert client.get("/api/deliveries", params={"delivered_since": "x"},
                      headers=ADMIN).status_code == 400


def test_dashboard_figures_are_the_lists_they_count(client: TestClient) -> None:
    dash = get(client, "/api/dashboard")
    bounds = {"since": dash["since"], "until": dash["until"]}
    for i in dash["interfaces"]:
        listed = all_pages(client, "/api/messages", 100, sender=i["sender"], **bounds)
        assert len(listed) == i["received"], i
        failed = all_pages(client, "/api/messages", 100, sender=i["sender"],
                           status="error,rejected", **bounds)
        assert len(failed) == i["errored"], i
    [pacs] = dash["destinations"]
    queued = all_pages(client, "/api/deliveries", 100, destination="pacs",
                       status="pending,in_flight")
    assert len(queued) == pacs["queued"] > 0
    assert pacs["delivered"] == len(all_pages(
        client, "/api/deliveries", 100, destination="pacs", delivered_since=dash["since"],
        delivered_until=dash["until"]))
    for f in dash["findings"]:
        assert len(all_pages(client, "/api/findings", 100, kind=f["kind"],
                             resolution="open")) == f["open"]
    assert dash["day"] and isinstance(dash["orders_today"], list)
    for cell in dash["orders_today"]:
        assert len(all_pages(client, "/api/orders", 100, date=dash["day"],
                             modality=cell["modality"], status=cell["status"])) == cell["count"]


def test_orders_by_name_mrn_modality_and_date_as_the_console(client: TestClient) -> None:
    def accessions(**params: str) -> list[str]:
        return sorted(o["accession"] for o in get(client, "/api/orders", **params)["items"])

    assert accessions(name="bob webtest") == ["WEBACC2", "WEBACC3"]
    assert accessions(name="Webtest, Alice") == ["WEBACC1"]
    assert accessions(mrn="webb1") == ["WEBACC2", "WEBACC3"]
    assert accessions(accession="acc1") == ["WEBACC1"]
    assert accessions(modality="MR", date="20260302") == ["WEBACC2"]


def test_the_dicom_log_route(client: TestClient, runtime: Runtime) -> None:
    from accord.store.workflow.dicom_events import DicomEvent, DicomEventLog

    DicomEventLog(runtime.store.database).add([
        DicomEvent(runtime.clock.now(), "find", "CT1", "10.0.0.9", "ok", 2, summary="x"),
        DicomEvent(runtime.clock.now(), "mpps", "CT1", status="COMPLETED", accession="A")])
    assert [e["kind"] for e in get(client, "/api/dicom", station="CT1")["items"]] == [
        "mpps", "find"]
    assert [e["matches"] for e in get(client, "/api/dicom", kind="find")["items"]] == [2]
    assert client.get("/api/dicom", params={"kind": "echo"}, headers=ADMIN).status_code == 400


def test_peers_lists_each_listeners_addresses_and_the_metrics_count_them(
    runtime: Runtime, client: TestClient,
) -> None:
    assert get(client, "/api/peers") == {"items": [], "next": None}
    counters = runtime.mllp.peer_table.seen("10.1.2.3", 0.0)
    counters.junk, counters.denied, counters.open = 2, 5, 1
    items = get(client, "/api/peers")["items"]
    assert items == [{"listener": "mllp", "address": "10.1.2.3", "open": 1, "messages": 0,
                      "denied": 5, "refused": 0, "shed": 0, "junk": 2, "silent": 0,
                      "tls_failed": 0}]
    text = client.get("/metrics", headers=ADMIN).text
    assert 'accord_peer_events_total{event="junk",listener="mllp",peer="10.1.2.3"} 2.0' in text
    assert 'accord_peer_connections{listener="mllp",peer="10.1.2.3"} 1.0' in text
