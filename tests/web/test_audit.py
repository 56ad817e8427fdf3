"""The audit log (accord.web.audit): every view of patient data and every change is
recorded (who, when, from where, which patient and object, outcome), refusals and failed
logins too; auditors read and export it; nobody else does."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from fastapi.testclient import TestClient
from web_support import API_TOKEN, PASSWORD, bearer, token_for

ADMIN = bearer(API_TOKEN)


def audit(client: TestClient, auditor: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = client.get("/api/audit", params={"limit": 1000, **params}, headers=auditor)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return [e for e in items if e["action"] != "audit.read"]


def test_a_patient_view_is_recorded_with_who_where_what(client: TestClient) -> None:
    auditor = bearer(token_for(client, "auditor"))
    viewer = bearer(token_for(client, "viewer"))
    [bob] = client.get("/api/patients", params={"identifier": "WEBB1"},
                       headers=viewer).json()["items"]
    assert client.get(f"/api/patients/{bob['id']}", headers=viewer).status_code == 200
    [entry] = audit(client, auditor, action="patients.view")
    assert (entry["actor"], entry["role"], entry["outcome"]) == ("viewer", "viewer", "ok")
    assert entry["patient_id"] == bob["id"] and entry["object_id"] == bob["id"]
    assert entry["peer"] == "testclient" and entry["at"]
    by_patient = audit(client, auditor, patient=bob["id"])
    assert {e["action"] for e in by_patient} == {"patients.list", "patients.view"}


def test_a_list_view_is_one_record_listing_each_patient_shown(client: TestClient) -> None:
    auditor = bearer(token_for(client, "auditor"))
    page = client.get("/api/orders", headers=ADMIN).json()["items"]
    shown = {o["patient"]["id"] for o in page}
    [entry] = audit(client, auditor, action="orders.list")
    assert set(entry["patient_ids"]) == shown and len(shown) > 1
    assert entry["count"] == len(page) and entry["actor"] == "api-token"
    for patient in shown:  # and each patient finds it
        assert [e["id"] for e in audit(client, auditor, patient=patient,
                                       action="orders.list")] == [entry["id"]]


def test_every_view_of_patient_data_is_recorded(client: TestClient) -> None:
    auditor = bearer(token_for(client, "auditor"))
    [order] = client.get("/api/orders", params={"accession": "WEBACC1"},
                         headers=ADMIN).json()["items"]
    mid = client.get("/api/messages", params={"control_id": "WEB0011"},
                     headers=ADMIN).json()["items"][0]["id"]
    for path in (f"/api/orders/{order['id']}", f"/api/orders/{order['id']}/trace",
                 "/api/worklist", "/api/duplicates", "/api/findings", "/api/errors",
                 f"/api/messages/{mid}"):
        assert client.get(path, headers=ADMIN).status_code == 200
    actions = {e["action"] for e in audit(client, auditor)}
    assert {"orders.view", "orders.trace", "worklist.list", "duplicates.list",
            "findings.list", "errors.list", "messages.view", "messages.list"} <= actions
    [seen] = audit(client, auditor, action="messages.view")
    assert seen["object_id"] == str(mid) and seen["patient_id"] == order["patient"]["id"]


def test_changes_refusals_and_failed_logins_are_recorded(client: TestClient) -> None:
    auditor = bearer(token_for(client, "auditor"))
    viewer = bearer(token_for(client, "viewer"))
    assert client.get("/api/messages", headers=viewer).status_code == 403
    client.post("/api/login", json={"name": "operator", "password": "not the password"})
    r = client.post("/api/findings/1/resolve", json={"resolution": "ignored"}, headers=ADMIN)
    assert r.status_code == 200
    entries = audit(client, auditor)
    denied = [e for e in entries if e["outcome"] == "denied"]
    assert {(e["actor"], e["action"]) for e in denied} >= {("viewer", "messages.read"),
                                                          ("operator", "login")}
    assert PASSWORD not in json.dumps(entries) and "not the password" not in json.dumps(entries)
    [resolved] = [e for e in entries if e["action"] == "findings.resolve"]
    assert resolved["object_id"] == "1" and resolved["detail"]["resolution"] == "ignored"


def test_only_auditors_read_the_log(client: TestClient) -> None:
    for role in ("viewer", "operator", "admin"):
        token = bearer(token_for(client, role))
        assert client.get("/api/audit", headers=token).status_code == 403
        assert client.get("/api/audit/export", headers=token).status_code == 403
    assert client.get("/api/audit", headers=ADMIN).status_code == 403


def test_export_csv_and_json_lines(client: TestClient) -> None:
    auditor = bearer(token_for(client, "auditor"))
    client.get("/api/worklist", headers=ADMIN)
    r = client.get("/api/audit/export", params={"format": "csv"}, headers=auditor)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert any(row["action"] == "worklist.list" and row["patient_ids"] for row in rows)
    assert all(json.loads(row["detail"]) is not None for row in rows)
    r = client.get("/api/audit/export", params={"format": "json", "action": "worklist.list"},
                   headers=auditor)
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert lines and {e["action"] for e in lines} == {"worklist.list"}
    exported = audit(client, auditor, action="audit.export")
    assert len(exported) == 2  # the exports themselves are recorded


def test_audit_pages_newest_first(client: TestClient) -> None:
    auditor = bearer(token_for(client, "auditor"))
    for _ in range(3):
        client.get("/api/worklist", headers=ADMIN)
    first = client.get("/api/audit", params={"limit": 2}, headers=auditor).json()
    second = client.get("/api/audit", params={"limit": 2, "cursor": first["next"]},
                        headers=auditor).json()
    ids = [e["id"] for e in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
