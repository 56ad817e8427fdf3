"""Shared set-up for the console tests: a real runtime on a tmp SQLite store, fed the
canary samples through ingest, and the console app on it (``WebDeps`` as in the app).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from accord.config import Config
from accord.runtime import Runtime, build
from accord.store.schema import outbox
from accord.store.schema.accounts import audit_log
from accord.store.schema.workflow import wf_findings, wf_orders
from accord.web.audit import Auditor
from accord.web.auth import Auth
from accord.web.deps import WebDeps

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CANARY = "CANARY7f3a"
PASSWORD = "correct horse battery"
ROLES = ("viewer", "operator", "admin", "auditor")
FEED = ("console_adt_a04_canary.hl7", "console_adt_a04_canary_twin.hl7",
        "console_orm_o01_canary.hl7", "console_orm_o01_no_pid3.hl7",
        "console_oru_r01_unknown_order.hl7")
# The samples are dated 2026-03-02: their age must not depend on the day the tests run.
PAST_OK = {"max_schedule_age_hours": 10 * 365 * 24}
CATALOG = {"procedures": [{"code": "CTHEAD", "description": "CT head", "modality": "CT",
                           "body_part": "HEAD", "stations": ["CT1"],
                           "duration_minutes": 15}]}


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def config(data: Path, *, mllp_port: int = 0, pacs_port: int = 9) -> Config:
    return Config.model_validate({
        "store": {"data_dir": str(data)},
        "mllp": {"port": mllp_port},
        # The samples' orders are on a fixed day, long past: the worklist keeps them.
        "dicom": {"enabled": False, "worklist_horizon_hours": 1000000},
        "workflow": {"catalog": CATALOG, "checks": PAST_OK},
        "destinations": [{"name": "pacs", "host": "127.0.0.1", "port": pacs_port,
                          "send": ["adt", "orders", "reports"], "retries": 0,
                          "connect_timeout": 0.5, "ack_timeout": 1.0}],
    })


def deps_for(rt: Runtime) -> WebDeps:
    return WebDeps(store=rt.store, clock=rt.clock, auth=Auth(rt.accounts, rt.clock),
                   views=rt.views, auditor=Auditor(rt.accounts.audit, rt.clock),
                   code_tables=rt.code_tables,
                   control_ids=rt.control_ids, reprocess_message=rt.ingestor.reprocess,
                   reprocess_outbox=rt.deliverer.reprocess, inject=rt.ingestor.inject,
                   config=rt.config, node_id=rt.node_id, peers=rt.peers)


def console_app(rt: Runtime) -> FastAPI:
    """The application ``build`` made for ``rt`` (console + JSON API, with its guard)."""
    from accord.web.app import create_app

    return create_app(deps_for(rt))


def feed(rt: Runtime, names: tuple[str, ...] = FEED) -> list[int]:
    """Store and apply the samples through ingest (no socket): their message ids."""
    async def go() -> list[int]:
        return [await rt.ingestor.inject(sample(n), "127.0.0.1:test") for n in names]

    return asyncio.run(go())


def add_users(rt: Runtime) -> None:
    auth = Auth(rt.accounts, rt.clock)
    for role in ROLES:
        auth.add_user(role, role, PASSWORD)


def login(client: TestClient, name: str) -> str:
    """Log in through the form; returns the session's CSRF token (from a page)."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    resp = client.post("/login", data={"username": name, "password": PASSWORD,
                                       "csrf_token": token.group(1), "next": "/orders"},
                       follow_redirects=False)
    assert resp.status_code == 303, resp.text
    home = client.get("/orders")
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', home.text)
    assert csrf is not None
    return csrf.group(1)


def runtime(tmp: Path) -> Iterator[Runtime]:
    rt = build(config(tmp))
    add_users(rt)
    feed(rt)
    try:
        yield rt
    finally:
        rt.store.close()


def page_ids(rt: Runtime) -> dict[str, str]:
    with rt.store.database.read() as conn:
        order = conn.execute(select(wf_orders.c.id, wf_orders.c.patient_id)
                             .where(wf_orders.c.accession == "CANARY7f3aACC")).one()
        dup = conn.scalar(select(wf_findings.c.id)
                          .where(wf_findings.c.kind == "potential_duplicate_patient"))
        unknown = conn.scalar(select(wf_findings.c.id)
                              .where(wf_findings.c.kind == "unknown_order"))
    return {"{order}": f"/orders/{order.id}", "{patient}": f"/patients/{order.patient_id}",
            "{finding}": f"/findings/{unknown}", "{message}": "/messages/3",
            "{duplicate}": f"/duplicates/{dup}"}


def audited(rt: Runtime, action: str, outcome: str = "ok") -> int:
    with rt.store.database.read() as conn:
        return len(conn.execute(select(audit_log.c.id).where(
            audit_log.c.action == action, audit_log.c.outcome == outcome)).all())


def outbox_adt(rt: Runtime) -> int:
    with rt.store.database.read() as conn:
        return len(conn.execute(select(outbox.c.id).where(outbox.c.kind == "adt")).all())
