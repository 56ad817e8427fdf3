"""Order checks (``accord.mapping.checks``): the profile's errors and a start too far in
the past are findings about the order (its accession), read from the order as mapped;
nothing without checks, nothing for a clean, timely order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from accord.hl7 import parse
from accord.mapping.checks import SHOWN, Checks, order_findings, profile_problems
from accord.mapping.dialect import Dialect
from accord.mapping.inbound import map_message
from accord.workflow.commands import OrderData, OrderRef
from accord.workflow.findings import Finding, FindingKind
from accord.workflow.model import ProcedureStep

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "gateway_orm_o01_nw.hl7"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _finding(kind: FindingKind, detail: str, *, accession: str = "",
             subject: str = "") -> Finding:
    return Finding(kind, detail, NOW, accession=accession, subject=subject)


def _order(start: datetime | None) -> OrderData:
    return OrderData(ref=OrderRef(accession="A1"),
                     steps=(ProcedureStep(sps_id="S1", start=start),))


def test_the_profile_names_each_error_and_the_order() -> None:
    shifted = parse(SAMPLE.read_text().replace("|US1|||US|||", "|US1||||US|||"))
    problems = profile_problems(shifted, "ihe-swf")
    assert problems == ["OBR-27.4 scheduled start date/time (OBR-27.4 or TQ1-7) missing",
                        "OBR-24 modality (OBR-24 or IPC-5) missing"]
    [f] = order_findings(Checks(), problems, _order(NOW), now=NOW, finding=_finding)
    assert (f.kind, f.accession, f.subject) == (FindingKind.PROFILE_VIOLATION, "A1", "ihe-swf")
    assert "2 error(s)" in f.detail and "OBR-24 modality" in f.detail
    many = [f"OBR-{n} x" for n in range(SHOWN + 3)]
    [f] = order_findings(Checks(), many, _order(NOW), now=NOW, finding=_finding)
    assert f.detail.endswith("and 3 more")
    assert profile_problems(shifted, None) == []


def test_a_start_older_than_allowed_is_in_the_past() -> None:
    checks = Checks(max_schedule_age_hours=24)
    assert order_findings(checks, [], _order(NOW - timedelta(hours=23)), now=NOW,
                          finding=_finding) == []
    assert order_findings(checks, [], _order(None), now=NOW, finding=_finding) == []
    [f] = order_findings(checks, [], _order(NOW - timedelta(days=10)), now=NOW,
                         finding=_finding)
    assert f.kind is FindingKind.SCHEDULED_IN_PAST and f.accession == "A1"
    assert "2026-02-20 09:00 UTC, 10.0 days before" in f.detail


def test_map_message_checks_new_orders_only_when_asked() -> None:
    shifted = parse(SAMPLE.read_text().replace("|US1|||US|||", "|US1||||US|||"))
    later = NOW + timedelta(days=300)
    kinds = {f.kind for f in map_message(shifted, Dialect(), now=later,
                                         checks=Checks()).findings}
    assert kinds == {FindingKind.PROFILE_VIOLATION, FindingKind.SCHEDULED_IN_PAST}
    assert map_message(shifted, Dialect(), now=later).findings == ()
    clean = map_message(parse(SAMPLE.read_bytes()), Dialect(), now=NOW, checks=Checks())
    assert clean.findings == () and clean.refusal is None
