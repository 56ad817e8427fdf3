"""Helpers for the JSON API tests (``tests/web``): samples, config, users, tokens."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from accord.config import Config

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
PASSWORD = "correct horse battery"
API_TOKEN = "test-admin-token-0123456789"
ROLES = ("viewer", "operator", "admin", "auditor")
FEED = ("web_adt_a04_alice.hl7", "web_adt_a04_alice_twin.hl7", "web_adt_a04_bob.hl7",
        "web_orm_o01_alice_ct.hl7", "web_orm_o01_bob_mr.hl7", "web_orm_o01_bob_us.hl7",
        "web_orm_o01_no_pid3.hl7", "web_oru_r01_unknown_order.hl7", "web_not_hl7.hl7")
# The samples are dated 2026-03-02: their age must not depend on the day the tests run.
PAST_OK = {"max_schedule_age_hours": 10 * 365 * 24}
CATALOG = {"procedures": [
    {"code": "CTHEAD", "description": "CT head", "modality": "CT", "stations": ["CT1"]},
    {"code": "MRKNEE", "description": "MR knee", "modality": "MR", "stations": ["MR1"]},
    {"code": "USABD", "description": "US abdomen", "modality": "US", "stations": ["US1"]},
]}
# Cheap Argon2id parameters: the tests check the logic, not the cost.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def config(data: Path) -> Config:
    return Config.model_validate({
        "store": {"data_dir": str(data)},
        "mllp": {"port": 0},
        "http": {"port": 0},
        # The samples' orders are on fixed days, long past: the worklist keeps them.
        "dicom": {"enabled": False, "worklist_horizon_hours": 1000000},
        "workflow": {"catalog": CATALOG, "checks": PAST_OK},
        "destinations": [{"name": "pacs", "host": "127.0.0.1", "port": 9,
                          "send": ["adt", "orders", "reports"], "retries": 0,
                          "connect_timeout": 0.5, "ack_timeout": 1.0}],
    })


@dataclass
class Fed:
    """The fed store: its directory and the ids of the fed messages, by sample name."""

    data: Path
    message_ids: dict[str, int]


def login(client: TestClient, role: str) -> str:
    """Log in as the user of ``role`` (the session cookie stays on ``client``); returns
    the CSRF token."""
    r = client.post("/api/login", json={"name": role, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["csrf_token"])


def token_for(client: TestClient, role: str) -> str:
    """A bearer token of the user of ``role`` (created through the API)."""
    csrf = login(client, role)
    r = client.post("/api/tokens", json={"name": "test"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    client.post("/api/logout", headers={"X-CSRF-Token": csrf})
    client.cookies.clear()
    return str(r.json()["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
