"""The canonical status table (workflow/status.py): every allowed move, forbidden ones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from accord.workflow.findings import Finding, FindingKind
from accord.workflow.model import Order
from accord.workflow.status import TRANSITIONS, Evidence, Status, allowed, apply

T = datetime(2026, 3, 2, 9, 12, tzinfo=UTC)
EV = Evidence(T, source="RIS", message="RIS/M1", code="ORC-1 CA")

ALLOWED = [(old, new) for old, targets in TRANSITIONS.items() for new in sorted(targets)]


def _order(status: Status) -> Order:
    return Order(id="O1", patient_id="P1", status=status, accession="A1")


def test_every_status_has_a_row() -> None:
    assert set(TRANSITIONS) == set(Status)


@pytest.mark.parametrize(("old", "new"), ALLOWED, ids=[f"{a}->{b}" for a, b in ALLOWED])
def test_allowed_transition_is_applied(old: Status, new: Status) -> None:
    result = apply(_order(old), new, EV)
    assert isinstance(result, Order)
    assert result.status is new
    assert result.accession == "A1"


@pytest.mark.parametrize("status", list(Status))
def test_same_status_is_no_change(status: Status) -> None:
    order = _order(status)
    assert apply(order, status, EV) is order


FORBIDDEN = [
    (Status.COMPLETED, Status.SCHEDULED, FindingKind.STATUS_REGRESSION),
    (Status.FINAL, Status.PRELIMINARY, FindingKind.STATUS_REGRESSION),
    (Status.AMENDED, Status.FINAL, FindingKind.STATUS_REGRESSION),
    (Status.IN_PROGRESS, Status.ORDERED, FindingKind.STATUS_REGRESSION),
    (Status.SCHEDULED, Status.DISCONTINUED, FindingKind.STATUS_REGRESSION),
    (Status.COMPLETED, Status.CANCELLED, FindingKind.CANCELLED_BUT_PERFORMED),
    (Status.IN_PROGRESS, Status.CANCELLED, FindingKind.CANCELLED_BUT_PERFORMED),
    (Status.FINAL, Status.DISCONTINUED, FindingKind.CANCELLED_BUT_PERFORMED),
    (Status.CANCELLED, Status.COMPLETED, FindingKind.CANCELLED_BUT_PERFORMED),
    (Status.CANCELLED, Status.FINAL, FindingKind.CANCELLED_BUT_PERFORMED),
    (Status.DISCONTINUED, Status.IN_PROGRESS, FindingKind.CANCELLED_BUT_PERFORMED),
    (Status.CANCELLED, Status.SCHEDULED, FindingKind.STATUS_REGRESSION),
]


@pytest.mark.parametrize(("old", "new", "kind"), FORBIDDEN,
                         ids=[f"{a}->{b}" for a, b, _ in FORBIDDEN])
def test_forbidden_transition_is_a_finding(old: Status, new: Status, kind: FindingKind) -> None:
    assert not allowed(old, new)
    result = apply(_order(old), new, EV)
    assert isinstance(result, Finding)
    assert result.kind is kind
    assert result.accession == "A1" and result.patient_id == "P1"
    assert result.messages == ("RIS/M1",) and result.source == "RIS"
    assert "ORC-1 CA" in result.detail and "not applied" in result.detail


def test_stopped_statuses_are_terminal() -> None:
    assert TRANSITIONS[Status.CANCELLED] == frozenset()
    assert TRANSITIONS[Status.DISCONTINUED] == frozenset()
