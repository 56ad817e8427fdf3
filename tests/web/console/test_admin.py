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
