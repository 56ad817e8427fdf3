"""The JSON API, workflow side: patients, orders and their trace, the worklist,
duplicates and merges, findings (rules in ``accord.web.api``; the interface is described
in docs/interface.md).

A merge is an ADT^A40 run through ingest (``accord.web.merge``), like one from the RIS.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from accord.store.views.orders import OrderQuery
from accord.web import api_json as js
from accord.web.api import Cursor, Deps, Limit, bad_request, who
from accord.web.auth import Principal
from accord.web.deps import record
from accord.web.merge import merge_message
from accord.web.permissions import Action
from accord.workflow.findings import FindingKind, Resolution
from accord.workflow.status import Status

router = APIRouter()


def _split_identifier(text: str) -> tuple[str, str | None]:
    """``ID`` or ``ID^^^AUTH`` (CX-1 and CX-4, as in PID-3)."""
    value, sep, rest = text.partition("^^^")
    return value, (rest.split("^")[0] if sep else None)


@router.get("/api/patients", tags=["patients"])
def list_patients(request: Request, deps: Deps,
                  principal: Annotated[Principal, who(Action.PATIENTS_READ)],
                  identifier: Annotated[str | None, Query(max_length=400)] = None,
                  name: Annotated[str | None, Query(max_length=199)] = None,
                  limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    """Patients by PID-3 identifier (``ID`` or ``ID^^^AUTH``), by family-name prefix
    (``name``), or all by id."""
    value, authority = _split_identifier(identifier) if identifier else (None, None)
    try:
        found = deps.views.patients.search(identifier=value, authority=authority,
                                           family=name, cursor=js.decode_cursor(cursor),
                                           limit=limit)
    except ValueError as exc:
        raise bad_request(exc) from exc
    record(request, "patients.list", object_type="patient", count=len(found.items),
           patient_ids=[p.id for p in found.items], detail={"filters": _filters(request)})
    return js.page([js.patient_json(p) for p in found.items], found.next_cursor)


def _filters(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if k not in ("cursor", "limit")}


@router.get("/api/patients/{patient_id}", tags=["patients"])
def get_patient(request: Request, patient_id: str, deps: Deps,
                principal: Annotated[Principal, who(Action.PATIENTS_READ)]) -> dict[str, Any]:
    """A patient: identifiers, demographics, visits, orders, merge history, open
    duplicate findings."""
    detail = deps.views.patients.detail(patient_id)
    if detail is None:
        record(request, "patients.view", object_type="patient", object_id=patient_id,
               outcome="not_found")
        raise HTTPException(404, f"no patient {patient_id}")
    patient = detail.patient
    record(request, "patients.view", object_type="patient", object_id=patient.id,
           patient_ids=[patient.id])
    return {**js.patient_json(patient),
            "visits": [js.visit_json(v) for v in detail.visits],
            "orders": [js.order_json(o, {patient.id: patient}) for o in detail.orders],
            "merged": [js.patient_json(p) for p in detail.merged_from],
            "duplicates": [js.finding_json(f) for f in detail.duplicates]}


class MergeRequest(BaseModel):
    into: str = Field(min_length=1, max_length=64, description="the surviving patient's id")


@router.post("/api/patients/{patient_id}/merge", tags=["patients"])
async def merge_patient(request: Request, patient_id: str, body: MergeRequest, deps: Deps,
                        principal: Annotated[Principal, who(Action.PATIENTS_MERGE)]
                       ) -> dict[str, Any]:
    """Merge patient ``patient_id`` into ``into``: an ADT^A40 through ingest (module
    doc); answers the stored message's id, status and ACK code."""
    patients = deps.views.patients
    merged, survivor = await run_in_threadpool(
        lambda: (patients.get(patient_id), patients.get(body.into)))
    problem = _merge_problem(patient_id, body.into, merged, survivor)
    if problem is not None:
        status, text = problem
        await run_in_threadpool(lambda: record(
            request, "patients.merge", object_type="patient", object_id=patient_id,
            patient_ids=[patient_id, body.into], outcome="refused", detail={"reason": text}))
        raise HTTPException(status, text)
    assert merged is not None and survivor is not None
    if deps.inject is None:
        raise HTTPException(503, "merging needs the running engine")
    payload = merge_message(survivor, merged, deps.control_ids.next(), deps.clock.now())
    message_id = await deps.inject(payload, f"console:{principal.name}")
    stored = await run_in_threadpool(deps.store.get_message, message_id)
    outcome = "ok" if stored.ack_code == "AA" else "failed"
    await run_in_threadpool(lambda: record(
        request, "patients.merge", object_type="patient", object_id=patient_id,
        patient_ids=[patient_id, body.into], outcome=outcome,
        detail={"into": body.into, "message_id": message_id, "ack_code": stored.ack_code}))
    return {"merged": patient_id, "into": body.into, "message_id": message_id,
            "status": stored.status, "ack_code": stored.ack_code, "outcome": stored.outcome}


def _merge_problem(patient_id: str, into: str, merged: Any, survivor: Any
                   ) -> tuple[int, str] | None:
    if patient_id == into:
        return 400, "a patient cannot be merged into itself"
    if merged is None or survivor is None:
        return 404, f"no patient {patient_id if merged is None else into}"
    if merged.merged_into is not None or survivor.merged_into is not None:
        return 409, "one of the patients is already merged"
    if not merged.identifiers or not survivor.identifiers:
        return 409, "both patients need an identifier to be merged"
    return None


Text = Annotated[str | None, Query(max_length=199)]


@router.get("/api/orders", tags=["orders"])
def list_orders(request: Request, deps: Deps,
                principal: Annotated[Principal, who(Action.ORDERS_READ)],
                accession: Text = None,
                patient: Annotated[str | None, Query(max_length=400)] = None,
                status: str | None = None,
                study_instance_uid: Annotated[str | None, Query(max_length=64)] = None,
                mrn: Text = None, name: Text = None, modality: Text = None,
                date: Annotated[str | None, Query(pattern=r"^\d{4}-?\d{2}-?\d{2}$")] = None,
                limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    """Orders, most recently changed first, as the console's order search finds them:
    ``accession`` and ``mrn`` forgiving (any case, a suffix, a fragment naming one),
    ``name`` as people write it ("Dietz, Ines", "Ines Dietz", "dietz"), ``modality``
    and ``date`` (YYYYMMDD) of a procedure step; ``patient`` is an Accord patient id or
    a PID-3 identifier (``ID`` or ``ID^^^AUTH``)."""
    if status is not None and status not in {s.value for s in Status}:
        raise HTTPException(400, f"unknown status {status!r}")
    patient_ids: tuple[str, ...] | None = None
    if patient:
        value, authority = _split_identifier(patient)
        holders = deps.views.patients.ids_by_identifier(value, authority)
        patient_ids = tuple(holders) or (patient,)
    query = OrderQuery(accession=accession or "", study_uid=study_instance_uid or "",
                       status=status or "", patient_ids=patient_ids, mrn=mrn or "",
                       name=name or "", modality=modality or "", date=date or "")
    try:
        found = deps.views.orders.search(query, js.decode_cursor(cursor), limit)
    except ValueError as exc:
        raise bad_request(exc) from exc
    record(request, "orders.list", object_type="order", count=len(found.items),
           patient_ids=[r.order.patient_id for r in found.items],
           detail={"filters": _filters(request)})
    return js.page([js.order_row_json(r) for r in found.items], found.next_cursor)


@router.get("/api/orders/{order_id}", tags=["orders"])
def get_order(request: Request, order_id: str, deps: Deps,
              principal: Annotated[Principal, who(Action.ORDERS_READ)]) -> dict[str, Any]:
    """One order with its patient banner (every identifier with its authority)."""
    row = deps.views.orders.get(order_id)
    if row is None:
        record(request, "orders.view", object_type="order", object_id=order_id,
               outcome="not_found")
        raise HTTPException(404, f"no order {order_id}")
    record(request, "orders.view", object_type="order", object_id=row.order.id,
           patient_ids=[row.order.patient_id])
    return js.order_row_json(row)


@router.get("/api/orders/{order_id}/trace", tags=["orders"])
def order_trace(request: Request, order_id: str, deps: Deps,
                principal: Annotated[Principal, who(Action.ORDERS_READ)]) -> dict[str, Any]:
    """The order's trace: events, rule outcomes, plain-word explanation, and the
    messages that carried its accession."""
    row = deps.views.orders.get(order_id)
    if row is None:
        record(request, "orders.trace", object_type="order", object_id=order_id,
               outcome="not_found")
        raise HTTPException(404, f"no order {order_id}")
    order = row.order
    events = deps.views.orders.trace(order)
    messages = (deps.store.search_messages(accession=order.accession, limit=1000).items
                if order.accession else ())
    record(request, "orders.trace", object_type="order", object_id=order.id,
           patient_ids=[order.patient_id])
    return js.trace_json(order, events, messages)


@router.get("/api/worklist", tags=["worklist"])
def worklist(request: Request, deps: Deps,
             principal: Annotated[Principal, who(Action.WORKLIST_READ)],
             station: Annotated[str | None, Query(max_length=16)] = None,
             modality: Annotated[str | None, Query(max_length=16)] = None,
             date: Annotated[str | None, Query(pattern=r"^\d{8}$")] = None,
             limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    """Scheduled procedure steps as the MWL serves them: station AE title, modality,
    SPS start date (YYYYMMDD)."""
    try:
        found = deps.views.worklist.steps(station=station, modality=modality, date=date,
                                          cursor=js.decode_cursor(cursor), limit=limit,
                                          started_after=deps.worklist_since())
    except ValueError as exc:
        raise bad_request(exc) from exc
    record(request, "worklist.list", object_type="procedure_step", count=len(found.items),
           patient_ids=[w.order.patient_id for w in found.items],
           detail={"filters": _filters(request)})
    return js.page([js.worklist_json(w) for w in found.items], found.next_cursor)


@router.get("/api/duplicates", tags=["patients"])
def duplicates(request: Request, deps: Deps,
               principal: Annotated[Principal, who(Action.DUPLICATES_READ)],
               limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    """Potential duplicate patient pairs (open), items ``{"a", "b", "score"}`` with the
    terms of the score: ``explanation`` lists ``{"field", "level", "weight", "tf"}``
    (``prior``, each comparison, ``household``, ``others``: the candidates of the same
    registration that are another person), whose weights (bits) add up to
    ``match_weight``, log2 of the odds that A and B are one person (``score`` is its
    probability when proposed)."""
    try:
        found = deps.views.findings.duplicates(cursor=js.decode_cursor(cursor), limit=limit)
    except ValueError as exc:
        raise bad_request(exc) from exc
    record(request, "duplicates.list", object_type="patient", count=len(found.items),
           patient_ids=[pid for d in found.items
                        for pid in (d.finding.finding.patient_id, d.finding.finding.subject)])
    return js.page([js.duplicate_json(d) for d in found.items], found.next_cursor)


@router.get("/api/findings", tags=["findings"])
def findings(request: Request, deps: Deps,
             principal: Annotated[Principal, who(Action.FINDINGS_READ)],
             kind: str | None = None, resolution: str | None = None,
             accession: Annotated[str | None, Query(max_length=199)] = None,
             patient: Annotated[str | None, Query(max_length=64)] = None,
             limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    """Reconciliation findings, most recently seen first (filters: kind, resolution,
    accession, patient id)."""
    if kind is not None and kind not in {k.value for k in FindingKind}:
        raise HTTPException(400, f"unknown finding kind {kind!r}")
    if resolution is not None and resolution not in {r.value for r in Resolution}:
        raise HTTPException(400, f"unknown resolution {resolution!r}")
    try:
        found = deps.views.findings.list(kind=kind, resolution=resolution,
                                         accession=accession, patient_id=patient,
                                         cursor=js.decode_cursor(cursor), limit=limit)
    except ValueError as exc:
        raise bad_request(exc) from exc
    record(request, "findings.list", object_type="finding", count=len(found.items),
           patient_ids=[f.finding.patient_id for f in found.items])
    return js.page([js.finding_json(f) for f in found.items], found.next_cursor)


class ResolveRequest(BaseModel):
    resolution: str = Field(default="resolved", pattern="^(resolved|ignored|open)$")
    note: str = Field(default="", max_length=1000)


@router.post("/api/findings/{finding_id}/resolve", tags=["findings"])
def resolve_finding(request: Request, finding_id: int, body: ResolveRequest, deps: Deps,
                    principal: Annotated[Principal, who(Action.FINDINGS_RESOLVE)]
                   ) -> dict[str, Any]:
    """Resolve (or ignore — "not a duplicate" — or reopen) a finding, with a note."""
    note = f"{body.resolution} by {principal.name}" + (f": {body.note}" if body.note else "")
    done = deps.views.findings.resolve(finding_id, Resolution(body.resolution), note,
                                       deps.clock.now())
    if done is None:
        record(request, "findings.resolve", object_type="finding", object_id=str(finding_id),
               outcome="not_found")
        raise HTTPException(404, f"no finding {finding_id}")
    record(request, "findings.resolve", object_type="finding", object_id=str(finding_id),
           patient_ids=[done.finding.patient_id],
           detail={"resolution": body.resolution, "kind": done.finding.kind.value})
    return js.finding_json(done)
