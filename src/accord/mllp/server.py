"""Asyncio MLLP listener: a thin shell around :class:`~accord.mllp.framing.Framer`.

MLLP Release 2 (HL7 v2 Transport Specification, §1.2) is a strict request/response
protocol: per connection, one message is answered before the next is read. Each complete
payload goes to ``handler(payload, peer)``; the bytes it returns are framed and sent back
(``None`` sends nothing). What the handler does (store, parse, ACK) is not this module's
business. Blocks that carry no message go to their own callbacks, since there is no MSH to
echo: ``on_oversize(size, peer)`` and ``on_empty(peer)``; without a callback the connection
is closed, so the sender sees a failure instead of waiting for an ACK that never comes.

Limits (:class:`MllpLimits`): a started block must end within ``frame_deadline``; a
connection with nothing to read for ``idle_timeout`` is closed; connections beyond
``max_connections`` per listener or ``max_per_peer`` per peer address are closed at once,
with a WARNING naming only the address. A handler that raises gets the connection closed
without an answer (nothing was acknowledged, the sender will resend).

:meth:`MllpServer.stop` stops accepting, closes idle connections, lets handlers in flight
finish and send their answer for up to ``shutdown_grace`` seconds, then cancels the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from accord.mllp.framing import EmptyFrame, Frame, Framer, Junk, Oversize, Truncated

log = logging.getLogger(__name__)

_READ_SIZE = 64 * 1024
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class MllpLimits:
    """Listener limits (set from ``mllp.limits`` in the config; the same defaults)."""

    max_message_bytes: int = 10 * MIB
    frame_deadline: float = 30.0
    idle_timeout: float = 300.0
    max_connections: int = 100
    max_per_peer: int = 20
    shutdown_grace: float = 10.0

    def __post_init__(self) -> None:
        for name in ("max_message_bytes", "frame_deadline", "idle_timeout",
                     "max_connections", "max_per_peer", "shutdown_grace"):
            if getattr(self, name) <= 0:
                raise ValueError(f"MllpLimits.{name} must be positive")


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """Who sent a message: address, whether TLS was used, and the client certificate
    subject (``"CN=ris,O=Hospital"``) when mutual TLS authenticated one."""

    host: str
    port: int
    tls: bool = False
    client_subject: str | None = None


@dataclass(slots=True)
class ServerStats:
    """Counters for metrics; plain integers, only ever increased (``open`` goes both ways)."""

    accepted: int = 0
    open: int = 0
    refused: int = 0
    messages: int = 0
    oversize: int = 0
    empty: int = 0
    truncated: int = 0
    junk_bytes: int = 0
    idle_timeouts: int = 0
    frame_timeouts: int = 0
    handler_errors: int = 0


Handler = Callable[[bytes, PeerInfo], Awaitable[bytes | None]]
OversizeHandler = Callable[[int, PeerInfo], Awaitable[bytes | None]]
EmptyHandler = Callable[[PeerInfo], Awaitable[bytes | None]]

_SHORT_NAMES = {
    "commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
    "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST",
    "emailAddress": "emailAddress", "domainComponent": "DC",
}


def format_subject(cert: dict[str, Any] | None) -> str | None:
    """``getpeercert()`` subject as ``"CN=x,O=y"`` (attributes in certificate order)."""
    if not cert or "subject" not in cert:
        return None
    parts = [f"{_SHORT_NAMES.get(k, k)}={v}" for rdn in cert["subject"] for k, v in rdn]
    return ",".join(parts) or None


class _Closed(Exception):
    """The connection must end (EOF, timeout, refused block); already logged."""


class _Connection:
    """One accepted connection: read, frame, answer one message at a time."""

    def __init__(self, server: MllpServer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, peer: PeerInfo) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.peer = peer
        self.framer = Framer(max_frame_bytes=server.limits.max_message_bytes)
        self.busy = False  # a handler is running: stop() lets it finish
        self._frame_started: float | None = None

    async def run(self) -> None:
        while not self.server.closing:
            event = self.framer.next_event()
            if event is None:
                if self.framer.closed:
                    return
                await self._read()
                continue
            self.busy = True  # from here until the answer is sent, stop() waits for us
            try:
                block = await self._dispatch(event)
                if block is not None:
                    self.writer.write(block)
                    await self.writer.drain()
            finally:
                self.busy = False
            if self._frame_started is not None:
                # A pipelined block began in an earlier read: its deadline counts from now,
                # not through the time our own handler took.
                self._frame_started = asyncio.get_running_loop().time()

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        limits = self.server.limits
        timeout, deadline = limits.idle_timeout, False
        if self._frame_started is not None:
            left = max(limits.frame_deadline - (loop.time() - self._frame_started), 0.0)
            timeout, deadline = min(timeout, left), left <= timeout
        try:
            async with asyncio.timeout(timeout):
                data = await self.reader.read(_READ_SIZE)
        except TimeoutError:
            self._log_timeout(deadline)
            raise _Closed from None
        if not data:
            self.framer.receive_eof()
            return
        self.framer.receive_data(data)
        if not self.framer.in_frame:
            self._frame_started = None
        elif self._frame_started is None:
            self._frame_started = loop.time()

    def _log_timeout(self, deadline: bool) -> None:
        stats, name = self.server.stats, self.server.name
        if deadline:
            stats.frame_timeouts += 1
            log.warning("%s: closing %s:%d: block not ended within the frame deadline",
                        name, self.peer.host, self.peer.port)
        else:
            stats.idle_timeouts += 1
            log.info("%s: closing idle connection from %s:%d", name, self.peer.host,
                     self.peer.port)

    async def _dispatch(self, event: Frame | EmptyFrame | Oversize | Truncated | Junk,
                        ) -> bytes | None:
        """The framed answer to ``event``, or None to send nothing."""
        server, stats = self.server, self.server.stats
        if isinstance(event, Junk):
            stats.junk_bytes += event.size
            log.info("%s: skipped %d bytes outside MLLP blocks from %s", server.name,
                     event.size, self.peer.host)
            return None
        if isinstance(event, Truncated):
            stats.truncated += 1
            log.warning("%s: connection from %s:%d closed inside a block (%d bytes)",
                        server.name, self.peer.host, self.peer.port, event.size)
            return None
        try:
            reply = await self._answer(event)
            return None if reply is None else Framer.frame(reply)
        except _Closed:
            raise
        except Exception as exc:
            stats.handler_errors += 1
            log.error("%s: handler failed (%s); closing %s:%d without an answer",
                      server.name, type(exc).__name__, self.peer.host, self.peer.port)
            raise _Closed from exc

    async def _answer(self, event: Frame | EmptyFrame | Oversize) -> bytes | None:
        server = self.server
        if isinstance(event, Frame):
            server.stats.messages += 1
            return await server.handler(event.payload, self.peer)
        if isinstance(event, Oversize):
            server.stats.oversize += 1
            log.warning("%s: refused a %d-byte block from %s (limit %d)", server.name,
                        event.size, self.peer.host, server.limits.max_message_bytes)
            if server.on_oversize is None:
                raise _Closed
            return await server.on_oversize(event.size, self.peer)
        server.stats.empty += 1
        log.warning("%s: empty block from %s", server.name, self.peer.host)
        if server.on_empty is None:
            raise _Closed
        return await server.on_empty(self.peer)


class MllpServer:
    """An MLLP listener on ``host:port`` (port 0 picks a free one; see :attr:`port`).

    ``handler(payload, peer)`` answers each message; ``on_oversize(size, peer)`` and
    ``on_empty(peer)`` answer blocks refused by the framer (None: close the connection).
    """

    def __init__(self, handler: Handler, *, host: str = "127.0.0.1", port: int = 2575,
                 limits: MllpLimits | None = None, ssl_context: ssl.SSLContext | None = None,
                 name: str = "mllp", on_oversize: OversizeHandler | None = None,
                 on_empty: EmptyHandler | None = None) -> None:
        self.handler = handler
        self.on_oversize = on_oversize
        self.on_empty = on_empty
        self.host = host
        self.limits = limits if limits is not None else MllpLimits()
        self.ssl_context = ssl_context
        self.name = name
        self.stats = ServerStats()
        self.closing = False
        self._requested_port = port
        self._server: asyncio.Server | None = None
        self._conns: dict[_Connection, asyncio.Task[Any]] = {}
        self._per_peer: dict[str, int] = {}

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for); valid after :meth:`start`."""
        if self._server is None or not self._server.sockets:
            return self._requested_port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Bind and start accepting."""
        self.closing = False
        self._server = await asyncio.start_server(
            self._accept, self.host, self._requested_port, ssl=self.ssl_context,
            ssl_handshake_timeout=self.limits.frame_deadline if self.ssl_context else None,
            backlog=max(100, self.limits.max_connections), reuse_address=True,
        )
        log.info("%s: listening on %s:%d%s", self.name, self.host, self.port,
                 " (TLS)" if self.ssl_context else "")

    async def stop(self) -> None:
        """Stop accepting, let answers in flight go out (bounded), close everything."""
        if self._server is None:
            return
        self.closing = True
        self._server.close()
        for conn, task in list(self._conns.items()):
            if not conn.busy:
                task.cancel()
        tasks = set(self._conns.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.limits.shutdown_grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        await self._server.wait_closed()
        self._server = None
        log.info("%s: stopped", self.name)

    async def __aenter__(self) -> MllpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _admit(self, host: str, port: int) -> bool:
        limits, stats = self.limits, self.stats
        if self.closing:
            return False
        why = ""
        if stats.open >= limits.max_connections:
            why = f"{stats.open} connections open (limit {limits.max_connections})"
        elif self._per_peer.get(host, 0) >= limits.max_per_peer:
            why = f"{self._per_peer[host]} connections from this address " \
                  f"(limit {limits.max_per_peer})"
        if why:
            stats.refused += 1
            log.warning("%s: refused connection from %s:%d: %s", self.name, host, port, why)
            return False
        return True

    async def _accept(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        peer = _peer_info(writer)
        if not self._admit(peer.host, peer.port):
            writer.transport.abort()
            return
        conn = _Connection(self, reader, writer, peer)
        task = asyncio.current_task()
        assert task is not None
        self._conns[conn] = task
        self._per_peer[peer.host] = self._per_peer.get(peer.host, 0) + 1
        self.stats.accepted += 1
        self.stats.open += 1
        try:
            await conn.run()
        except _Closed:
            pass
        except asyncio.CancelledError:
            if not self.closing:
                raise
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            log.info("%s: connection from %s:%d lost (%s)", self.name, peer.host, peer.port,
                     type(exc).__name__)
        finally:
            self._forget(conn, peer.host)
            await _close(writer)

    def _forget(self, conn: _Connection, host: str) -> None:
        self._conns.pop(conn, None)
        self.stats.open -= 1
        left = self._per_peer.get(host, 1) - 1
        if left:
            self._per_peer[host] = left
        else:
            self._per_peer.pop(host, None)


def _peer_info(writer: asyncio.StreamWriter) -> PeerInfo:
    peername = writer.get_extra_info("peername") or ("", 0)
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        # Nagle's algorithm holding the small ACK back while the peer delays its TCP
        # acknowledgment would stall every answer by ~40 ms (the Linux delayed-ACK time).
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ssl_object = writer.get_extra_info("ssl_object")
    subject = format_subject(ssl_object.getpeercert()) if ssl_object is not None else None
    return PeerInfo(host=str(peername[0]), port=int(peername[1]), tls=ssl_object is not None,
                    client_subject=subject)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2.0):
            await writer.wait_closed()
