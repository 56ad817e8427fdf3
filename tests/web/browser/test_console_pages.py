"""The console a department lives in, in a real browser against a real engine (``accord
serve`` with its DICOM listener, messages over MLLP, a modality's MPPS over DICOM):
every page is opened and what it shows is checked against the JSON API; the dashboard's
delivered count rises when an MPPS sends status updates; an admin adds a user and makes
an API token, which works with plain HTTP (as ``curl`` would) until it is revoked."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from console_support import CANARY, FEED, PASSWORD
from engine_process import Engine, engine, mpps

ACCESSION = f"{CANARY}ACC"
STUDY_UID = "1.2.826.0.1.3680043.10.543.7301"


def _login(page: Any, url: str, name: str, password: str = PASSWORD) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def _token(page: Any, url: str, name: str) -> str:
    """Make an API token on the tokens page; its secret, shown once."""
    page.goto(f"{url}/tokens")
    page.fill("#new-token input[name=name]", name)
    page.select_option("#new-token select[name=days]", "30")
    page.click("#new-token button[type=submit]")
    page.wait_for_selector("#token")
    secret = str(page.inner_text("#token")).strip()
    assert secret.startswith("acc_")
    return secret


def _figure(page: Any, name: str) -> int:
    return int(page.inner_text(f'[data-figure="{name}"]').strip())


def _rows(page: Any, table: str) -> int:
    return int(page.locator(f"table#{table} tbody tr[data-id], "
                            f"table#{table} tbody tr[data-accession], "
                            f"table#{table} tbody tr[data-name]").count())


def _shot(page: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)


def _items(api: httpx.Client, path: str, **params: Any) -> list[Any]:
    r = api.get(path, params={"limit": 1000, **params})
    assert r.status_code == 200, (path, r.text)
    items: list[Any] = r.json()["items"]
    return items


def test_every_page_shows_what_the_api_says(browser: Any, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    with engine(tmp_path / "data", FEED, dicom=True, ris_up=True) as eng:
        page = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
        _login(page, eng.url, "operator")
        with httpx.Client(base_url=eng.url, timeout=30, headers={
                "Authorization": f"Bearer {_token(page, eng.url, 'checks')}"}) as api:
            _delivered_rises_with_mpps(page, eng, api)
            _shot(page, shots / "dashboard.png")
            _lists_agree(page, eng, api, shots)
        page.context.close()


def _dashboard(page: Any, eng: Engine, api: httpx.Client) -> dict[str, Any]:
    """The dashboard once the page shows what the API says (the page refreshes itself)."""
    for _ in range(60):
        page.goto(eng.url + "/")
        figures: dict[str, Any] = api.get("/api/dashboard").json()
        out = {d["name"]: d for d in figures["destinations"]}
        if all(_figure(page, f"delivered:{n}") == d["delivered"] for n, d in out.items()):
            return figures
        page.wait_for_timeout(500)
    raise AssertionError("the dashboard never showed the API's figures")


def _delivered_rises_with_mpps(page: Any, eng: Engine, api: httpx.Client) -> None:
    before = {d["name"]: d for d in _dashboard(page, eng, api)["destinations"]}["ris"]
    mpps(eng.dicom_port, "1.2.826.0.1.3680043.9.77", ACCESSION, STUDY_UID)
    for _ in range(60):  # the monitor reads the figures every second
        figures = _dashboard(page, eng, api)
        ris = {d["name"]: d for d in figures["destinations"]}["ris"]
        if ris["delivered"] >= before["delivered"] + 2:
            break
        page.wait_for_timeout(500)
    else:
        raise AssertionError("the MPPS status updates were never counted as delivered")
    # The RIS got them (IP, then CM), and the figure's link lists exactly those rows.
    assert eng.ris is not None and len(eng.ris.received) >= 2
    assert _figure(page, "delivered:ris") == ris["delivered"]
    page.click('[data-figure="delivered:ris"] a')
    page.wait_for_selector("table#deliveries")
    assert _rows(page, "deliveries") == ris["delivered"]
    assert "status" in page.inner_text("table#deliveries")
    page.goto(eng.url + "/")
    stations = {s["station"]: s for s in figures["stations"]}
    assert _figure(page, "mpps:CT1") == stations["CT1"]["mpps"] == 2
    for i in figures["interfaces"]:
        assert _figure(page, f"received:{i['sender']}") == i["received"]
    for f in figures["findings"]:
        assert _figure(page, f"findings:{f['kind']}") == f["open"]
    for cell in figures["orders_today"]:
        assert _figure(page, f"orders:{cell['modality']}:{cell['status']}") == cell["count"]


def _lists_agree(page: Any, eng: Engine, api: httpx.Client, shots: Path) -> None:
    """Each list page shows the rows its API route answers, with people, not ids."""
    for path, table, route, params in (
            ("/worklist?date=20260302", "worklist", "/api/worklist", {"date": "20260302"}),
            ("/orders", "orders", "/api/orders", {}),
            ("/patients", "patients", "/api/patients", {}),
            ("/messages", "messages", "/api/messages", {}),
            ("/deliveries", "deliveries", "/api/deliveries", {}),
            ("/dicom", "dicom", "/api/dicom", {}),
            ("/errors", "errors", "/api/errors", {}),
            ("/findings", "findings", "/api/findings", {"resolution": "open"})):
        page.goto(eng.url + path)
        page.wait_for_selector(f"table#{table}")
        assert _rows(page, table) == len(_items(api, route, **params)), path
        text = page.inner_text("main")
        assert not re.search(r"\bP-[0-9a-f]{32}\b", text), path  # people, not ids
        assert "^^^" not in text, path  # identifiers as value · authority
        _shot(page, shots / f"{table}.png")
    page.goto(f"{eng.url}/orders?accession={ACCESSION.lower()[-6:]}")  # a forgiving search
    assert _rows(page, "orders") == 1 and f"{CANARY}MRN1 · HOSP" in page.inner_text("main")
    page.click(f"a:has-text('{ACCESSION}')")
    page.wait_for_selector("table#sent")
    sent = {r["control_id"]: r for r in _items(api, "/api/deliveries", accession=ACCESSION)}
    text = page.inner_text("table#sent")
    assert all(cid in text for cid in sent) and "ris" in text  # the MPPS's updates too
    _shot(page, shots / "order.png")


def test_an_admin_adds_a_user_and_a_token_that_works_over_http(
        browser: Any, tmp_path: Path) -> None:
    with engine(tmp_path / "data", FEED[:3]) as eng:
        page = browser.new_context().new_page()
        _login(page, eng.url, "admin")
        page.goto(f"{eng.url}/users")
        page.fill("#add-user input[name=name]", "erin")
        page.select_option("#add-user select[name=role]", "operator")
        page.fill("#add-user input[name=password]", "a long passphrase!")
        page.click("#add-user button[type=submit]")
        page.wait_for_selector("text=User erin (operator) added.")
        assert page.locator('tr[data-name="erin"]').count() == 1
        secret = _token(page, eng.url, "ci")
        # A script's request, as curl -H "Authorization: Bearer …" would send it.
        bearer = {"Authorization": f"Bearer {secret}"}
        me = httpx.get(f"{eng.url}/api/me", headers=bearer, timeout=30)
        assert me.status_code == 200 and me.json()["name"] == "admin"
        users = httpx.get(f"{eng.url}/api/users", headers=bearer, timeout=30).json()
        assert "erin" in {u["name"] for u in users["items"]}
        page.goto(f"{eng.url}/tokens")
        assert secret not in page.content()  # shown once
        page.click(f'tr[data-prefix="{secret[:12]}"] button:has-text("Revoke")')
        page.wait_for_selector("text=revoked")
        assert httpx.get(f"{eng.url}/api/me", headers=bearer, timeout=30).status_code == 401
        # The new user logs in with the password the admin set.
        page.click("button:has-text('Log out')")
        _login(page, eng.url, "erin", "a long passphrase!")
        assert page.inner_text("header .who").startswith("erin (operator)")
        page.context.close()
