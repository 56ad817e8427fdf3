"""Scenario suite: each ``tests/scenarios/*.yaml`` is a sequence of messages and the
state they must leave, run through the pure engine with the in-memory repository.

Format (every key but ``steps`` optional)::

    description: what the scenario shows (IHE profile, transaction)
    dialects: {name: {match: {application: RIS}, ...}}   # Dialects.from_config
    catalog: {procedures: [...], station_rules: [...]}  # catalog_from_config
    matcher: true                                        # identity.Matcher() for new patients
    checks: {profile: ihe-swf, max_schedule_age_hours: 24}  # order checks (mapping.checks)
    steps:
      - message: |            # ER7, one segment a line (or file: a tests/samples name)
          MSH|^~\\&|RIS|...
        ack: AA               # expected MSA-1 (default AA)
        error_location: OBR-4 # expected ERR-2 location, when not AA
        new_findings: [unknown_order]   # kinds this step recorded (exact, sorted)
        outbound: [status]    # categories of the events this step emitted (exact, sorted)
        catalog_change: {upsert: [{code: MRKNEE, stations: [MR1]}]}  # a new table version
    expect:
      patients: {live: 1, tombstones: 1}
      patient: [{identifier: MRN1^HOSP, family: Doe, merged: false, identifiers: [...]}]
      orders: [{accession: A1, status: scheduled, patient: MRN1^HOSP, stations: [CT1],
                held: false, study_uid: "1.2.3", visit: V1, start: "2026-01-02T09:00"}]
      order_count: 1
      reports: [{accession: A1, status: final, linked: true, text_contains: "..."}]
      findings: [unknown_order, ...]       # kinds of the stored findings (exact, sorted)
      finding_details: [{kind: ..., count: 2, resolution: resolved}]
      trace: {accession: A1, contains: ["cancelled"]}
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from accord.hl7 import parse
from accord.mapping.apply import apply_message
from accord.mapping.checks import Checks
from accord.mapping.dialect import Dialects
from accord.mapping.procedures import Catalog, catalog_from_config
from accord.workflow.identity import Matcher
from accord.workflow.memory import MemoryRepository, SequentialIds
from accord.workflow.model import Order, Patient
from accord.workflow.trace import explain

HERE = Path(__file__).parent
SAMPLES = HERE.parent / "samples"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SCENARIOS = sorted(HERE.glob("*.yaml"))


def _message(step: dict[str, Any]) -> str:
    if "file" in step:
        return (SAMPLES / step["file"]).read_bytes().decode("utf-8")
    return "\r".join(line for line in str(step["message"]).splitlines() if line.strip())


def _ident(patient: Patient) -> list[str]:
    return [f"{i.value}^{i.authority}" for i in patient.identifiers]


def _patient_named(repo: MemoryRepository, ident: str) -> Patient:
    found = [p for p in repo.patients.values() if ident in _ident(p)]
    assert found, f"no patient holds {ident}: {[_ident(p) for p in repo.patients.values()]}"
    return found[0]


def _order_named(repo: MemoryRepository, spec: dict[str, Any]) -> Order:
    for key in ("accession", "placer_number", "filler_number"):
        if key in spec:
            found = [o for o in repo.orders.values() if getattr(o, key) == spec[key]]
            assert len(found) == 1, f"{key} {spec[key]}: {len(found)} orders"
            return found[0]
    raise AssertionError(f"order spec names no number: {spec}")


def _check_orders(repo: MemoryRepository, expect: dict[str, Any]) -> None:
    if "order_count" in expect:
        assert len(repo.orders) == expect["order_count"]
    for spec in expect.get("orders", ()):
        order = _order_named(repo, spec)
        if "status" in spec:
            assert order.status.value == spec["status"], (order.accession, order.status)
        if "patient" in spec:
            assert order.patient_id == _patient_named(repo, spec["patient"]).id
        if "stations" in spec:
            assert [a for st in order.steps for a in st.station_ae_titles] == spec["stations"]
        if "held" in spec:
            assert bool(order.hold_reason) == spec["held"], order.hold_reason
        if "study_uid" in spec:
            assert order.study_instance_uid == spec["study_uid"]
        if "visit" in spec:
            assert order.visit_number == spec["visit"]
        if "modality" in spec:
            assert order.modality == spec["modality"]
        if "start" in spec:
            start = order.steps[0].start
            assert start is not None and start.isoformat().startswith(spec["start"])


def _check_patients(repo: MemoryRepository, expect: dict[str, Any]) -> None:
    counts = expect.get("patients", {})
    live = [p for p in repo.patients.values() if p.merged_into is None]
    if "live" in counts:
        assert len(live) == counts["live"], [_ident(p) for p in live]
    if "tombstones" in counts:
        assert len(repo.patients) - len(live) == counts["tombstones"]
    for spec in expect.get("patient", ()):
        patient = _patient_named(repo, spec["identifier"])
        if "family" in spec:
            assert patient.demographics.name.family == spec["family"]
        if "merged" in spec:
            assert (patient.merged_into is not None) == spec["merged"]
        if "merged_into" in spec:
            assert patient.merged_into == _patient_named(repo, spec["merged_into"]).id
        if "identifiers" in spec:
            assert sorted(_ident(patient)) == sorted(spec["identifiers"])


def _check_reports(repo: MemoryRepository, expect: dict[str, Any]) -> None:
    if "report_count" in expect:
        assert len(repo.reports) == expect["report_count"]
    for spec in expect.get("reports", ()):
        found = [r for r in repo.reports.values() if r.accession == spec["accession"]]
        assert len(found) == 1, f"reports for {spec['accession']}: {len(found)}"
        report = found[0]
        if "status" in spec:
            assert report.status.value == spec["status"]
        if "linked" in spec:
            assert (report.order_id is not None) == spec["linked"]
        if "text_contains" in spec:
            assert spec["text_contains"] in report.text, report.text
        if "patient" in spec:
            assert report.patient_id == _patient_named(repo, spec["patient"]).id


def _check_findings(repo: MemoryRepository, expect: dict[str, Any]) -> None:
    if "findings" in expect:
        kinds = sorted(f.kind.value for f in repo.findings.values())
        assert kinds == sorted(expect["findings"]), [f.detail for f in repo.findings.values()]
    for spec in expect.get("finding_details", ()):
        found = [f for f in repo.findings.values() if f.kind.value == spec["kind"]]
        assert found, f"no {spec['kind']} finding"
        f = found[0]
        for key in ("count", "accession", "location", "subject"):
            if key in spec:
                assert getattr(f, key) == spec[key], (key, getattr(f, key))
        if "resolution" in spec:
            assert f.resolution.value == spec["resolution"]
        if "detail_contains" in spec:
            assert spec["detail_contains"] in f.detail, f.detail


def _check_trace(repo: MemoryRepository, expect: dict[str, Any]) -> None:
    spec = expect.get("trace")
    if not spec:
        return
    text = "\n".join(explain(repo.trace(accession=spec["accession"])))
    for words in spec.get("contains", ()):
        assert words in text, text


def _checks(raw: dict[str, Any] | None) -> Checks | None:
    return Checks(**raw) if raw is not None else None


def _catalog(raw: dict[str, Any] | None) -> Catalog | None:
    if raw is None:
        return None
    return catalog_from_config(raw, at=T0, author="scenario")


def _changed(catalog: Catalog | None, change: dict[str, Any], at: datetime) -> Catalog:
    base = catalog or Catalog()
    upsert = catalog_from_config({"procedures": change.get("upsert", [])}, at=at, author="x")
    current = upsert.table.current
    procs = tuple(current.entries.values()) if current else ()
    table = base.table.change(at=at, author=str(change.get("author", "scenario")),
                              note=str(change.get("note", "")), upsert=procs,
                              remove=tuple(change.get("remove", ())))
    return Catalog(table, base.rules)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(path: Path) -> None:
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    dialects = Dialects.from_config(spec.get("dialects") or {})
    catalog = _catalog(spec.get("catalog"))
    matcher = Matcher() if spec.get("matcher") else None
    checks = _checks(spec.get("checks"))
    repo, ids = MemoryRepository(), SequentialIds()
    for n, step in enumerate(spec["steps"], start=1):
        if "catalog_change" in step:
            catalog = _changed(catalog, step["catalog_change"], T0 + timedelta(minutes=n))
        msg = parse(_message(step))
        dialect = dialects.for_sender(msg.get("MSH-3.1"), msg.get("MSH-4.1"))
        before = {k: f.count for k, f in repo.findings.items()}
        outcome = apply_message(repo, msg, dialect, now=T0 + timedelta(minutes=n), ids=ids,
                                catalog=catalog, matcher=matcher, checks=checks)
        where = f"step {n} ({msg.message_type} {msg.control_id})"
        assert outcome.ack_code == step.get("ack", "AA"), (where, outcome.error_text)
        if "error_location" in step:
            assert outcome.error_location == step["error_location"], where
        if "new_findings" in step:
            new = sorted(f.kind.value for f in outcome.findings if before.get(f.key) != f.count)
            details = [f.detail for f in outcome.findings]
            assert new == sorted(step["new_findings"]), (where, details)
        if "outbound" in step:
            got = sorted(e.category for e in outcome.outbound_events)
            assert got == sorted(step["outbound"]), (where, outcome.outbound_events)
    expect = spec.get("expect") or {}
    _check_patients(repo, expect)
    _check_orders(repo, expect)
    _check_reports(repo, expect)
    _check_findings(repo, expect)
    _check_trace(repo, expect)


def test_there_are_at_least_thirty_scenarios() -> None:
    assert len(SCENARIOS) >= 30
