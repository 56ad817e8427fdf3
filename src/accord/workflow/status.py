"""Canonical order status: one meaning everywhere, and the table of the moves that make
sense (the statuses of docs/model.md).

Each connected system's dialect maps its own codes onto :class:`Status`: ORC-1 order
control (HL7 v2.5.1 §4.5.1.1, table 0119) with ORC-5 order status (§4.5.1.5, table
0038), OBR-25 result status (§4.5.3.25, table 0123), SCH-25 filler status (table 0278)
and the MPPS Performed Procedure Step Status (0040,0252) (DICOM PS3.4 F.7). This module
is the table and its rules alone; applying a move to an order is order logic
(:func:`accord.workflow.orders.apply_status`).

Rules of the transition table (``TRANSITIONS``), from IHE RAD TF-2 (RAD-2/RAD-3 placer
and filler order management: NW, CA, DC, XO and the ORC-5 order status; RAD-4 procedure
scheduled; RAD-13 procedure update) and DICOM PS3.4 F.7 (MPPS: IN PROGRESS →
COMPLETED or DISCONTINUED, both final):

0. Staying in the same status is always allowed: a resend, or new details
   (a reschedule is SCHEDULED → SCHEDULED). It is no change.
1. Forward along the exam: ordered → scheduled → arrived → in_progress → completed →
   preliminary → final → amended. Steps may be skipped (no MPPS, no check-in, a report
   with no "completed" before it): a later stage is evidence the earlier ones happened.
2. Before acquisition starts, an order is stopped by a cancel (→ cancelled); after it
   started, by a discontinue (→ discontinued, PS3.4 F.7.2.1 DISCONTINUED).
3. A check-in may be undone (A11 cancel admit, SIU reschedule): arrived → scheduled.
4. A preliminary report may be updated (preliminary → preliminary, rule 0) and
   signed; a final report can only be amended (OBR-25 C), never made preliminary.
5. cancelled and discontinued are final: nothing is performed or reported after them.
   Evidence that it was (MPPS, a report) is ``cancelled_but_performed``; a cancel after
   acquisition started is ``cancelled_but_performed`` too; every other move not in the
   table is ``status_regression``. Neither is applied: a contradiction is recorded as a
   finding, never applied and never silently dropped.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    ORDERED = "ordered"  # order accepted, not yet scheduled (ORC-1 NW)
    SCHEDULED = "scheduled"  # time and station known; on the worklist (ORC-5 SC, SIU^S12)
    ARRIVED = "arrived"  # patient checked in (ADT^A10, SIU^S14)
    IN_PROGRESS = "in_progress"  # acquisition started (MPPS IN PROGRESS, ORC-5 IP)
    COMPLETED = "completed"  # acquisition done (MPPS COMPLETED, ORC-5 CM)
    PRELIMINARY = "preliminary"  # preliminary report (OBR-25 P)
    FINAL = "final"  # signed report (OBR-25 F)
    AMENDED = "amended"  # corrected after final (OBR-25 C after F)
    CANCELLED = "cancelled"  # stopped before start (ORC-1 CA, ORC-5 CA)
    DISCONTINUED = "discontinued"  # stopped after start (ORC-1 DC, MPPS DISCONTINUED)


_S = Status

TRANSITIONS: dict[Status, frozenset[Status]] = {
    _S.ORDERED: frozenset({
        _S.SCHEDULED, _S.ARRIVED, _S.IN_PROGRESS, _S.COMPLETED,
        _S.PRELIMINARY, _S.FINAL, _S.CANCELLED,
    }),
    _S.SCHEDULED: frozenset({
        _S.ARRIVED, _S.IN_PROGRESS, _S.COMPLETED, _S.PRELIMINARY, _S.FINAL, _S.CANCELLED,
    }),
    _S.ARRIVED: frozenset({
        _S.SCHEDULED, _S.IN_PROGRESS, _S.COMPLETED, _S.PRELIMINARY, _S.FINAL, _S.CANCELLED,
    }),
    _S.IN_PROGRESS: frozenset({_S.COMPLETED, _S.PRELIMINARY, _S.FINAL, _S.DISCONTINUED}),
    _S.COMPLETED: frozenset({_S.PRELIMINARY, _S.FINAL}),
    _S.PRELIMINARY: frozenset({_S.FINAL}),
    _S.FINAL: frozenset({_S.AMENDED}),
    _S.AMENDED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.DISCONTINUED: frozenset(),
}

STOPPED = frozenset({_S.CANCELLED, _S.DISCONTINUED})
# Statuses that prove acquisition started (rule 5).
PERFORMED = frozenset({
    _S.IN_PROGRESS, _S.COMPLETED, _S.PRELIMINARY, _S.FINAL, _S.AMENDED,
})
# Statuses an order may still appear on the worklist in (DICOM PS3.4 K.6).
ON_WORKLIST = frozenset({_S.SCHEDULED, _S.ARRIVED})


def allowed(old: Status, new: Status) -> bool:
    """Whether the table allows ``old`` → ``new`` (rule 0 included)."""
    return old == new or new in TRANSITIONS[old]


def refusal_kind(old: Status, new: Status) -> str:
    """The finding kind for a forbidden move (rule 5)."""
    if new in STOPPED and old in PERFORMED:
        return "cancelled_but_performed"
    if old in STOPPED and new in PERFORMED:
        return "cancelled_but_performed"
    return "status_regression"
