"""Order logic (workflow/orders.py) on its own: a status move applied to an order by the
table, or the finding that explains why not. The engine's tests drive the rest
(place, update, cancel) through commands."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from accord.workflow.findings import Finding, FindingKind
from accord.workflow.model import Order
from accord.workflow.orders import Evidence, apply_status
from accord.workflow.status import TRANSITIONS, Status

T = datetime(2026, 3, 2, 9, 12, tzinfo=UTC)
EV = Evidence(T, source="RIS", message="RIS/M1", code="ORC-1 CA")

ALLOWED = [(old, new) for old, targets in TRANSITIONS.items() for new in sorted(targets)]
FORBIDDEN = [
    (Status.COMPLETED, Status.SCHEDULED, FindingKind.STATUS_REGRESSION),
    (Status.FINAL, Status.PRELIMINARY, FindingKind.STATUS_REGRESSION),
    (Status.COMPLETED, Status.CANCELLED, FindingKind.CANCELLED_BUT_PERFORMED),
    (Status.CANCELLED, Status.FINAL, FindingKind.CANCELLED_BUT_PERFORMED),
]


def _order(status: Status) -> Order:
    return Order(id="O1", patient_id="P1", status=status, accession="A1")


@pytest.mark.parametrize(("old", "new"), ALLOWED, ids=[f"{a}->{b}" for a, b in ALLOWED])
def test_allowed_transition_is_applied(old: Status, new: Status) -> None:
    result = apply_status(_order(old), new, EV)
    assert isinstance(result, Order)
    assert result.status is new
    assert result.accession == "A1"


@pytest.mark.parametrize("status", list(Status))
def test_same_status_is_no_change(status: Status) -> None:
    order = _order(status)
    assert apply_status(order, status, EV) is order


@pytest.mark.parametrize(("old", "new", "kind"), FORBIDDEN,
                         ids=[f"{a}->{b}" for a, b, _ in FORBIDDEN])
def test_forbidden_transition_is_a_finding(old: Status, new: Status, kind: FindingKind) -> None:
    result = apply_status(_order(old), new, EV)
    assert isinstance(result, Finding)
    assert result.kind is kind
    assert result.accession == "A1" and result.patient_id == "P1"
    assert result.messages == ("RIS/M1",) and result.source == "RIS"
    assert "ORC-1 CA" in result.detail and "not applied" in result.detail
    assert result.subject == f"{old.value}->{new.value}"


def test_a_finding_without_a_message_names_none() -> None:
    result = apply_status(_order(Status.FINAL), Status.ORDERED, Evidence(T, source="console"))
    assert isinstance(result, Finding)
    assert result.messages == () and "()" not in result.detail
