"""The canary: messages whose names and identifiers carry ``CANARY7f3a`` go through a
real ``accord serve`` over MLLP; every console page and API route, and their error
paths (400, 401, 403, 404, 405, 409, 413), are visited by every role; the canary must
then appear nowhere in what the engine printed (stdout and stderr, INFO and above:
the engine's loggers, uvicorn's, and anything else written to its output), in either log
format (``--log-format text`` or ``json``, where every line must be one JSON object)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest
from console_support import CANARY, FEED, PASSWORD
from engine_process import Engine, engine, send

# (method, path, form) visited by every role; {order} etc. are filled in at run time.
VISITS: tuple[tuple[str, str], ...] = (
    ("GET", "/"), ("GET", "/dashboard/live"), ("GET", "/worklist?date=20260302"),
    ("GET", "/worklist?date=bogus"), ("GET", "/orders"),
    ("GET", f"/orders?accession={CANARY}ACC"), ("GET", f"/orders?name={CANARY}"),
    ("GET", f"/orders?mrn={CANARY}MRN1"), ("GET", "/orders?status=bogus"),
    ("GET", "/orders?status=scheduled&cursor=bogus"), ("GET", "{order}"),
    ("GET", f"/orders/{CANARY}NOPE"), ("GET", "{patient}"), ("GET", f"/patients/{CANARY}"),
    ("GET", "/messages/1"), ("GET", "/messages/3"), ("GET", "/messages/999999"),
    ("GET", "/messages/notanumber"), ("GET", "/errors"), ("GET", "/errors?cursor=bogus"),
    ("GET", "/findings"), ("GET", "/findings?kind=bogus"), ("GET", "/findings/1"),
    ("GET", "/findings/999999"), ("GET", "/duplicates"), ("GET", "/duplicates/1"),
    ("GET", "/duplicates/999999"), ("GET", "/mappings"), ("GET", "/audit"),
    ("GET", f"/audit?actor={CANARY}"), ("GET", "/api/stats"), ("GET", "/api/messages"),
    ("GET", "/api/messages/3"), ("GET", f"/api/patients?identifier={CANARY}MRN1"),
    ("GET", f"/api/orders?accession={CANARY}ACC"), ("GET", "/api/worklist"),
    ("GET", "/api/duplicates"), ("GET", "/api/findings"), ("GET", "/api/errors"),
    ("GET", "/metrics"), ("GET", f"/{CANARY}/nothing-here"),
    ("POST", "/errors/reprocess"), ("POST", "/findings/999999/resolve"),
    ("POST", "/duplicates/999999/merge"), ("POST", "/mappings"),
    ("DELETE", "/orders"),
)


def _keep_cookies(client: httpx.Client) -> httpx.Client:
    """httpx never sends ``Secure`` cookies over http://; browsers do on 127.0.0.1 (a
    secure context). Keep them by hand, as the browser would."""
    def hook(resp: httpx.Response) -> None:
        for header in resp.headers.get_list("set-cookie"):
            pair = header.split(";", 1)[0]
            name, _, value = pair.partition("=")
            if "max-age=0" in header.lower() or not value.strip('"'):
                client.cookies.delete(name)
            else:
                client.cookies.set(name, value)

    client.event_hooks["response"] = [hook]
    return client


def client_for(eng: Engine) -> httpx.Client:
    return _keep_cookies(httpx.Client(base_url=eng.url, timeout=30))


def _login(client: httpx.Client, role: str) -> str:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    resp = client.post("/login", data={"username": role, "password": PASSWORD,
                                       "csrf_token": token.group(1)})
    assert resp.status_code in (200, 303), resp.status_code
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/login?next=/").text
                     + client.get("/orders").text + client.get("/audit").text)
    return csrf.group(1) if csrf else ""


def _visit_all(eng: Engine, ids: dict[str, str]) -> set[int]:
    seen: set[int] = set()
    anonymous = client_for(eng)
    for _, path in VISITS[:5]:
        seen.add(anonymous.get(ids.get(path, path)).status_code)
        seen.add(anonymous.get(f"/api/orders?accession={CANARY}ACC").status_code)  # 401
    bad = anonymous.post("/login", data={"username": f"{CANARY}user",
                                         "password": f"{CANARY}pw", "csrf_token": "x"})
    seen.add(bad.status_code)
    seen.add(anonymous.post("/api/login", content=b"x" * (2 * 1024 * 1024)).status_code)
    for role in ("viewer", "operator", "admin", "auditor"):
        with client_for(eng) as client:
            csrf = _login(client, role)
            for method, path in VISITS:
                url = ids.get(path, path)
                form = {"ids": f"message:{CANARY}", "resolution": "resolved",
                        "survivor": "a", "code": f"{CANARY}CODE", "note": CANARY}
                resp = client.request(method, url, data=form if method == "POST" else None,
                                      headers={"X-CSRF-Token": csrf})
                seen.add(resp.status_code)
                for bad_form in (True,):  # a form without its CSRF token
                    if method == "POST" and bad_form:
                        seen.add(client.post(url, data=form).status_code)
    return seen


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_canary_strings_never_reach_the_logs(tmp_path: Path, log_format: str) -> None:
    with engine(tmp_path, FEED, log_format) as eng:
        assert [a.split(b"MSA|")[1][:2] for a in eng.acks] == [b"AA", b"AA", b"AA", b"AE",
                                                                  b"AA"]
        send(eng.mllp_port, b"MSH|^~\\&|" + CANARY.encode() + b"|\rPID|garbage")  # AR
        send(eng.mllp_port, CANARY.encode() * 10)  # not HL7 at all
        with client_for(eng) as client:
            _login(client, "operator")
            order = re.search(r'href="(/orders/O-[^"]+)"',
                              client.get(f"/orders?accession={CANARY}ACC").text)
            assert order is not None
            patient = re.search(r'href="(/patients/P-[^"]+)"', client.get(order.group(1)).text)
            assert patient is not None
        ids = {"{order}": order.group(1), "{patient}": patient.group(1)}
        seen = _visit_all(eng, ids)
        time.sleep(1.5)  # let the alert monitor and delivery log what they will
        log = eng.log()
    assert {200, 400, 401, 403, 404, 405, 413} <= seen, seen
    assert "listening" in log  # the log was captured at INFO
    if log_format == "json":  # every line one event; their decoded values searched too
        events = [json.loads(line) for line in log.splitlines()]
        assert all({"time", "level", "logger", "message"} <= e.keys() for e in events)
        log += "\n".join(str(e) for e in events)
    assert CANARY.casefold() not in log.casefold(), [
        line for line in log.splitlines() if CANARY.casefold() in line.casefold()][:5]
