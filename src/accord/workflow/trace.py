"""The trace of an order: every message or event that touched it, and why.

Rules (explain, don't just fail): each event says what changed
(before → after) and each rule outcome in plain words, so that ``accord trace ACCESSION``
answers "why is this exam not on the CT1 worklist?" without reading code. Pure values;
:func:`explain` turns a list of events into lines for a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Change:
    """One attribute of the order (or report, patient) that changed."""

    attribute: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One thing that happened to one order.

    ``message`` is the message ref (``SENDER/MSH-10``) or an event name for DICOM and
    console actions; ``rules`` are the rule outcomes in plain words, in the order they
    were applied ("station CT1 chosen by rule 'ct-head' (priority 10)").
    """

    at: datetime
    message: str
    source: str
    summary: str  # what the message said, e.g. "ORC-1 CA (cancel)"
    order_id: str = ""
    accession: str = ""
    changes: tuple[Change, ...] = ()
    rules: tuple[str, ...] = ()
    outcome: str = "applied"  # applied | not applied | held | kept unlinked


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


def explain_event(event: TraceEvent) -> list[str]:
    """Plain-word lines for one event."""
    by = f" by {event.source}" if event.source else ""
    lines = [f"{_when(event.at)}{by} ({event.message}): {event.summary} — {event.outcome}"]
    for change in event.changes:
        before = change.before or "(empty)"
        after = change.after or "(empty)"
        lines.append(f"    {change.attribute}: {before} → {after}")
    lines.extend(f"    {rule}" for rule in event.rules)
    return lines


def explain(events: Sequence[TraceEvent]) -> list[str]:
    """The life of one order in plain words, oldest first (for ``accord trace``).

    The last line says where the order stands and why, from the latest status change
    and the latest rule about its worklist station.
    """
    if not events:
        return ["never received: no message or event refers to this order"]
    ordered = sorted(events, key=lambda e: e.at)
    lines: list[str] = []
    for event in ordered:
        lines.extend(explain_event(event))
    lines.append(_standing(ordered))
    return lines


def _standing(events: Sequence[TraceEvent]) -> str:
    status = ""
    status_event: TraceEvent | None = None
    station_note = ""
    for event in events:
        for change in event.changes:
            if change.attribute == "status":
                status, status_event = change.after, event
        for rule in event.rules:
            if "worklist" in rule or "station" in rule:
                station_note = rule
    if not status or status_event is None:
        return "now: no status was ever applied (see the findings above)"
    line = (
        f"now: {status} since {_when(status_event.at)}"
        f" ({status_event.summary}, from {status_event.source or 'unknown'})"
    )
    return f"{line}; {station_note}" if station_note else line
