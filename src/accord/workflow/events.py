"""Domain events: what changed, for the systems downstream.

The engine returns these in ``Outcome.outbound_events``; ``accord.mapping.outbound``
turns each into an HL7 message in a destination's dialect; the store puts them in the
outbox in the same transaction as the change. ``category`` is the ``send:`` word of the
configuration a destination subscribes to (``status``, ``adt``, ``orders``, ``reports``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from accord.workflow.model import Order, Patient, Report
from accord.workflow.status import Status

Category = Literal["status", "adt", "orders", "reports"]


@dataclass(frozen=True, slots=True)
class OrderStatusChanged:
    """An order moved between canonical statuses (ORC-5 IP/CM/DC to the RIS)."""

    order: Order
    patient: Patient
    before: Status
    after: Status
    by: str = ""  # the system whose message caused it (deliveries skip echoing it back)

    @property
    def category(self) -> Category:
        return "status"


OrderAction = Literal["new", "update", "cancel"]


@dataclass(frozen=True, slots=True)
class OrderForwarded:
    """An order to pass on (to PACS / reporting): new, changed or cancelled."""

    order: Order
    patient: Patient
    action: OrderAction

    @property
    def category(self) -> Category:
        return "orders"


@dataclass(frozen=True, slots=True)
class ReportForwarded:
    """A report to pass on (ORU^R01)."""

    report: Report
    order: Order | None
    patient: Patient | None

    @property
    def category(self) -> Category:
        return "reports"


@dataclass(frozen=True, slots=True)
class PatientMerged:
    """Two patients became one: sent downstream as ADT^A40 (IHE RAD-12, ITI PIX)."""

    survivor: Patient
    merged: Patient

    @property
    def category(self) -> Category:
        return "adt"


@dataclass(frozen=True, slots=True)
class PatientChanged:
    """A patient was registered or updated (ADT^A04 / A08 downstream)."""

    patient: Patient
    created: bool

    @property
    def category(self) -> Category:
        return "adt"


Event = OrderStatusChanged | OrderForwarded | ReportForwarded | PatientMerged | PatientChanged
