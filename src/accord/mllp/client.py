"""Asyncio MLLP sender: one message out, one ACK back (HL7 v2 Transport Specification,
MLLP Release 2 §1.2; acknowledgment per HL7 v2.5.1 §2.9.2).

Rules:
1. A reply counts only when its MSA-2 equals the MSH-10 that was sent. A late ACK (for an
   earlier message whose wait timed out) or any other mismatch is never success: the
   connection is closed, so nothing left on it can be taken for the next message, and
   :class:`AckMismatchError` is raised (a :class:`~accord.errors.DeliveryError`: resend).
2. Every failure to get a reply (connect refused or timed out, ACK timeout, connection lost,
   a refused or empty reply block) closes the connection and raises DeliveryError.
3. The connection is opened lazily by the first send and reopened by the next send after a
   failure. Sends on one client are serialised: MLLP allows one message in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from dataclasses import dataclass

from accord.errors import DeliveryError, ParseError
from accord.hl7 import parse
from accord.mllp.framing import EmptyFrame, Frame, Framer, Oversize, Truncated

ACK_CODES = frozenset({"AA", "AE", "AR", "CA", "CE", "CR"})
_READ_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class AckResult:
    """A matched acknowledgment: MSA-1 ``code``, MSA-2 ``control_id`` (equal to the MSH-10
    sent), ``text`` (MSA-3, else the ERR user message or error code text), the ACK bytes
    as received and the ``latency`` in seconds from write to reply."""

    code: str
    control_id: str
    text: str
    ack: bytes
    latency: float

    @property
    def accepted(self) -> bool:
        """AA (original mode) or CA (enhanced mode, commit accept)."""
        return self.code in ("AA", "CA")


class AckMismatchError(DeliveryError):
    """The reply was not an ACK for the message sent (other MSA-2, unparseable, unknown
    MSA-1). Never success; the connection was closed."""

    def __init__(self, message: str, *, expected: str, received: str, ack: bytes) -> None:
        super().__init__(message, location="MSA-2")
        self.expected = expected
        self.received = received
        self.ack = ack


class MllpClient:
    """Sends MLLP blocks to ``host:port`` (TLS when ``ssl_context`` is given)."""

    def __init__(self, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None,
                 server_hostname: str | None = None, connect_timeout: float = 10.0,
                 ack_timeout: float = 30.0, max_reply_bytes: int = 10 * 1024 * 1024) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.connect_timeout = connect_timeout
        self.ack_timeout = ack_timeout
        self.max_reply_bytes = max_reply_bytes
        self.connections = 0  # opened so far (a reconnect shows here)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._framer = Framer(max_reply_bytes)
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def __aenter__(self) -> MllpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the connection now (send does it lazily)."""
        if self.connected:
            return
        await self.close()
        try:
            async with asyncio.timeout(self.connect_timeout):
                self._reader, self._writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self.ssl_context,
                    server_hostname=self._tls_hostname(),
                    ssl_handshake_timeout=self.connect_timeout if self.ssl_context else None,
                )
        except TimeoutError:
            raise DeliveryError(f"cannot connect to {self._where()}: timed out after "
                                f"{self.connect_timeout:g} s") from None
        except (OSError, ssl.SSLError) as exc:
            raise DeliveryError(f"cannot connect to {self._where()}: {_reason(exc)}") from None
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._framer = Framer(self.max_reply_bytes)
        self.connections += 1

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await writer.wait_closed()

    async def send(self, payload: bytes) -> bytes:
        """Frame and send ``payload``; return the payload of the one reply block."""
        try:
            block = Framer.frame(payload)
        except ValueError as exc:
            raise DeliveryError(str(exc)) from None
        async with self._lock:
            if self._stale():
                await self.close()  # the peer closed, or left bytes unread: never reuse
            await self.connect()
            return await self._exchange(block)

    async def send_message(self, payload: bytes, control_id: str) -> AckResult:
        """Send one HL7 message whose MSH-10 is ``control_id``; return its matched ACK."""
        started = asyncio.get_running_loop().time()
        ack = await self.send(payload)
        latency = asyncio.get_running_loop().time() - started
        try:
            reply = parse(ack)
        except ParseError as exc:
            await self.close()
            raise AckMismatchError(f"unparseable ACK from {self._where()}: {exc}",
                                   expected=control_id, received="", ack=ack) from None
        code, received = reply.get("MSA-1"), reply.get("MSA-2")
        if received != control_id:
            await self.close()
            raise AckMismatchError(
                f"ACK from {self._where()} is for {received!r}, not {control_id!r}",
                expected=control_id, received=received, ack=ack)
        if code not in ACK_CODES:
            await self.close()
            raise AckMismatchError(f"ACK from {self._where()} has MSA-1 {code!r}",
                                   expected=control_id, received=received, ack=ack)
        text = (reply.get("MSA-3") or reply.get("ERR-8") or reply.get("ERR-3.2")
                or reply.get("ERR-1.4.2"))
        return AckResult(code, received, text, ack, latency)

    async def _exchange(self, block: bytes) -> bytes:
        assert self._writer is not None
        try:
            async with asyncio.timeout(self.ack_timeout):
                self._writer.write(block)
                await self._writer.drain()
                return await self._read_reply()
        except TimeoutError:
            await self.close()
            raise DeliveryError(f"no ACK from {self._where()} within "
                                f"{self.ack_timeout:g} s") from None
        except (OSError, ssl.SSLError) as exc:
            await self.close()
            raise DeliveryError(f"connection to {self._where()} lost: {_reason(exc)}") from None
        except DeliveryError:
            await self.close()
            raise
        except asyncio.CancelledError:
            self._drop_now()  # a reply may still come: it must never meet the next message
            raise

    async def _read_reply(self) -> bytes:
        assert self._reader is not None
        while True:
            event = self._framer.next_event()
            if isinstance(event, Frame):
                return event.payload
            if isinstance(event, EmptyFrame | Oversize):
                raise DeliveryError(f"{self._where()} answered with an unusable block "
                                    f"({type(event).__name__})")
            if isinstance(event, Truncated) or (event is None and self._framer.closed):
                raise DeliveryError(f"{self._where()} closed the connection before the ACK")
            if event is None:
                data = await self._reader.read(_READ_SIZE)
                if data:
                    self._framer.receive_data(data)
                else:
                    self._framer.receive_eof()

    def _stale(self) -> bool:
        if self._framer.pending_events or self._framer.in_frame:
            return True
        return self._reader is not None and self._reader.at_eof()

    def _drop_now(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.transport.abort()

    def _tls_hostname(self) -> str | None:
        if self.ssl_context is None:
            return None
        return self.server_hostname or self.host

    def _where(self) -> str:
        return f"{self.host}:{self.port}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, OSError) and not isinstance(exc, socket.gaierror) and exc.errno:
        return os.strerror(exc.errno)  # "Connection refused", not asyncio's wording
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
