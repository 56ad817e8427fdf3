"""The operator's pages (``console/operations.py``): the message viewer and the error
queue's reprocess (CSRF-checked, audited)."""

from __future__ import annotations

from console_support import audited, login
from fastapi.testclient import TestClient

from accord.runtime import Runtime


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
    assert audited(rt, "errors.reprocess") == 1
    assert audited(rt, "errors.reprocess", outcome="refused") == 1
