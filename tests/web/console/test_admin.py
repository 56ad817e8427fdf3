"""The administrator's pages (``console/admin.py``): a mapping edit is a new version,
history kept."""

from __future__ import annotations

from console_support import login
from fastapi.testclient import TestClient

from accord.runtime import Runtime


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


def test_the_audit_names_people_and_one_search_is_one_record(
        rt: Runtime, app_client: TestClient) -> None:
    login(app_client, "viewer")
    app_client.get("/orders")  # a search showing several patients
    login(app_client, "auditor")
    page = app_client.get("/audit?action=orders.read&actor=viewer").text
    first = page.split('<tr data-id="')[1]  # the newest record: that search
    assert first.count("CANARY7f3a, ROBERT") == 1 and "CANARY7f3aMRN1 · HOSP" in first
    assert "/audit?patient=P-" in first  # an auditor opens no patient page
    by_mrn = app_client.get("/audit?patient=CANARY7f3aMRN1").text
    assert "orders.read" in by_mrn
    assert "No patient on file matches" in app_client.get("/audit?patient=nobody-at-all").text


def test_admins_read_the_audit_only_when_the_deployment_says_so(rt: Runtime) -> None:
    from dataclasses import replace

    from console_support import deps_for

    from accord.web.app import create_app
    from accord.web.permissions import table

    login_page = "/audit"
    closed = TestClient(create_app(deps_for(rt)), base_url="https://testserver")
    login(closed, "admin")
    refused = closed.get(login_page)
    assert refused.status_code == 403 and "audit.admin_can_read" in refused.text
    assert "Dashboard" in refused.text  # the error page keeps the navigation
    opened = TestClient(create_app(replace(deps_for(rt),
                                           permissions=table(admin_reads_audit=True))),
                        base_url="https://testserver")
    login(opened, "admin")
    page = opened.get(login_page)
    assert page.status_code == 200 and "Audit log" in page.text
    assert ">Audit log</a>" in page.text  # in the admin's navigation now
    assert opened.get("/api/audit/export").status_code == 403  # reading, not exporting


def test_a_page_nobody_has_keeps_the_navigation(rt: Runtime, app_client: TestClient) -> None:
    login(app_client, "operator")
    missing = app_client.get("/no/such/page")
    assert missing.status_code == 404 and ">Orders</a>" in missing.text


def test_the_audit_names_an_order_by_its_accession(rt: Runtime, app_client: TestClient) -> None:
    from console_support import page_ids

    login(app_client, "viewer")
    app_client.get(page_ids(rt)["{order}"])
    login(app_client, "auditor")
    page = app_client.get("/audit?action=orders.read&actor=viewer").text
    newest = page.split('<tr data-id="')[1]
    assert "order CANARY7f3aACC" in newest
