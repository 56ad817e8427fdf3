"""Tests for accord.mllp.server over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from accord.mllp.admission import parse_networks
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


async def test_full_listener_sheds_the_connection_idle_longest(serve: ServeFactory) -> None:
    server = await serve(limits=MllpLimits(max_connections=2))
    first, second = await Peer.open(server.port), await Peer.open(server.port)
    for p in (first, second):
        await p.send(b"a")
        assert await p.reply() == b"ECHO:a"
    await second.send(b"b")  # first is now the one idle longest
    assert await second.reply() == b"ECHO:b"
    third = await Peer.open(server.port)
    await third.send(b"c")
    assert await third.reply() == b"ECHO:c"
    assert await first.is_closed_by_server()
    await second.send(b"d")
    assert await second.reply() == b"ECHO:d"
    assert (server.stats.shed, server.stats.refused, server.stats.open) == (1, 0, 2)
    assert server.peers()[0].shed == 1
    for p in (second, third):
        await p.close()


async def test_full_listener_sheds_never_spoke_before_established(
    serve: ServeFactory,
) -> None:
    server = await serve(limits=MllpLimits(max_connections=2))
    established = await Peer.open(server.port)
    await established.send(b"a")
    assert await established.reply() == b"ECHO:a"
    silent = await Peer.open(server.port)  # newer, but has never sent a message
    await _until(lambda: server.stats.open == 2)
    newcomer = await Peer.open(server.port)
    await newcomer.send(b"n")
    assert await newcomer.reply() == b"ECHO:n"
    assert await silent.is_closed_by_server()
    await established.send(b"b")
    assert await established.reply() == b"ECHO:b"
    for p in (established, newcomer):
        await p.close()


async def test_full_listener_refuses_only_when_every_connection_is_busy(
    serve: ServeFactory,
) -> None:
    release = asyncio.Event()

    async def slow(payload: bytes, peer: PeerInfo) -> bytes:
        await release.wait()
        return payload

    server = await serve(slow, limits=MllpLimits(max_connections=2))
    busy = [await Peer.open(server.port) for _ in range(2)]
    for p in busy:
        await p.send(b"m")
    await _until(lambda: server.stats.messages == 2)
    third = await Peer.open(server.port)
    assert await third.is_closed_by_server()
    assert (server.stats.refused, server.stats.shed) == (1, 0)
    release.set()
    for p in busy:
        assert await p.reply() == b"m"
        await p.close()


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0.01)


async def test_an_address_at_its_limit_sheds_its_own_idle_connection(
    serve: ServeFactory,
) -> None:
    server = await serve(limits=MllpLimits(max_connections=10, max_per_peer=2))
    other = await Peer.open(server.port, local_host="127.0.0.2")
    a1 = await Peer.open(server.port, local_host="127.0.0.1")
    a2 = await Peer.open(server.port, local_host="127.0.0.1")
    for p in (other, a1, a2):
        await p.send(b"x")
        assert await p.reply() == b"ECHO:x"
    a3 = await Peer.open(server.port, local_host="127.0.0.1")
    await a3.send(b"y")
    assert await a3.reply() == b"ECHO:y"
    assert await a1.is_closed_by_server()  # its own, idle longest; never 127.0.0.2's
    await other.send(b"z")
    assert await other.reply() == b"ECHO:z"
    counts = {c.address: (c.open, c.shed) for c in server.peers()}
    assert counts == {"127.0.0.1": (2, 1), "127.0.0.2": (1, 0)}
    for p in (other, a2, a3):
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


async def test_allow_list_closes_other_addresses_before_reading(serve: ServeFactory) -> None:
    server = await serve(allow=parse_networks(["127.0.0.2/32", "10.0.0.0/8"]))
    outsider = await Peer.open(server.port, local_host="127.0.0.3")
    await outsider.send(b"hello")
    assert await outsider.is_closed_by_server()
    allowed = await Peer.open(server.port, local_host="127.0.0.2")
    await allowed.send(b"hi")
    assert await allowed.reply() == b"ECHO:hi"
    await allowed.close()
    assert (server.stats.denied, server.stats.messages) == (1, 1)
    assert {c.address: c.denied for c in server.peers()} == {"127.0.0.2": 0, "127.0.0.3": 1}


async def test_unknown_address_is_logged_once_a_minute_and_counted_each_time(
    serve: ServeFactory, caplog: pytest.LogCaptureFixture,
) -> None:
    server = await serve(allow=parse_networks(["127.0.0.2"]))
    for _ in range(3):
        outsider = await Peer.open(server.port, local_host="127.0.0.3")
        assert await outsider.is_closed_by_server()
    await _until(lambda: server.stats.denied == 3)
    warnings = [r for r in caplog.records if "address not allowed" in r.getMessage()]
    assert len(warnings) == 1 and "127.0.0.3" in warnings[0].getMessage()


async def test_silent_connection_is_closed_after_the_grace(serve: ServeFactory) -> None:
    server = await serve(limits=MllpLimits(first_frame_grace=0.2, idle_timeout=60))
    silent = await Peer.open(server.port)
    assert await silent.is_closed_by_server()
    assert server.stats.silent == 1 and server.stats.idle_timeouts == 0
    assert server.peers()[0].silent == 1


async def test_an_established_sender_keeps_the_long_idle_timeout(serve: ServeFactory) -> None:
    server = await serve(limits=MllpLimits(first_frame_grace=0.1, idle_timeout=60))
    sender = await Peer.open(server.port)
    await sender.send(b"first")
    assert await sender.reply() == b"ECHO:first"
    await asyncio.sleep(0.5)  # well past the grace: an established sender stays
    await sender.send(b"later")
    assert await sender.reply() == b"ECHO:later"
    assert server.stats.silent == 0
    await sender.close()


async def test_empty_block_does_not_end_the_grace(serve: ServeFactory) -> None:
    async def on_empty(peer: PeerInfo) -> bytes:
        return b"AR empty"

    server = await serve(limits=MllpLimits(first_frame_grace=0.3), on_empty=on_empty)
    peer = await Peer.open(server.port)
    await peer.send(b"")
    assert await peer.reply() == b"AR empty"
    assert await peer.is_closed_by_server()
    assert server.stats.silent == 1


async def test_junk_without_start_block_closes_and_is_counted(serve: ServeFactory) -> None:
    server = await serve(limits=MllpLimits(max_junk_bytes=4096))
    peer = await Peer.open(server.port)
    await peer.write(b"\x00" * 4096)
    assert await peer.is_closed_by_server()
    assert server.stats.junk_closed == 1 and server.stats.messages == 0
    assert server.peers()[0].junk == 1


async def test_junk_under_the_limit_then_a_message_is_answered(serve: ServeFactory) -> None:
    server = await serve(limits=MllpLimits(max_junk_bytes=4096))
    peer = await Peer.open(server.port)
    await peer.write(b"\x00" * 4095 + SB + b"m" + END)
    assert await peer.reply() == b"ECHO:m"
    assert server.stats.junk_closed == 0 and server.peers()[0].junk == 1
    await peer.close()


async def test_an_http_request_is_closed_by_the_grace_and_counted_as_junk(
    serve: ServeFactory,
) -> None:
    server = await serve(limits=MllpLimits(first_frame_grace=0.2))
    peer = await Peer.open(server.port)
    await peer.write(b"GET / HTTP/1.1\r\nHost: accord\r\n\r\n")
    assert await peer.is_closed_by_server()
    assert server.peers()[0].junk == 1 and server.peers()[0].silent == 1


async def test_the_grace_bounds_a_first_block_that_never_ends(serve: ServeFactory) -> None:
    server = await serve(limits=MllpLimits(first_frame_grace=0.2, frame_deadline=30))
    peer = await Peer.open(server.port)
    await peer.write(bytes(range(256)))  # holds a start block, never an end block
    assert await peer.is_closed_by_server()
    assert server.stats.silent == 1 and server.stats.frame_timeouts == 0


async def test_many_idle_connections_leave_room_for_a_newcomer(serve: ServeFactory) -> None:
    """150 idle connections from ten addresses, 15 each, on a listener of 100: a sender
    from an eleventh address is answered, and only never-spoke connections gave way."""
    server = await serve(limits=MllpLimits(max_connections=100, max_per_peer=20))
    idle = [await Peer.open(server.port, local_host=f"127.0.0.{10 + n % 10}")
            for n in range(150)]
    await _until(lambda: server.stats.accepted == 150)
    newcomer = await Peer.open(server.port, local_host="127.0.0.99")
    await newcomer.send(b"MSH|new")
    assert await newcomer.reply() == b"ECHO:MSH|new"
    assert server.stats.refused == 0 and server.stats.open <= 100
    await newcomer.close()
    for p in idle:
        await p.close()
