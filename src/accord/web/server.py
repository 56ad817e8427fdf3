"""The HTTP listener: uvicorn serving ``create_app(runtime)`` inside the runtime's loop.

Rules:
- One event loop: uvicorn runs as a task of the runtime's loop; routes that touch the
  store run in the thread pool, so the MLLP listener is never starved.
- The runtime owns signals (``accord serve`` handles SIGTERM/SIGINT): uvicorn's own
  signal capture is turned off.
- No PHI in logs: uvicorn's access log (which prints query strings such as
  ``?identifier=…``) is off; uvicorn's own loggers stay at WARNING.
- A port that cannot be bound raises (OSError): the runtime stops the engine with one
  line; an engine whose console cannot be reached is not left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the runtime handles signals


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class HttpServer:
    """Serves an ASGI app on ``host:port`` (0: any free port) until :meth:`stop`."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None

    @property
    def port(self) -> int:
        """The bound port while serving, else 0."""
        if self._sock is None or self._server is None or not self._server.started:
            return 0
        return int(self._sock.getsockname()[1])

    async def start(self) -> None:
        """Bind and serve; raises OSError when the port cannot be bound or the server
        stops while starting."""
        self._sock = _listen(self.host, self.requested_port)
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="off",
                                server_header=False, proxy_headers=False,
                                timeout_graceful_shutdown=5)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]),
                                         name="accord-http")
        while not self._server.started and not self._task.done():
            await asyncio.sleep(0.01)
        if self._task.done():  # failed while starting
            failure = self._task.exception() if not self._task.cancelled() else None
            await self.stop()
            raise OSError(f"the console server stopped while starting: {failure}")

    async def stop(self) -> None:
        """Stop accepting, finish requests in flight (up to 5 s), close the socket."""
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._sock is not None:
            self._sock.close()
        self._server, self._task, self._sock = None, None, None
