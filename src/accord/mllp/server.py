"""Asyncio MLLP listener: a thin shell around :class:`~accord.mllp.framing.Framer`.

MLLP Release 2 (HL7 v2 Transport Specification, §1.2) is a strict request/response
protocol: per connection, one message is answered before the next is read. Each complete
payload goes to ``handler(payload, peer)``; the bytes it returns are framed and sent back
(``None`` sends nothing). What the handler does (store, parse, ACK) is not this module's
business. Blocks that carry no message go to their own callbacks, since there is no MSH to
echo: ``on_oversize(size, peer)`` and ``on_empty(peer)``; without a callback the connection
is closed, so the sender sees a failure instead of waiting for an ACK that never comes.

Admission, before anything is read (TLS included: the handshake comes after it): an
address outside the allow-list is closed at once; a listener at ``max_connections``, or an
address at ``max_per_peer``, makes room by shedding an idle connection, never-spoke first
(:mod:`accord.mllp.admission` decides which), and refuses the newcomer only when every
connection is busy.

Limits (:class:`MllpLimits`): a connection must deliver its first message within
``first_frame_grace`` of connecting (TLS handshake included); after that it may stay idle
for ``idle_timeout`` (senders hold connections for days). A started block must end within
``frame_deadline``. A run of ``max_junk_bytes`` between blocks that holds no start block
closes the connection: that peer is not speaking MLLP. A handler that raises gets the
connection closed without an answer (nothing was acknowledged, the sender will resend).

Telling the operator: every case is counted per address (:meth:`MllpServer.peers`, for the
console and the metrics) and in :class:`ServerStats`; warnings name only the address, at
most once a minute per address and reason.

:meth:`MllpServer.stop` stops accepting, closes idle connections, lets handlers in flight
finish and send their answer for up to ``shutdown_grace`` seconds, then cancels the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from accord.mllp.admission import (
    AllowList,
    Network,
    OncePerInterval,
    PeerCounters,
    PeerTable,
    choose_victim,
)
from accord.mllp.framing import EmptyFrame, Frame, Framer, Junk, Oversize, Truncated, Unframed

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
    first_frame_grace: float = 10.0
    max_junk_bytes: int = 4096

    def __post_init__(self) -> None:
        for name in ("max_message_bytes", "frame_deadline", "idle_timeout",
                     "max_connections", "max_per_peer", "shutdown_grace",
                     "first_frame_grace", "max_junk_bytes"):
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
    denied: int = 0
    shed: int = 0
    silent: int = 0
    junk_closed: int = 0
    tls_failed: int = 0
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
        limits = server.limits
        self.framer = Framer(max_frame_bytes=limits.max_message_bytes,
                             max_junk_bytes=limits.max_junk_bytes)
        self.busy = False  # a handler is running: stop() lets it finish
        self.spoke = False  # it delivered a message: the long idle timeout applies
        self.shed = False  # closed to make room for another connection
        self.sent_junk = False  # counted once per connection for its address
        now = asyncio.get_running_loop().time()
        self.opened_at = self.idle_since = now
        self._frame_started: float | None = None
        # The read's deadline, watched by one timer kept across reads (see _read).
        self._deadline = 0.0
        self._why = "idle"
        self._reading: asyncio.Task[Any] | None = None  # the task waiting for data
        self._watch: asyncio.TimerHandle | None = None
        self._expired = False  # the watch cancelled the read

    # --- as a shedding candidate (accord.mllp.admission.Candidate) ----------------------
    @property
    def host(self) -> str:
        return self.peer.host

    @property
    def sheddable(self) -> bool:
        return not (self.busy or self.shed or self.framer.in_frame)

    @property
    def counters(self) -> PeerCounters:
        return self.server.peer_table[self.peer.host]

    async def handshake(self, context: ssl.SSLContext) -> None:
        """TLS, within what is left of the first-frame grace."""
        left = self.opened_at + self.server.limits.first_frame_grace - _now()
        timeout = max(left, 0.001)
        async with asyncio.timeout(timeout):
            await self.writer.start_tls(context, ssl_handshake_timeout=timeout)

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
                    self.idle_since = _now()
            finally:
                self.busy = False
            if self._frame_started is not None:
                # A pipelined block began in an earlier read: its deadline counts from now,
                # not through the time our own handler took.
                self._frame_started = _now()

    def _timeout(self, now: float) -> tuple[float, str]:
        """How long the next read may wait, and which limit that is."""
        limits = self.server.limits
        waits = [(limits.idle_timeout, "idle")]
        if not self.spoke:
            waits.append((self.opened_at + limits.first_frame_grace - now, "grace"))
        if self._frame_started is not None:
            waits.append((self._frame_started + limits.frame_deadline - now, "deadline"))
        wait, why = min(waits)
        return max(wait, 0.0), why

    async def _read(self) -> None:
        """Read what the peer sent, within the deadline ``_timeout`` gives. The deadline
        is watched by one timer per connection that is moved only when a read's deadline
        comes before it (when it fires early it looks again): ``asyncio.timeout`` per
        read, a timer scheduled and cancelled per message, was a tenth of the loop's
        time under load (measured)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        timeout, self._why = self._timeout(now)
        self._deadline = now + timeout
        watch = self._watch
        if watch is None or watch.when() > self._deadline:
            if watch is not None:
                watch.cancel()
            self._watch = loop.call_at(self._deadline, self._look)
        self._reading = asyncio.current_task()
        try:
            data = await self.reader.read(_READ_SIZE)
        except asyncio.CancelledError:
            task = self._reading
            if not self._expired or task is None or task.uncancel() > 0:
                raise  # cancelled by someone else (a stop) as well: that wins
            self._log_timeout(self._why)
            raise _Closed from None
        finally:
            self._reading = None
            self._expired = False
        if not data:
            self.framer.receive_eof()
            return
        self.idle_since = now = _now()
        self.framer.receive_data(data)
        if not self.framer.in_frame:
            self._frame_started = None
        elif self._frame_started is None:
            self._frame_started = now

    def _look(self) -> None:
        """The watch fired: end the read if its deadline passed, else watch again."""
        self._watch = None
        task = self._reading
        if task is None or self._expired:
            return  # not reading: the next read sets its own watch
        if asyncio.get_running_loop().time() >= self._deadline:
            self._expired = True
            task.cancel()
        else:
            self._watch = asyncio.get_running_loop().call_at(self._deadline, self._look)

    def unwatch(self) -> None:
        """The connection ended: its watch need not fire."""
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None

    def _log_timeout(self, why: str) -> None:
        server = self.server
        stats, name, host, port = server.stats, server.name, self.peer.host, self.peer.port
        if why == "deadline":
            stats.frame_timeouts += 1
            log.warning("%s: closing %s:%d: block not ended within the frame deadline",
                        name, host, port)
        elif why == "grace":
            stats.silent += 1
            self.counters.silent += 1
            junk = self.framer.pending_junk
            if junk:
                self._junk()
            if server.warn_once("silent", host):
                log.warning("%s: closing %s:%d: no message within %g s of connecting "
                            "(%d bytes outside MLLP blocks)", name, host, port,
                            server.limits.first_frame_grace, junk + self.framer.junk_bytes)
        else:
            stats.idle_timeouts += 1
            log.info("%s: closing idle connection from %s:%d", name, host, port)

    def _junk(self) -> None:
        if not self.sent_junk:
            self.sent_junk = True
            self.counters.junk += 1

    async def _dispatch(self, event: Frame | EmptyFrame | Oversize | Truncated | Junk
                        | Unframed) -> bytes | None:
        """The framed answer to ``event``, or None to send nothing."""
        server, stats = self.server, self.server.stats
        if isinstance(event, Junk):
            stats.junk_bytes += event.size
            self._junk()
            log.info("%s: skipped %d bytes outside MLLP blocks from %s", server.name,
                     event.size, self.peer.host)
            return None
        if isinstance(event, Unframed):
            stats.junk_closed += 1
            self._junk()
            if server.warn_once("junk", self.peer.host):
                log.warning("%s: closing %s:%d: %d bytes without an MLLP start block",
                            server.name, self.peer.host, self.peer.port, event.size)
            raise _Closed
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
            self.counters.messages += 1
            self.spoke = True
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
    ``allow``: the networks clients may connect from (empty: any).
    """

    def __init__(self, handler: Handler, *, host: str = "127.0.0.1", port: int = 2575,
                 limits: MllpLimits | None = None, ssl_context: ssl.SSLContext | None = None,
                 name: str = "mllp", on_oversize: OversizeHandler | None = None,
                 on_empty: EmptyHandler | None = None, allow: Iterable[Network] = ()) -> None:
        self.handler = handler
        self.on_oversize = on_oversize
        self.on_empty = on_empty
        self.host = host
        self.limits = limits if limits is not None else MllpLimits()
        self.ssl_context = ssl_context
        self.name = name
        self.allow = AllowList(allow)
        self.stats = ServerStats()
        self.peer_table = PeerTable()
        self._once = OncePerInterval()
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

    def warn_once(self, kind: str, host: str) -> bool:
        """True when a warning of this kind about ``host`` may be logged now (once a
        minute: the counters count every case)."""
        return self._once(kind, host, _now())

    def peers(self) -> list[PeerCounters]:
        """Each recent client address's counters (copies), by address."""
        return self.peer_table.snapshot()

    async def start(self) -> None:
        """Bind and start accepting. TLS, when configured, is started on each connection
        after admission (so the allow-list and the limits come before the handshake)."""
        self.closing = False
        self._server = await asyncio.start_server(
            self._accept, self.host, self._requested_port,
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
        """Allow-list first, then room (module rules); False: close the newcomer."""
        if self.closing:
            return False
        counters = self.peer_table.seen(host, _now())
        if not self.allow.allows(host):
            self.stats.denied += 1
            counters.denied += 1
            if self.warn_once("denied", host):
                log.warning("%s: refused connection from %s:%d: address not allowed",
                            self.name, host, port)
            return False
        limits, held = self.limits, self._per_peer.get(host, 0)
        if held >= limits.max_per_peer:
            why = f"{held} connections from this address (limit {limits.max_per_peer})"
            pool: Iterable[_Connection] = (c for c in self._conns if c.host == host)
        elif self.stats.open >= limits.max_connections:
            why = f"{self.stats.open} connections open (limit {limits.max_connections})"
            pool = self._conns
        else:
            return True
        victim = choose_victim(pool, self._per_peer)
        if victim is None:
            self.stats.refused += 1
            counters.refused += 1
            if self.warn_once("refused", host):
                log.warning("%s: refused connection from %s:%d: %s, none idle", self.name,
                            host, port, why)
            return False
        self._shed(victim, host, why)
        return True

    def _shed(self, victim: _Connection, newcomer: str, why: str) -> None:
        victim.shed = True
        self._forget(victim)
        self.stats.shed += 1
        victim.counters.shed += 1
        kind = "established" if victim.spoke else "never-spoke"
        log.info("%s: closed %s idle connection from %s:%d for a newcomer from %s (%s)",
                 self.name, kind, victim.host, victim.peer.port, newcomer, why)
        victim.writer.transport.abort()

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
        self.stats.open += 1
        conn.counters.open += 1
        try:
            if self.ssl_context is not None:
                await self._handshake(conn, self.ssl_context)
            self.stats.accepted += 1
            await conn.run()
        except _Closed:
            pass
        except asyncio.CancelledError:
            if not self.closing:
                raise
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            if not conn.shed:
                log.info("%s: connection from %s:%d lost (%s)", self.name, peer.host,
                         peer.port, type(exc).__name__)
        finally:
            conn.unwatch()
            self._forget(conn)
            await _close(writer)

    async def _handshake(self, conn: _Connection, context: ssl.SSLContext) -> None:
        try:
            await conn.handshake(context)
        except (TimeoutError, ConnectionError, ssl.SSLError, OSError) as exc:
            if not conn.shed:
                self.stats.tls_failed += 1
                conn.counters.tls_failed += 1
                if self.warn_once("tls", conn.host):
                    log.warning("%s: TLS handshake with %s:%d failed (%s)", self.name,
                                conn.host, conn.peer.port, _ssl_reason(exc))
            raise _Closed from None
        conn.peer = _peer_info(conn.writer)

    def _forget(self, conn: _Connection) -> None:
        if self._conns.pop(conn, None) is None:
            return  # shed earlier: already forgotten
        self.stats.open -= 1
        conn.counters.open -= 1
        left = self._per_peer.get(conn.host, 1) - 1
        if left:
            self._per_peer[conn.host] = left
        else:
            self._per_peer.pop(conn.host, None)


def _now() -> float:
    return asyncio.get_running_loop().time()


def _ssl_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, TimeoutError):
        return "timed out"
    return type(exc).__name__


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
    try:
        async with asyncio.timeout(2.0):
            await writer.wait_closed()
    except asyncio.CancelledError:
        # Cancelled while closing (a stop, the loop ending): drop the socket and let the
        # task end quietly; nothing follows the close.
        writer.transport.abort()
    except Exception:  # the peer is gone either way
        pass
