"""The processing seam of ingest: what a processor is given and what it answers.

A :class:`Processor` runs inside the ingest transaction for every accepted message and
returns an :class:`Outcome` (what to record, what to send downstream). Two implement it:
:class:`accord.engine.router.Router` (routing by message category) and
:class:`accord.engine.workflow.WorkflowProcessor` (the canonical model).

Rule: pure apart from ``tx`` (the processor's writes go in the ingest transaction);
no sockets, no clock reads (``now`` is passed in).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from accord.errors import AccordError
from accord.hl7 import Message
from accord.hl7.charset import codec_for
from accord.store import JsonDict, OutboxItem, Tx


@dataclass(frozen=True, slots=True)
class Outcome:
    """What processing did: a JSON-able ``detail`` for the stored outcome and the outbox
    items to enqueue (``source_message_id`` is filled in by ingest). ``error``: the
    message was applied as far as it could be and its writes are KEPT (findings, a held
    order), but the answer is this error's AE/AR with its ERR location (the ACK rules of
    docs/interface.md); raising instead undoes every write."""

    detail: JsonDict = field(default_factory=dict)
    outbox: tuple[OutboxItem, ...] = ()
    error: AccordError | None = None


class Processor(Protocol):
    """The processing seam. Runs inside the ingest transaction (``tx``): raise
    :class:`ApplyError` (with ``location``, e.g. ``"OBR-4"``) to answer AE — every write it
    made is undone and the message is stored as ``error`` — or return ``Outcome.error``
    to keep the writes and still answer AE/AR.

    A message may be processed more than once before its commit: group commit rolls a
    batch back and redoes it one message at a time when anything is out of the ordinary
    (a resend, a processor error). So keep every effect in ``tx``; state held elsewhere
    (caches, counters) must not assume the first call was committed."""

    def process(self, msg: Message, tx: Tx, now: datetime) -> Outcome: ...


Prepared = Callable[[Tx], Outcome]
"""What a processor's optional ``prepare(msg, now)`` returns: the transaction part of
``process`` for that message. A processor that offers ``prepare`` lets ingest run the
part that needs no transaction (mapping) before the writer, outside its thread;
``prepare(msg, now)(tx)`` must do exactly what ``process(msg, tx, now)`` does."""


def encode_like(text: str, msg: Message) -> bytes:
    """Text in the message's own character set (MSH-18), UTF-8 when it cannot hold it:
    how a processor's outbound payloads and ingest's answers are encoded."""
    codec = codec_for(msg.declared_charset) or msg.charset or "utf-8"
    try:
        return text.encode(codec)
    except (UnicodeEncodeError, LookupError):
        return text.encode("utf-8")
