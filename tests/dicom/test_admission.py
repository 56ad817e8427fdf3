"""Tests for accord.dicom.admission: real pynetdicom SCUs against the SCP's gate."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from dicom_support import Department, SqliteMppsSink, serve
from pynetdicom import AE

from accord.dicom.admission import GateSettings
from accord.dicom.scp import MODALITY_WORKLIST_FIND, VERIFICATION, DicomServer
from accord.mllp.admission import parse_networks

WAIT = 10.0  # bound for what happens "promptly"; never a timing assert


def _request(server: DicomServer, calling: str, bind: str = "127.0.0.1") -> Any:
    ae = AE(ae_title=calling)
    for uid in (MODALITY_WORKLIST_FIND, VERIFICATION):
        ae.add_requested_context(uid)
    ae.acse_timeout = ae.network_timeout = WAIT
    return ae.associate("127.0.0.1", server.port, ae_title="ACCORD",
                        bind_address=(bind, 0))


def _rejection(assoc: Any) -> tuple[int, int, int]:
    assert assoc.is_rejected, "expected an A-ASSOCIATE-RJ"
    rj = assoc.acceptor.primitive
    return (rj.result, rj.result_source, rj.diagnostic)


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


@pytest.fixture
def gated(dept: Department, sink: SqliteMppsSink) -> Iterator[Callable[..., DicomServer]]:
    servers: list[DicomServer] = []

    def start(**gate: Any) -> DicomServer:
        server = serve(dept, sink, gate=GateSettings(**gate))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _counters(server: DicomServer) -> dict[str, tuple[int, int, int]]:
    return {c.address: (c.denied, c.refused, c.open) for c in server.gate.peers()}


def test_associations_per_calling_ae_are_limited(gated: Callable[..., DicomServer]) -> None:
    server = gated(max_per_ae=2)
    held = [_request(server, "CT1") for _ in range(2)]
    assert all(a.is_established for a in held)
    third = _request(server, "CT1")
    assert _rejection(third) == (0x02, 0x03, 0x02)  # transient, local limit exceeded
    other = _request(server, "MR1")
    assert other.is_established
    held[0].release()
    _until(lambda: _request_ok(server, "CT1"))
    for a in (held[1], other):
        a.release()


def _request_ok(server: DicomServer, calling: str) -> bool:
    assoc = _request(server, calling)
    if assoc.is_established:
        assoc.release()
        return True
    return False


def test_associations_per_address_are_limited(gated: Callable[..., DicomServer]) -> None:
    server = gated(max_per_peer=2, max_per_ae=10)
    held = [_request(server, f"CT{n}") for n in range(2)]
    assert all(a.is_established for a in held)
    assert _rejection(_request(server, "CT9")) == (0x02, 0x03, 0x02)
    elsewhere = _request(server, "CT9", bind="127.0.0.2")
    assert elsewhere.is_established
    assert _counters(server)["127.0.0.1"][1] == 1
    for a in (*held, elsewhere):
        a.release()


def test_unknown_calling_ae_is_refused_when_ae_listing_is_on(
    gated: Callable[..., DicomServer],
) -> None:
    server = gated(allowed_calling_aes=("CT1", "MR1"))
    assert _rejection(_request(server, "ROGUE")) == (0x01, 0x01, 0x03)
    known = _request(server, "CT1")
    assert known.is_established
    known.release()
    assert _counters(server)["127.0.0.1"][0] == 1


def test_address_outside_the_allow_list_is_closed_unread(
    gated: Callable[..., DicomServer],
) -> None:
    server = gated(allowed_addresses=parse_networks(["127.0.0.2"]))
    outsider = _request(server, "CT1")
    assert not outsider.is_established and not outsider.is_rejected
    inside = _request(server, "CT1", bind="127.0.0.2")
    assert inside.is_established
    inside.release()
    assert _counters(server)["127.0.0.1"][0] == 1


def test_an_idle_association_is_released(gated: Callable[..., DicomServer]) -> None:
    server = gated(idle_timeout=0.3)
    assoc = _request(server, "CT1")
    assert assoc.is_established
    _until(lambda: assoc.is_released or assoc.is_aborted)
    assert assoc.is_released  # an A-RELEASE, not an abort
    _until(lambda: [c.silent for c in server.gate.peers()] == [1])
    _until(lambda: _counters(server)["127.0.0.1"][2] == 0)
