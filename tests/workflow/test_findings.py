"""Findings (workflow/findings.py): keys, counting, resolution, field drift statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from accord.workflow.findings import (
    FieldStats,
    Finding,
    FindingKind,
    Resolution,
    Severity,
    merge,
    observe_fields,
    resolve,
)

T = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _finding(at: datetime = T, msg: str = "RIS/1") -> Finding:
    return Finding(FindingKind.UNMAPPED_CODE, "code X", at, subject="X", source="RIS",
                   messages=(msg,))


def test_defaults() -> None:
    f = _finding()
    assert f.severity is Severity.WARNING
    assert f.last_seen == T and f.count == 1 and f.resolution is Resolution.OPEN


def test_same_finding_is_counted_not_repeated() -> None:
    first = merge(None, _finding())
    again = merge(first, _finding(T + timedelta(minutes=5), "RIS/2"))
    assert again.key == first.key
    assert again.count == 2
    assert again.first_seen == T and again.last_seen == T + timedelta(minutes=5)
    assert again.messages == ("RIS/1", "RIS/2")


def test_different_subject_is_a_different_finding() -> None:
    other = Finding(FindingKind.UNMAPPED_CODE, "code Y", T, subject="Y", source="RIS")
    assert other.key != _finding().key


def test_resolved_finding_reopens_when_seen_again() -> None:
    closed = resolve(_finding(), T, "mapped by admin")
    assert closed.resolution is Resolution.RESOLVED and "mapped by admin" in closed.detail
    assert merge(closed, _finding()).resolution is Resolution.OPEN


def test_field_drift_after_streak() -> None:
    stats = FieldStats("RIS")
    for _ in range(3):
        stats, drifts = observe_fields(stats, "ORM^O01", [("OBR-18", "A1")], threshold=3)
        assert drifts == []
    stats, drifts = observe_fields(stats, "ORM^O01", [("OBR-18", "")], threshold=3)
    assert [(d.path, d.streak) for d in drifts] == [("OBR-18", 3)]
    stats, drifts = observe_fields(stats, "ORM^O01", [("OBR-18", "")], threshold=3)
    assert len(drifts) == 1  # still drifting: counted on the same finding
    stats, drifts = observe_fields(stats, "ORM^O01", [("OBR-18", "A2")], threshold=3)
    assert drifts == []
    stat = stats.fields[("ORM^O01", "OBR-18")]
    assert (stat.seen, stat.filled, stat.streak, stat.drifting) == (6, 4, 1, False)


def test_no_drift_for_a_field_sometimes_empty() -> None:
    stats = FieldStats("RIS")
    values = ["a", "", "b", "c", "", "d"]
    found = []
    for v in values:
        stats, drifts = observe_fields(stats, "ADT^A08", [("PID-8", v)], threshold=3)
        found += drifts
    assert found == []


def test_every_kind_states_its_severity_label_and_explanation() -> None:
    for kind in FindingKind:
        assert isinstance(kind.severity, Severity), kind
        assert kind.label and kind.label[0].isupper() and len(kind.label) <= 40, kind
        assert kind.explanation.endswith((".", ")")) and len(kind.explanation) > 20, kind
    assert len({k.label for k in FindingKind}) == len(FindingKind)  # tells kinds apart


def test_kind_values_are_the_stored_words() -> None:
    # Stored in every database and answered by the JSON API: never renamed.
    assert [k.value for k in FindingKind] == [
        "unknown_order", "visit_mismatch", "status_regression", "cancelled_but_performed",
        "duplicate_order", "potential_duplicate_patient", "merged_patient_reference",
        "unmapped_code", "missing_required_field", "field_drift", "unscheduled_procedure",
        "completed_study_missing", "study_without_order", "profile_violation",
        "scheduled_in_past"]
    assert FindingKind("unmapped_code") is FindingKind.UNMAPPED_CODE
    assert _finding().severity is FindingKind.UNMAPPED_CODE.severity
