"""One person registered four times, in a real browser against a real engine (``accord
serve``, registrations over MLLP): the engine proposes all six pairs, the JSON API gives
each pair's terms adding up to its match weight, and the review page shows the four as
one group, its summary agreeing with its table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from console_support import PASSWORD
from engine_process import engine, send

# One woman, four registrations: typos in the given name, a phone missing or changed.
REGISTRATIONS = (("GRP1", "DOLORES", "617-555-0199"), ("GRP2", "DOLORS", ""),
                 ("GRP3", "DELORES", "617-555-0199"), ("GRP4", "DOLORES", "617-555-0198"))


def _a04(n: int, mrn: str, given: str, phone: str) -> bytes:
    return (f"MSH|^~\\&|REG|HOSP|ACCORD|HOSP|2026030208{n:02d}00||ADT^A04^ADT_A01|GRP{n}|P|2.5.1\r"
            f"EVN|A04|2026030208{n:02d}00\r"
            f"PID|1||{mrn}^^^HOSP^MR||ABERNATHY^{given}||19790814|F|||8 HARBOUR VIEW^^QUINCY"
            f"^MA^02169||{phone}\r").encode()


def _token(page: Any, url: str) -> str:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.goto(f"{url}/tokens")
    page.fill("#new-token input[name=name]", "group")
    page.select_option("#new-token select[name=days]", "30")
    page.click("#new-token button[type=submit]")
    page.wait_for_selector("#token")
    return str(page.inner_text("#token")).strip()


def test_a_cluster_of_four_is_six_pairs_shown_as_one_group(browser: Any,
                                                            tmp_path: Path) -> None:
    with engine(tmp_path / "data", ()) as eng:
        acks = [send(eng.mllp_port, _a04(n, *r)) for n, r in enumerate(REGISTRATIONS)]
        assert all(b"MSA|AA" in ack for ack in acks)
        page = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
        token = _token(page, eng.url)
        with httpx.Client(base_url=eng.url, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as api:
            pairs = api.get("/api/duplicates", params={"limit": 100}).json()["items"]
        mrns = [frozenset(i["id"] for side in ("a", "b") for i in p[side]["identifiers"])
                for p in pairs]
        assert len(pairs) == 6 and len(set(mrns)) == 6
        assert set().union(*mrns) == {r[0] for r in REGISTRATIONS}
        for p in pairs:
            assert abs(sum(t["weight"] for t in p["explanation"]) - p["match_weight"]) < 1e-6

        page.goto(f"{eng.url}/duplicates/{pairs[0]['finding']}")
        page.wait_for_selector("#group")
        assert page.locator("tr.member").count() == 4
        assert "4 registrations linked by 6 open pairs" in page.inner_text("#group")
        table = {page.locator("#comparison tbody tr").nth(i).locator("th").inner_text():
                 page.locator("#comparison tbody tr").nth(i).get_attribute("data-outcome")
                 for i in range(page.locator("#comparison tbody tr").count())}
        said = {}
        for span in page.locator("#summary span").all():
            outcome, fields = span.inner_text().split(":", 1)
            for field in fields.split(","):
                said[re.sub(r" \(.*\)$", "", field.strip())] = outcome.strip()
        assert said == table
        assert table["Family name"] == "exact" and table["Mother's maiden name"] == "missing"
        page.context.close()
