"""Tests for accord.mllp.server over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest

from accord.mllp.server import MllpLimits, MllpServer, PeerInfo, format_subject

from .conftest import WAIT, Peer, ServeFactory

SB, END = b"\x0b", b"\x1c\r"


async def test_echo_and_peer_info(serve: ServeFactory) -> None:
    seen: list[PeerInfo] = []

    async def handler(payload: bytes, peer: PeerInfo) -> bytes:
        seen.append(peer)
        return b"ACK " + payload

    server = await serve(handler)
    assert server.port != 0
    peer = await Peer.open(server.port)
    await peer.send(b"MSH|one")
    assert await peer.reply() == b"ACK MSH|one"
    await peer.close()
    assert seen[0].host == "127.0.0.1" and not seen[0].tls and seen[0].client_subject is None
    assert server.stats.messages == 1 and server.stats.accepted == 1


async def test_handler_returning_none_sends_nothing(serve: ServeFactory) -> None:
    async def handler(payload: bytes, peer: PeerInfo) -> bytes | None:
        return None if payload == b"quiet" else payload

    server = await serve(handler)
    peer = await Peer.open(server.port)
    await peer.send(b"quiet", b"loud")
    assert await peer.reply() == b"loud"
    await peer.close()


async def test_pipelined_frames_are_answered_one_at_a_time_in_order(
    serve: ServeFactory,
) -> None:
    active, most = 0, 0

    async def handler(payload: bytes, peer: PeerInfo) -> bytes:
        nonlocal active, most
        active += 1
        most = max(most, active)
        await asyncio.sleep(0.01)
        active -= 1
        return payload.upper()

    server = await serve(handler)
    peer = await Peer.open(server.port)
    await peer.send(*(b"m%d" % i for i in range(10)))
    assert [await peer.reply() for _ in range(10)] == [b"M%d" % i for i in range(10)]
    assert most == 1
    await peer.close()


async def test_fifty_concurrent_connections(serve: ServeFactory) -> None:
    server = await serve(limits=MllpLimits(max_connections=60, max_per_peer=60))

    async def client(n: int) -> list[bytes | None]:
        peer = await Peer.open(server.port)
        replies = []
        for i in range(5):
            await peer.send(b"c%d-%d" % (n, i))
            replies.append(await peer.reply())
        await peer.close()
        return replies

    results = await asyncio.gather(*(client(n) for n in range(50)))
    for n, replies in enumerate(results):
        assert replies == [b"ECHO:c%d-%d" % (n, i) for i in range(5)]
    assert server.stats.messages == 250
    assert server.stats.accepted == 50


async def test_max_connections_refuses_promptly(serve: ServeFactory) -> None:
    server = await serve(limits=MllpLimits(max_connections=2))
    first, second = await Peer.open(server.port), await Peer.open(server.port)
    await first.send(b"a")
    await second.send(b"b")
    assert await first.reply() == b"ECHO:a" and await second.reply() == b"ECHO:b"
    third = await Peer.open(server.port)
    assert await third.is_closed_by_server()
    assert server.stats.refused == 1
    await first.close()
    fourth = await _open_when_admitted(server)
    await fourth.close()
    await second.close()


async def _open_when_admitted(server: MllpServer) -> Peer:
    """The server learns about a client's close asynchronously: retry until admitted."""
    async with asyncio.timeout(WAIT):
        while True:
            peer = await Peer.open(server.port)
            await peer.send(b"again")
            if await peer.reply() == b"ECHO:again":
                return peer
            await asyncio.sleep(0.05)


async def test_max_per_peer_counts_by_address(serve: ServeFactory) -> None:
    server = await serve(limits=MllpLimits(max_connections=10, max_per_peer=2))
    a1 = await Peer.open(server.port, local_host="127.0.0.1")
    a2 = await Peer.open(server.port, local_host="127.0.0.1")
    for p in (a1, a2):
        await p.send(b"x")
        assert await p.reply() == b"ECHO:x"
    a3 = await Peer.open(server.port, local_host="127.0.0.1")
    assert await a3.is_closed_by_server()
    other = await Peer.open(server.port, local_host="127.0.0.2")
    await other.send(b"y")
    assert await other.reply() == b"ECHO:y"
    assert server.stats.refused == 1
    for p in (a1, a2, other):
        await p.close()


async def test_idle_timeout_closes(serve: ServeFactory) -> None:
    server = await serve(limits=MllpLimits(idle_timeout=0.2))
    peer = await Peer.open(server.port)
    await peer.send(b"hello")
    assert await peer.reply() == b"ECHO:hello"
    assert await peer.is_closed_by_server()
    assert server.stats.idle_timeouts == 1 and server.stats.frame_timeouts == 0


async def test_frame_deadline_closes_a_trickling_frame(serve: ServeFactory) -> None:
    server = await serve(limits=MllpLimits(idle_timeout=5.0, frame_deadline=0.3))
    peer = await Peer.open(server.port)
    await peer.write(SB + b"MSH|")

    async def trickle() -> None:
        for _ in range(100):  # a byte every 50 ms: never idle, never finished
            await asyncio.sleep(0.05)
            try:
                await peer.write(b"x")
            except ConnectionError:
                return

    trickler = asyncio.create_task(trickle())
    assert await peer.is_closed_by_server()
    trickler.cancel()
    assert server.stats.frame_timeouts == 1 and server.stats.idle_timeouts == 0


async def test_oversize_gets_the_on_oversize_answer_and_connection_goes_on(
    serve: ServeFactory,
) -> None:
    sizes: list[int] = []

    async def on_oversize(size: int, peer: PeerInfo) -> bytes:
        sizes.append(size)
        return b"AR too big"

    server = await serve(limits=MllpLimits(max_message_bytes=100), on_oversize=on_oversize)
    peer = await Peer.open(server.port)
    await peer.send(b"x" * 5000, b"small")
    assert await peer.reply() == b"AR too big"
    assert await peer.reply() == b"ECHO:small"
    assert sizes == [5000] and server.stats.oversize == 1
    await peer.close()


async def test_oversize_without_callback_closes(serve: ServeFactory) -> None:
    server = await serve(limits=MllpLimits(max_message_bytes=100))
    peer = await Peer.open(server.port)
    await peer.send(b"x" * 500)
    assert await peer.is_closed_by_server()


async def test_empty_frame_gets_the_on_empty_answer(serve: ServeFactory) -> None:
    async def on_empty(peer: PeerInfo) -> bytes:
        return b"AR empty"

    server = await serve(on_empty=on_empty)
    peer = await Peer.open(server.port)
    await peer.send(b"", b"next")
    assert await peer.reply() == b"AR empty"
    assert await peer.reply() == b"ECHO:next"
    assert server.stats.empty == 1
    await peer.close()


async def test_empty_frame_without_callback_closes(serve: ServeFactory) -> None:
    server = await serve()
    peer = await Peer.open(server.port)
    await peer.send(b"")
    assert await peer.is_closed_by_server()


async def test_junk_and_newlines_between_frames_are_skipped(serve: ServeFactory) -> None:
    server = await serve()
    peer = await Peer.open(server.port)
    await peer.write(b"garbage" + SB + b"one" + END + b"\r\n" + SB + b"two" + END)
    assert await peer.reply() == b"ECHO:one"
    assert await peer.reply() == b"ECHO:two"
    assert server.stats.junk_bytes == 7
    await peer.close()


async def test_handler_error_closes_without_answer(serve: ServeFactory) -> None:
    async def handler(payload: bytes, peer: PeerInfo) -> bytes:
        if payload == b"boom":
            raise RuntimeError("bug")
        return payload

    server = await serve(handler)
    bad = await Peer.open(server.port)
    await bad.send(b"boom")
    assert await bad.is_closed_by_server()
    good = await Peer.open(server.port)
    await good.send(b"fine")
    assert await good.reply() == b"fine"
    assert server.stats.handler_errors == 1
    await good.close()


async def test_truncated_frame_is_counted(serve: ServeFactory) -> None:
    server = await serve()
    peer = await Peer.open(server.port)
    await peer.write(SB + b"MSH|half")
    peer.writer.write_eof()
    assert await peer.is_closed_by_server()
    async with asyncio.timeout(WAIT):
        while server.stats.truncated != 1:
            await asyncio.sleep(0.01)


async def test_stop_lets_the_handler_in_flight_answer(serve: ServeFactory) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def handler(payload: bytes, peer: PeerInfo) -> bytes:
        entered.set()
        await release.wait()
        return b"done " + payload

    server = await serve(handler)
    busy, idle = await Peer.open(server.port), await Peer.open(server.port)
    await busy.send(b"m1")
    await entered.wait()
    stopping = asyncio.create_task(server.stop())
    assert await idle.is_closed_by_server()  # idle connections go at once
    release.set()
    assert await busy.reply() == b"done m1"
    assert await busy.is_closed_by_server()
    await stopping
    with pytest.raises(OSError):
        await Peer.open(server.port)
    assert server.stats.open == 0


async def test_stop_is_bounded_by_the_grace(serve: ServeFactory) -> None:
    async def stuck(payload: bytes, peer: PeerInfo) -> bytes:
        await asyncio.Event().wait()
        return b""

    server = await serve(stuck, limits=MllpLimits(shutdown_grace=0.2))
    peer = await Peer.open(server.port)
    await peer.send(b"m")
    async with asyncio.timeout(WAIT):
        while server.stats.messages != 1:
            await asyncio.sleep(0.01)
        await server.stop()
    assert await peer.is_closed_by_server()
    assert server.stats.open == 0


async def test_stop_before_start_and_twice() -> None:
    server = MllpServer(lambda p, i: asyncio.sleep(0, p), port=0)
    await server.stop()
    await server.start()
    await server.stop()
    await server.stop()


def test_limits_defaults_and_validation() -> None:
    limits = MllpLimits()
    assert (limits.max_message_bytes, limits.frame_deadline, limits.idle_timeout,
            limits.max_connections, limits.max_per_peer) == (10 * 1024 * 1024, 30.0, 300.0,
                                                               100, 20)
    with pytest.raises(ValueError):
        MllpLimits(max_per_peer=0)


def test_format_subject() -> None:
    cert = {"subject": ((("commonName", "ris"),), (("organizationName", "Hospital"),))}
    assert format_subject(cert) == "CN=ris,O=Hospital"
    assert format_subject({}) is None
    assert format_subject(None) is None


async def test_unframeable_answer_is_a_handler_error(serve: ServeFactory) -> None:
    async def handler(payload: bytes, peer: PeerInfo) -> bytes:
        return b"MSA|AA\x1c\rrest"  # holds the end block: cannot be sent as one block

    server = await serve(handler)
    peer = await Peer.open(server.port)
    await peer.send(b"m")
    assert await peer.is_closed_by_server()
    assert server.stats.handler_errors == 1
