"""The default processor: routing by message category, the message passed on as it came.

Rules:
- MSH-9.1 names the category (ADT → ``adt``; ORM/OMI/OMG/SIU → ``orders``; ORU →
  ``reports``); a copy goes to each destination whose ``send:`` includes it. Other
  message codes are stored and answered, routed nowhere.
- Each copy gets its own new MSH-10, kept in the outbox row so every resend of it
  carries the same one; the rest of the message is passed on unchanged, in its own
  character set (MSH-18).
- Outbox rows are ordered per patient by the first PID-3 identifier with its assigning
  authority.
- Pure apart from ``tx``, as every :class:`~accord.engine.processor.Processor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from accord.clock import ControlIds
from accord.config import Category, Destination
from accord.engine.processor import Outcome, encode_like
from accord.hl7 import Message
from accord.store import JsonDict, OutboxItem, Tx

# MSH-9.1 message code → the ``send:`` category of a destination.
CATEGORY_OF: dict[str, Category] = {
    "ADT": "adt", "ORM": "orders", "OMI": "orders", "OMG": "orders", "SIU": "orders",
    "ORU": "reports",
}


class Router:
    """Routes by category to each destination whose ``send:`` includes it (module rules);
    each copy's new MSH-10 comes from ``control_ids``."""

    def __init__(self, destinations: Sequence[Destination], control_ids: ControlIds) -> None:
        self._destinations = tuple(destinations)
        self._ids = control_ids

    def reconfigure(self, destinations: Sequence[Destination]) -> None:
        """A configuration reload: messages from now on go to these destinations."""
        self._destinations = tuple(destinations)

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


def patient_key(msg: Message) -> str:
    """The per-patient ordering key of outbox rows: the first PID-3 id with authority."""
    ident = msg.get("PID-3.1")
    return f"{ident}^^^{msg.get('PID-3.4.1')}" if ident else ""
