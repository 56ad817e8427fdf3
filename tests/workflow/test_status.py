"""The canonical status table (workflow/status.py): every allowed move, forbidden ones and
the finding kind each forbidden one is."""

from __future__ import annotations

import pytest

from accord.workflow.findings import FindingKind
from accord.workflow.status import TRANSITIONS, Status, allowed, refusal_kind

ALLOWED = [(old, new) for old, targets in TRANSITIONS.items() for new in sorted(targets)]

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


def test_every_status_has_a_row() -> None:
    assert set(TRANSITIONS) == set(Status)


@pytest.mark.parametrize(("old", "new"), ALLOWED, ids=[f"{a}->{b}" for a, b in ALLOWED])
def test_table_moves_are_allowed(old: Status, new: Status) -> None:
    assert allowed(old, new)


@pytest.mark.parametrize("status", list(Status))
def test_staying_is_always_allowed(status: Status) -> None:
    assert status not in TRANSITIONS[status]  # rule 0 holds without a row entry
    assert allowed(status, status)


@pytest.mark.parametrize(("old", "new", "kind"), FORBIDDEN,
                         ids=[f"{a}->{b}" for a, b, _ in FORBIDDEN])
def test_forbidden_move_and_its_finding_kind(old: Status, new: Status,
                                             kind: FindingKind) -> None:
    assert not allowed(old, new)
    assert FindingKind(refusal_kind(old, new)) is kind


def test_stopped_statuses_are_terminal() -> None:
    assert TRANSITIONS[Status.CANCELLED] == frozenset()
    assert TRANSITIONS[Status.DISCONTINUED] == frozenset()
