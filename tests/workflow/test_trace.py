"""The trace in plain words (workflow/trace.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from accord.workflow.trace import Change, TraceEvent, explain


def test_never_received() -> None:
    assert explain([]) == ["never received: no message or event refers to this order"]


def test_explain_says_what_changed_and_where_it_stands() -> None:
    placed = TraceEvent(
        at=datetime(2026, 3, 2, 8, 0, tzinfo=UTC), message="RIS/M1", source="RIS",
        summary="ORC-1 NW", accession="A1", changes=(Change("status", "", "ordered"),),
        rules=("not on any worklist: no rule, code table entry or default station names a "
               "station for OBR-4 code X",))
    cancelled = TraceEvent(
        at=datetime(2026, 3, 2, 9, 12, tzinfo=UTC), message="RIS/M2", source="RIS",
        summary="ORC-1 CA", accession="A1", changes=(Change("status", "ordered", "cancelled"),))
    lines = explain([cancelled, placed])  # any order in, oldest first out
    assert lines[0].startswith("2026-03-02 08:00:00 by RIS (RIS/M1): ORC-1 NW")
    assert "    status: (empty) → ordered" in lines
    assert any("not on any worklist" in line for line in lines)
    assert lines[-1].startswith("now: cancelled since 2026-03-02 09:12:00 (ORC-1 CA, from RIS)")
