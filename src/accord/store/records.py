"""Values that go in and come out of the store (frozen dataclasses, no SQLAlchemy), and
the two errors its operations raise besides StoreError.

Rule: every datetime here is timezone-aware UTC; bytes are kept exactly as received or
sent (MLLP payloads, ACKs); ``outcome`` is a JSON-able mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar, get_args

from accord.errors import StoreError

MessageStatus = Literal["processed", "error", "rejected", "duplicate"]
"""Inbound message status: ``processed`` (AA), ``error`` (AE: stored, not applied; in the
error queue), ``rejected`` (AR: unparseable or not accepted), ``duplicate`` (same MSH-3 +
MSH-4 + MSH-10 as an earlier message: answered with the first ACK, not applied)."""

OutboxStatus = Literal["pending", "in_flight", "delivered", "error", "cancelled"]
"""Outbox row status. ``error`` is the outbound error queue; ``cancelled`` is terminal
(rotated behind the queue, or cancelled by an operator)."""

MESSAGE_STATUSES: frozenset[str] = frozenset(get_args(MessageStatus))
OUTBOX_STATUSES: frozenset[str] = frozenset(get_args(OutboxStatus))

JsonDict = dict[str, Any]
T = TypeVar("T")


class NotFoundError(StoreError, LookupError):
    """No message or outbox row with that id (the console and the API answer 404)."""


class InvalidStateError(StoreError):
    """The operation does not apply in the record's current state (e.g. reprocessing a
    delivered row; the console and the API answer 409)."""


def _require_aware(name: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC)")


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundMessage:
    """A received message as it is saved: raw bytes, MSH header keys, outcome, ACK sent.

    Header fields follow HL7 v2.5.1 §2.14.9: MSH-3/4 sending application/facility,
    MSH-5/6 receiving application/facility, MSH-9 type (``"ORM^O01"``), MSH-10 control
    ID, MSH-12 version, MSH-18 charset. Unparseable input has empty header fields and a
    ``parse_error``. ``patient_ids`` (PID-3 values) and ``accessions`` become search keys.
    """

    received_at: datetime
    raw: bytes
    peer: str = ""
    listener: str = ""
    charset: str = ""
    sending_app: str = ""
    sending_facility: str = ""
    receiving_app: str = ""
    receiving_facility: str = ""
    message_type: str = ""
    control_id: str = ""
    version: str = ""
    parse_error: str | None = None
    status: MessageStatus = "processed"
    ack_code: str = ""
    ack: bytes = b""
    outcome: JsonDict = field(default_factory=dict)
    patient_ids: tuple[str, ...] = ()
    accessions: tuple[str, ...] = ()
    duplicate_of: int | None = None
    reprocess_of: int | None = None

    def __post_init__(self) -> None:
        _require_aware("received_at", self.received_at)
        if self.status not in MESSAGE_STATUSES:
            raise ValueError(f"unknown message status {self.status!r}")
        if self.status == "duplicate" and self.duplicate_of is None:
            raise ValueError("a duplicate must name the message it duplicates")


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredMessage(InboundMessage):
    """A message read back: its id, and the id of the reprocess attempt that replaced it
    (``superseded_by``: set once an error-queue message has been reprocessed)."""

    id: int
    superseded_by: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxItem:
    """A message to deliver downstream, enqueued in the ingest transaction.

    ``control_id`` is the outbound MSH-10: unique, and the same on every resend so the
    receiver can recognise a resend. ``patient_key`` orders deliveries per patient when a
    destination delivers in parallel across patients. ``kind`` is the destination's ``send``
    category (configuration) (``adt``, ``orders``, ``reports``, ``status``). ``accession``
    names the order the message is about ("" for patient updates): the order page lists
    what went out for it, whatever caused it (a message, an MPPS, a person).
    """

    destination: str
    payload: bytes
    control_id: str
    kind: str
    patient_key: str = ""
    source_message_id: int | None = None
    accession: str = ""

    def __post_init__(self) -> None:
        if not self.destination:
            raise ValueError("outbox item without destination")
        if not self.control_id:
            raise ValueError("outbox item without control_id (MSH-10)")


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxRow(OutboxItem):
    """An outbox row with its delivery state.

    ``claimed_by``/``lease_until`` name the node delivering it while ``in_flight``;
    ``attempts`` counts claims; ``reprocess_of`` links a reprocessed row to the original,
    ``rotated_from`` a row moved behind the queue to the row it replaced, and
    ``superseded_by`` points the other way (set on the original).
    """

    id: int
    status: OutboxStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    claimed_by: str | None = None
    lease_until: datetime | None = None
    last_error: str | None = None
    last_ack: bytes | None = None
    delivered_at: datetime | None = None
    reprocess_of: int | None = None
    rotated_from: int | None = None
    superseded_by: int | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list, newest first unless stated; pass ``next_cursor`` back as
    ``cursor`` for the next page (``None``: this was the last page)."""

    items: tuple[T, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ErrorEntry:
    """One entry of the error queue: an inbound message answered AE (``message``) or an
    outbox row that failed for good (``outbox``); exactly one of the two is set."""

    source: Literal["message", "outbox"]
    at: datetime
    message: StoredMessage | None = None
    outbox: OutboxRow | None = None
