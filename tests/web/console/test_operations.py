"""The operator's pages (``console/operations.py``): the message search (AR'd and
unparseable input too, its bytes viewable), the message viewer, what went out, the DICOM
log, and the error queue with its people and its reprocess (CSRF-checked, audited)."""

from __future__ import annotations

import asyncio
import re

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


def _inject(rt: Runtime, payload: bytes) -> int:
    async def go() -> int:
        return await rt.ingestor.inject(payload, "127.0.0.1:junk")

    return asyncio.run(go())


def test_the_message_search_finds_ar_and_unparseable_input_and_shows_its_bytes(
        rt: Runtime, app_client: TestClient) -> None:
    junk = _inject(rt, b"\x00\x01GET / HTTP/1.1\r\n\xff")
    login(app_client, "operator")
    page = app_client.get("/messages?status=rejected").text
    assert f'data-id="{junk}"' in page and "unparseable" in page
    assert f'data-id="{junk}"' in app_client.get("/messages?sender=-").text
    assert f'data-id="{junk}"' in app_client.get("/messages?ack=AR").text
    view = app_client.get(f"/messages/{junk}").text
    assert "unparseable input" in view and 'id="hex"' in view
    assert "00 01 47 45 54" in view  # the bytes as they came, in hexadecimal
    raw = app_client.get(f"/messages/{junk}/raw")
    assert raw.content == b"\x00\x01GET / HTTP/1.1\r\n\xff"
    assert raw.headers["content-type"] == "application/octet-stream"
    # A search is one audit record naming the patients it showed.
    before = audited(rt, "messages.read")
    found = app_client.get("/messages?patient=CANARY7f3aMRN1").text
    assert "CANARY7f3a, ROBERT" in found and "CANARY7f3aMRN1 · HOSP" in found
    assert audited(rt, "messages.read") == before + 1
    assert app_client.get("/messages?status=bogus").status_code == 400
    login(app_client, "viewer")
    assert app_client.get("/messages").status_code == 403


def test_what_went_out_and_the_dicom_log(rt: Runtime, app_client: TestClient) -> None:
    from accord.store.workflow.dicom_events import DicomEvent, DicomEventLog

    login(app_client, "operator")
    sent = app_client.get("/deliveries?accession=CANARY7f3aACC").text
    rows = re.findall(r'<tr data-id="(\d+)"', sent)
    assert rows and "CANARY7f3a, ROBERT" in sent
    one = app_client.get(f"/deliveries/{rows[0]}").text
    assert "As sent" in one and "CANARY7f3aACC" in one and "pacs" in one
    assert app_client.get("/deliveries/999999").status_code == 404
    assert app_client.get("/deliveries?status=nope").status_code == 400
    DicomEventLog(rt.store.database).add([DicomEvent(
        rt.clock.now(), "mpps", "CT1", "10.0.0.7", "COMPLETED", accession="CANARY7f3aACC",
        summary="CANARY7f3aACC: in_progress → completed")])
    log = app_client.get("/dicom?station=CT1").text
    assert "COMPLETED" in log and "CANARY7f3a, ROBERT" in log
    assert app_client.get("/dicom?kind=echo").status_code == 400


def test_the_error_queue_names_patients_and_orders(rt: Runtime, app_client: TestClient) -> None:
    login(app_client, "operator")
    page = app_client.get("/errors").text
    # The order without PID-3 names no patient on file: the name it carries is shown.
    assert "CON0004" in page and "(not on file)" in page
    assert "Messages, status rejected" in page
