"""The DICOM edge: Modality Worklist C-FIND SCP, MPPS N-CREATE/N-SET SCP, C-ECHO.

Rules: this is where pynetdicom lives; matching and MPPS rules are pure code in
:mod:`accord.dicom.query` and :mod:`accord.dicom.mpps`. The SCP depends on two small
protocols :mod:`accord.dicom.bridge` implements on the store: a :class:`WorklistSource`
(over the in-memory :class:`~accord.dicom.index.WorklistIndex`) and an :class:`MppsSink`
whose ``record()`` returns only once the instance and its outcome are durable, so the
N-CREATE / N-SET response is sent after persistence. Nothing received ever names a file:
UIDs and patient IDs are values, never paths. TCP_NODELAY is set on every accepted
association socket: without it each DIMSE exchange stalls ~40 ms (Nagle + delayed ACK;
pynetdicom does not set it), and its DUL thread naps 5 ms, not 1, when idle
(:data:`DUL_IDLE_POLL`); its reactor waits for requests rather than polling for them
(:mod:`accord.dicom.acceptor`). Answers are built once per entry and query shape
(:mod:`accord.dicom.responses`), a request's identifier compiled once per identical
request (:class:`CompiledQueries`). Who may associate, how many at once and for how long
idle is :mod:`accord.dicom.admission`'s.
No PHI in logs at INFO or above (pynetdicom's identifier dumps are switched off).
"""

from __future__ import annotations

import logging
import re
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from io import BytesIO
from typing import Any, Protocol

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import AE, _config, evt
from pynetdicom.utils import make_target

from accord.dicom.acceptor import AcceptingServer, WaitingRequestHandler
from accord.dicom.admission import AssociationGate, GateSettings
from accord.dicom.index import WorklistEntry
from accord.dicom.mpps import (
    MppsInstance,
    MppsRejected,
    MppsResult,
    Outcome,
    n_create,
    n_set,
    referenced_steps,
    references,
)
from accord.dicom.query import Query, QueryRejected, compile_query
from accord.dicom.responses import ResponseCache, Signature, signature
from accord.dicom.worklist import SERVABLE, WorklistItem
from accord.errors import AccordError, StoreError
from accord.workflow.model import Patient
from accord.workflow.status import Status

LOG = logging.getLogger(__name__)
# SOP Class UIDs (PS3.4 Annex A.4 / K / F; PS3.6 Annex A).
VERIFICATION = "1.2.840.10008.1.1"
MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
MPPS = "1.2.840.10008.3.1.2.3.3"
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


class WorklistSource(Protocol):
    """Where the worklist and MPPS lookups read scheduled procedure steps from."""

    def candidates(self, query: Query) -> Iterable[WorklistEntry]:
        """Entries that may match ``query`` (a superset; the SCP matches in full)."""
        ...

    def referenced(
        self, *, study_uids: Iterable[str] = (), accessions: Iterable[str] = (),
        sps_ids: Iterable[str] = (),
    ) -> list[WorklistItem]:
        """Steps in any status with one of these Study Instance UIDs, accessions, SPS IDs."""
        ...

    def patients(self, *, patient_id: str = "", family: str = "") -> list[Patient]:
        """Patients with this ID or a similar family name (unscheduled MPPS matching)."""
        ...


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: the calling AE title (the station) and its address."""

    ae_title: str
    address: str = ""


@dataclass(frozen=True, slots=True)
class QueryAnswered:
    """A worklist C-FIND the SCP answered: how many items went back, ``status`` ``ok``,
    ``refused`` (the identifier could not be matched) or ``cancelled``, and the keys it
    matched on, in words."""

    caller: Caller
    matches: int
    status: str
    summary: str


#: Told of every worklist C-FIND once it is answered (must not block).
QueryLog = Callable[[QueryAnswered], None]


class MppsSink(Protocol):
    """Durable MPPS instances and the status commands/findings they produce."""

    def instance(self, sop_instance_uid: str) -> MppsInstance | None:
        """The instance as last recorded, or None."""
        ...

    def record(self, instance: MppsInstance, outcome: Outcome, caller: Caller) -> None:
        """Persist ``instance`` and ``outcome`` together (and that ``caller`` sent it);
        return only once durable. Raise an :class:`~accord.errors.AccordError` (e.g.
        StoreError) when it cannot."""
        ...


@dataclass(frozen=True, slots=True)
class ScpConfig:
    """The DICOM listener's settings (the configuration's defaults: AE ``ACCORD``,
    127.0.0.1:11112)."""

    ae_title: str = "ACCORD"
    host: str = "127.0.0.1"
    port: int = 11112
    maximum_pdu_size: int = 65536  # bytes we accept per P-DATA PDU (PS3.8 D.3.3.1)
    maximum_associations: int = 16
    acse_timeout: float = 30.0
    dimse_timeout: float = 30.0
    network_timeout: float = 60.0
    require_called_ae: bool = False  # refuse associations not addressed to ae_title
    scope_to_station: bool = False  # a calling AE sees only steps for its station AE title
    statuses: frozenset[Status] = field(default=SERVABLE)  # steps served by C-FIND
    tz: tzinfo = UTC  # the department's zone for MPPS DA/TM
    response_cache: int = 4  # C-FIND answers kept per worklist entry (0: none)
    gate: GateSettings = field(default_factory=GateSettings)  # allow-lists, limits, idle


def quiet_identifiers() -> None:
    """Stop pynetdicom pretty-printing every C-FIND identifier for its log: it carries PHI,
    and formatting it costs ~2.7 ms per response even when the log level drops it.
    (A process-wide pynetdicom setting.)"""
    _config.LOG_REQUEST_IDENTIFIERS = False
    _config.LOG_RESPONSE_IDENTIFIERS = False
    # One INFO line per C-FIND response ("Find SCP Response 7: 0xFF00 (Pending)"): in
    # an hour's soak 99% of the engine's log (~35 MB) and ~10% of its CPU (py-spy).
    # The DICOM log (dicom_events) has every request; warnings and errors still show.
    logging.getLogger("pynetdicom.service_class").setLevel(logging.WARNING)
    # pynetdicom's "standard" handlers, bound to every server it makes, format a dump of
    # each DIMSE message and PDU sent or received (a dict of 20 handlers built, UID
    # names looked up, f-strings) for a DEBUG log that is off: per C-FIND answer, work
    # comparable to encoding it. Association and DIMSE errors are still logged.
    _config.LOG_HANDLER_LEVEL = "none"


DUL_IDLE_POLL = 0.005
"""Seconds an association's DUL thread naps when it found nothing to do (pynetdicom's
``_run_loop_delay``, 1 ms by default). It polls its socket and queue between naps: at
1 ms, seven idle associations cost the engine a quarter of a core (measured). It naps
only when idle, so a burst (a C-FIND's pending answers) still goes out back to back;
the first PDU after a pause waits at most this long. An accepted association's provider
naps so only while it is not established: established, it waits for its socket or a
primitive instead (``accord.dicom.acceptor.WaitingDUL``)."""


def set_nodelay(event: evt.Event) -> None:
    """EVT_CONN_OPEN handler: disable Nagle on the association socket, and let its DUL
    thread nap longer when idle (module rules)."""
    transport = event.assoc.dul.socket
    sock = getattr(transport, "socket", None)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    event.assoc.dul._run_loop_delay = DUL_IDLE_POLL


def _on_echo(event: evt.Event) -> int:
    return 0x0000


def _visible(entry: WorklistEntry, calling_ae: str, config: ScpConfig) -> bool:
    step = entry.item.step
    if step.status not in config.statuses:
        return False
    return not config.scope_to_station or calling_ae in step.station_ae_titles


def caller_of(event: evt.Event) -> Caller:
    """The calling AE title and address of an association's request."""
    requestor = event.assoc.requestor
    return Caller(str(requestor.ae_title).strip(), str(getattr(requestor, "address", "")))


class CompiledQueries:
    """Compiled C-FIND identifiers (and their shapes) by the request's encoded identifier
    and transfer syntax: a modality sends the same request again and again, so it is
    decoded and compiled once. A compiled query is a value, shared by all associations.
    A bounded LRU (``capacity`` requests; 0: none kept)."""

    def __init__(self, capacity: int = 256) -> None:
        self._capacity = capacity
        self._compiled: OrderedDict[tuple[bytes, str], tuple[Query | QueryRejected,
                                                             Signature]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._compiled)

    def of(self, event: evt.Event) -> tuple[Query | QueryRejected, Signature]:
        """The request's compiled query and its shape."""
        encoded = getattr(event.request, "Identifier", None)
        key = (encoded.getvalue() if isinstance(encoded, BytesIO) else b"",
               str(event.context.transfer_syntax))
        with self._lock:
            found = self._compiled.get(key) if key[0] else None
            if found is not None:
                self._compiled.move_to_end(key)
                return found
        query = compile_query(event.identifier)
        found = query, signature(query.identifier) if isinstance(query, Query) else ()
        if key[0] and self._capacity:
            with self._lock:
                self._compiled[key] = found
                while len(self._compiled) > self._capacity:
                    self._compiled.popitem(last=False)
        return found


def _on_find(
    event: evt.Event, source: WorklistSource, config: ScpConfig, cache: ResponseCache,
    compiled: CompiledQueries, log: QueryLog | None,
) -> Iterator[tuple[int, Dataset | None]]:
    """Modality Worklist C-FIND (PS3.4 K.4.1.3): one pending response per matching SPS;
    C-CANCEL is checked between responses (PS3.7 9.3.2.3). ``log`` hears of each."""
    query, shape = compiled.of(event)
    if isinstance(query, QueryRejected):
        LOG.info("C-FIND refused: %s", query.reason)
        if log is not None:
            log(QueryAnswered(caller_of(event), 0, "refused", query.reason))
        yield query.status, None
        return
    yield from _answers(event, query, shape, source, config, cache, log)


def query_summary(query: Query) -> str:
    """The keys a C-FIND matched on, in words (for the DICOM log)."""
    h = query.hints
    date = (h.date_from if h.date_from == h.date_to else
            f"{h.date_from or '…'}-{h.date_to or '…'}") if (h.date_from or h.date_to) else ""
    parts = [f"{name} {value}" for name, value in (
        ("station", h.station), ("modality", h.modality), ("date", date),
        ("accession", h.accession), ("patient ID", h.patient_id)) if value]
    return ", ".join(parts) or "no matching key (everything)"


def _answers(
    event: evt.Event, query: Query, shape: Signature, source: WorklistSource,
    config: ScpConfig, cache: ResponseCache, log: QueryLog | None,
) -> Iterator[tuple[int, Dataset | None]]:
    caller = caller_of(event)
    syntax = UID(event.context.transfer_syntax)
    implicit, little = bool(syntax.is_implicit_VR), bool(syntax.is_little_endian)
    sent, status = 0, "ok"
    try:
        for entry in source.candidates(query):
            if event.is_cancelled:
                status = "cancelled"
                yield 0xFE00, None
                return
            if _visible(entry, caller.ae_title, config) and query.matches(entry.dataset):
                sent += 1
                yield 0xFF00, cache.identifier(query, shape, entry, implicit, little)
    finally:
        if log is not None:
            log(QueryAnswered(caller, sent, status, query_summary(query)))
    LOG.debug("C-FIND from %s: %d matches", caller.ae_title, sent)


def _failure(rejected: MppsRejected) -> Dataset:
    status = Dataset()
    status.Status = rejected.status
    status.ErrorComment = rejected.comment[:64]
    return status


def _lookup(source: WorklistSource, ds: Dataset) -> tuple[list[WorklistItem], list[Patient]]:
    """The steps ``ds`` may reference and, only when it references none (an unscheduled
    procedure), the patients it may be about."""
    refs = references(ds)
    items = source.referenced(study_uids=refs.study_uids, accessions=refs.accessions,
                              sps_ids=refs.sps_ids)
    if referenced_steps(ds, items):
        return items, []
    name = str(ds.get("PatientName") or "")
    patients = source.patients(patient_id=str(ds.get("PatientID") or ""),
                               family=name.split("=")[0].split("^")[0])
    return items, patients


def _persist(sink: MppsSink, result: MppsResult | MppsRejected,
             caller: Caller) -> tuple[Dataset, Dataset | None]:
    if isinstance(result, MppsRejected):
        LOG.info("MPPS refused: %04X %s", result.status, result.comment)
        return _failure(result), None
    try:
        sink.record(result.instance, result.outcome, caller)
    except AccordError as exc:
        return _not_stored(exc), None
    ok = Dataset()
    ok.Status = 0x0000
    # The response's Attribute List is a user option (PS3.7 §10.1.5 N-CREATE, §10.1.3 N-SET):
    # a modality learns nothing from its own attributes echoed back, and encoding the
    # whole instance for every N-CREATE and N-SET was a tenth of a busy engine's time.
    return ok, None


def _not_stored(exc: AccordError) -> Dataset:
    """0110 Processing failure (PS3.7 C.4.2.1.4): nothing was stored, the modality
    retries. The store's error text carries no dataset content."""
    LOG.warning("MPPS not stored: %s", exc)
    return _failure(MppsRejected(0x0110, "not stored; retry"))


class _InstanceLocks:
    """A lock per SOP Instance UID, held while it is in use and dropped after."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, uid: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._held.get(uid, (threading.Lock(), 0))
            self._held[uid] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._held[uid]
                if users == 1:
                    del self._held[uid]
                else:
                    self._held[uid] = (lock, users - 1)


class _Mpps:
    """MPPS N-CREATE/N-SET handlers (PS3.4 F.7). A read-modify-record of one instance
    never interleaves with another of the same instance; different instances (other
    modalities) proceed side by side, and the sink commits them together."""

    def __init__(self, source: WorklistSource, sink: MppsSink, config: ScpConfig) -> None:
        self._source, self._sink, self._config = source, sink, config
        self._locks = _InstanceLocks()

    def on_create(self, event: evt.Event) -> tuple[Dataset, Dataset | None]:
        request: Any = event.request
        uid = str(request.AffectedSOPInstanceUID or "")
        if not (_UID.fullmatch(uid) and len(uid) <= 64):
            return _failure(MppsRejected(0x0117, "invalid SOP Instance UID")), None
        attributes = event.attribute_list
        with self._locks.hold(uid):
            try:  # the reads too: a store that cannot answer is a failure status, no crash
                items, patients = _lookup(self._source, attributes)
                result = n_create(uid, attributes, self._sink.instance(uid), items, patients,
                                  self._config.tz)
            except StoreError as exc:
                return _not_stored(exc), None
            return _persist(self._sink, result, caller_of(event))

    def on_set(self, event: evt.Event) -> tuple[Dataset, Dataset | None]:
        request: Any = event.request
        uid = str(request.RequestedSOPInstanceUID or "")
        mods = event.modification_list
        with self._locks.hold(uid):
            try:
                current = self._sink.instance(uid) if _UID.fullmatch(uid) else None
                items, patients = _lookup(self._source, current.dataset if current else mods)
                result = n_set(current, mods, items, patients, self._config.tz)
            except StoreError as exc:
                return _not_stored(exc), None
            return _persist(self._sink, result, caller_of(event))


def build_ae(config: ScpConfig) -> AE:
    """The acceptor AE: MWL Find, MPPS and Verification contexts, limits and timeouts."""
    quiet_identifiers()
    ae = AE(ae_title=config.ae_title)
    for sop_class in (MODALITY_WORKLIST_FIND, MPPS, VERIFICATION):
        ae.add_supported_context(sop_class)
    ae.maximum_pdu_size = config.maximum_pdu_size
    ae.maximum_associations = config.maximum_associations
    ae.acse_timeout = config.acse_timeout
    ae.dimse_timeout = config.dimse_timeout
    ae.network_timeout = config.network_timeout
    ae.require_called_aet = config.require_called_ae
    return ae


class DicomServer:
    """A running SCP; :meth:`stop` closes the listener and its associations. ``gate``
    holds its admission rules and per-address counters."""

    def __init__(self, server: Any, gate: AssociationGate) -> None:
        self._server = server
        self.gate = gate

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def port(self) -> int:
        return self.address[1]

    def stop(self) -> None:
        self._server.shutdown()


def start_scp(config: ScpConfig, source: WorklistSource, sink: MppsSink,
              log: QueryLog | None = None) -> DicomServer:
    """Start the MWL + MPPS + Verification SCP on ``config.host:config.port`` (0 = any
    free port) in background threads; returns once it listens. ``log`` hears of every
    worklist query answered."""
    ae = build_ae(config)
    mpps = _Mpps(source, sink, config)
    gate = AssociationGate(config.gate)
    handlers: list[Any] = [*gate.handlers(),
        (evt.EVT_CONN_OPEN, set_nodelay),
        (evt.EVT_C_ECHO, _on_echo),
        (evt.EVT_C_FIND, _on_find, [source, config, ResponseCache(config.response_cache),
                                    CompiledQueries(), log]),
        (evt.EVT_N_CREATE, mpps.on_create),
        (evt.EVT_N_SET, mpps.on_set),
    ]
    server: Any = ae.make_server((config.host, config.port), evt_handlers=handlers,
                                 server_class=AcceptingServer,
                                 request_handler=WaitingRequestHandler)
    server.verify_request = gate.verify_request  # before serving: no connection slips by
    threading.Thread(target=make_target(server.serve_forever), daemon=True,
                     name=f"accord-dicom-{config.port}").start()
    ae._servers.append(server)  # as AE.start_server does: server.shutdown() removes it
    dicom = DicomServer(server, gate)
    LOG.info("DICOM SCP %s listening on %s:%d", config.ae_title, *dicom.address)
    return dicom
