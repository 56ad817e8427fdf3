"""Accepted associations wait for requests; release, abort and requests work as before;
an idle association's threads wait rather than poll, and leave no descriptor behind."""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from dicom_support import associate

from accord.dicom.acceptor import AcceptingServer, WaitingAssociation, WaitingDUL
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


def _counting(calls: list[int], method: Callable[..., Any]) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return method(*args, **kwargs)
    return counted


def test_an_idle_association_waits_instead_of_polling(scp: DicomServer) -> None:
    """pynetdicom's threads look at the socket and the request queue every few
    milliseconds (hundreds of looks in half a second); these look when woken, and at
    most every ``DUL_WAIT`` / ``WAIT`` seconds otherwise."""
    assoc = associate(scp)
    try:
        (accepted,) = _accepted(scp)
        assert isinstance(accepted, WaitingAssociation)
        assert isinstance(accepted.dul, WaitingDUL)
        assert assoc.send_c_echo().Status == 0x0000
        looks, requests = [0], [0]
        accepted.dul._is_transport_event = _counting(  # type: ignore[method-assign]
            looks, accepted.dul._is_transport_event)
        accepted._next_request = _counting(  # type: ignore[method-assign]
            requests, accepted._next_request)
        time.sleep(0.6)
        assert looks[0] <= 3 and requests[0] <= 6
        assert assoc.send_c_echo().Status == 0x0000  # still answered when it comes
        assert looks[0] >= 1 and requests[0] >= 1
    finally:
        assoc.release()
    assert assoc.is_released
    assert _until_none_left(scp)


def _descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc (Linux)")
def test_an_ended_association_leaves_no_descriptor_open(scp: DicomServer) -> None:
    gc.collect()  # what earlier tests left unreferenced is closed before counting
    before = _descriptors()
    for _ in range(3):
        assoc = associate(scp)
        (accepted,) = _accepted(scp)
        assert assoc.send_c_echo().Status == 0x0000
        assoc.release()
        accepted.dul.join(5)
        accepted.join(5)
        assert isinstance(accepted, threading.Thread)
        assert not accepted.is_alive() and not accepted.dul.is_alive()
    assert _until_none_left(scp)
    assert _descriptors() <= before
