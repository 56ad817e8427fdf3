"""JSON documents for the workflow's values: what the ``doc`` columns hold.

Rules: explicit and lossless. ``decode_x(encode_x(v)) == v`` for every value of the
model (a contract test checks it on both databases); dates and times as ISO 8601 text
(times are aware UTC), enums by value. Unknown keys in a stored document are ignored, so
a newer writer's extra attribute never breaks an older reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from accord.workflow.findings import Finding, FindingKind, Resolution, Severity
from accord.workflow.model import (
    Address,
    Demographics,
    Identifier,
    Order,
    Patient,
    PersonName,
    ProcedureStep,
    Report,
    Visit,
)
from accord.workflow.status import Status
from accord.workflow.trace import Change, TraceEvent

Doc = dict[str, Any]
_NAME = ("family", "given", "middle", "suffix", "prefix")
_ADDRESS = ("street", "other", "city", "state", "postal_code", "country")


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _name(n: PersonName | None) -> Doc | None:
    return None if n is None else {k: getattr(n, k) for k in _NAME if getattr(n, k)}


def _unname(d: Mapping[str, Any] | None) -> PersonName | None:
    return None if d is None else PersonName(**{k: str(d.get(k, "")) for k in _NAME})


def encode_patient(p: Patient) -> Doc:
    d = p.demographics
    return {
        "id": p.id,
        "identifiers": [[i.value, i.authority, i.type_code] for i in p.identifiers],
        "merged_into": p.merged_into,
        "name": _name(d.name),
        "birth_date": d.birth_date.isoformat() if d.birth_date else None,
        "sex": d.sex,
        "address": {k: getattr(d.address, k) for k in _ADDRESS if getattr(d.address, k)},
        "phone": d.phone,
        "national_id": d.national_id,
        "mothers_maiden_name": d.mothers_maiden_name,
        "ideographic_name": _name(d.ideographic_name),
        "phonetic_name": _name(d.phonetic_name),
    }


def decode_patient(doc: Mapping[str, Any]) -> Patient:
    address = doc.get("address") or {}
    demographics = Demographics(
        name=_unname(doc.get("name") or {}) or PersonName(),
        birth_date=date.fromisoformat(doc["birth_date"]) if doc.get("birth_date") else None,
        sex=doc.get("sex", ""),
        address=Address(**{k: str(address.get(k, "")) for k in _ADDRESS}),
        phone=doc.get("phone", ""),
        national_id=doc.get("national_id", ""),
        mothers_maiden_name=doc.get("mothers_maiden_name", ""),
        ideographic_name=_unname(doc.get("ideographic_name")),
        phonetic_name=_unname(doc.get("phonetic_name")),
    )
    identifiers = tuple(Identifier(v, a, t) for v, a, t in doc.get("identifiers", ()))
    return Patient(doc["id"], identifiers, demographics, doc.get("merged_into"))


def encode_visit(v: Visit) -> Doc:
    return {
        "visit_number": v.visit_number,
        "patient_id": v.patient_id,
        "patient_class": v.patient_class,
        "location": v.location,
        "attending": v.attending,
        "admitted_at": _ts(v.admitted_at),
        "discharged_at": _ts(v.discharged_at),
    }


def decode_visit(doc: Mapping[str, Any]) -> Visit:
    return Visit(
        doc["visit_number"],
        doc["patient_id"],
        doc.get("patient_class", ""),
        doc.get("location", ""),
        doc.get("attending", ""),
        _dt(doc.get("admitted_at")),
        _dt(doc.get("discharged_at")),
    )


_STEP_TEXT = (
    "sps_id",
    "modality",
    "station_name",
    "location",
    "description",
    "protocol_code",
    "performing_physician",
)
_ORDER_TEXT = (
    "id",
    "patient_id",
    "accession",
    "placer_number",
    "filler_number",
    "requested_procedure_id",
    "study_instance_uid",
    "procedure_code",
    "procedure_description",
    "modality",
    "visit_number",
    "priority",
    "referring_physician",
    "reason",
    "source",
    "coding_system",
    "body_part",
    "hold_reason",
    "charset",
)


def _step(s: ProcedureStep) -> Doc:
    doc: Doc = {k: getattr(s, k) for k in _STEP_TEXT}
    doc.update(stations=list(s.station_ae_titles), start=_ts(s.start), status=s.status.value)
    return doc


def _unstep(d: Mapping[str, Any]) -> ProcedureStep:
    return ProcedureStep(
        **{k: str(d.get(k, "")) for k in _STEP_TEXT},
        station_ae_titles=tuple(d.get("stations", ())),
        start=_dt(d.get("start")),
        status=Status(d.get("status", Status.SCHEDULED.value)),
    )


def encode_order(o: Order) -> Doc:
    doc: Doc = {k: getattr(o, k) for k in _ORDER_TEXT}
    doc.update(status=o.status.value, steps=[_step(s) for s in o.steps])
    return doc


def decode_order(doc: Mapping[str, Any]) -> Order:
    return Order(
        **{k: str(doc.get(k, "")) for k in _ORDER_TEXT},
        status=Status(doc["status"]),
        steps=tuple(_unstep(s) for s in doc.get("steps", ())),
    )


_REPORT_TEXT = (
    "id",
    "accession",
    "text",
    "interpreter",
    "visit_number",
    "patient_id",
    "placer_number",
    "filler_number",
    "source",
)


def encode_report(r: Report) -> Doc:
    doc: Doc = {k: getattr(r, k) for k in _REPORT_TEXT}
    doc.update(status=r.status.value, observed_at=_ts(r.observed_at), order_id=r.order_id)
    return doc


def decode_report(doc: Mapping[str, Any]) -> Report:
    return Report(
        **{k: str(doc.get(k, "")) for k in _REPORT_TEXT},
        status=Status(doc["status"]),
        observed_at=_dt(doc.get("observed_at")),
        order_id=doc.get("order_id"),
    )


_FINDING_TEXT = ("detail", "accession", "patient_id", "subject", "location", "source")


def encode_finding(f: Finding) -> Doc:
    doc: Doc = {k: getattr(f, k) for k in _FINDING_TEXT}
    doc.update(
        kind=f.kind.value,
        first_seen=_ts(f.first_seen),
        last_seen=_ts(f.last_seen),
        messages=list(f.messages),
        severity=f.severity.value if f.severity else None,
        count=f.count,
        resolution=f.resolution.value,
        score=f.score,
    )
    if f.explanation:
        doc["explanation"] = [list(term) for term in f.explanation]
    return doc


def decode_finding(doc: Mapping[str, Any]) -> Finding:
    first = _dt(doc["first_seen"])
    assert first is not None
    return Finding(
        **{k: str(doc.get(k, "")) for k in _FINDING_TEXT},
        kind=FindingKind(doc["kind"]),
        first_seen=first,
        last_seen=_dt(doc.get("last_seen")),
        messages=tuple(doc.get("messages", ())),
        severity=Severity(doc["severity"]) if doc.get("severity") else None,
        count=int(doc.get("count", 1)),
        resolution=Resolution(doc.get("resolution", "open")),
        score=doc.get("score"),
        explanation=tuple((str(t[0]), str(t[1]), float(t[2]), float(t[3]))
                          for t in doc.get("explanation") or ()),
    )


def encode_trace(e: TraceEvent) -> Doc:
    return {
        "at": _ts(e.at),
        "message": e.message,
        "source": e.source,
        "summary": e.summary,
        "order_id": e.order_id,
        "accession": e.accession,
        "changes": [[c.attribute, c.before, c.after] for c in e.changes],
        "rules": list(e.rules),
        "outcome": e.outcome,
    }


def decode_trace(doc: Mapping[str, Any]) -> TraceEvent:
    at = _dt(doc["at"])
    assert at is not None
    return TraceEvent(
        at=at,
        message=doc.get("message", ""),
        source=doc.get("source", ""),
        summary=doc.get("summary", ""),
        order_id=doc.get("order_id", ""),
        accession=doc.get("accession", ""),
        changes=tuple(Change(a, b, c) for a, b, c in doc.get("changes", ())),
        rules=tuple(doc.get("rules", ())),
        outcome=doc.get("outcome", "applied"),
    )
