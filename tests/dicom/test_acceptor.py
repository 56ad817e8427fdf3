"""Accepted associations wait for requests; release, abort and requests work as before."""

from __future__ import annotations

import gc
import time

import pytest
from dicom_support import associate

from accord.dicom.acceptor import AcceptingServer, WaitingAssociation
from accord.dicom.scp import DicomServer


def _accepted(scp: DicomServer) -> list[object]:
    return list(scp._server.active_associations)


def _until_none_left(scp: DicomServer) -> bool:
    deadline = time.monotonic() + 5
    while _accepted(scp) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not _accepted(scp)


def test_an_accepted_association_waits_and_serves_each_request(scp: DicomServer) -> None:
    assoc = associate(scp)
    try:
        assert [type(a) for a in _accepted(scp)] == [WaitingAssociation]
        for _ in range(3):  # one after the other on the same association
            assert assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()
    assert assoc.is_released
    assert _until_none_left(scp)


def test_a_peer_abort_ends_the_accepted_association(scp: DicomServer) -> None:
    assoc = associate(scp)
    accepted = _accepted(scp)
    assert len(accepted) == 1
    assoc.abort()
    assert _until_none_left(scp)
    assert all(a.is_aborted and not a.is_established for a in accepted)


def test_the_server_forces_no_full_collection_between_polls(
        scp: DicomServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """pynetdicom's server collects all garbage every 60 polls; this one leaves it to
    Python."""
    collected: list[object] = []
    monkeypatch.setattr(gc, "collect", lambda *a: collected.append(a) or 0)
    server = scp._server
    assert isinstance(server, AcceptingServer)
    for _ in range(200):
        server.service_actions()
    assert collected == []
