"""Tests for accord.mllp.client against a scripted fake receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from accord.errors import DeliveryError
from accord.mllp.client import AckMismatchError, MllpClient
from accord.mllp.framing import Frame, Framer
from accord.mllp.tls import client_context, server_context

from .conftest import WAIT, Certs, ServeFactory


def message(control_id: str) -> bytes:
    return (f"MSH|^~\\&|ACCORD|HOSP|RIS|HOSP|20260101120000||ORM^O01|{control_id}|P|2.5.1\r"
            f"ORC|SC|P1|F1||IP\r").encode()


def ack(control_id: str, code: str = "AA", text: str = "") -> bytes:
    return (f"MSH|^~\\&|RIS|HOSP|ACCORD|HOSP|20260101120001||ACK^O01|A-{control_id}|P|2.5.1\r"
            f"MSA|{code}|{control_id}|{text}\r").encode()


def control_id_of(payload: bytes) -> str:
    return payload.split(b"\r")[0].split(b"|")[9].decode()


# What the receiver does with message n (0-based, over all connections) of connection c:
# returns (delay in seconds, replies to send; a float among them is a pause in seconds).
Script = Callable[[int, int, bytes], Awaitable[tuple[float, list[bytes | float]]]]


@dataclass
class Receiver:
    """A fake downstream system: answers per a script, records what it saw."""

    script: Script
    port: int = 0
    connections: int = 0
    received: list[tuple[int, str]] = field(default_factory=list)  # (connection, MSH-10)
    replies_written: int = 0
    closed_by_client: int = 0
    server: asyncio.Server | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.append(task)
        self.writers.append(writer)
        conn = self.connections
        self.connections += 1
        framer = Framer()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    self.closed_by_client += 1
                    return
                framer.receive_data(data)
                while (event := framer.next_event()) is not None:
                    if isinstance(event, Frame):
                        await self._answer(conn, event.payload, writer)
        except ConnectionError:
            self.closed_by_client += 1
        finally:
            writer.close()

    async def _answer(self, conn: int, payload: bytes, writer: asyncio.StreamWriter) -> None:
        self.received.append((conn, control_id_of(payload)))
        delay, replies = await self.script(conn, len(self.received) - 1, payload)
        if delay:
            await asyncio.sleep(delay)
        for reply in replies:
            if isinstance(reply, float):
                await asyncio.sleep(reply)
                continue
            writer.write(Framer.frame(reply))
            await writer.drain()
            self.replies_written += 1


@pytest.fixture
async def receiver() -> AsyncIterator[Callable[[Script], Awaitable[Receiver]]]:
    started: list[Receiver] = []

    async def start(script: Script) -> Receiver:
        rcv = Receiver(script)
        rcv.server = await asyncio.start_server(rcv.handle, "127.0.0.1", 0)
        rcv.port = rcv.server.sockets[0].getsockname()[1]
        started.append(rcv)
        return rcv

    yield start
    for rcv in started:
        assert rcv.server is not None
        rcv.server.close()
        for writer in rcv.writers:
            writer.transport.abort()
        if rcv.tasks:
            await asyncio.wait(rcv.tasks, timeout=WAIT)


async def answer_aa(conn: int, n: int, payload: bytes) -> tuple[float, list[bytes | float]]:
    return 0.0, [ack(control_id_of(payload))]


async def test_aa(receiver: Callable[[Script], Awaitable[Receiver]]) -> None:
    rcv = await receiver(answer_aa)
    async with MllpClient("127.0.0.1", rcv.port) as client:
        result = await client.send_message(message("C1"), "C1")
        assert (result.code, result.control_id, result.accepted) == ("AA", "C1", True)
        assert result.ack == ack("C1") and result.latency >= 0
        second = await client.send_message(message("C2"), "C2")
        assert second.control_id == "C2"
        assert client.connections == 1
    assert rcv.received == [(0, "C1"), (0, "C2")]


@pytest.mark.parametrize("code", ["AE", "AR", "CE", "CR"])
async def test_negative_acks_are_surfaced(
    receiver: Callable[[Script], Awaitable[Receiver]], code: str
) -> None:
    async def negative(conn: int, n: int, payload: bytes) -> tuple[float, list[bytes | float]]:
        return 0.0, [ack(control_id_of(payload), code, "unknown order")]

    rcv = await receiver(negative)
    async with MllpClient("127.0.0.1", rcv.port) as client:
        result = await client.send_message(message("N1"), "N1")
    assert (result.code, result.text, result.accepted) == (code, "unknown order", False)


async def test_err_segment_text_is_used_when_msa_3_is_empty(
    receiver: Callable[[Script], Awaitable[Receiver]],
) -> None:
    async def with_err(conn: int, n: int, payload: bytes) -> tuple[float, list[bytes | float]]:
        return 0.0, [ack(control_id_of(payload), "AE") + b"ERR||PID^1^3|101|E||||PID-3 missing\r"]

    rcv = await receiver(with_err)
    async with MllpClient("127.0.0.1", rcv.port) as client:
        result = await client.send_message(message("E1"), "E1")
    assert (result.code, result.text) == ("AE", "PID-3 missing")


async def test_ack_timeout_raises_and_closes(
    receiver: Callable[[Script], Awaitable[Receiver]],
) -> None:
    async def silent(conn: int, n: int, payload: bytes) -> tuple[float, list[bytes | float]]:
        return 0.0, []

    rcv = await receiver(silent)
    client = MllpClient("127.0.0.1", rcv.port, ack_timeout=0.2)
    with pytest.raises(DeliveryError, match="no ACK"):
        await client.send_message(message("T1"), "T1")
    assert not client.connected
    async with asyncio.timeout(WAIT):
        while rcv.closed_by_client != 1:
            await asyncio.sleep(0.01)


async def test_late_ack_is_never_taken_for_the_next_message(
    receiver: Callable[[Script], Awaitable[Receiver]],
) -> None:
    async def slow_first(conn: int, n: int, payload: bytes) -> tuple[float, list[bytes | float]]:
        return (0.5 if n == 0 else 0.0), [ack(control_id_of(payload))]

    rcv = await receiver(slow_first)
    client = MllpClient("127.0.0.1", rcv.port, ack_timeout=0.2)
    with pytest.raises(DeliveryError):
        await client.send_message(message("L1"), "L1")
    await asyncio.sleep(0.5)  # the late ACK for L1 is now written (or refused) by the receiver
    result = await client.send_message(message("L2"), "L2")
    assert (result.code, result.control_id) == ("AA", "L2")
    assert client.connections == 2
    assert rcv.received == [(0, "L1"), (1, "L2")]
    await client.close()


async def test_extra_ack_left_on_the_connection_is_a_mismatch(
    receiver: Callable[[Script], Awaitable[Receiver]],
) -> None:
    async def twice(conn: int, n: int, payload: bytes) -> tuple[float, list[bytes | float]]:
        cid = control_id_of(payload)
        # The duplicate comes after the client has taken the first ACK and returned.
        return 0.0, [ack(cid), 0.1, ack(cid)] if n == 0 else [ack(cid)]

    rcv = await receiver(twice)
    client = MllpClient("127.0.0.1", rcv.port)
    assert (await client.send_message(message("D1"), "D1")).control_id == "D1"
    async with asyncio.timeout(WAIT):
        while rcv.replies_written < 2:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # let the duplicate reach the client's socket buffer
    with pytest.raises(AckMismatchError) as info:
        await client.send_message(message("D2"), "D2")
    assert (info.value.expected, info.value.received) == ("D2", "D1")
    assert not client.connected
    assert (await client.send_message(message("D3"), "D3")).control_id == "D3"
    await client.close()


async def test_wrong_msa_2_is_a_mismatch_never_success(
    receiver: Callable[[Script], Awaitable[Receiver]],
) -> None:
    async def wrong(conn: int, n: int, payload: bytes) -> tuple[float, list[bytes | float]]:
        return 0.0, [ack("SOMETHING-ELSE")]

    rcv = await receiver(wrong)
    client = MllpClient("127.0.0.1", rcv.port)
    with pytest.raises(AckMismatchError) as info:
        await client.send_message(message("W1"), "W1")
    assert isinstance(info.value, DeliveryError)
    assert info.value.received == "SOMETHING-ELSE" and info.value.ack == ack("SOMETHING-ELSE")
    assert not client.connected
    await client.close()


async def test_unparseable_ack_is_a_mismatch(
    receiver: Callable[[Script], Awaitable[Receiver]],
) -> None:
    async def garbage(conn: int, n: int, payload: bytes) -> tuple[float, list[bytes | float]]:
        return 0.0, [b"this is not HL7"]

    rcv = await receiver(garbage)
    async with MllpClient("127.0.0.1", rcv.port) as client:
        with pytest.raises(AckMismatchError, match="unparseable"):
            await client.send_message(message("G1"), "G1")


async def test_unknown_msa_1_is_a_mismatch(
    receiver: Callable[[Script], Awaitable[Receiver]],
) -> None:
    async def odd(conn: int, n: int, payload: bytes) -> tuple[float, list[bytes | float]]:
        return 0.0, [ack(control_id_of(payload), "ZZ")]

    rcv = await receiver(odd)
    async with MllpClient("127.0.0.1", rcv.port) as client:
        with pytest.raises(AckMismatchError, match="MSA-1"):
            await client.send_message(message("Z1"), "Z1")


async def test_receiver_closing_without_answer(
    receiver: Callable[[Script], Awaitable[Receiver]],
) -> None:
    async def hang_up(conn: int, n: int, payload: bytes) -> tuple[float, list[bytes | float]]:
        raise ConnectionResetError

    rcv = await receiver(hang_up)
    async with MllpClient("127.0.0.1", rcv.port) as client:
        with pytest.raises(DeliveryError, match="closed the connection"):
            await client.send(message("H1"))


async def test_reconnects_after_the_receiver_closed_an_idle_connection(
    serve: ServeFactory,
) -> None:
    from accord.mllp.server import MllpLimits, PeerInfo

    async def handler(payload: bytes, peer: PeerInfo) -> bytes:
        return ack(control_id_of(payload))

    server = await serve(handler, limits=MllpLimits(idle_timeout=0.1))
    async with MllpClient("127.0.0.1", server.port) as client:
        await client.send_message(message("R1"), "R1")
        async with asyncio.timeout(WAIT):
            while server.stats.idle_timeouts < 1:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        assert (await client.send_message(message("R2"), "R2")).code == "AA"
        assert client.connections == 2


async def test_connection_refused_is_a_delivery_error() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    client = MllpClient("127.0.0.1", port, connect_timeout=2)
    with pytest.raises(DeliveryError, match="cannot connect"):
        await client.send(message("X"))


async def test_payload_holding_the_end_block_is_refused() -> None:
    client = MllpClient("127.0.0.1", 9)
    with pytest.raises(DeliveryError, match="end block"):
        await client.send(b"MSH|a\x1c\rb")


async def test_concurrent_sends_are_serialised(
    receiver: Callable[[Script], Awaitable[Receiver]],
) -> None:
    rcv = await receiver(answer_aa)
    async with MllpClient("127.0.0.1", rcv.port) as client:
        ids = [f"S{i}" for i in range(8)]
        results = await asyncio.gather(*(client.send_message(message(i), i) for i in ids))
    assert [r.control_id for r in results] == ids
    assert client.connections == 1


async def test_over_tls(serve: ServeFactory, certs: Certs) -> None:
    from accord.mllp.server import PeerInfo

    async def handler(payload: bytes, peer: PeerInfo) -> bytes:
        return ack(control_id_of(payload))

    server = await serve(handler, ssl_context=server_context(certs.server_cert, certs.server_key))
    ctx = client_context(ca_file=certs.ca)
    async with MllpClient("127.0.0.1", server.port, ssl_context=ctx) as client:
        assert (await client.send_message(message("S1"), "S1")).code == "AA"
    bad = MllpClient("127.0.0.1", server.port, ssl_context=client_context())
    with pytest.raises(DeliveryError, match="cannot connect"):
        await bad.send(message("S2"))
