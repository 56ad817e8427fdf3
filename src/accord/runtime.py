"""The composition root: the only module that knows every concrete part of the engine.

``build(config)`` wires the store, the clock, the MSH-10 generator, ingest (with its
processing seam), delivery, the MLLP listener and background jobs; ``await start()`` /
``await stop()`` run and stop them. Tests build the same runtime with their own store,
clock or processor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from accord.clock import Clock, ControlIds, SystemClock
from accord.config import Config
from accord.dicom.bridge import DicomBridge, StoreWorklist
from accord.dicom.index import WorklistIndex
from accord.engine.deliver import ClientFactory, Deliverer, default_client_factory
from accord.engine.ingest import Ingestor
from accord.engine.jobs import pruning_loop
from accord.engine.processor import Processor
from accord.engine.router import Router
from accord.engine.workflow import Outbound, RepositoryFactory, WorkflowProcessor
from accord.mapping.dialect import Dialects
from accord.mapping.procedures import Catalog, catalog_from_config
from accord.mllp.admission import parse_networks
from accord.mllp.server import MllpLimits, MllpServer
from accord.mllp.tls import server_context
from accord.store import open_store
from accord.store.accounts import Accounts
from accord.store.gateway.store import SqlStore
from accord.store.views import Views
from accord.store.workflow.catalog import CodeTables, StoredCodeTable
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
    _jobs: list[asyncio.Task[None]] = field(default_factory=list)
    _started: bool = False

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
        """Start delivery, the listener and the background jobs."""
        if self._started:
            return
        await self.deliverer.start()
        await self.mllp.start()
        if self.bridge is not None:  # after MLLP: loading a large worklist takes a while
            self._jobs += await self.bridge.start(self.deliverer.wake, self.node_id)
        if self.http is not None and await self.http.start():
            self.setup_link = await asyncio.to_thread(_setup_link, self)
        self._jobs.append(asyncio.create_task(
            pruning_loop(self.store, self.config.store, self.clock, self.node_id),
            name="accord-prune"))
        alerts = getattr(self.http.app.state, "alerts", None) if self.http else None
        if alerts is not None:  # the console's alert monitor (accord.web.alerts)
            self._jobs.append(asyncio.create_task(alerts.run(), name="accord-alerts"))
        self._started = True
        log.info("node %s listening: %s", self.node_id, ", ".join(self.listening()))

    async def stop(self) -> None:
        """Stop accepting, answer what is in flight, stop delivery and jobs, close."""
        if not self._started:
            return
        self._started = False
        if self.http is not None:
            await self.http.stop()
        await self.mllp.stop()
        if self.bridge is not None:
            await asyncio.to_thread(self.bridge.stop)
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


def build(config: Config, *, store: SqlStore | None = None, clock: Clock | None = None,
          processor: Processor | None = None, client_factory: ClientFactory | None = None,
          control_ids: ControlIds | None = None) -> Runtime:
    """Wire an engine from ``config``; anything passed in replaces the default part.

    The default processor is the workflow
    (:class:`accord.engine.workflow.WorkflowProcessor`: the canonical model, findings, trace,
    outbound messages per destination dialect) and the DICOM bridge (MWL + MPPS SCP on
    ``dicom.port``, PACS reconciliation) runs unless ``dicom.enabled`` is false. A
    ``processor`` passed in replaces the workflow (and then no DICOM bridge runs);
    :class:`accord.engine.router.Router` is the plain category router. The console + JSON API
    (``accord.web``) serve on ``http.host:http.port`` in the same event loop, and
    Prometheus metrics count every MLLP answer and delivery.

    The store is the SQL store (:func:`accord.store.open_store`): the engine uses it
    through the :class:`accord.store.Store` port, and every other part the store
    provides (workflow repository, code tables, worklist reads, the console's views
    and accounts) is built here on its ``database`` and handed to whoever needs it.
    """
    owns_store = store is None
    store = store if store is not None else _open_store(config)
    clock = clock or SystemClock()
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
        processor, bridge = _workflow(config, store, code_tables, clock, ids)
    proc = processor or Router(config.destinations, ids)
    ingestor = Ingestor(store, clock, ids, proc, config, notify=deliverer.wake)
    metrics.watch_store(store, tuple(d.name for d in config.destinations),
                        lambda: {"mllp": ingestor.stats.duplicates})
    server = MllpServer(metrics.wrap_handler(ingestor.handle, "mllp"),
                        host=config.mllp.host, port=config.mllp.port,
                        limits=_limits(config), ssl_context=_tls(config),
                        on_oversize=metrics.wrap_handler(ingestor.on_oversize, "mllp"),
                        on_empty=metrics.wrap_handler(ingestor.on_empty, "mllp"),
                        allow=parse_networks(config.mllp.allowed_addresses))
    rt = Runtime(config=config, store=store, clock=clock, node_id=node_id,
                 control_ids=ids, ingestor=ingestor, deliverer=deliverer, mllp=server,
                 code_tables=code_tables, accounts=Accounts.over(store.database),
                 views=Views.over(store.database), owns_store=owns_store, bridge=bridge,
                 metrics=metrics)
    metrics.watch_peers(rt.peers)
    rt.http = _http(rt)
    return rt


def _open_store(config: Config) -> SqlStore:
    if not config.store.url:
        config.store.data_dir.mkdir(parents=True, exist_ok=True)
    return open_store(config.store.resolved_url())


def _workflow(config: Config, store: SqlStore, code_tables: CodeTables, clock: Clock,
              ids: ControlIds) -> tuple[Processor, DicomBridge | None]:
    """The workflow processor and, unless ``dicom.enabled`` is false, the DICOM bridge,
    whose worklist the repository feeds with the orders this node commits."""
    dialects = Dialects.from_config(config.dialects)
    outbound = Outbound(config.destinations, dialects, ids)
    bridge, repository = None, repository_for
    if config.dicom.enabled:
        reader = SqlWorklistReader(store.database)
        worklist = StoreWorklist(reader, WorklistIndex())
        repository = partial(repository_for, changes=worklist.committed)
        bridge = _bridge(config, store, reader, worklist, repository, outbound, clock)
    processor = WorkflowProcessor(
        dialects=dialects, outbound=outbound, ids=RandomIds(), repository=repository,
        catalog=_catalog(code_tables, config, clock), live=StoredCodeTable(),
        matcher=Matcher() if config.workflow.identity_matching else None)
    return processor, bridge


def _bridge(config: Config, store: SqlStore, reader: SqlWorklistReader,
            worklist: StoreWorklist, repository: RepositoryFactory, outbound: Outbound,
            clock: Clock) -> DicomBridge:
    """The DICOM bridge (MWL + MPPS SCP, PACS reconciliation) on the SQL store's parts."""
    return DicomBridge(
        config.dicom, store, reader, repository=repository, outbound=outbound,
        ids=RandomIds(), clock=clock, save=save_mpps,
        prune_log=lambda before: prune_worklist_log(store.database, before),
        worklist=worklist)


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


def _limits(config: Config) -> MllpLimits:
    lim = config.mllp.limits
    return MllpLimits(max_message_bytes=lim.max_message_bytes,
                      frame_deadline=lim.frame_deadline, idle_timeout=lim.idle_timeout,
                      max_connections=lim.max_connections, max_per_peer=lim.max_per_peer,
                      first_frame_grace=lim.first_frame_grace,
                      max_junk_bytes=lim.max_junk_bytes)


def _tls(config: Config) -> ssl.SSLContext | None:
    tls = config.mllp.tls
    if tls is None:
        return None
    return server_context(tls.cert, tls.key, tls.ca, tls.require_client_cert, tls.crl)
