"""Small builders for store tests (synthetic values only: no real patient data)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from accord.store import InboundMessage, OutboxItem

from .conftest import T0


def inbound(n: int = 1, *, at: datetime | None = None, **fields: Any) -> InboundMessage:
    """An ORM^O01 as ingest would save it; ``n`` makes MSH-10 and keys distinct."""
    values: dict[str, Any] = {
        "received_at": at if at is not None else T0 + timedelta(seconds=n),
        "raw": f"MSH|^~\\&|RIS|HOSP|ACCORD|RAD|20260302080000||ORM^O01|C{n}|P|2.5.1\r".encode(),
        "peer": "127.0.0.1:40000",
        "listener": "mllp",
        "charset": "ASCII",
        "sending_app": "RIS",
        "sending_facility": "HOSP",
        "receiving_app": "ACCORD",
        "receiving_facility": "RAD",
        "message_type": "ORM^O01",
        "control_id": f"C{n}",
        "version": "2.5.1",
        "status": "processed",
        "ack_code": "AA",
        "ack": f"MSH|^~\\&|ACCORD|RAD|RIS|HOSP|||ACK^O01|A{n}|P|2.5.1\rMSA|AA|C{n}\r".encode(),
        "outcome": {"applied": True, "findings": []},
        "patient_ids": (f"PAT{n}",),
        "accessions": (f"ACC{n}",),
    }
    values.update(fields)
    return InboundMessage(**values)


def item(destination: str = "pacs", n: int = 1, patient: str = "", **fields: Any) -> OutboxItem:
    values: dict[str, Any] = {
        "destination": destination,
        "payload": f"MSH|^~\\&|ACCORD|RAD|PACS|RAD|||ORM^O01|OUT{n}|P|2.5.1\r".encode(),
        "control_id": f"OUT{destination}{n}",
        "kind": "orders",
        "patient_key": patient,
    }
    values.update(fields)
    return OutboxItem(**values)
