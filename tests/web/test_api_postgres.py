"""The JSON API on PostgreSQL: the same samples, every list walked page by page (the
keyset cursors compare timestamps and text there), the detail routes, and the actions
that write (reprocess, resolve, merge, audit)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from web_support import API_TOKEN, FAST_HASHER, FEED, PASSWORD, ROLES, bearer, config, sample

from accord.runtime import build
from accord.web.app import create_app
from accord.web.auth import Auth

ADMIN_URL = os.environ.get("ACCORD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN = bearer(API_TOKEN)
pytestmark = pytest.mark.postgres


def _admin(statement: sql.Composable) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(statement)


@pytest.fixture(scope="module")
def pg_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    name = f"accord_web_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    cfg = config(tmp_path_factory.mktemp("pg"))
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    rt = build(cfg.model_copy(update={"store": cfg.store.model_copy(update={"url": url})}))
    try:
        async def feed() -> None:
            for n in FEED:
                await rt.ingestor.inject(sample(n), "127.0.0.1:1234")

        asyncio.run(feed())
        auth = Auth(rt.accounts, rt.clock, hasher=FAST_HASHER)
        for role in ROLES:
            auth.add_user(role, role, PASSWORD)
        app = create_app(rt, api_token=API_TOKEN, hasher=FAST_HASHER, extra_routers=[])
        with TestClient(app, base_url="https://testserver") as client:
            yield client
    finally:
        rt.store.close()
        _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def walk(client: TestClient, path: str, headers: dict[str, str] | None = None,
         **params: Any) -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        query = {"limit": 1, **params, **({"cursor": cursor} if cursor else {})}
        r = client.get(path, params=query, headers=ADMIN if headers is None else headers)
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next"]
        if cursor is None:
            return items


@pytest.mark.parametrize(("path", "params", "count"), [
    ("/api/messages", {}, len(FEED)), ("/api/patients", {}, 3),
    ("/api/patients", {"name": "WEBTEST"}, 3), ("/api/orders", {}, 3),
    ("/api/orders", {"status": "scheduled"}, 3), ("/api/worklist", {}, 3),
    ("/api/findings", {}, 4), ("/api/users", {}, 4)])
def test_lists_page_through_on_postgres(pg_client: TestClient, path: str,
                                        params: dict[str, str], count: int) -> None:
    items = walk(pg_client, path, **params)
    assert len(items) == count
    assert len({str(i.get("id", i.get("sps_id"))) for i in items}) == count


def test_details_and_actions_on_postgres(pg_client: TestClient) -> None:
    c = pg_client
    [order] = c.get("/api/orders", params={"accession": "WEBACC2"}, headers=ADMIN).json()["items"]
    assert c.get(f"/api/orders/{order['id']}/trace", headers=ADMIN).json()["events"]
    assert c.get(f"/api/patients/{order['patient']['id']}", headers=ADMIN).status_code == 200
    [entry] = c.get("/api/errors", headers=ADMIN).json()["items"]
    assert c.post(f"/api/errors/{entry['id']}/reprocess", headers=ADMIN).status_code == 200
    finding = c.get("/api/findings", headers=ADMIN).json()["items"][0]
    r = c.post(f"/api/findings/{finding['id']}/resolve", json={"resolution": "resolved"},
               headers=ADMIN)
    assert r.status_code == 200
    [pair] = c.get("/api/duplicates", headers=ADMIN).json()["items"]
    r = c.post(f"/api/patients/{pair['a']['id']}/merge", json={"into": pair["b"]["id"]},
               headers=ADMIN)
    assert r.status_code == 200 and r.json()["ack_code"] == "AA"
    auditor = c.post("/api/login", json={"name": "auditor", "password": PASSWORD})
    assert auditor.status_code == 200
    actions = {e["action"] for e in walk(c, "/api/audit", headers={})}
    assert {"patients.merge", "errors.reprocess", "findings.resolve", "orders.trace"} <= actions
    c.cookies.clear()


def test_login_rate_limit_on_postgres(pg_client: TestClient) -> None:
    for _ in range(5):
        pg_client.post("/api/login", json={"name": "operator", "password": "wrong password!"})
    r = pg_client.post("/api/login", json={"name": "operator", "password": PASSWORD})
    assert r.status_code == 429
