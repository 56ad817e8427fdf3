"""End to end: `accord serve` / `accord demo` as real processes, real sockets, real store."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from accord.demo.traffic import Receiver
from accord.mllp.client import MllpClient
from accord.mllp.tls import client_context
from accord.store import open_store, sqlite_url

SAMPLES = Path(__file__).parent.parent / "samples"
pytestmark = pytest.mark.timeout(120)


async def test_serve_acks_stores_delivers_and_stops_cleanly(
        tmp_path: Path, free_port: Callable[[], int], gateway_config: Callable[..., Path],
        serve: Callable[..., Any]) -> None:
    receiver = Receiver()
    await receiver.start()
    port = free_port()
    proc = serve(gateway_config(tmp_path / "accord.yaml", receiver.port), tmp_path / "d",
                 port)
    try:
        await asyncio.to_thread(proc.start)
        async with MllpClient("127.0.0.1", port) as client:
            for name, cid in (("gateway_adt_a04.hl7", "GW00000001"),
                              ("gateway_orm_o01_nw.hl7", "GW00000003"),
                              ("gateway_oru_r01.hl7", "GW00000006")):
                result = await client.send_message((SAMPLES / name).read_bytes(), cid)
                assert result.code == "AA"
            junk = await client.send(b"not hl7 at all")
            assert b"MSA|AR|" in junk
        await receiver.wait_for(3)
        assert await asyncio.to_thread(proc.terminate) == 0
    finally:
        await receiver.stop()
    assert [m.get("MSH-9") for m in receiver.unique.values()] == [
        "ADT^A04^ADT_A01", "ORM^O01^ORM_O01", "ORU^R01^ORU_R01"]
    out = proc.output()
    assert f"listening: HL7 mllp://127.0.0.1:{port}" in out
    listening = [line for line in out.splitlines() if "listening:" in line]
    assert listening and all("127.0.0.1:" in line for line in listening)
    store = open_store(sqlite_url(tmp_path / "d"))
    try:
        stats = store.stats()
    finally:
        store.close()
    assert (stats["processed"], stats["rejected"], stats["outbox_delivered"]) == (3, 1, 3)


async def test_demo_starts_on_a_fresh_data_dir(
        tmp_path: Path, free_port: Callable[[], int], serve: Callable[..., Any]) -> None:
    config = tmp_path / "empty.yaml"
    config.write_text("{}\n", encoding="utf-8")
    data = tmp_path / "fresh" / "accord-data"
    proc = serve(config, data, free_port(), command="demo")
    await asyncio.to_thread(proc.start)
    store = open_store(sqlite_url(data))
    try:
        async with asyncio.timeout(60):
            while store.stats()["outbox_delivered"] < 3:
                await asyncio.sleep(0.2)
    finally:
        store.close()
    assert await asyncio.to_thread(proc.terminate) == 0
    out = proc.output()
    assert "a simulated RIS sends" in out and "a simulated PACS receives" in out


def test_bad_config_is_one_line_with_key_and_line(tmp_path: Path) -> None:
    config = tmp_path / "accord.yaml"
    config.write_text("destinations:\n  - name: pacs\n    host: 127.0.0.1\n"
                      "    port: twelve\n    send: [orders]\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "accord", "serve", "--config", str(config),
                           "--data", str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "accord: error: destinations[0].port: must be an integer (accord.yaml line 4)"]


async def test_serve_with_tls(tmp_path: Path, free_port: Callable[[], int],
                              serve: Callable[..., Any]) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    config = tmp_path / "tls.yaml"
    config.write_text(f"mllp:\n  tls: {{cert: {cert}, key: {key}}}\n", encoding="utf-8")
    port = free_port()
    proc = serve(config, tmp_path / "d", port)
    await asyncio.to_thread(proc.start)
    ctx = client_context(ca_file=cert)
    raw = (SAMPLES / "gateway_orm_o01_nw.hl7").read_bytes()
    async with MllpClient("127.0.0.1", port, ssl_context=ctx) as client:
        assert (await client.send_message(raw, "GW00000003")).code == "AA"
    assert await asyncio.to_thread(proc.terminate) == 0
    assert f"mllp+tls://127.0.0.1:{port}" in proc.output()
