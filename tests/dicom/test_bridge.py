"""The running DICOM bridge (``DicomBridge``) as the runtime builds it on a real SQLite
store: it listens on the configured port and starts its background jobs (worklist
housekeeping always, PACS reconciliation only when a PACS is named); a port it cannot
bind raises (the runtime turns it into one line) and starts no job."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from accord.config import load_config
from accord.dicom.bridge import DicomBridge
from accord.runtime import Runtime, build

PACS = "  pacs: {host: 127.0.0.1, port: 9, ae_title: PACS, timeout: 1}\n"


def _runtime(tmp_path: Path, dicom_port: int = 0, pacs: bool = False) -> Runtime:
    path = tmp_path / "accord.yaml"
    path.write_text(
        f"mllp: {{port: 0}}\nhttp: {{port: 0}}\nstore: {{data_dir: {tmp_path / 'data'}}}\n"
        f"dicom:\n  port: {dicom_port}\n" + (PACS if pacs else ""), encoding="utf-8")
    return build(load_config(path))


async def _jobs_of(bridge: DicomBridge) -> list[str]:
    """Start ``bridge``; the names of the jobs it started (then cancelled)."""
    jobs = await bridge.start(lambda: None, "node-a")
    for job in jobs:
        job.cancel()
    await asyncio.gather(*jobs, return_exceptions=True)
    return sorted(job.get_name() for job in jobs)


async def test_listens_and_keeps_the_worklist(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    assert rt.bridge is not None
    try:
        assert await _jobs_of(rt.bridge) == ["accord-worklist"]
        assert rt.bridge.server is not None and rt.dicom_port > 0
    finally:
        rt.bridge.stop()
        rt.store.close()


async def test_reconciles_only_when_a_pacs_is_named(tmp_path: Path) -> None:
    rt = _runtime(tmp_path, pacs=True)
    assert rt.bridge is not None
    try:
        assert await _jobs_of(rt.bridge) == ["accord-reconcile", "accord-worklist"]
    finally:
        rt.bridge.stop()
        rt.store.close()


async def test_a_port_in_use_raises_and_starts_no_job(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        rt = _runtime(tmp_path, dicom_port=taken.getsockname()[1])
        assert rt.bridge is not None
        try:
            with pytest.raises(OSError):
                await rt.bridge.start(lambda: None, "node-a")
            assert rt.bridge.server is None and rt.dicom_port == 0
            assert not [t for t in asyncio.all_tasks() if t.get_name() == "accord-worklist"]
        finally:
            rt.bridge.stop()
            rt.store.close()


def test_no_bridge_without_the_workflow(tmp_path: Path) -> None:
    path = tmp_path / "accord.yaml"
    path.write_text(f"workflow: {{enabled: false}}\nstore: {{data_dir: {tmp_path}}}\n",
                    encoding="utf-8")
    rt = build(load_config(path))
    try:
        assert rt.bridge is None
    finally:
        rt.store.close()
