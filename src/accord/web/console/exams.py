"""The clinical pages: order search, the order page (banner, status timeline, trace with
each message openable, what went out and its ACK, reports, findings), patient search
and the patient page, and the worklist as a modality's MWL query sees it (each row
flagged with the findings about it).

Rules:
- Every view of patient data is audited before it is rendered, with Accord's patient
  ids, never field values: one record per page, naming every patient it shows.
- Searches are forgiving (``accord.store.views.orders``): an accession or an MRN in any
  case, its end, or a piece of it that names one; a name as people write it.
- Lists are keyset-paginated through the store's views (``accord.store.views``), the
  same queries the JSON API answers from, so a page and its API route never disagree.
- Nothing here logs patient data: errors are answered with generic text.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from accord.hl7 import ack_code_in
from accord.store.views.orders import OrderQuery
from accord.web.auth import Principal
from accord.web.console.render import page, render, with_query
from accord.web.deps import get_deps, record
from accord.web.permissions import Action
from accord.workflow.status import Status
from accord.workflow.trace import explain

router = APIRouter(include_in_schema=False)
WORKLIST_PAGE = 50  # a station's day fits in one or two pages
ORDERS_PAGE = 50
PATIENTS_PAGE = 50
MESSAGES_SHOWN = 200  # on an order page


@router.get("/orders", response_class=HTMLResponse)
def orders(request: Request, _: Annotated[Principal, Depends(page(Action.ORDERS_READ))],
           accession: str = "", mrn: str = "", name: str = "", study_uid: str = "",
           status: str = "", date: str = "", modality: str = "",
           cursor: str = "") -> Response:
    """Order search by accession, MRN, name, Study Instance UID, status, step date and
    modality."""
    q = OrderQuery(accession=accession.strip()[:199], mrn=mrn.strip()[:199], name=name[:199],
                   study_uid=study_uid.strip()[:64], status=status[:16], date=date[:10],
                   modality=modality.strip()[:16])
    form = {k: getattr(q, k) for k in ("accession", "mrn", "name", "study_uid", "status",
                                       "date", "modality")}
    if q.status and q.status not in {s.value for s in Status}:
        raise HTTPException(400, "unknown status")
    try:
        found = get_deps(request).views.orders.search(q, cursor or None, ORDERS_PAGE)
    except ValueError as exc:
        raise HTTPException(400, "invalid cursor") from exc
    rows, nxt = found.items, found.next_cursor
    record(request, Action.ORDERS_READ.value, object_type="order_search",
           patient_ids=[r.order.patient_id for r in rows], count=len(rows),
           detail={"filters": sorted(k for k, v in form.items() if v)})
    next_url = with_query("/orders", **{**form, "cursor": nxt}) if nxt else ""
    return render(request, "orders.html", q=q, rows=rows, next_url=next_url,
                  statuses=[s.value for s in Status])


@router.get("/orders/{key}", response_class=HTMLResponse)
def order_page(request: Request, key: str,
               principal: Annotated[Principal, Depends(page(Action.ORDERS_READ))]) -> Response:
    """Patient banner, status timeline, trace (each message openable), reports."""
    deps = get_deps(request)
    detail = deps.views.orders.detail(key[:199])
    if detail is None:
        record(request, Action.ORDERS_READ.value, object_type="order", outcome="not_found")
        raise HTTPException(404, "no such order")
    record(request, Action.ORDERS_READ.value, object_type="order", object_id=detail.order.id,
           patient_ids=[detail.order.patient_id])
    standing = explain([e for e, _ in detail.trace])[-1]
    accession = detail.order.accession
    messages = (deps.store.search_messages(accession=accession, limit=MESSAGES_SHOWN).items
                if accession else ())
    return render(request, "order.html", d=detail, messages=messages, standing=standing,
                  acks={r.id: ack_code_in(r.last_ack) for r in detail.deliveries},
                  can_raw=deps.may(principal.role, Action.MESSAGES_READ))


@router.get("/patients", response_class=HTMLResponse)
def patients(request: Request, _: Annotated[Principal, Depends(page(Action.PATIENTS_READ))],
             name: str = "", mrn: str = "", cursor: str = "") -> Response:
    """Patient search by name (as people write it) and MRN (forgiving); both empty: the
    patients on file, by Accord id."""
    form = {"name": name.strip()[:199], "mrn": mrn.strip()[:199]}
    try:
        found = get_deps(request).views.patients.search(
            identifier=form["mrn"] or None, family=form["name"] or None,
            cursor=cursor or None, limit=PATIENTS_PAGE)
    except ValueError as exc:
        raise HTTPException(400, "invalid cursor") from exc
    record(request, Action.PATIENTS_READ.value, object_type="patient_search",
           patient_ids=[p.id for p in found.items], count=len(found.items),
           detail={"filters": sorted(k for k, v in form.items() if v)})
    nxt = found.next_cursor
    return render(request, "patients.html", rows=found.items, form=form,
                  next_url=with_query("/patients", **form, cursor=nxt) if nxt else "")


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(request: Request, patient_id: str,
                 principal: Annotated[Principal, Depends(page(Action.PATIENTS_READ))]
                 ) -> Response:
    """Identifiers, demographics, visits, orders, potential duplicates, merge history."""
    detail = get_deps(request).views.patients.detail(patient_id[:64])
    if detail is None:
        record(request, Action.PATIENTS_READ.value, object_type="patient",
               outcome="not_found")
        raise HTTPException(404, "no such patient")
    record(request, Action.PATIENTS_READ.value, object_type="patient",
           object_id=detail.patient.id, patient_ids=[detail.patient.id])
    others = get_deps(request).views.patients.by_id(
        pid for sf in detail.duplicates for pid in (sf.finding.patient_id, sf.finding.subject))
    return render(request, "patient.html", d=detail, others=others,
                  can_dups=get_deps(request).may(principal.role, Action.DUPLICATES_READ))


@router.get("/worklist", response_class=HTMLResponse)
def worklist_page(request: Request,
                  _: Annotated[Principal, Depends(page(Action.WORKLIST_READ))],
                  date: str = "", station: str = "", modality: str = "",
                  cursor: str = "") -> Response:
    """Scheduled procedure steps as the modality's MWL query sees them."""
    deps = get_deps(request)
    day = (date or deps.clock.now().strftime("%Y%m%d")).replace("-", "")[:8]
    if not day.isdigit():
        raise HTTPException(400, "date must be YYYYMMDD")
    try:
        found = deps.views.worklist.steps(date=day, station=station[:16],
                                          modality=modality[:16], cursor=cursor or None,
                                          limit=WORKLIST_PAGE,
                                          started_after=deps.worklist_since())
    except ValueError as exc:
        raise HTTPException(400, "invalid cursor") from exc
    rows, nxt = found.items, found.next_cursor
    stations, modalities = deps.views.worklist.choices(day)
    record(request, Action.WORKLIST_READ.value, object_type="worklist",
           patient_ids=[r.order.patient_id for r in rows], count=len(rows),
           detail={"date": day, "station": station[:16], "modality": modality[:16]})
    return render(request, "worklist.html", rows=rows, date=day, station=station,
                  modality=modality, stations=stations, modalities=modalities,
                  next_url=with_query("/worklist", date=day, station=station,
                                      modality=modality, cursor=nxt) if nxt else "")
