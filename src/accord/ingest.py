"""Ingest: every received message is stored, processed and answered in ONE transaction.

Rules (issue 3, CONTRACT "ACK rules"; HL7 v2.5.1 §2.9.2 original-mode acknowledgment):

1. Persist, then acknowledge. The raw bytes, header keys, parse outcome, processing
   outcome, dedupe claim and outbox rows are written in one store transaction; the ACK
   bytes are handed back only after it committed. If the commit fails nobody gets an ACK
   (the MLLP server closes the connection; the sender resends).
2. Group commit. One writer takes every message waiting, processes each inside its own
   ``tx.savepoint()`` and commits once, so concurrent connections share one fsync. A
   message whose processing fails is rolled back alone and stored as an error.
3. Every input is stored, whatever its answer: unparseable → ``rejected`` + AR; sender not
   on the allow-list → ``rejected`` + AR; cannot be applied (:class:`ApplyError`) →
   ``error`` + AE with an ERR segment naming the field; resend with the same MSH-3 +
   MSH-4 + MSH-10 → ``duplicate``, answered with the FIRST ACK bytes, applied once.
4. Processing is a seam (:class:`Processor`): the default routes by message category to
   the destinations whose ``send:`` list includes it; the workflow plugs in here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from accord.clock import Clock, ControlIds
from accord.config import Category, Config, Destination, Sender
from accord.errors import AccordError, ApplyError, ParseError, RejectError
from accord.hl7 import Message, parse
from accord.hl7.ack import AckError, build_ack, build_reject
from accord.hl7.charset import codec_for
from accord.mllp.server import PeerInfo
from accord.store import InboundMessage, JsonDict, MessageStatus, OutboxItem, Store, Tx

log = logging.getLogger(__name__)

MAX_BATCH = 500
"""Most messages committed together (bounds the latency of the first one in a batch)."""

# MSH-9.1 message code → CONTRACT ``send:`` category.
CATEGORY_OF: dict[str, Category] = {
    "ADT": "adt", "ORM": "orders", "OMI": "orders", "OMG": "orders", "SIU": "orders",
    "ORU": "reports",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What processing did: a JSON-able ``detail`` for the stored outcome and the outbox
    items to enqueue (``source_message_id`` is filled in by ingest)."""

    detail: JsonDict = field(default_factory=dict)
    outbox: tuple[OutboxItem, ...] = ()


class Processor(Protocol):
    """The processing seam. Runs inside the ingest transaction (``tx``) and inside a
    savepoint of its own: raise :class:`ApplyError` (with ``location``, e.g. ``"OBR-4"``)
    to answer AE — every write it made is undone and the message is stored as ``error``."""

    def process(self, msg: Message, tx: Tx, now: datetime) -> Outcome: ...


class Router:
    """The default processor: routes by category (ADT → adt; ORM/OMI/OMG/SIU → orders;
    ORU → reports) to each destination whose ``send:`` includes it. Each copy gets its
    own new MSH-10 from ``control_ids``, kept in the outbox row so a resend reuses it."""

    def __init__(self, destinations: Sequence[Destination], control_ids: ControlIds) -> None:
        self._destinations = tuple(destinations)
        self._ids = control_ids

    def process(self, msg: Message, tx: Tx, now: datetime) -> Outcome:
        kind = CATEGORY_OF.get(msg.get("MSH-9.1").upper())
        targets = [d for d in self._destinations if kind is not None and kind in d.send]
        items = []
        for dest in targets:
            control_id = self._ids.next()
            items.append(OutboxItem(destination=dest.name, kind=kind or "",
                                    control_id=control_id,
                                    payload=reencode(msg, control_id),
                                    patient_key=patient_key(msg)))
        detail: JsonDict = {"category": kind,
                            "routed": [{"destination": i.destination,
                                        "control_id": i.control_id} for i in items]}
        return Outcome(detail=detail, outbox=tuple(items))


def reencode(msg: Message, control_id: str) -> bytes:
    """The message as ER7 with MSH-10 replaced, in its own charset (MSH-18)."""
    text = msg.to_er7()
    head, sep, rest = text.partition("\r")
    fields = head.split(head[3]) if len(head) > 3 else [head]
    while len(fields) < 10:
        fields.append("")
    fields[9] = control_id
    out = head[3].join(fields) + sep + rest
    return _encode(out, msg)


def patient_identifiers(msg: Message) -> tuple[str, ...]:
    """Search keys from PID-3: each repetition's CX-1, and ``CX-1^^^CX-4`` when it has an
    assigning authority (HL7 v2.5.1 §2.A.14 CX)."""
    keys: list[str] = []
    for rep in range(1, 21):
        ident = msg.get(f"PID-3[{rep}].1")
        if not ident:
            if not msg.get(f"PID-3[{rep}]"):
                break
            continue
        keys.append(ident)
        authority = msg.get(f"PID-3[{rep}].4.1")
        if authority:
            keys.append(f"{ident}^^^{authority}")
    return tuple(dict.fromkeys(keys))


def accessions(msg: Message) -> tuple[str, ...]:
    """Search keys: OBR-18 of every OBR and IPC-1 of every IPC (the accession number)."""
    keys = []
    for seg, path in (("OBR", "18"), ("IPC", "1.1")):
        for n in range(1, 1 + msg.count(seg)):
            value = msg.get(f"{seg}[{n}]-{path}")
            if value:
                keys.append(value)
    return tuple(dict.fromkeys(keys))


def patient_key(msg: Message) -> str:
    """The per-patient ordering key of outbox rows: the first PID-3 id with authority."""
    ident = msg.get("PID-3.1")
    return f"{ident}^^^{msg.get('PID-3.4.1')}" if ident else ""


def sender_allowed(allowed: Sequence[Sender], app: str, facility: str) -> bool:
    """Allow-list by MSH-3 (and MSH-4 when the entry names one); empty list allows all."""
    if not allowed:
        return True
    app, facility = app.split("^")[0], facility.split("^")[0]  # HD-1, namespace ID
    return any(s.app == app and (s.facility is None or s.facility == facility)
               for s in allowed)


@dataclass(slots=True)
class IngestStats:
    """Counters for metrics: messages answered, commits (fsyncs), largest batch."""

    messages: int = 0
    commits: int = 0
    failed_commits: int = 0
    largest_batch: int = 0


@dataclass(slots=True)
class _Pending:
    payload: bytes
    peer: str
    received_at: datetime
    future: asyncio.Future[bytes]
    refused: str | None = None  # a block that carried no message (oversize, empty)


class _ClaimLost(Exception):
    """Another message claimed the same MSH-3 + MSH-4 + MSH-10 first (a race)."""


class Ingestor:
    """The MLLP handler: ``await ingestor.handle(payload, peer)`` returns the ACK bytes,
    after the message is durably committed (see the module rules)."""

    def __init__(self, store: Store, clock: Clock, control_ids: ControlIds,
                 processor: Processor, config: Config, *, listener: str = "mllp",
                 notify: Callable[[], None] | None = None) -> None:
        self._store = store
        self._clock = clock
        self._ids = control_ids
        self._processor = processor
        self._allowed = config.mllp.allowed_senders
        self._listener = listener
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._busy = False
        self._notify = notify  # told after each commit (wakes the delivery workers)
        self.stats = IngestStats()

    async def handle(self, payload: bytes, peer: PeerInfo) -> bytes:
        """Store, process and answer one MLLP payload (the MllpServer handler)."""
        return await self._submit(payload, peer, None)

    async def on_oversize(self, size: int, peer: PeerInfo) -> bytes:
        """A block over ``max_message_bytes``: recorded (without its bytes) and refused."""
        return await self._submit(b"", peer, f"message of {size} bytes exceeds the limit")

    async def on_empty(self, peer: PeerInfo) -> bytes:
        """An empty block: recorded and refused."""
        return await self._submit(b"", peer, "empty MLLP block")

    async def close(self, timeout: float = 10.0) -> None:
        """Let waiting messages commit (up to ``timeout`` s), then stop the writer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (self._busy or not self._queue.empty()) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None

    async def _submit(self, payload: bytes, peer: PeerInfo, refused: str | None) -> bytes:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._run(), name="accord-ingest-writer")
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        where = f"{peer.host}:{peer.port}"
        self._queue.put_nowait(_Pending(payload, where, self._clock.now(), fut, refused))
        return await fut

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._busy = True
            try:
                results = await asyncio.to_thread(self._commit, batch)
            except Exception as exc:
                self.stats.failed_commits += 1
                log.error("ingest commit of %d message(s) failed, no ACK sent: %s",
                          len(batch), exc)
                results = [exc] * len(batch)
            finally:
                self._busy = False
            if self._notify is not None and any(isinstance(r, bytes) for r in results):
                self._notify()
            for pending, result in zip(batch, results, strict=True):
                if pending.future.done():  # the connection went away meanwhile
                    continue
                if isinstance(result, bytes):
                    pending.future.set_result(result)
                else:
                    pending.future.set_exception(result)

    def _commit(self, batch: list[_Pending]) -> list[bytes | Exception]:
        """Blocking: one transaction for the whole batch, one savepoint per message."""
        results: list[bytes | Exception] = []
        with self._store.transaction() as tx:
            for pending in batch:
                try:
                    results.append(self._one(tx, pending))
                except Exception as exc:  # this message alone gets no ACK
                    log.exception("could not store a message from %s", pending.peer)
                    results.append(exc)
        self.stats.commits += 1
        self.stats.messages += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        return results

    def _one(self, tx: Tx, p: _Pending) -> bytes:
        if p.refused is not None:
            return self._reject_raw(tx, p, ParseError(p.refused))
        try:
            msg = parse(p.payload)
        except ParseError as exc:
            return self._reject_raw(tx, p, exc)
        base = self._inbound(p, msg)
        if not sender_allowed(self._allowed, base.sending_app, base.sending_facility):
            refused = RejectError("sending application/facility not allowed", location="MSH-3")
            return self._answer_error(tx, msg, base, refused, claim=False)
        first = tx.find_first(base.sending_app, base.sending_facility, base.control_id)
        if first is None:
            try:
                with tx.savepoint():
                    return self._apply(tx, msg, base)
            except _ClaimLost:
                first = tx.find_first(base.sending_app, base.sending_facility,
                                      base.control_id)
            except AccordError as exc:
                return self._answer_error(tx, msg, base, exc, claim=True)
            except Exception as exc:  # a bug in processing: stored, answered AE
                log.exception("processing %s %s failed", base.message_type, base.control_id)
                err = ApplyError(f"internal error: {type(exc).__name__}")
                return self._answer_error(tx, msg, base, err, claim=True)
        if first is None:
            raise RuntimeError("dedupe claim lost but no holder found")
        with tx.savepoint():
            tx.save_inbound(dataclasses.replace(
                base, status="duplicate", duplicate_of=first.id, ack=first.ack,
                ack_code=first.ack_code, outcome={"duplicate_of": first.id}))
        log.info("duplicate %s %s answered with the first ACK", base.message_type,
                 base.control_id)
        return first.ack

    def _apply(self, tx: Tx, msg: Message, base: InboundMessage) -> bytes:
        outcome = self._processor.process(msg, tx, base.received_at)
        ack = self._ack(msg, "AA", base.received_at, None)
        mid = tx.save_inbound(dataclasses.replace(
            base, status="processed", ack_code="AA", ack=ack, outcome=outcome.detail))
        if not tx.claim_control_id(base.sending_app, base.sending_facility,
                                   base.control_id, mid):
            raise _ClaimLost
        if outcome.outbox:
            tx.enqueue([dataclasses.replace(i, source_message_id=mid) for i in outcome.outbox],
                       base.received_at)
        return ack

    def _answer_error(self, tx: Tx, msg: Message, base: InboundMessage, err: AccordError,
                      *, claim: bool) -> bytes:
        code = err.ack_code if err.ack_code in ("AE", "AR") else "AE"
        ack = self._ack(msg, code, base.received_at, err)
        status: MessageStatus = "rejected" if code == "AR" else "error"
        detail: JsonDict = {"error": str(err), "location": err.location,
                            "error_code": err.error_code}
        with tx.savepoint():
            mid = tx.save_inbound(dataclasses.replace(
                base, status=status, ack_code=code, ack=ack, outcome=detail))
            if claim and not tx.claim_control_id(base.sending_app, base.sending_facility,
                                                 base.control_id, mid):
                raise _ClaimLost
        log.info("%s %s answered %s at %s", base.message_type, base.control_id, code,
                 err.location or "-")
        return ack

    def _reject_raw(self, tx: Tx, p: _Pending, err: ParseError) -> bytes:
        ack = _as_bytes(build_reject(p.payload, reason=str(err), now=p.received_at,
                                     control_id=self._ids.next()))
        with tx.savepoint():
            tx.save_inbound(InboundMessage(
                received_at=p.received_at, raw=p.payload, peer=p.peer,
                listener=self._listener, parse_error=str(err), status="rejected",
                ack_code="AR", ack=ack, outcome={"error": str(err)}))
        log.info("unparseable input from %s answered AR", p.peer)
        return ack

    def _ack(self, msg: Message, code: str, now: datetime, err: AccordError | None) -> bytes:
        error = AckError.from_exception(err) if err is not None else None
        ack = build_ack(msg, code, now=now, control_id=self._ids.next(), error=error)
        return _encode(ack.to_er7(), msg)

    def _inbound(self, p: _Pending, msg: Message) -> InboundMessage:
        return InboundMessage(
            received_at=p.received_at, raw=p.payload, peer=p.peer, listener=self._listener,
            charset=msg.charset, sending_app=msg.get("MSH-3"),
            sending_facility=msg.get("MSH-4"), receiving_app=msg.get("MSH-5"),
            receiving_facility=msg.get("MSH-6"), message_type=msg.message_type,
            control_id=msg.control_id, version=msg.get("MSH-12"),
            patient_ids=patient_identifiers(msg), accessions=accessions(msg))


def _encode(text: str, msg: Message) -> bytes:
    """Text in the message's own character set (MSH-18), UTF-8 when it cannot hold it."""
    codec = codec_for(msg.declared_charset) or msg.charset or "utf-8"
    try:
        return text.encode(codec)
    except (UnicodeEncodeError, LookupError):
        return text.encode("utf-8")


def _as_bytes(ack: bytes | str) -> bytes:
    return ack if isinstance(ack, bytes) else ack.encode("utf-8")
