"""The processing seam of ingest, and its default: routing by message category.

A :class:`Processor` runs inside the ingest transaction for every accepted message and
returns an :class:`Outcome` (what to record, what to send downstream). The workflow
(issue 4) plugs in its own; :class:`Router` is the default of this issue.

Rule: pure apart from ``tx`` (the processor's writes go in the ingest transaction);
no sockets, no clock reads (``now`` is passed in).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from accord.clock import ControlIds
from accord.config import Category, Destination, Sender
from accord.errors import AccordError
from accord.hl7 import Message
from accord.hl7.charset import codec_for
from accord.store import JsonDict, OutboxItem, Tx

# MSH-9.1 message code → CONTRACT ``send:`` category.
CATEGORY_OF: dict[str, Category] = {
    "ADT": "adt", "ORM": "orders", "OMI": "orders", "OMG": "orders", "SIU": "orders",
    "ORU": "reports",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What processing did: a JSON-able ``detail`` for the stored outcome and the outbox
    items to enqueue (``source_message_id`` is filled in by ingest). ``error``: the
    message was applied as far as it could be and its writes are KEPT (findings, a held
    order), but the answer is this error's AE/AR with its ERR location (CONTRACT ACK
    rules); raising instead undoes every write."""

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
    return encode_like(out, msg)


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


def encode_like(text: str, msg: Message) -> bytes:
    """Text in the message's own character set (MSH-18), UTF-8 when it cannot hold it."""
    codec = codec_for(msg.declared_charset) or msg.charset or "utf-8"
    try:
        return text.encode(codec)
    except (UnicodeEncodeError, LookupError):
        return text.encode("utf-8")
