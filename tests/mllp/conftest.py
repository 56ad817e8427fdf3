"""Shared helpers for the MLLP tests: a raw MLLP peer, a server factory, test certificates
(made by the test run itself: ``tls_support.make_pki``)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from accord.mllp.framing import Frame, Framer, Truncated
from accord.mllp.server import MllpServer, PeerInfo
from tls_support import Certs, make_pki

WAIT = 10.0  # upper bound for anything that should happen "promptly"; never a timing assert


async def echo(payload: bytes, peer: PeerInfo) -> bytes:
    return b"ECHO:" + payload


class Peer:
    """A raw MLLP peer on a real socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.framer = Framer()

    @classmethod
    async def open(cls, port: int, *, local_host: str | None = None,
                   ssl_context: ssl.SSLContext | None = None,
                   server_hostname: str | None = None) -> Peer:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, local_addr=(local_host, 0) if local_host else None,
            ssl=ssl_context, server_hostname=server_hostname if ssl_context else None)
        return cls(reader, writer)

    async def send(self, *payloads: bytes) -> None:
        self.writer.write(b"".join(Framer.frame(p) for p in payloads))
        await self.writer.drain()

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self) -> bytes | None:
        """The next reply payload, or None when the server closed the connection."""
        async with asyncio.timeout(WAIT):
            while True:
                event = self.framer.next_event()
                if isinstance(event, Frame):
                    return event.payload
                if isinstance(event, Truncated) or (event is None and self.framer.closed):
                    return None
                if event is None:
                    try:
                        data = await self.reader.read(65536)
                    except (ConnectionError, ssl.SSLError):
                        data = b""
                    if data:
                        self.framer.receive_data(data)
                    else:
                        self.framer.receive_eof()

    async def is_closed_by_server(self) -> bool:
        return await self.reply() is None

    async def close(self) -> None:
        self.writer.close()
        try:
            async with asyncio.timeout(2):
                await self.writer.wait_closed()
        except (TimeoutError, ConnectionError, ssl.SSLError):
            pass


ServeFactory = Callable[..., Awaitable[MllpServer]]


@pytest.fixture
async def serve() -> AsyncIterator[ServeFactory]:
    """Start MllpServer instances on 127.0.0.1, port 0; all are stopped at the end."""
    servers: list[MllpServer] = []

    async def start(handler: Any = echo, **kwargs: Any) -> MllpServer:
        kwargs.setdefault("port", 0)
        server = MllpServer(handler, host="127.0.0.1", **kwargs)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    return make_pki(tmp_path_factory.mktemp("certs"))
