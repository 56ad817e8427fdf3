"""A partial write at the TCP level never marks an outbox row delivered.

The downstream peer is a real socket server on 127.0.0.1 that takes the whole message
and then resets the connection (RST, ``SO_LINGER`` 0): either before writing any of its
ACK, or after writing part of it. Either way the sender holds no complete ACK whose
MSA-2 matches, so the row stays undelivered and is sent again (same MSH-10); once the
peer answers in full, the row is delivered and marked once. The store is the real
SQLite store.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from accord.clock import SystemClock
from accord.config import Destination
from accord.engine.deliver import Deliverer
from accord.store import OutboxItem, Store, open_store, sqlite_url

pytestmark = pytest.mark.timeout(60)
SB, END = b"\x0b", b"\x1c\x0d"
CLOCK = SystemClock()


def ack(control_id: str) -> bytes:
    return (SB + f"MSH|^~\\&|PACS|RAD|ACCORD|RAD|20260101080000||ACK|A{control_id}|P|2.5.1\r"
            f"MSA|AA|{control_id}\r".encode() + END)


class ResettingPeer:
    """Resets the first ``resets`` connections after reading a whole message, having
    written ``partial`` bytes of the ACK first; answers in full afterwards. Records the
    MSH-10 of every message it read whole."""

    def __init__(self, resets: int, partial: int) -> None:
        self.resets, self.partial = resets, partial
        self.received: list[str] = []
        self.reset_done = threading.Semaphore(0)
        self.go_on = threading.Event()  # the test looked at the store after a reset
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        while True:
            while END not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            frame, buf = buf.split(END, 1)
            cid = frame.lstrip(SB).split(b"\r", 1)[0].split(b"|")[9].decode()
            self.received.append(cid)
            if self.resets > 0:
                self.resets -= 1
                conn.sendall(ack(cid)[:self.partial])
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()  # RST: what was not written never will be
                self.reset_done.release()
                self.go_on.wait(10)
                self.go_on.clear()
                return
            conn.sendall(ack(cid))

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(sqlite_url(tmp_path))
    yield s
    s.close()


@pytest.mark.parametrize("partial", [0, 1, 30, len(ack("R1")) - 1],
                         ids=["before-ack", "start-block-only", "mid-ack", "all-but-end"])
async def test_reset_mid_ack_is_retried_never_marked_delivered(
        store: Store, partial: int) -> None:
    peer = ResettingPeer(resets=3, partial=partial)
    d = Destination.model_validate({
        "name": "pacs", "host": "127.0.0.1", "port": peer.port, "send": ["orders"],
        "connect_timeout": 0.5, "ack_timeout": 0.5, "backoff": {"base": 0.02, "cap": 0.1}})
    with store.transaction() as tx:
        [row_id] = tx.enqueue([OutboxItem(
            destination="pacs", kind="orders", control_id="R1", patient_key="P1",
            payload=b"MSH|^~\\&|ACCORD|RAD|PACS|RAD|20260101080000||ORM^O01|R1|P|2.5.1\r"
                    b"PID|1||P1^^^HOSP^MR||Doe^Test\r")], CLOCK.now())
    deliverer = Deliverer(store, [d], CLOCK, "node-test", idle_poll=0.02)
    await deliverer.start()
    try:
        for _ in range(3):
            assert await asyncio.to_thread(peer.reset_done.acquire, True, 20)
            # The worker has written the message and lost the connection: the row must
            # not be delivered, now or once the worker has handled the failure.
            await asyncio.sleep(0.2)
            assert store.get_outbox(row_id).status != "delivered"
            peer.go_on.set()
        async with asyncio.timeout(20):
            while store.get_outbox(row_id).status != "delivered":
                await asyncio.sleep(0.02)
    finally:
        await deliverer.stop()
        peer.close()
    row = store.get_outbox(row_id)
    assert peer.received == ["R1"] * 4  # resent with the same MSH-10 each time
    assert row.attempts == 4 and deliverer.delivered == 1
    assert row.last_ack is not None and b"MSA|AA|R1" in row.last_ack
