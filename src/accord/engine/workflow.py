"""The workflow processor: what ingest runs inside its transaction for every message.

Rules (the ACK rules and outbound messages of docs/interface.md):
- Persist, then acknowledge: the message is mapped and applied
  (:func:`accord.mapping.apply.apply_mapped`) against a repository on the SAME
  transaction as the raw message, so the domain changes, trace, findings and outbox rows
  commit together with it, and the ACK goes out after the commit (ingest does that).
- The answer is the workflow's: AA, or AE/AR with the ERR location the engine names. A
  refused message keeps what the engine kept (findings always; a held order) — it is
  returned as ``Outcome.error``, not raised (raising would undo every write).
- Each outbound event goes to every destination whose ``send:`` has its category
  (``adt``/``orders``/``reports``/``status``), built in that destination's dialect
  (:mod:`accord.mapping.outbound`; ORM^O01 ORC-1 SC / ORC-5 IP, CM, DC, or OMI^O23),
  with its own MSH-10 kept in the outbox row so every resend carries the same one. A
  status change is not echoed back to the system that reported it.
- Mapping needs no state: :meth:`WorkflowProcessor.prepare` runs it before the store
  transaction (ingest does so outside its writer thread); applying is the rest.
- The procedure code table follows the store (``live``): each ingest transaction reads
  its version once (one primary-key lookup, on whichever node) and reloads the table
  only when it moved; a message mapped on the older table is mapped again. Only orders
  mapped from then on get the new stations: the DICOM worklist follows from orders.
- Pure apart from ``tx``: no sockets, no clock reads; ids and the clock come in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from accord.clock import ControlIds
from accord.config import Destination
from accord.engine.processor import Outcome, Prepared, encode_like
from accord.errors import AccordError, ApplyError, ConfigError, RejectError
from accord.hl7 import Message
from accord.mapping.apply import apply_mapped
from accord.mapping.dialect import Dialect, Dialects
from accord.mapping.inbound import map_message
from accord.mapping.outbound import build
from accord.mapping.procedures import Catalog, CodeTable, StationRule
from accord.store import JsonDict, OutboxItem, Tx
from accord.workflow.events import (
    Event,
    OrderForwarded,
    OrderStatusChanged,
    PatientChanged,
    PatientMerged,
    ReportForwarded,
)
from accord.workflow.model import Patient
from accord.workflow.outcome import IdSource, Matcher
from accord.workflow.outcome import Outcome as WorkflowOutcome
from accord.workflow.repository import Repository


class UnitOfWork(Repository, Protocol):
    """A Repository on one store transaction that may buffer writes until :meth:`flush`."""

    def flush(self) -> None: ...

    def focus(self, message_type: str) -> None:
        """A hint: this unit of work applies one message of ``message_type``."""
        ...


#: Opens the workflow repository on an ingest transaction (``accord.store.workflow.repository``).
RepositoryFactory = Callable[[Tx, datetime], UnitOfWork]


class LiveTable(Protocol):
    """The stored procedure code table (``accord.store.workflow.catalog``), read on an
    ingest transaction: ``version`` is cheap (the highest version number), ``table`` is
    the whole table, read only when the version moved."""

    def version(self, tx: Tx) -> int: ...

    def table(self, tx: Tx) -> CodeTable: ...


class Outbound:
    """Domain events → outbox rows for the destinations that subscribe to them."""

    def __init__(self, destinations: Sequence[Destination], dialects: Dialects,
                 control_ids: ControlIds) -> None:
        self._destinations = tuple(destinations)
        self._dialects = dialects
        self._ids = control_ids
        self._by_name = {d.name: d for d in (*dialects.items, dialects.default)}
        for dest in self._destinations:
            if dest.dialect and dest.dialect not in self._by_name:
                raise ConfigError(f"destinations: {dest.name} names dialect {dest.dialect!r}, "
                                  "which the dialects section does not define")

    def dialect_of(self, destination: Destination) -> Dialect:
        """The dialect a destination is addressed in (its ``dialect:``, else default)."""
        return self._by_name.get(destination.dialect or "", self._dialects.default)

    def items(self, events: Sequence[Event], now: datetime) -> tuple[OutboxItem, ...]:
        """One outbox row per (event, subscribed destination), in event order."""
        out: list[OutboxItem] = []
        for event in events:
            for dest in self._destinations:
                if event.category not in dest.send:
                    continue
                dialect = self.dialect_of(dest)
                if _echo(event, dialect):
                    continue
                control_id = self._ids.next()
                msg = build(event, dialect, control_id=control_id, now=now,
                            receiving_application=dest.name)
                if msg is None:
                    continue
                out.append(OutboxItem(
                    destination=dest.name, kind=event.category, control_id=control_id,
                    payload=encode_like(msg.to_er7(), msg), patient_key=patient_key(event)))
        return tuple(out)


def _echo(event: Event, dialect: Dialect) -> bool:
    """A status change goes back to everyone but the system that reported it."""
    return (isinstance(event, OrderStatusChanged) and bool(event.by)
            and bool(dialect.application) and dialect.application == event.by)


def _patient_of(event: Event) -> Patient | None:
    match event:
        case OrderStatusChanged() | OrderForwarded() | PatientChanged():
            return event.patient
        case ReportForwarded():
            return event.patient
        case PatientMerged():
            return event.survivor
    return None


def patient_key(event: Event) -> str:
    """The per-patient ordering key of an outbox row: ``CX-1^^^CX-4`` of the patient's
    first identifier (the same form :mod:`accord.engine.router` uses)."""
    patient = _patient_of(event)
    if patient is None or not patient.identifiers:
        return ""
    first = patient.identifiers[0]
    return f"{first.value}^^^{first.authority}" if first.authority else first.value


def outcome_error(outcome: WorkflowOutcome) -> AccordError | None:
    """The refusal of a workflow outcome as the error ingest answers with, or None."""
    if outcome.ack_code == "AA":
        return None
    kind = RejectError if outcome.ack_code == "AR" else ApplyError
    return kind(outcome.error_text or "cannot be applied", location=outcome.error_location,
                error_code=outcome.error_code or None)


def detail(outcome: WorkflowOutcome, items: Sequence[OutboxItem]) -> JsonDict:
    """The stored outcome of a message: what changed, found and routed (no PHI)."""
    return {
        "workflow": {
            "ack": outcome.ack_code,
            "changes": list(outcome.changes),
            "findings": [f.kind.value for f in outcome.findings],
            "events": [e.category for e in outcome.outbound_events],
            "error": outcome.error_text,
            "location": outcome.error_location,
        },
        "routed": [{"destination": i.destination, "kind": i.kind, "control_id": i.control_id}
                   for i in items],
    }


@dataclass(frozen=True, slots=True)
class _Setup:
    """The dialects and the outbound side of one configuration, read together."""

    dialects: Dialects
    outbound: Outbound


class WorkflowProcessor:
    """The ingest :class:`~accord.engine.processor.Processor` of the workflow (module
    rules)."""

    def __init__(self, *, dialects: Dialects, outbound: Outbound, ids: IdSource,
                 repository: RepositoryFactory, catalog: Catalog | None = None,
                 matcher: Matcher | None = None, live: LiveTable | None = None) -> None:
        self._setup = _Setup(dialects, outbound)
        self._catalog_lock = threading.Lock()  # the writer thread and a reload both swap it
        self._ids = ids
        self._repository = repository
        self.catalog = catalog  # replaced when the procedure table changes
        self._matcher = matcher
        self._live = live
        current = catalog.table.current if catalog is not None else None
        self._version = current.number if current is not None else 0
        self._checked: Tx | None = None  # the transaction the version was last read on

    def _follow(self, tx: Tx) -> None:
        """Once per ingest transaction (a batch), on every node: the stored code table's
        version, and the table itself when it moved (a console edit, another node's
        start). Orders mapped from then on use it; the worklist follows from orders."""
        if self._live is None or tx is self._checked:
            return
        self._checked = tx
        version = self._live.version(tx)
        if version != self._version:
            table = self._live.table(tx)
            with self._catalog_lock:
                self.catalog = replace(self.catalog or Catalog(), table=table)
            self._version = version

    def reconfigure(self, dialects: Dialects, outbound: Outbound,
                    rules: tuple[StationRule, ...] | None) -> None:
        """A configuration reload: messages mapped from now on use these dialects,
        destinations and station rules (``None``: keep the current ones); a message
        already mapped finishes with what it was mapped with."""
        self._setup = _Setup(dialects, outbound)
        if rules is not None:
            with self._catalog_lock:
                self.catalog = replace(self.catalog or Catalog(), rules=rules)

    def process(self, msg: Message, tx: Tx, now: datetime) -> Outcome:
        return self.prepare(msg, now)(tx)

    def prepare(self, msg: Message, now: datetime) -> Prepared:
        """Map ``msg`` now (pure: no transaction needed); the returned step applies it on
        an ingest transaction (``process`` is both at once)."""
        setup = self._setup  # one configuration for the whole message, reloads or not
        dialect = setup.dialects.for_sender(msg.get("MSH-3.1"), msg.get("MSH-4.1"))
        catalog = self.catalog
        mapped = map_message(msg, dialect, now=now, catalog=catalog)

        def apply(tx: Tx) -> Outcome:
            self._follow(tx)
            again = self.catalog is not catalog  # the table changed since mapping: map anew
            fresh = map_message(msg, dialect, now=now, catalog=self.catalog) if again else mapped
            repo = self._repository(tx, now)
            repo.focus(fresh.message_type)  # as mapped: MSH-9 is not read again
            result = apply_mapped(repo, fresh, dialect, now=now, ids=self._ids,
                                  matcher=self._matcher)
            repo.flush()
            items = setup.outbound.items(result.outbound_events, now)
            return Outcome(detail=detail(result, items), outbox=items,
                           error=outcome_error(result))

        return apply
