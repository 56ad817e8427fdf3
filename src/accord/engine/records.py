"""Ingest's records and answers: what is stored for a message and the ACK it gets.

Used by :mod:`accord.engine.ingest` on both of its paths. :meth:`Records.prepare` is the
part of a message's handling that needs no transaction (parse, search keys, allow-list,
the AA answer, the processor's ``prepare``), done once per message even when its batch
is redone one message at a time. Answers follow HL7 v2.5.1 §2.9.2 (original mode) with
table 0357 error codes, as the ACK rules of docs/interface.md say: AR for input that is
not a message or comes from a sender not on the allow-list, AE (ERR naming the field)
for a message that cannot be applied, AA otherwise.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from accord.clock import ControlIds
from accord.config import Sender
from accord.engine.processor import Outcome, Prepared, encode_like
from accord.errors import AccordError, ApplyError, ParseError, RejectError
from accord.hl7 import Message, parse
from accord.hl7.ack import AckError, ack_mode, ack_text, build_reject
from accord.store import InboundMessage, JsonDict, MessageStatus

log = logging.getLogger("accord.engine.ingest")  # its answers are ingest's


@dataclass(slots=True)
class Pending:
    """One MLLP block waiting for the writer, with what was worked out before it."""

    payload: bytes
    peer: str
    received_at: datetime
    refused: str | None = None  # a block that carried no message (oversize, empty)
    # Worked out before the transaction (``accord.engine.ingest`` rule 5):
    msg: Message | None = None
    error: ParseError | None = None  # unparseable
    base: InboundMessage | None = None
    allowed: bool = True  # sender on the allow-list
    step: Prepared | None = None  # the processor's transaction part, if it prepares
    ack: bytes | None = None  # the AA answer (CA in enhanced mode)
    store_first: bool = False  # answered once stored, applied later (the inbox)


class Records:
    """Builds the stored record and the ACK of each message (see the module doc)."""

    def __init__(self, control_ids: ControlIds, listener: str, allowed: Sequence[Sender],
                 prepare: Callable[[Message, datetime], Prepared] | None, *,
                 on_store: bool = False) -> None:
        self._ids = control_ids
        self._listener = listener
        self._allowed = allowed
        self._prepare_step = prepare
        self._on_store = on_store  # original mode answered once stored (``mllp.ack``)

    def prepare(self, p: Pending) -> None:
        """Parse, search keys, allow-list, the AA answer and the processor's ``prepare``:
        everything that needs no transaction (``accord.engine.ingest`` rule 5)."""
        try:
            p.msg = parse(p.payload)
        except ParseError as exc:
            p.error = exc
            return
        app, facility = p.msg.get("MSH-3"), p.msg.get("MSH-4")
        p.allowed = sender_allowed(self._allowed, app, facility)
        enhanced = ack_mode(p.msg) == "enhanced"
        p.store_first = p.allowed and (self._on_store or enhanced)
        if not p.allowed:
            p.base = self.inbound(p, p.msg)
            return
        p.ack = self.ack(p.msg, "AA", p.received_at, None)
        if p.store_first:
            # Answered once stored (CA in enhanced mode, AA with ``mllp.ack: on_store``):
            # custody alone before the ACK, the raw bytes, the dedupe key (MSH-3, MSH-4,
            # MSH-10) and the answer a resend gets. The other header keys, the search
            # keys and the outcome wait for the applier (:func:`record_of`).
            p.base = InboundMessage(
                received_at=p.received_at, raw=p.payload, peer=p.peer,
                listener=self._listener, sending_app=app, sending_facility=facility,
                control_id=p.msg.control_id, status="processed",
                ack_code="CA" if enhanced else "AA", ack=p.ack, outcome={"applied": False})
            return
        p.base = self.inbound(p, p.msg)
        if self._prepare_step is not None:
            try:
                p.step = self._prepare_step(p.msg, p.received_at)
            except Exception:  # process() meets it again in the transaction, and answers
                p.step = None

    def prepare_once(self, p: Pending) -> None:
        """:meth:`prepare`, unless done already or refused unread."""
        if p.refused is None and p.msg is None and p.error is None:
            self.prepare(p)

    def ready(self, p: Pending) -> InboundMessage | tuple[Message, InboundMessage]:
        """The record to store as it is (no message, unparseable, sender not allowed),
        or the message and its base record, to process."""
        if p.refused is not None:
            return self.rejected(p, ParseError(p.refused))
        self.prepare_once(p)
        if p.error is not None:
            return self.rejected(p, p.error)
        assert p.msg is not None and p.base is not None
        return (p.msg, p.base) if p.allowed else self.refused(p.msg, p.base)

    def processed(self, msg: Message, base: InboundMessage, outcome: Outcome,
                   ack: bytes | None = None) -> InboundMessage:
        if outcome.error is not None:  # applied as far as it goes, kept, answered AE/AR
            failed = self.failed(msg, base, outcome.error)
            return dataclasses.replace(failed, outcome={**outcome.detail, **failed.outcome})
        ack = ack or self.ack(msg, "AA", base.received_at, None)
        return dataclasses.replace(base, status="processed", ack_code="AA", ack=ack,
                                   outcome=outcome.detail)

    def failed(self, msg: Message, base: InboundMessage, err: AccordError) -> InboundMessage:
        code = err.ack_code if err.ack_code in ("AE", "AR") else "AE"
        status: MessageStatus = "rejected" if code == "AR" else "error"
        detail: JsonDict = {"error": str(err), "location": err.location,
                            "error_code": err.error_code}
        log.info("%s %s answered %s at %s", base.message_type, base.control_id, code,
                 err.location or "-")
        return dataclasses.replace(base, status=status, ack_code=code, outcome=detail,
                                   ack=self.ack(msg, code, base.received_at, err))

    def refused(self, msg: Message, base: InboundMessage) -> InboundMessage:
        return self.failed(msg, base, RejectError(
            "sending application/facility not allowed", location="MSH-3"))

    def rejected(self, p: Pending, err: ParseError) -> InboundMessage:
        ack = build_reject(p.payload, reason=str(err), now=p.received_at,
                           control_id=self._ids.next())
        log.info("unparseable input from %s answered AR", p.peer)
        return InboundMessage(
            received_at=p.received_at, raw=p.payload, peer=p.peer, listener=self._listener,
            parse_error=str(err), status="rejected", ack_code="AR",
            ack=ack if isinstance(ack, bytes) else ack.encode("utf-8"),
            outcome={"error": str(err)})

    def ack(self, msg: Message, code: str, now: datetime, err: AccordError | None) -> bytes:
        error = AckError.from_exception(err) if err is not None else None
        text = ack_text(msg, code, now=now, control_id=self._ids.next(), error=error)
        return encode_like(text, msg)

    def inbound(self, p: Pending, msg: Message) -> InboundMessage:
        return self.record_of(msg, p.payload, p.received_at, p.peer)

    def record_of(self, msg: Message, raw: bytes, received_at: datetime, peer: str,
                  reprocess_of: int | None = None) -> InboundMessage:
        return record_of(msg, raw, received_at, peer, self._listener, reprocess_of)


def record_of(msg: Message, raw: bytes, received_at: datetime, peer: str, listener: str,
              reprocess_of: int | None = None) -> InboundMessage:
    """The stored record of a parsed message before its outcome: header keys (MSH-3/4
    /5/6/9/10/12, charset) and the PID-3 / accession search keys."""
    return InboundMessage(
        received_at=received_at, raw=raw, peer=peer, listener=listener,
        charset=msg.charset, sending_app=msg.get("MSH-3"),
        sending_facility=msg.get("MSH-4"), receiving_app=msg.get("MSH-5"),
        receiving_facility=msg.get("MSH-6"), message_type=msg.message_type,
        control_id=msg.control_id, version=msg.get("MSH-12"),
        patient_ids=patient_identifiers(msg), accessions=accessions(msg),
        reprocess_of=reprocess_of)


def internal(exc: Exception, base: InboundMessage) -> ApplyError:
    """A bug in processing: stored and answered AE (table 0357 code 207), never a crash."""
    log.error("processing %s %s failed: %s", base.message_type, base.control_id,
              type(exc).__name__, exc_info=exc)
    return ApplyError(f"internal error: {type(exc).__name__}")


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


def sender_allowed(allowed: Sequence[Sender], app: str, facility: str) -> bool:
    """Allow-list by MSH-3 (and MSH-4 when the entry names one); empty list allows all."""
    if not allowed:
        return True
    app, facility = app.split("^")[0], facility.split("^")[0]  # HD-1, namespace ID
    return any(s.app == app and (s.facility is None or s.facility == facility)
               for s in allowed)
