"""The composition root: the only module that knows every concrete part of the engine.

``build(config)`` wires the store, the clock, the MSH-10 generator, ingest (with its
processing seam), delivery, the MLLP listener and background jobs; ``await start()`` /
``await stop()`` run and stop them. Tests build the same runtime with their own store,
clock or processor.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from accord.clock import Clock, ControlIds, SteadyClock
from accord.config import Config
from accord.dicom.bridge import DicomBridge, StoreWorklist
from accord.dicom.index import WorklistIndex
from accord.engine import allocator, gil
from accord.engine.applier import Applier
from accord.engine.deliver import ClientFactory, Deliverer, default_client_factory
from accord.engine.ingest import Ingestor
from accord.engine.jobs import pruning_loop
from accord.engine.processor import Processor
from accord.engine.router import Router
from accord.engine.workflow import Outbound, RepositoryFactory, WorkflowProcessor
from accord.errors import ConfigError, StartupError
from accord.mapping.checks import Checks
from accord.mapping.procedures import Catalog, catalog_from_config
from accord.mllp.admission import parse_networks
from accord.mllp.server import MllpServer
from accord.mllp.tls import server_context
from accord.reload import (
    RELOADED,
    RESTART_ONLY,
    Reloaded,
    build_parts,
    dialects_of,
    differing,
    limits_of,
    running,
)
from accord.store import open_store, storage
from accord.store.accounts import Accounts
from accord.store.db import Database
from accord.store.gateway.store import SqlStore
from accord.store.retention import Retention
from accord.store.views import Views
from accord.store.workflow.catalog import CodeTables, StoredCodeTable
from accord.store.workflow.dicom_events import DicomEventLog
from accord.store.workflow.identity import learned_weights
from accord.store.workflow.repository import repository_for
from accord.store.workflow.worklist import SqlWorklistReader, prune_worklist_log, save_mpps
from accord.web.metrics import Metrics
from accord.web.server import HttpServer
from accord.workflow.identity import Matcher
from accord.workflow.memory import RandomIds

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """A built engine. ``mllp_port`` is the bound port once started (0 asks for any)."""

    config: Config
    store: SqlStore
    clock: Clock
    node_id: str
    control_ids: ControlIds
    ingestor: Ingestor
    deliverer: Deliverer
    mllp: MllpServer
    code_tables: CodeTables  # the stored procedure code tables (console edits, seeding)
    accounts: Accounts  # console and API users, sessions, tokens, audit log
    views: Views  # what the console and the JSON API read
    owns_store: bool = True
    bridge: DicomBridge | None = None
    metrics: Metrics | None = None
    http: HttpServer | None = None  # the console + API, set by build()
    setup_link: str | None = None  # first start, no user yet: creates the first admin
    processor: Processor | None = None
    source: Path | None = None  # the config file, for reloads and error lines
    applier: Applier | None = None  # applies what was answered on store (the inbox)
    loader: Callable[[], Config] | None = None  # reads the config again (reload)
    _jobs: list[asyncio.Task[None]] = field(default_factory=list)
    _started: bool = False
    _reloading: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def mllp_port(self) -> int:
        return self.mllp.port

    @property
    def dicom_port(self) -> int:
        """The DICOM SCP's bound port once started (0 when it does not run)."""
        server = self.bridge.server if self.bridge is not None else None
        return server.port if server is not None else 0

    def peers(self) -> list[dict[str, Any]]:
        """Each listener's client addresses and their counters (``listener`` key: ``mllp``
        or ``dicom``; the fields of :class:`accord.mllp.admission.PeerCounters`)."""
        listeners = [("mllp", self.mllp.peers())]
        dicom = self.bridge.server if self.bridge is not None else None
        if dicom is not None:
            listeners.append(("dicom", dicom.gate.peers()))
        return [{"listener": name, **asdict(c)} for name, rows in listeners for c in rows]

    def listening(self) -> list[str]:
        """What runs, one line each (only listeners that exist)."""
        scheme = "mllp+tls" if self.mllp.ssl_context is not None else "mllp"
        lines = [f"HL7 {scheme}://{self.mllp.host}:{self.mllp_port}"]
        if self.bridge is not None and self.bridge.server is not None:
            dicom = self.config.dicom
            lines.append(f"DICOM MWL+MPPS {dicom.ae_title}@{dicom.host}:{self.dicom_port}")
        if self.http is not None and self.http.port:
            lines.append(f"console+API http://{self.http.host}:{self.http.port}")
        return lines

    async def start(self) -> None:
        """Start delivery, the listeners and the background jobs. A listener that cannot
        bind its port stops everything started so far and raises :class:`StartupError`
        (one line naming the port and its flag)."""
        if self._started:
            return
        self._started = True  # from here, stop() undoes whatever did start
        try:
            await self._start_parts()
        except BaseException:
            await self.stop()
            raise
        log.info("node %s listening: %s", self.node_id, ", ".join(self.listening()))

    async def _start_parts(self) -> None:
        # Before any thread of ours: glibc fixes its arena limit when a second is needed.
        allocator.limit_arenas()
        gil.shorten_switch_interval()
        await self.deliverer.start()
        if self.applier is not None:  # first drains what a crash left in the inbox
            await self.applier.start()
        async with _listener("MLLP", self.mllp.host, self.config.mllp.port):
            await self.mllp.start()
        if self.bridge is not None:  # after MLLP: loading a large worklist takes a while
            dicom = self.config.dicom
            async with _listener("DICOM", dicom.host, dicom.port):
                self._jobs += await self.bridge.start(self.deliverer.wake, self.node_id)
        if self.http is not None:
            async with _listener("HTTP", self.http.host, self.http.requested_port):
                await self.http.start()
            self.setup_link = await asyncio.to_thread(_setup_link, self)
        self._jobs.append(asyncio.create_task(
            pruning_loop(self.store, lambda: self.config.store, self.clock, self.node_id,
                         _Housekeeping(self.store.database)),
            name="accord-prune"))
        self._jobs.append(asyncio.create_task(allocator.trimming_loop(),
                                              name="accord-malloc-trim"))
        alerts = getattr(self.http.app.state, "alerts", None) if self.http else None
        if alerts is not None:  # the console's alert monitor (accord.web.alerts)
            self._jobs.append(asyncio.create_task(alerts.run(), name="accord-alerts"))

    async def stop(self) -> None:
        """Stop accepting, answer what is in flight, let deliveries in progress finish
        (all within ``shutdown_grace`` seconds), stop the jobs, close."""
        if not self._started:
            return
        self._started = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.shutdown_grace
        if self.http is not None:
            await self.http.stop()
        await self.mllp.stop()  # waits up to shutdown_grace for answers in flight
        if self.bridge is not None:
            await asyncio.to_thread(self.bridge.stop)
        await self.ingestor.close(max(1.0, deadline - loop.time()))
        if self.applier is not None:
            await self.applier.stop()
        await self.deliverer.stop(max(0.0, deadline - loop.time()))
        for job in self._jobs:
            job.cancel()
        for job in self._jobs:
            with contextlib.suppress(asyncio.CancelledError):
                await job
        self._jobs.clear()
        if self.owns_store:
            self.store.close()
        log.info("node %s stopped", self.node_id)

    async def reload(self) -> Reloaded:
        """Read the configuration file again and switch to its reloadable parts
        (:mod:`accord.reload`); ConfigError (key and line) leaves everything running as
        it was."""
        if self.loader is None:
            raise ConfigError("the engine was started without a configuration file; "
                              "there is nothing to reload")
        async with self._reloading:
            old = self.config
            new = await asyncio.to_thread(self.loader)
            parts = build_parts(new, self.source, self.control_ids, self.clock.now())
            rules = None
            if new.workflow.catalog != old.workflow.catalog and parts.catalog is not None:
                synced = await asyncio.to_thread(_catalog, self.code_tables, new, self.clock)
                rules = synced.rules if synced is not None else ()
            elif new.workflow.catalog != old.workflow.catalog:
                rules = ()
            notes = await asyncio.to_thread(self._queued_for_removed, old, new)
            # From here on nothing is awaited: the switch happens at once on this loop.
            self.deliverer.reconfigure(new.destinations)
            if isinstance(self.processor, WorkflowProcessor):
                self.processor.reconfigure(parts.dialects, parts.outbound, rules)
            elif isinstance(self.processor, Router):
                self.processor.reconfigure(new.destinations)
            if self.bridge is not None:
                self.bridge.use(parts.outbound)
            self.mllp.limits = parts.limits
            self.config = running(old, new)
            if self.http is not None:  # the console's view of the configuration, alerts
                self.http.app.state.deps.config = self.config
                monitor = getattr(self.http.app.state, "alerts", None)
                if monitor is not None:
                    monitor.settings = parts.alerts
                    monitor.destinations = [d.name for d in new.destinations]
        done = Reloaded(applied=differing(old, new, RELOADED),
                        restart=differing(old, new, RESTART_ONLY), notes=notes)
        log.info("configuration reloaded: %s", done.summary())
        return done

    def _queued_for_removed(self, old: Config, new: Config) -> tuple[str, ...]:
        """Blocking: a note for each removed destination that still has rows queued."""
        kept = {d.name for d in new.destinations}
        depth = self.store.queue_depth()
        notes = []
        for dest in old.destinations:
            if dest.name in kept:
                continue
            queued = sum(n for (name, status), n in depth.items()
                         if name == dest.name and status in ("pending", "in_flight"))
            if queued:
                notes.append(f"destination {dest.name} removed with {queued} message(s) "
                             "queued: they stay queued, and go out if it is configured again")
        return tuple(notes)


# The flag that sets each listener's port (the line ``serve`` stops with names it).
PORT_FLAGS = {"MLLP": "--mllp-port", "DICOM": "--dicom-port", "HTTP": "--http-port"}


@contextlib.asynccontextmanager
async def _listener(what: str, host: str, port: int) -> AsyncIterator[None]:
    """Turn a listener's bind failure into a :class:`StartupError` naming its flag."""
    try:
        yield
    except OSError as exc:
        flag = PORT_FLAGS[what]
        if exc.errno == errno.EADDRINUSE:
            text = f"{what} port {port} is in use ({flag})"
        elif exc.errno == errno.EACCES:
            text = f"{what} port {port} needs privileges this user lacks ({flag})"
        elif exc.errno in (errno.EADDRNOTAVAIL, socket.EAI_NONAME):
            text = f"{what} address {host} is not an address of this host ({flag})"
        else:
            text = f"{what} port {port} cannot be opened: {exc.strerror or exc} ({flag})"
        raise StartupError(text) from exc


def build(config: Config, *, store: SqlStore | None = None, clock: Clock | None = None,
          processor: Processor | None = None, client_factory: ClientFactory | None = None,
          control_ids: ControlIds | None = None, source: Path | None = None) -> Runtime:
    """Wire an engine from ``config``; anything passed in replaces the default part.

    The default processor is the workflow
    (:class:`accord.engine.workflow.WorkflowProcessor`: the canonical model, findings, trace,
    outbound messages per destination dialect) and the DICOM bridge (MWL + MPPS SCP on
    ``dicom.port``, PACS reconciliation) runs unless ``dicom.enabled`` is false. A
    ``processor`` passed in replaces the workflow (and then no DICOM bridge runs);
    :class:`accord.engine.router.Router` is the plain category router. The console + JSON API
    (``accord.web``) serve on ``http.host:http.port`` in the same event loop, and
    Prometheus metrics count every MLLP answer and delivery. ``source`` is the file
    ``config`` was read from: errors found while building name its lines.

    The store is the SQL store (:func:`accord.store.open_store`): the engine uses it
    through the :class:`accord.store.Store` port, and every other part the store
    provides (workflow repository, code tables, worklist reads, the console's views
    and accounts) is built here on its ``database`` and handed to whoever needs it.
    """
    owns_store = store is None
    store = store if store is not None else _open_store(config)
    clock = clock or SteadyClock()  # leases and due times survive a clock step
    ids = control_ids or ControlIds()
    node_id = config.node_id or f"{socket.gethostname()}-{os.getpid()}"
    metrics = Metrics()
    deliverer = Deliverer(store, config.destinations, clock, node_id,
                          client_factory or default_client_factory,
                          observe=metrics.observe_delivery,
                          resume_own_leases=config.node_id is not None)
    code_tables = CodeTables(store.database)
    bridge: DicomBridge | None = None
    if processor is None and config.workflow.enabled:
        processor, bridge = _workflow(config, store, code_tables, clock, ids, source)
    proc = processor or Router(config.destinations, ids)

    def to_apply() -> None:  # after an ingest commit that stored messages to apply
        applier.wake()

    ingestor = Ingestor(store, clock, ids, proc, config, notify=deliverer.wake,
                        to_apply=to_apply)
    applier = Applier(store, clock, ids, proc, node_id,
                      ack_route=config.mllp.application_ack_destination,
                      notify=deliverer.wake, ingest_busy=ingestor.busy,
                      ingest_active=ingestor.active)
    metrics.watch_store(store, tuple(d.name for d in config.destinations),
                        lambda: {"mllp": ingestor.stats.duplicates})
    metrics.watch_size(lambda: storage.measure(store.database))
    metrics.watch_backlog(store.backlog, clock.now, lambda: applier.stats.applied)
    server = MllpServer(metrics.wrap_handler(ingestor.handle, "mllp"),
                        host=config.mllp.host, port=config.mllp.port,
                        limits=limits_of(config), ssl_context=_tls(config),
                        on_oversize=metrics.wrap_handler(ingestor.on_oversize, "mllp"),
                        on_empty=metrics.wrap_handler(ingestor.on_empty, "mllp"),
                        allow=parse_networks(config.mllp.allowed_addresses))
    rt = Runtime(config=config, store=store, clock=clock, node_id=node_id,
                 control_ids=ids, ingestor=ingestor, deliverer=deliverer, mllp=server,
                 code_tables=code_tables, accounts=Accounts.over(store.database),
                 views=Views.over(store.database), owns_store=owns_store, bridge=bridge,
                 metrics=metrics, processor=proc, source=source, applier=applier)
    metrics.watch_peers(rt.peers)
    rt.http = _http(rt)
    return rt


@dataclass(frozen=True, slots=True)
class _Housekeeping:
    """The retention job's work beyond messages (``accord.engine.jobs.Housekeeping``)."""

    database: Database

    def prune(self, cutoffs: Mapping[str, datetime], block: int) -> dict[str, int]:
        return Retention(self.database).prune(cutoffs, block)

    def record_size(self, now: datetime) -> int:
        return storage.record(self.database, now)


def _open_store(config: Config) -> SqlStore:
    if not config.store.url:
        config.store.data_dir.mkdir(parents=True, exist_ok=True)
    return open_store(config.store.resolved_url())


def _workflow(config: Config, store: SqlStore, code_tables: CodeTables, clock: Clock,
              ids: ControlIds, source: Path | None) -> tuple[Processor, DicomBridge | None]:
    """The workflow processor and, unless ``dicom.enabled`` is false, the DICOM bridge,
    whose worklist the repository feeds with the orders this node commits."""
    dialects = dialects_of(config.dialects, source)
    outbound = Outbound(config.destinations, dialects, ids)
    bridge, repository = None, repository_for
    if config.dicom.enabled:
        reader = SqlWorklistReader(store.database)
        worklist = StoreWorklist(
            reader, WorklistIndex(),
            horizon=config.dicom.worklist_horizon, clock=clock)
        repository = partial(repository_for, changes=worklist.committed)
        bridge = _bridge(config, store, reader, worklist, repository, outbound, clock)
    processor = WorkflowProcessor(
        dialects=dialects, outbound=outbound, ids=RandomIds(), repository=repository,
        catalog=_catalog(code_tables, config, clock), live=StoredCodeTable(),
        matcher=(Matcher(learned_weights(store.database),
                         own_phones=tuple(config.workflow.own_phones))
                 if config.workflow.identity_matching else None),
        checks=Checks(config.workflow.checks.profile,
                      config.workflow.checks.max_schedule_age_hours))
    return processor, bridge


def _bridge(config: Config, store: SqlStore, reader: SqlWorklistReader,
            worklist: StoreWorklist, repository: RepositoryFactory, outbound: Outbound,
            clock: Clock) -> DicomBridge:
    """The DICOM bridge (MWL + MPPS SCP, PACS reconciliation) on the SQL store's parts."""
    return DicomBridge(
        config.dicom, store, reader, repository=repository, outbound=outbound,
        ids=RandomIds(), clock=clock, save=save_mpps,
        prune_log=lambda before: prune_worklist_log(store.database, before),
        events=DicomEventLog(store.database), worklist=worklist)


def _http(rt: Runtime) -> HttpServer:
    """The console + JSON API on ``http.host:http.port`` (imported here: the CLI's other
    commands do not pay for FastAPI)."""
    from accord.web.app import create_app

    return HttpServer(create_app(rt), rt.config.http.host, rt.config.http.port)


def _setup_link(rt: Runtime) -> str | None:
    """A one-time link creating the first admin, when the store has no user yet."""
    from accord.web.app import setup_link

    assert rt.http is not None
    return setup_link(rt.http.app, f"http://{rt.http.host}:{rt.http.port}")


def _catalog(code_tables: CodeTables, config: Config, clock: Clock) -> Catalog | None:
    """The procedure catalog: the configured station rules and the STORED code table,
    which the configuration's table seeds without overwriting console edits
    (``CodeTables.sync``); the processor then follows the stored table as it changes."""
    raw = config.workflow.catalog
    if not raw:
        table = code_tables.load()  # edited on the console only
        return Catalog(table=table) if table.current is not None else None
    configured = catalog_from_config(raw, at=clock.now(), author="configuration")
    table = code_tables.sync(configured.table, at=clock.now(), author="configuration")
    return Catalog(table=table, rules=configured.rules)


def _tls(config: Config) -> ssl.SSLContext | None:
    tls = config.mllp.tls
    if tls is None:
        return None
    return server_context(tls.cert, tls.key, tls.ca, tls.require_client_cert, tls.crl)
