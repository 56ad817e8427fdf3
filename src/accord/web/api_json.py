"""The JSON shapes of the API (docs/interface.md): one function per kind of object.

Rule: pure functions from store/workflow values to JSON-able dicts; the routes call
them, the console may too. Times are ISO 8601 UTC; enums by value.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from accord.errors import ParseError
from accord.hl7 import ack_code_in, describe, parse
from accord.store import ErrorEntry, JsonDict, OutboxRow, StoredMessage
from accord.store.views.dashboard import Dashboard
from accord.store.views.findings import DuplicatePair, StoredFinding
from accord.store.views.orders import OrderRow
from accord.store.views.worklist import WorklistRow
from accord.store.workflow.dicom_events import DicomEvent
from accord.workflow.model import Order, Patient, PersonName, ProcedureStep, Visit
from accord.workflow.trace import TraceEvent, explain


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _name(n: PersonName | None) -> JsonDict | None:
    if n is None:
        return None
    return {"family": n.family, "given": n.given, "middle": n.middle, "suffix": n.suffix,
            "prefix": n.prefix}


def page(items: Sequence[Any], next_cursor: str | None) -> JsonDict:
    """A list answer: ``{"items": [...], "next": CURSOR_OR_NULL}``; the cursor is opaque
    (URL-safe base64 of the store's keyset cursor), to pass back as ``cursor=``."""
    return {"items": list(items), "next": encode_cursor(next_cursor)}


def encode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    return base64.urlsafe_b64encode(cursor.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The store cursor of an API cursor; ValueError when it is not one of ours."""
    if not cursor:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc


def patient_json(p: Patient) -> JsonDict:
    """A patient: Accord id, every identifier with its authority, demographics."""
    d = p.demographics
    a = d.address
    return {
        "id": p.id,
        "merged_into": p.merged_into,
        "identifiers": [{"id": i.value, "authority": i.authority, "type": i.type_code}
                        for i in p.identifiers],
        "demographics": {
            "name": _name(d.name),
            "birth_date": d.birth_date.isoformat() if d.birth_date else None,
            "sex": d.sex,
            "address": {"street": a.street, "other": a.other, "city": a.city,
                        "state": a.state, "postal_code": a.postal_code, "country": a.country},
            "phone": d.phone,
            "ideographic_name": _name(d.ideographic_name),
            "phonetic_name": _name(d.phonetic_name),
        },
    }


def patient_ref(patient_id: str, patients: Mapping[str, Patient]) -> JsonDict:
    """The patient of an order: in full when known, else its id alone."""
    found = patients.get(patient_id)
    return patient_json(found) if found is not None else {"id": patient_id}


def step_json(s: ProcedureStep) -> JsonDict:
    return {"sps_id": s.sps_id, "modality": s.modality, "stations": list(s.station_ae_titles),
            "station_name": s.station_name, "location": s.location, "start": _ts(s.start),
            "description": s.description, "protocol_code": s.protocol_code,
            "performing_physician": s.performing_physician, "status": s.status.value}


def order_row_json(row: OrderRow) -> JsonDict:
    """A listed order with its patient (in full when known)."""
    patients = {row.patient.id: row.patient} if row.patient is not None else {}
    return order_json(row.order, patients)


def order_json(o: Order, patients: Mapping[str, Patient]) -> JsonDict:
    """An order with its canonical status, numbers, procedure, steps and patient."""
    return {
        "id": o.id, "status": o.status.value, "accession": o.accession,
        "study_instance_uid": o.study_instance_uid, "placer_number": o.placer_number,
        "filler_number": o.filler_number, "requested_procedure_id": o.requested_procedure_id,
        "procedure": {"code": o.procedure_code, "description": o.procedure_description,
                      "coding_system": o.coding_system, "body_part": o.body_part},
        "modality": o.modality, "visit_number": o.visit_number, "priority": o.priority,
        "referring_physician": o.referring_physician, "reason": o.reason,
        "source": o.source, "held": bool(o.hold_reason), "hold_reason": o.hold_reason,
        "steps": [step_json(s) for s in o.steps],
        "patient": patient_ref(o.patient_id, patients),
    }


def visit_json(v: Visit) -> JsonDict:
    return {"visit_number": v.visit_number, "patient_class": v.patient_class,
            "location": v.location, "attending": v.attending,
            "admitted_at": _ts(v.admitted_at), "discharged_at": _ts(v.discharged_at)}


def event_json(e: TraceEvent) -> JsonDict:
    return {"at": _ts(e.at), "message": e.message, "source": e.source, "summary": e.summary,
            "order_id": e.order_id, "accession": e.accession,
            "changes": [{"attribute": c.attribute, "before": c.before, "after": c.after}
                        for c in e.changes],
            "rules": list(e.rules), "outcome": e.outcome}


def trace_json(order: Order, events: Sequence[TraceEvent],
               messages: Sequence[StoredMessage]) -> JsonDict:
    """The trace: events and rule outcomes, plain-word lines, and the related messages."""
    return {"order": order.id, "accession": order.accession, "status": order.status.value,
            "events": [event_json(e) for e in events], "explain": explain(events),
            "messages": [message_summary(m) for m in messages]}


def worklist_json(w: WorklistRow) -> JsonDict:
    """A scheduled procedure step as the MWL serves it (PS3.4 K.6), with its order."""
    patients = {w.patient.id: w.patient} if w.patient is not None else {}
    return {"sps_id": w.step.sps_id, "station": list(w.step.station_ae_titles),
            "modality": w.step.modality or w.order.modality, "start": _ts(w.step.start),
            "description": w.step.description, "status": w.order.status.value,
            "accession": w.order.accession, "order_id": w.order.id,
            "study_instance_uid": w.order.study_instance_uid,
            "requested_procedure_id": w.order.requested_procedure_id,
            "procedure": {"code": w.order.procedure_code,
                          "description": w.order.procedure_description},
            "patient": patient_ref(w.order.patient_id, patients),
            "stationless": w.stationless,
            "findings": [{"id": sf.id, "kind": sf.finding.kind.value} for sf in w.findings]}


def finding_json(sf: StoredFinding) -> JsonDict:
    f = sf.finding
    return {"id": sf.id, "kind": f.kind.value, "accession": f.accession, "detail": f.detail,
            "severity": f.severity.value if f.severity else None, "patient_id": f.patient_id,
            "subject": f.subject, "location": f.location, "source": f.source,
            "messages": list(f.messages), "first_seen": _ts(f.first_seen),
            "last_seen": _ts(f.last_seen), "count": f.count,
            "resolution": f.resolution.value, "score": f.score}


def duplicate_json(d: DuplicatePair) -> JsonDict:
    def side(p: Patient | None, pid: str) -> JsonDict:
        return patient_json(p) if p is not None else {"id": pid}

    f = d.finding.finding
    return {"a": side(d.a, f.patient_id), "b": side(d.b, f.subject), "score": d.score,
            "match_weight": round(sum(t[2] for t in f.explanation), 4)
            if f.explanation else None,
            "explanation": [{"field": name, "level": level, "weight": weight, "tf": tf}
                            for name, level, weight, tf in f.explanation],
            "finding": d.finding.id, "detail": f.detail, "resolution": f.resolution.value,
            "last_seen": _ts(f.last_seen)}


def message_summary(m: StoredMessage) -> JsonDict:
    return {"id": m.id, "received_at": _ts(m.received_at), "peer": m.peer,
            "listener": m.listener, "sending_app": m.sending_app,
            "sending_facility": m.sending_facility, "message_type": m.message_type,
            "control_id": m.control_id, "version": m.version, "status": m.status,
            "ack_code": m.ack_code, "duplicate_of": m.duplicate_of,
            "reprocess_of": m.reprocess_of, "superseded_by": m.superseded_by,
            "patient_ids": list(m.patient_ids), "accessions": list(m.accessions)}


def _text(data: bytes, charset: str) -> str:
    try:
        return data.decode(charset or "utf-8")
    except (LookupError, UnicodeDecodeError):
        return data.decode("latin-1")


def message_json(m: StoredMessage, deliveries: Sequence[OutboxRow]) -> JsonDict:
    """A stored message in full: raw text, parsed segments and fields (with names),
    outcome, the ACK sent, and the deliveries it caused."""
    parsed: JsonDict | None = None
    if m.parse_error is None and m.raw:
        try:
            parsed = describe(parse(m.raw))
        except ParseError:
            parsed = None
    return {**message_summary(m), "raw": _text(m.raw, m.charset), "charset": m.charset,
            "parse_error": m.parse_error, "parsed": parsed, "outcome": m.outcome,
            "ack": _text(m.ack, m.charset), "deliveries": [outbox_json(r) for r in deliveries]}


def outbox_json(r: OutboxRow) -> JsonDict:
    return {"id": r.id, "destination": r.destination, "kind": r.kind,
            "accession": r.accession, "ack_code": ack_code_in(r.last_ack),
            "control_id": r.control_id, "status": r.status, "attempts": r.attempts,
            "created_at": _ts(r.created_at), "next_attempt_at": _ts(r.next_attempt_at),
            "delivered_at": _ts(r.delivered_at), "last_error": r.last_error,
            "source_message_id": r.source_message_id, "reprocess_of": r.reprocess_of,
            "superseded_by": r.superseded_by}


def error_id(entry: ErrorEntry) -> str:
    """The error queue id of an entry: ``m<message id>`` or ``o<outbox row id>``."""
    if entry.message is not None:
        return f"m{entry.message.id}"
    assert entry.outbox is not None
    return f"o{entry.outbox.id}"


def error_json(entry: ErrorEntry) -> JsonDict:
    out: JsonDict = {"id": error_id(entry), "source": entry.source, "at": _ts(entry.at)}
    if entry.message is not None:
        m = entry.message
        out["message"] = message_summary(m)
        out["error"] = m.parse_error or str(m.outcome.get("error", ""))
        out["location"] = m.outcome.get("location")
    elif entry.outbox is not None:
        out["outbox"] = outbox_json(entry.outbox)
        out["error"] = entry.outbox.last_error or ""
    return out


def dashboard_json(dash: Dashboard, window_minutes: float) -> JsonDict:
    """The dashboard's figures: each the size of the list its filters give (``since`` and
    ``until`` are the window's bounds, as the list routes take them)."""
    return {
        "since": _ts(dash.since), "until": _ts(dash.until), "window_minutes": window_minutes,
        "day": dash.day,
        "interfaces": [{"sender": i.sender, "received": i.received, "errored": i.errored,
                        "rejected": i.rejected, "last_at": _ts(i.last_at)}
                       for i in dash.interfaces],
        "destinations": [{"name": d.name, "state": d.state, "queued": d.queued,
                          "errors": d.errors, "delivered": d.delivered,
                          "last_delivered_at": _ts(d.last_delivered_at),
                          "ack_ms_median": d.ack_ms_median, "ack_ms_p95": d.ack_ms_p95,
                          "last_error": d.last_error} for d in dash.destinations],
        "stations": [{"station": st.station, "queries": st.queries, "mpps": st.mpps,
                      "last_query_at": _ts(st.last_query_at),
                      "last_mpps_at": _ts(st.last_mpps_at), "known": st.known}
                     for st in dash.stations],
        "orders_today": [{"modality": m, "status": st, "count": n}
                         for m, st, n in dash.orders_today],
        "findings": [{"kind": k, "open": n} for k, n in dash.findings],
        # messages answered on store and not yet applied, as of now
        "backlog": dash.backlog, "backlog_oldest": _ts(dash.backlog_oldest),
    }


def dicom_event_json(e: DicomEvent) -> JsonDict:
    return {"id": e.id, "at": _ts(e.at), "kind": e.kind, "station": e.station,
            "peer": e.peer, "status": e.status, "matches": e.matches,
            "accession": e.accession, "sop_instance_uid": e.sop_instance_uid,
            "summary": e.summary}
