"""``GET /metrics`` (accord.web.metrics): a running engine receives messages over MLLP
and delivers to a simulated PACS; the Prometheus text then counts them per interface and
destination, with ACK and delivery latency histograms and the queue depth."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from web_support import API_TOKEN, bearer, config, sample

from accord.demo.traffic import Receiver
from accord.mllp.client import MllpClient
from accord.runtime import build
from accord.web.metrics import ack_code

SENT = ("web_adt_a04_alice.hl7", "web_orm_o01_alice_ct.hl7", "web_orm_o01_no_pid3.hl7",
        "web_not_hl7.hl7", "web_adt_a04_alice.hl7")  # the last: a resend (duplicate)


def _values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def _run(data: Path) -> tuple[str, int, int]:
    pacs = Receiver()
    await pacs.start()
    cfg = config(data)
    dest = cfg.destinations[0].model_copy(update={"port": pacs.port})
    rt = build(cfg.model_copy(update={"destinations": (dest,)}))
    await rt.start()
    try:
        assert rt.http is not None
        async with MllpClient("127.0.0.1", rt.mllp_port, ack_timeout=10) as client:
            for name in SENT:
                raw = sample(name)
                control_id = raw.split(b"|")[9].decode() if raw.startswith(b"MSH") else "x"
                if control_id == "x":
                    await client.send(raw)  # not HL7: answered AR, no MSA-2 to match
                else:
                    await client.send_message(raw, control_id)
        for _ in range(200):  # until the simulated PACS has the ADT and the ORM
            if len(pacs.unique) >= 2:
                break
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.http.port}") as http:
            anonymous = (await http.get("/metrics")).status_code
            assert (await http.get("/api/stats", headers=bearer(API_TOKEN))).status_code == 200
            r = await http.get("/metrics", headers=bearer(API_TOKEN))
            return r.text, r.status_code, anonymous
    finally:
        await rt.stop()
        await pacs.stop()


def test_metrics_count_per_interface_and_destination(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCORD_API_TOKEN", API_TOKEN)
    text, status, anonymous = asyncio.run(_run(tmp_path))
    assert (status, anonymous) == (200, 401)
    v = _values(text)
    mllp = (("interface", "mllp"),)
    assert v[("accord_messages_received_total", mllp)] == 5
    assert v[("accord_messages_accepted_total", mllp)] == 3  # the duplicate is answered AA
    assert v[("accord_messages_errored_total", mllp)] == 1
    assert v[("accord_messages_rejected_total", mllp)] == 1
    assert v[("accord_messages_duplicate_total", mllp)] == 1
    assert v[("accord_ack_latency_seconds_count", mllp)] == 5
    pacs = (("destination", "pacs"),)
    assert v[("accord_delivered_total", pacs)] >= 2
    assert v[("accord_delivery_latency_seconds_count", pacs)] >= 2
    assert ("accord_queue_depth", pacs) in v and ("accord_queue_errors", pacs) in v
    assert v[("accord_http_request_seconds_count", (("route", "/api/stats"),))] == 1
    assert (v[("accord_apply_backlog", ())], v[("accord_apply_backlog_oldest_seconds", ())]) \
        == (0, 0)  # original mode, ``mllp.ack: on_apply``: nothing waits
    assert v[("accord_messages_applied_total", ())] == 0
    assert "WEBTEST" not in text and "WEBA1" not in text  # labels carry no patient data


def test_ack_code_reads_msa_1() -> None:
    assert ack_code(b"MSH|^~\\&|A|B|C|D|20260302||ACK|1|P|2.5.1\rMSA|AE|X1\r") == "AE"
    assert ack_code(b"MSH|^~\\&|A\rMSA#AR#X\r") == "AR"
    assert ack_code(b"no ack here") == ""
    # MSH-10 holding the letters MSA is not the MSA segment.
    assert ack_code(b"MSH|^~\\&|A|B|C|D|20261207||ACK|7TMSA|P|2.5.1\rMSA|AR|X\r") == "AR"
    assert ack_code(b"MSH|^~\\&|A|B|C|D|20261207||ACK|7TMSA|P|2.5.1\nMSA|AE|X\n") == "AE"
