"""The reviewer's pages (``console/review.py``): resolving a finding, the duplicate pair
side by side and its merge (an ADT^A40 through ingest)."""

from __future__ import annotations

import re

from console_support import audited, login, outbox_adt, page_ids
from fastapi.testclient import TestClient
from markupsafe import escape

from accord.runtime import Runtime
from accord.store.workflow.repository import repository_for
from accord.workflow.findings import Finding, FindingKind


def test_resolve_a_finding(rt: Runtime, app_client: TestClient) -> None:
    url = page_ids(rt)["{finding}"]
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


def table_outcomes(page: str) -> list[tuple[str, str]]:
    """(field, outcome) of each row of the duplicate page's comparison table."""
    table = page.split('id="comparison"')[1].split("</tbody>")[0]
    return [(label, outcome) for outcome, label in
            re.findall(r'data-outcome="(\w+)"><th>([^<]+)</th>', table)]


def summary_outcomes(page: str) -> dict[str, list[str]]:
    """outcome -> fields, as the duplicate page's summary line says them."""
    line = page.split('id="summary">')[1].split("</p>")[0]
    found = re.findall(r'class="outcome-(\w+)"><b>\w+:</b> ([^<]+)</span>', line)
    return {o: [re.sub(r" \(.*\)$", "", f) for f in fields.split(", ")]
            for o, fields in found}


def test_duplicates_review_marks_fields_and_merge_sends_a40(
        rt: Runtime, app_client: TestClient) -> None:
    url = page_ids(rt)["{duplicate}"]
    csrf = login(app_client, "operator")
    page = app_client.get(url).text
    rows = table_outcomes(page)
    assert [o for _, o in rows].count("exact") >= 3
    assert summary_outcomes(page) == {
        o: [label for label, out in rows if out == o] for o in {o for _, o in rows}}
    assert "MRN" not in page.split('id="comparison"')[1].split("</table>")[0]  # not compared
    before = outbox_adt(rt)
    resp = app_client.post(f"{url}/merge", data={"survivor": "a", "csrf_token": csrf},
                           follow_redirects=False)
    assert resp.status_code == 303 and "Merged" in resp.headers["location"]
    assert outbox_adt(rt) == before + 1  # the ADT^A40 queued for the pacs
    assert "resolved" in app_client.get(url).text
    again = app_client.post(f"{url}/merge", data={"survivor": "a", "csrf_token": csrf})
    assert again.status_code == 409
    assert audited(rt, "patients.merge") == 1  # one record, naming both patients


def test_every_finding_kind_is_explained_on_its_page(rt: Runtime,
                                                     app_client: TestClient) -> None:
    with rt.store.transaction() as tx:  # one finding of each kind
        repo = repository_for(tx, rt.clock.now())
        for kind in FindingKind:
            repo.save_finding(Finding(kind, "test", rt.clock.now(), subject=f"kind-{kind}"))
    login(app_client, "viewer")
    for kind in FindingKind:
        found = rt.views.findings.list(kind=kind.value).items
        assert found, kind
        page = app_client.get(f"/findings/{found[0].id}").text
        assert str(escape(kind.label)) in page and str(escape(kind.explanation)) in page


def test_findings_show_people_and_words_not_ids(rt: Runtime, app_client: TestClient) -> None:
    login(app_client, "viewer")
    page = app_client.get("/findings?kind=potential_duplicate_patient&resolution=").text
    assert "Possible duplicate patient" in page
    assert "Two patient records look like the same person" in page  # the kind explained
    assert not re.search(r">[^<]*P-[0-9a-f]{32}", page)  # no patient id as text
    assert "CANARY7f3a" in page and " · HOSP" in page
    one = app_client.get(page_ids(rt)["{finding}"]).text
    assert "Report for an unknown order" in one
    assert "A report or status arrived for an order Accord never received." in one
