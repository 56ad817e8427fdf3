"""The console in a real browser against a real engine (``accord serve`` subprocess, tmp
SQLite, messages sent over MLLP): log in, find an order by accession, open its trace
and a message, reprocess an error, merge a duplicate, resolve a finding. A screenshot
of every page is saved into the test's temporary folder; the README's three go to the
folder given by ``--readme-images`` instead (``make screenshots`` gives ``docs/img``), so
that a plain test run never writes into the repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from console_support import CANARY, FEED, PASSWORD
from engine_process import engine, mpps


def _login(page: Any, url: str, role: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", role)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def _shot(page: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5000


def test_the_integration_engineers_day(
    browser: Any, tmp_path: Path, readme_images: Path
) -> None:
    shots = tmp_path / "screenshots"
    with engine(tmp_path / "data", FEED, dicom=True) as eng:
        # CT1 performs the canary order (MPPS): the DICOM side has something to show.
        mpps(eng.dicom_port, "1.2.826.0.1.3680043.9.78", f"{CANARY}ACC",
             "1.2.826.0.1.3680043.10.543.7301")
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        _login(page, eng.url, "operator")
        assert page.url.rstrip("/") == eng.url  # landed on the dashboard
        page.wait_for_selector("text=RIS^HOSP")
        # htmx polls the dashboard body: wait for one refresh to land.
        with page.expect_response(lambda r: "/dashboard/live" in r.url, timeout=15000):
            pass
        _shot(page, readme_images / "dashboard.png")

        # Find the order by accession, open its trace and the message that placed it.
        page.click("nav >> text=Orders")
        page.fill("input[name=accession]", f"{CANARY}ACC")
        page.click("button:has-text('Search')")
        page.click(f"a:has-text('{CANARY}ACC')")
        page.wait_for_selector("section.banner")
        assert "1975-06-12" in page.inner_text("section.banner")
        assert "HOSP" in page.inner_text("section.banner")
        _shot(page, readme_images / "order-trace.png")
        page.click("table.trace a:has-text('RIS/CON0003')")
        page.wait_for_selector("text=Segments and fields")
        assert "Patient Identifier List" in page.content()
        _shot(page, shots / "message.png")
        page.click("a[href^='/patients/']") if page.query_selector(
            "a[href^='/patients/']") else page.go_back()

        # Reprocess the error (the ORM without PID-3): still AE, but a new attempt.
        page.goto(f"{eng.url}/errors")
        _shot(page, shots / "errors.png")
        page.check("input[name=ids][value^='message:']")
        page.click("button:has-text('Reprocess selected')")
        page.wait_for_selector("text=Reprocessed 1")

        # Merge the duplicate pair: the A40 goes to the PACS through the outbox.
        page.goto(f"{eng.url}/duplicates")
        _shot(page, shots / "duplicates.png")
        page.click("a:has-text('Review')")
        page.wait_for_selector("table.compare")
        # One comparison, an outcome per field: the second registration differs only by
        # its MRN (not a compared field), so every compared field is exact.
        assert page.locator("#comparison tr.exact").count() >= 5
        assert page.locator("#comparison tr.different, #comparison tr.similar").count() == 0
        assert page.inner_text("#summary").startswith("exact:")
        _shot(page, readme_images / "duplicates-review.png")
        page.click("button:has-text('Merge B into A')")
        page.wait_for_selector("text=Merged; ADT^A40 queued downstream.")
        page.wait_for_timeout(1500)
        assert any(b"ADT^A40" in m for m in eng.pacs.messages)

        # Resolve the unknown-order finding.
        page.goto(f"{eng.url}/findings?kind=unknown_order")
        _shot(page, shots / "findings.png")
        page.click("td a:has-text('Report for an unknown order')")
        page.fill("input[name=note]", "report for an order placed on paper")
        page.click("button:has-text('Resolve')")
        page.wait_for_selector("text=Finding resolved.")
        _shot(page, shots / "finding.png")

        for name, path in (("worklist", "/worklist?date=20260302"), ("orders", "/orders")):
            page.goto(eng.url + path)
            _shot(page, shots / f"{name}.png")
        page.goto(f"{eng.url}/orders?accession={CANARY}ACC")
        page.click(f"a:has-text('{CANARY}ACC')")
        page.click("section.banner a:has-text('patient page')")
        page.wait_for_selector("text=Merge history")
        _shot(page, shots / "patient.png")
        page.click("button:has-text('Log out')")
        page.wait_for_selector("input[name=username]")
        _shot(page, shots / "login.png")

        _login(page, eng.url, "admin")
        page.goto(f"{eng.url}/mappings")
        _shot(page, shots / "mappings.png")
        page.click("button:has-text('Log out')")
        _login(page, eng.url, "auditor")
        assert page.url.endswith("/audit")
        assert "patients.merge" in page.content()
        _shot(page, shots / "audit.png")
        context.close()
    assert not [e for e in errors if "Content Security Policy" in e or "htmx" in e], errors


@pytest.mark.parametrize("role", ["viewer"])
def test_a_viewer_cannot_open_raw_messages(browser: Any, tmp_path: Path, role: str) -> None:
    with engine(tmp_path / "data", FEED[:3]) as eng:
        page = browser.new_page()
        _login(page, eng.url, role)
        page.goto(f"{eng.url}/messages/1")
        assert "Not allowed" in page.content()
        page.close()
