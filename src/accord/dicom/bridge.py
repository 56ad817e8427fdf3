"""The DICOM bridge on the store: the worklist the SCP serves, where MPPS goes, and the
bridge's running parts (the SCP and its background jobs).

Rules:
- :class:`StoreWorklist` (a ``WorklistSource``) serves C-FIND from the in-memory
  :class:`~accord.dicom.index.WorklistIndex`, loaded from the store at start. Every
  order change is appended to the store's worklist log in the transaction that made it;
  before each C-FIND the log is read from the last position (one indexed query), so a
  change committed by ANY process sharing the database — an ORM cancel acknowledged a
  moment ago, a merge — is on the worklist before the next answer. Ids a PostgreSQL
  sequence handed out to a transaction that has not committed yet are re-checked until
  they appear (or for ``gap_seconds``; a rolled-back transaction leaves a gap forever).
- The refresh works from changes: the orders this node committed (and their patients)
  are told to the worklist after each commit (:meth:`StoreWorklist.committed`, fed by
  the repository: ``accord.store.workflow.changes``), and a refresh applies them, in
  log order, without reading them back; only rows other nodes wrote (or a change that
  did not name its patient) are read back from the store. Nothing rolled back is ever
  told, so it never reaches the index.
- A worklist item shows its order's status (its steps follow the order: a cancelled or
  started order leaves the worklist); an order held off the worklist is not served.
- MPPS lookups (which steps an N-CREATE/N-SET references, which patient an unscheduled
  procedure may be) read the store directly: they concern steps in any status.
- :class:`StoreMpps` (an ``MppsSink``) stores the MPPS instance (dataset and status),
  applies its status to the referenced orders, records the trace and findings, and
  enqueues the status messages for ``send: [status]`` destinations, all in ONE store
  transaction that commits before ``record`` returns, i.e. before the N-CREATE/N-SET
  response (persist, then acknowledge; as ingest does for HL7). Requests of several
  associations that arrive together share that transaction (group commit), each in a
  savepoint of its own.
- Every request answered goes to the DICOM log (``dicom_events``): an MPPS in its own
  transaction, worklist queries gathered by :class:`QueryLog` and written every few
  seconds (a C-FIND never waits for a commit).
- :class:`DicomBridge` runs them: it loads the worklist, starts the SCP (a port it
  cannot bind raises, and the runtime stops with one line), keeps the worklist fresh
  between queries, prunes the worklist log and the DICOM log on one node at a time,
  and runs the PACS reconciliation job when a PACS is configured. It is given its store
  parts (reads, the repository, the MPPS writer, the DICOM log): the runtime picks them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from pydicom.dataset import Dataset

from accord.clock import Clock
from accord.config import DicomConfig
from accord.dicom.admission import GateSettings
from accord.dicom.index import WorklistEntry, WorklistIndex
from accord.dicom.mpps import (
    MppsInstance,
    Outcome,
    StatusCommand,
    UnscheduledProcedure,
    references,
)
from accord.dicom.query import Query
from accord.dicom.reconcile_job import CompletedSource, ReconcileSettings, reconciliation_loop
from accord.dicom.scp import Caller, DicomServer, QueryAnswered, ScpConfig, start_scp
from accord.dicom.scu import PacsPeer
from accord.dicom.worklist import WorklistItem, started_before
from accord.engine.workflow import Outbound, RepositoryFactory
from accord.errors import AccordError, StoreError
from accord.mllp.admission import parse_networks
from accord.store import Store, Tx, committing_as
from accord.store.workflow.changes import LoggedChange
from accord.store.workflow.dicom_events import DicomEvent
from accord.workflow.events import Event, OrderStatusChanged
from accord.workflow.findings import FindingKind
from accord.workflow.model import Order, Patient
from accord.workflow.orders import set_status
from accord.workflow.outcome import IdSource, Session
from accord.workflow.repository import Repository
from accord.workflow.status import ON_WORKLIST

LOG = logging.getLogger(__name__)
OrderWithPatient = tuple[Order, Patient]


class WorklistReader(Protocol):
    """The store reads of the bridge (``accord.store.workflow.worklist.SqlWorklistReader``)."""

    def log_position(self) -> int: ...

    def changes(self, after: int, gaps: Iterable[int] = ()) -> list[tuple[int, str]]: ...

    def orders(self, order_ids: Sequence[str]) -> list[OrderWithPatient]: ...

    def on_worklist(self) -> list[OrderWithPatient]: ...

    def referenced(self, *, study_uids: Iterable[str] = (), accessions: Iterable[str] = (),
                   sps_ids: Iterable[str] = ()) -> list[OrderWithPatient]: ...

    def patients(self, *, patient_id: str = "", family: str = "",
                 limit: int = 50) -> list[Patient]: ...

    def mpps(self, sop_instance_uid: str) -> tuple[str, bytes] | None: ...


class BridgeReader(WorklistReader, CompletedSource, Protocol):
    """Every store read of the bridge: the worklist's and MPPS's, and reconciliation's."""


#: Writes an MPPS instance on a transaction: (tx, SOP Instance UID, status, dataset, now).
MppsWriter = Callable[[Tx, str, str, bytes, datetime], None]


class EventWriter(Protocol):
    """The DICOM log's writes (``accord.store.workflow.dicom_events.DicomEventLog``)."""

    def add_in(self, tx: Tx, event: DicomEvent) -> None: ...

    def add(self, events: Sequence[DicomEvent]) -> None: ...

    def prune(self, before: datetime, block: int = 1000) -> int: ...


class QueryLog:
    """The worklist queries answered since the last :meth:`flush`, as DICOM log rows:
    a C-FIND never waits for a commit; the bridge writes them every few seconds."""

    def __init__(self, writer: EventWriter, clock: Clock) -> None:
        self._writer, self._clock = writer, clock
        self._lock = threading.Lock()
        self._pending: list[DicomEvent] = []

    def __call__(self, answered: QueryAnswered) -> None:
        event = DicomEvent(at=self._clock.now(), kind="find",
                           station=answered.caller.ae_title, peer=answered.caller.address,
                           status=answered.status, matches=answered.matches,
                           summary=answered.summary)
        with self._lock:
            self._pending.append(event)

    def flush(self) -> int:
        """Write what was gathered; how many rows (kept for the next time on failure)."""
        with self._lock:
            batch, self._pending = self._pending, []
        try:
            self._writer.add(batch)
        except Exception:
            with self._lock:
                self._pending = batch + self._pending
            raise
        return len(batch)

#: Deletes the worklist-log rows written before the given time.
LogPruner = Callable[[datetime], object]


def worklist_view(order: Order) -> Order | None:
    """The order as the worklist shows it: steps in the order's status; None when held."""
    if order.hold_reason:
        return None
    return replace(order, steps=tuple(replace(s, status=order.status) for s in order.steps))


class StoreWorklist:
    """The SCP's ``WorklistSource`` over the store (module rules)."""

    MAX_OWN = 100_000
    """Changes of this node waiting for a refresh at most (past it they are dropped and
    read back from the store: a bridge that stopped refreshing holds no more)."""

    def __init__(self, reader: WorklistReader, index: WorklistIndex, *,
                 gap_seconds: float = 60.0,
                 monotonic: Callable[[], float] = time.monotonic,
                 horizon: timedelta | None = None, clock: Clock | None = None) -> None:
        self._reader = reader
        self.index = index
        # A step scheduled longer ago than this and never started leaves the worklist
        # (``dicom.worklist_horizon_hours``): a modality picks today's work, and orders
        # nobody performs or cancels must not make the index grow for as long as the
        # engine runs. MPPS lookups read the store, so a late exam still finds its order.
        self._horizon, self._clock = horizon, clock
        self._gap_seconds = gap_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._position = 0
        self._gaps: dict[int, float] = {}  # log id not seen yet -> when first missed
        self._own_lock = threading.Lock()  # taken by committing threads: held briefly
        self._own: dict[int, LoggedChange] = {}  # this node's changes, by log id
        self.read_back = 0  # orders read back from the store by refreshes (a metric)

    def load(self) -> int:
        """Fill the index from the store; returns how many orders it holds."""
        with self._lock:
            self._position = self._reader.log_position()  # changes from now on: refresh
            loaded = self._reader.on_worklist()
            for order, patient in loaded:
                self._put(order, patient)
        LOG.info("worklist loaded: %d order(s), %d item(s)", len(loaded), len(self.index))
        return len(loaded)

    @property
    def waiting(self) -> int:
        """This node's changes told but not applied yet."""
        with self._own_lock:
            return len(self._own)

    def committed(self, changes: Sequence[LoggedChange]) -> None:
        """This node committed these worklist-log rows (with the orders and patients it
        wrote): the next refresh applies them without reading them back."""
        with self._own_lock:
            if len(self._own) + len(changes) > self.MAX_OWN:
                self._own.clear()
            for change in changes:
                self._own[change.log_id] = change

    def refresh(self) -> int:
        """Apply the changes committed since the last look, in log order: this node's
        from what it committed, other nodes' read back from the store; returns how many
        orders changed."""
        with self._lock:
            rows = self._reader.changes(self._position, self._gaps)
            if not rows:
                self._expire_gaps()
                self._forget_own()
                return 0
            with self._own_lock:
                own = {i: c for i, _ in rows if (c := self._own.pop(i, None)) is not None}
            changed: dict[str, list[LoggedChange | None]] = {}
            for log_id, order_id in sorted(rows):
                self._gaps.pop(log_id, None)
                if log_id > self._position:
                    if log_id - self._position < 10_000:  # else: a restore, not a race
                        seen_at = self._monotonic()
                        for gap in range(self._position + 1, log_id):
                            self._gaps.setdefault(gap, seen_at)
                    self._position = log_id
                changed.setdefault(order_id, []).append(own.get(log_id))
            self._apply(changed)
            self._expire_gaps()
            self._forget_own()
            return len(changed)

    def _apply(self, changed: dict[str, list[LoggedChange | None]]) -> None:
        """Each changed order as it stands after its last change: from this node's own
        changes when all of them are (and name the patient), else read back."""
        read_back: list[str] = []
        renamed: dict[str, tuple[int, Patient]] = {}  # patient id -> (log id, patient)
        for order_id, changes in changed.items():
            known = [c for c in changes if c is not None and c.patient is not None]
            if len(known) < len(changes):
                read_back.append(order_id)
                continue
            last = known[-1]
            assert last.patient is not None
            saved = [c.order for c in known if c.order is not None]
            if not saved:  # only its patient changed: its items show the new demographics
                if renamed.get(last.patient.id, (0,))[0] < last.log_id:
                    renamed[last.patient.id] = (last.log_id, last.patient)
            elif saved[-1].patient_id == last.patient.id:
                self._put(saved[-1], last.patient)
            else:
                read_back.append(order_id)  # re-pointed after this save: read it back
        for _, patient in renamed.values():
            self.index.update_patient(patient)
        if read_back:
            self.read_back += len(read_back)
            found = self._reader.orders(sorted(read_back))
            for order, patient in found:
                self._put(order, patient)
            for gone in set(read_back) - {o.id for o, _ in found}:
                self.index.remove(gone)

    def _forget_own(self) -> None:
        """Drop own changes the log position passed (read back meanwhile: their commit
        came just after a refresh read the log) unless they are gaps still awaited."""
        with self._own_lock:
            stale = [i for i in self._own if i <= self._position and i not in self._gaps]
            for log_id in stale:
                del self._own[log_id]

    def _expire_gaps(self) -> None:
        limit = self._monotonic() - self._gap_seconds
        self._gaps = {g: t for g, t in self._gaps.items() if t >= limit}

    def _cutoff(self) -> datetime | None:
        if self._horizon is None or self._clock is None:
            return None
        return self._clock.now() - self._horizon

    def expire(self) -> int:
        """Drop the steps past the horizon (the housekeeping's, once a minute); returns
        how many went."""
        cutoff = self._cutoff()
        return 0 if cutoff is None else self.index.expire(cutoff)

    def _put(self, order: Order, patient: Patient) -> None:
        view = worklist_view(order)
        cutoff = self._cutoff()
        if view is not None and cutoff is not None:
            view = replace(view, steps=tuple(s for s in view.steps
                                             if not started_before(s, cutoff)))
        if view is None or not view.steps or order.status not in ON_WORKLIST:
            self.index.remove(order.id)
        else:
            self.index.put_order(view, patient)

    # --- WorklistSource -----------------------------------------------------------------
    def candidates(self, query: Query) -> list[WorklistEntry]:
        self.refresh()
        return self.index.candidates(query)

    def referenced(
        self, *, study_uids: Iterable[str] = (), accessions: Iterable[str] = (),
        sps_ids: Iterable[str] = (),
    ) -> list[WorklistItem]:
        found = self._reader.referenced(study_uids=tuple(study_uids),
                                        accessions=tuple(accessions), sps_ids=tuple(sps_ids))
        items = []
        for order, patient in found:
            view = replace(order, steps=tuple(replace(s, status=order.status)
                                              for s in order.steps))
            items += [WorklistItem(patient, view, s) for s in view.steps]
        return items

    def patients(self, *, patient_id: str = "", family: str = "") -> list[Patient]:
        return self._reader.patients(patient_id=patient_id, family=family)


def encode_dataset(ds: Dataset) -> bytes:
    """An MPPS dataset as stored: DICOM JSON (PS3.18 F.2), UTF-8."""
    return ds.to_json().encode("utf-8")


def decode_dataset(data: bytes) -> Dataset:
    return Dataset.from_json(data.decode("utf-8"))


def apply_mpps(repo: Repository, instance: MppsInstance, outcome: Outcome, *, now: datetime,
               ids: IdSource) -> list[Event]:
    """Apply an MPPS outcome to the workflow (PS3.4 F.7 → canonical status); pure apart
    from ``repo``. Returns the events for the outbox (status to ``send: [status]``)."""
    s = Session(repo, ids, now, "MPPS", f"MPPS {instance.sop_instance_uid}")
    match outcome:
        case StatusCommand():
            said = f"MPPS {instance.status}" + (f" from {outcome.station_ae}"
                                                 if outcome.station_ae else "")
            for order_id in dict.fromkeys(step.order_id for step in outcome.steps):
                order = repo.order(order_id)
                if order is not None:
                    set_status(s, order, outcome.status, said)
        case UnscheduledProcedure():
            match_note = (f"best patient match {outcome.best_match} (score {outcome.score:.2f})"
                          if outcome.best_match else "no patient matched")
            s.new_finding(
                FindingKind.UNSCHEDULED_PROCEDURE,
                f"MPPS {outcome.mpps_uid} ({outcome.modality or 'no modality'} at "
                f"{outcome.station_ae or 'unknown station'}) references no scheduled step; "
                f"{match_note}",
                accession=outcome.accession, patient_id=outcome.best_match or "",
                subject=outcome.mpps_uid, score=outcome.score or None)
            s.trace(None, f"MPPS {instance.status} for an unscheduled procedure",
                    accession=outcome.accession, outcome="unscheduled",
                    rules=["no scheduled step has its Study Instance UID, accession or SPS ID"])
    return list(s.events)


def mpps_event(instance: MppsInstance, outcome: Outcome, events: Sequence[Event],
               caller: Caller | None, now: datetime) -> DicomEvent:
    """The DICOM log row of an MPPS: its status, the accession of the order it moved
    (else the one it references), and what it did in words."""
    changed = [e for e in events if isinstance(e, OrderStatusChanged)]
    unscheduled = isinstance(outcome, UnscheduledProcedure)
    walk_in = outcome.accession if isinstance(outcome, UnscheduledProcedure) else ""
    accession = next(iter([e.order.accession for e in changed]
                          + list(references(instance.dataset).accessions) + [walk_in]))
    if unscheduled:
        summary = "references no scheduled step (unscheduled procedure)"
    elif changed:
        summary = ", ".join(f"{e.order.accession or e.order.id}: {e.before.value} → "
                            f"{e.after.value}" for e in changed)
    else:
        summary = "no status change"
    return DicomEvent(at=now, kind="mpps", station=caller.ae_title if caller else "",
                      peer=caller.address if caller else "", status=instance.status,
                      accession=accession, sop_instance_uid=instance.sop_instance_uid,
                      summary=summary)


class StoreMpps:
    """The SCP's ``MppsSink`` over the store (module rules)."""

    def __init__(self, store: Store, reader: WorklistReader, *, repository: RepositoryFactory,
                 outbound: Outbound, ids: IdSource, clock: Clock, save: MppsWriter,
                 events: EventWriter | None = None,
                 on_commit: Callable[[], None] | None = None) -> None:
        self._store, self._reader = store, reader
        self._repository, self._outbound, self._ids = repository, outbound, ids
        self._clock, self._save, self._events = clock, save, events
        self._on_commit = on_commit
        self._queue_lock = threading.Lock()
        self._queue: list[_PendingMpps] = []
        self._commit_lock = threading.Lock()  # held by the thread committing a batch

    def instance(self, sop_instance_uid: str) -> MppsInstance | None:
        found = self._reader.mpps(sop_instance_uid)
        if found is None:
            return None
        status, data = found
        return MppsInstance(sop_instance_uid, status, decode_dataset(data))

    def use(self, outbound: Outbound) -> None:
        """A configuration reload: status messages from now on go to these destinations."""
        self._outbound = outbound

    def record(self, instance: MppsInstance, outcome: Outcome,
               caller: Caller | None = None) -> None:
        """Persist ``instance`` with ``outcome`` and return once it is durable.

        Modalities' requests are committed together: each association's thread queues
        its record, and the first to get the commit lock writes every record queued so
        far in one transaction, each under a savepoint (one that fails is answered
        "not stored" alone), with one fsync for all. With a transaction per request the
        SQLite writer lock and the fsync, shared with HL7 ingest, were the MPPS rate.
        """
        # Encoded here, not in the transaction: on SQLite every other writer waits for it.
        pending = _PendingMpps(instance, outcome, caller, self._clock.now(),
                               encode_dataset(instance.dataset))
        with self._queue_lock:
            self._queue.append(pending)
        with self._commit_lock:
            if not pending.done:  # no other thread's batch took it: commit what is queued
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        if pending.error is not None:
            raise pending.error

    def _commit(self, batch: list[_PendingMpps]) -> None:
        committing_as("mpps")  # this association thread's commits (accord.store)
        try:
            with self._store.transaction() as tx:
                if len(batch) == 1:
                    self._write(tx, batch[0])
                else:
                    for pending in batch:
                        self._write_alone(tx, pending)
        except Exception as exc:
            failed = exc if isinstance(exc, AccordError) else StoreError(
                f"MPPS not recorded ({type(exc).__name__})")
            if not isinstance(exc, AccordError):
                LOG.exception("MPPS commit failed")
            for pending in batch:
                pending.error = pending.error or failed
        finally:
            for pending in batch:
                pending.done = True
        if self._on_commit is not None and any(p.error is None for p in batch):
            self._on_commit()
        # The worklist is not refreshed here: the next C-FIND refreshes it before it
        # answers (and housekeeping every few seconds), a store read per MPPS saved.

    def _write_alone(self, tx: Tx, pending: _PendingMpps) -> None:
        try:
            with tx.savepoint():
                self._write(tx, pending)
        except AccordError as exc:
            pending.error = exc

    def _write(self, tx: Tx, pending: _PendingMpps) -> None:
        instance, now = pending.instance, pending.now
        repo = self._repository(tx, now)
        events = apply_mpps(repo, instance, pending.outcome, now=now, ids=self._ids)
        repo.flush()
        items = self._outbound.items(events, now)
        if items:
            tx.enqueue(list(items), now)
        self._save(tx, instance.sop_instance_uid, instance.status, pending.encoded, now)
        if self._events is not None:
            self._events.add_in(
                tx, mpps_event(instance, pending.outcome, events, pending.caller, now))


class _PendingMpps:
    """One MPPS record waiting for its batch's commit (:meth:`StoreMpps.record`)."""

    __slots__ = ("caller", "done", "encoded", "error", "instance", "now", "outcome")

    def __init__(self, instance: MppsInstance, outcome: Outcome, caller: Caller | None,
                 now: datetime, encoded: bytes) -> None:
        self.instance, self.outcome, self.caller, self.now = instance, outcome, caller, now
        self.encoded = encoded  # the instance's dataset as stored (encode_dataset)
        self.done = False
        self.error: AccordError | None = None


class DicomBridge:
    """The running DICOM side: the MWL + MPPS SCP on the store, worklist housekeeping and
    the PACS reconciliation job (module rules). Built by the runtime with the store parts
    it picked; :meth:`start` and :meth:`stop` follow the runtime's."""

    def __init__(self, settings: DicomConfig, store: Store, reader: BridgeReader, *,
                 repository: RepositoryFactory, outbound: Outbound, ids: IdSource,
                 clock: Clock, save: MppsWriter, prune_log: LogPruner,
                 events: EventWriter | None = None,
                 worklist: StoreWorklist | None = None) -> None:
        self.settings, self.store, self.clock = settings, store, clock
        self.reader = reader
        # Given when the repository feeds it this node's commits (``committed``).
        self.worklist = worklist or StoreWorklist(
            reader, WorklistIndex(), horizon=settings.worklist_horizon,
            clock=clock)
        self._repository, self._outbound, self._ids = repository, outbound, ids
        self._save, self._prune_log, self._events = save, prune_log, events
        self.queries = QueryLog(events, clock) if events is not None else None
        self.server: DicomServer | None = None
        self._sink: StoreMpps | None = None

    def use(self, outbound: Outbound) -> None:
        """A configuration reload: MPPS status messages from now on go out through
        ``outbound`` (its destinations and dialects)."""
        self._outbound = outbound
        if self._sink is not None:
            self._sink.use(outbound)

    async def start(self, wake: Callable[[], None], node: str) -> list[asyncio.Task[None]]:
        """Load the worklist, listen, and start the background jobs (worklist housekeeping;
        reconciliation if a PACS is configured), which are returned for the caller to
        cancel. ``wake`` (the delivery workers') is called on this event loop after each
        MPPS commit."""
        loop = asyncio.get_running_loop()

        def on_commit() -> None:  # MPPS commits happen on pynetdicom's threads
            loop.call_soon_threadsafe(wake)

        sink = self._sink = StoreMpps(
            self.store, self.reader, repository=self._repository, outbound=self._outbound,
            ids=self._ids, clock=self.clock, save=self._save, events=self._events,
            on_commit=on_commit)
        d = self.settings
        gate = GateSettings(parse_networks(d.allowed_addresses), d.allowed_calling_aes,
                            d.max_per_ae, d.max_per_peer, d.idle_timeout)
        scp = ScpConfig(ae_title=d.ae_title, host=d.host, port=d.port,
                        maximum_associations=d.max_associations,
                        scope_to_station=d.scope_to_station, gate=gate)
        await asyncio.to_thread(self.worklist.load)
        # A port that cannot be bound raises (OSError): the runtime stops with one line.
        self.server = await asyncio.to_thread(start_scp, scp, self.worklist, sink,
                                              self.queries)
        jobs = [asyncio.create_task(self._housekeeping(node), name="accord-worklist")]
        if d.pacs is not None:
            peer = PacsPeer(d.pacs.host, d.pacs.port, d.pacs.ae_title, d.ae_title,
                            d.pacs.timeout)
            settings = ReconcileSettings(peer, timedelta(minutes=d.reconcile_after_minutes),
                                         d.reconcile_interval)
            jobs.append(asyncio.create_task(reconciliation_loop(
                self.store, self.reader, self._repository, settings, self.clock, node),
                name="accord-reconcile"))
        return jobs

    async def _housekeeping(self, node: str, poll: float = 5.0) -> None:
        """Keep the worklist fresh without queries (every ``poll`` s), drop the steps past
        its horizon (every minute), write the worklist
        queries answered meanwhile to the DICOM log and, on one node at a time, drop
        worklist-log rows older than a day and DICOM log rows older than
        ``dicom.activity_days``."""
        pruned_at = expired_at = None
        while True:
            await asyncio.sleep(poll)
            try:
                await asyncio.to_thread(self.worklist.refresh)
                if expired_at is None or time.monotonic() - expired_at >= 60.0:
                    expired_at = time.monotonic()
                    await asyncio.to_thread(self.worklist.expire)
                if self.queries is not None:
                    await asyncio.to_thread(self.queries.flush)
                now = self.clock.now()
                due = pruned_at is None or now - pruned_at >= timedelta(hours=1)
                if due and await asyncio.to_thread(self.store.try_job_lock, "worklist-log",
                                                   node, 7200.0, now):
                    pruned_at = now
                    await asyncio.to_thread(self._prune, now)
            except Exception as exc:  # retried next round, never fatal
                LOG.warning("worklist housekeeping failed: %s", exc)

    def _prune(self, now: datetime) -> None:
        self._prune_log(now - timedelta(days=1))
        if self._events is not None:
            before = now - timedelta(days=self.settings.activity_days)
            while self._events.prune(before):
                pass

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.queries is not None:
            try:
                self.queries.flush()
            except Exception as exc:  # the log is a record of queries, not of data
                LOG.warning("DICOM log not written at stop: %s", exc)
