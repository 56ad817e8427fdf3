"""The composition root: the only module that knows every concrete part of the engine.

``build(config)`` wires the store, the clock, the MSH-10 generator, ingest (with its
processing seam), delivery, the MLLP listener and background jobs; ``await start()`` /
``await stop()`` run and stop them. Tests build the same runtime with their own store,
clock or processor (STYLE rule 11).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
from dataclasses import dataclass, field

from accord.clock import Clock, ControlIds, SystemClock
from accord.config import Config
from accord.deliver import ClientFactory, Deliverer, default_client_factory
from accord.ingest import Ingestor, Processor, Router
from accord.jobs import pruning_loop
from accord.mllp.server import MllpLimits, MllpServer
from accord.mllp.tls import server_context
from accord.store import Store, open_store

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """A built engine. ``mllp_port`` is the bound port once started (0 asks for any)."""

    config: Config
    store: Store
    clock: Clock
    node_id: str
    control_ids: ControlIds
    ingestor: Ingestor
    deliverer: Deliverer
    mllp: MllpServer
    owns_store: bool = True
    _jobs: list[asyncio.Task[None]] = field(default_factory=list)
    _started: bool = False

    @property
    def mllp_port(self) -> int:
        return self.mllp.port

    def listening(self) -> list[str]:
        """What runs, one line each (only listeners that exist)."""
        scheme = "mllp+tls" if self.mllp.ssl_context is not None else "mllp"
        return [f"HL7 {scheme}://{self.mllp.host}:{self.mllp_port}"]

    async def start(self) -> None:
        """Start delivery, the listener and the background jobs."""
        if self._started:
            return
        await self.deliverer.start()
        await self.mllp.start()
        self._jobs.append(asyncio.create_task(
            pruning_loop(self.store, self.config.store, self.clock, self.node_id),
            name="accord-prune"))
        self._started = True
        log.info("node %s listening: %s", self.node_id, ", ".join(self.listening()))

    async def stop(self) -> None:
        """Stop accepting, answer what is in flight, stop delivery and jobs, close."""
        if not self._started:
            return
        self._started = False
        await self.mllp.stop()
        await self.ingestor.close()
        await self.deliverer.stop()
        for job in self._jobs:
            job.cancel()
        for job in self._jobs:
            with contextlib.suppress(asyncio.CancelledError):
                await job
        self._jobs.clear()
        if self.owns_store:
            self.store.close()
        log.info("node %s stopped", self.node_id)


def build(config: Config, *, store: Store | None = None, clock: Clock | None = None,
          processor: Processor | None = None, client_factory: ClientFactory | None = None,
          control_ids: ControlIds | None = None) -> Runtime:
    """Wire an engine from ``config``; anything passed in replaces the default part.

    The default processor routes by category (:class:`accord.ingest.Router`); the
    workflow issue passes its own processor here.
    """
    owns_store = store is None
    if store is None:
        if not config.store.url:
            config.store.data_dir.mkdir(parents=True, exist_ok=True)
        store = open_store(config.store.resolved_url())
    clock = clock or SystemClock()
    ids = control_ids or ControlIds()
    node_id = config.node_id or f"{socket.gethostname()}-{os.getpid()}"
    deliverer = Deliverer(store, config.destinations, clock, node_id,
                          client_factory or default_client_factory)
    proc = processor or Router(config.destinations, ids)
    ingestor = Ingestor(store, clock, ids, proc, config, notify=deliverer.wake)
    server = MllpServer(ingestor.handle, host=config.mllp.host, port=config.mllp.port,
                        limits=_limits(config), ssl_context=_tls(config),
                        on_oversize=ingestor.on_oversize, on_empty=ingestor.on_empty)
    return Runtime(config=config, store=store, clock=clock, node_id=node_id,
                   control_ids=ids, ingestor=ingestor, deliverer=deliverer, mllp=server,
                   owns_store=owns_store)


def _limits(config: Config) -> MllpLimits:
    lim = config.mllp.limits
    return MllpLimits(max_message_bytes=lim.max_message_bytes,
                      frame_deadline=lim.frame_deadline, idle_timeout=lim.idle_timeout,
                      max_connections=lim.max_connections, max_per_peer=lim.max_per_peer)


def _tls(config: Config) -> ssl.SSLContext | None:
    tls = config.mllp.tls
    if tls is None:
        return None
    return server_context(tls.cert, tls.key, tls.ca, tls.require_client_cert)
