"""The administrator's and auditor's pages: procedure code mappings (edit with history)
and the audit log (page rules in ``render.py``).

The audit log names the people a record is about (name and MRN, read now from the
patient records; a patient no longer on file shows as such): to know whose record was
seen; an order it names shows as its accession. Each person links to the patient page
for a reader who may open it, else to the audit of that patient. The ``patient`` filter
takes an Accord id, an MRN or a name (the patient search finds the ids).

A code edit is stored as a new version of the table (every version kept, with its time
and author: ``accord.store.workflow.catalog``), only when the table is still at the
version the form showed: two admins saving at once get one save and one 409 that says so.
Every node's workflow processor picks the new version up at its next ingest batch; the
DICOM worklist follows from orders, so orders already scheduled keep their station and
new orders get the new mapping.
"""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from accord.mapping.procedures import Procedure
from accord.store.workflow.catalog import VersionConflict
from accord.web.auth import Principal
from accord.web.console.render import page, render, with_query
from accord.web.deps import WebDeps, get_deps, record, require
from accord.web.permissions import Action
from accord.workflow.findings import FindingKind, Resolution

router = APIRouter(include_in_schema=False)
UNMAPPED_SHOWN = 200
AUDIT_PAGE = 100
AUDIT_PATIENTS = 10  # patients a name in the audit's filter may stand for


# --- mappings ----------------------------------------------------------------------------
@router.get("/mappings", response_class=HTMLResponse)
def mappings_page(request: Request,
                  principal: Annotated[Principal, Depends(page(Action.CONFIG_READ))],
                  code: str = "") -> Response:
    return _mappings(request, principal, {"code": code[:64]})


def _mappings(request: Request, principal: Principal, form: dict[str, str],
              status: int = 200, conflict: str = "") -> Response:
    """The Mappings page; ``form`` prefills the edit form (a refused edit keeps its values).
    The form carries the version it shows: saving checks it (optimistic, 409 when stale)."""
    deps = get_deps(request)
    table = deps.code_tables.load()
    unmapped = [sf.finding for sf in deps.views.findings.list(
        kind=FindingKind.UNMAPPED_CODE.value, resolution=Resolution.OPEN.value,
        limit=UNMAPPED_SHOWN).items]
    entries = sorted(table.current.entries.items()) if table.current else []
    extra = {"flash": conflict, "flash_kind": "err"} if conflict else {}
    return render(request, "mappings.html", status=status, table=table, entries=entries,
                  unmapped=unmapped, form=form,
                  version=table.current.number if table.current else 0,
                  can_edit=deps.may(principal.role, Action.CONFIG_WRITE), **extra)


@router.post("/mappings")
async def edit_mapping(request: Request,
                       principal: Annotated[Principal, Depends(require(Action.CONFIG_WRITE))],
                       code: Annotated[str, Form(min_length=1, max_length=64)],
                       version: Annotated[int, Form(ge=0)],
                       description: Annotated[str, Form(max_length=200)] = "",
                       modality: Annotated[str, Form(max_length=16)] = "",
                       body_part: Annotated[str, Form(max_length=64)] = "",
                       stations: Annotated[str, Form(max_length=200)] = "",
                       note: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Add or change one procedure code: a new version of the table (history kept), made
    on ``version`` (the one the form showed); a stale version is answered 409."""
    deps = get_deps(request)
    proc = Procedure(code=code.strip(), description=description.strip(),
                     modality=modality.strip().upper(), body_part=body_part.strip(),
                     stations=tuple(s[:16] for s in stations.replace(",", " ").split()))
    try:
        await run_in_threadpool(functools.partial(
            deps.code_tables.save_change, expected=version, at=deps.clock.now(),
            author=principal.name, note=note.strip() or f"code {proc.code} edited", upsert=(proc,)))
    except VersionConflict as exc:
        await run_in_threadpool(functools.partial(
            record, request, Action.CONFIG_WRITE.value, outcome="conflict",
            object_type="procedure_code", object_id=proc.code,
            detail={"edited": version, "current": exc.current}))
        form = {"code": code, "description": description, "modality": modality,
                "body_part": body_part, "stations": stations, "note": note}
        return await run_in_threadpool(
            _mappings, request, principal, form, 409,
            f"Not saved: someone saved the table after version {version} was loaded. "
            "The current version is shown; check it and save again.")
    await run_in_threadpool(record, request, Action.CONFIG_WRITE.value,
                            object_type="procedure_code", object_id=proc.code,
                            detail={"version": version + 1})
    # Every node reloads the table at its next ingest batch; the worklist follows from
    # orders, so only orders mapped from now on get the new station.
    return RedirectResponse(with_query("/mappings", flash=f"Saved as version {version + 1} "
                                       "(history kept). New orders use it now; orders "
                                       "already scheduled keep their station."), 303)


# --- audit log ---------------------------------------------------------------------------
@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request,
               principal: Annotated[Principal, Depends(page(Action.AUDIT_READ))],
               actor: str = "", action: str = "", patient: str = "",
               cursor: str = "") -> Response:
    deps = get_deps(request)
    form = {"actor": actor.strip()[:64], "action": action.strip()[:64],
            "patient": patient.strip()[:199]}
    wanted = _patients_named(deps, form["patient"]) if form["patient"] else [None]
    try:
        pages = [deps.auditor.log.page(actor=form["actor"] or None,
                                       action=form["action"] or None, patient_id=pid,
                                       cursor=cursor or None, limit=AUDIT_PAGE)
                 for pid in wanted[:AUDIT_PATIENTS]]
    except ValueError as exc:
        raise HTTPException(400, "invalid cursor") from exc
    entries = sorted({e.id: e for p in pages for e in p.items}.values(),
                     key=lambda e: e.id, reverse=True)[:AUDIT_PAGE]
    nxt = pages[0].next_cursor if len(pages) == 1 else None
    people = deps.views.patients.by_id(
        [p for e in entries for p in e.patient_ids]
        + [e.object_id for e in entries if e.object_type == "patient"])
    orders = deps.views.orders.by_id(e.object_id for e in entries
                                     if e.object_type == "order")
    record(request, Action.AUDIT_READ.value, object_type="audit", count=len(entries),
           detail={"filters": sorted(k for k, v in form.items() if v)})
    export = ("/api/audit/export" if deps.may(principal.role, Action.AUDIT_EXPORT) else "")
    return render(request, "audit.html", entries=entries, form=form, people=people,
                  orders=orders,
                  export_url=export, unknown=bool(form["patient"]) and not wanted,
                  next_url=with_query("/audit", **form, cursor=nxt) if nxt else "")


def _patients_named(deps: WebDeps, typed: str) -> list[str | None]:
    """The Accord ids a typed patient names: an id as it is, else the patients an MRN
    or a name finds (a few at most)."""
    if deps.views.patients.get(typed) is not None:
        return [typed]
    found = deps.views.patients.search(identifier=typed, limit=AUDIT_PATIENTS).items or \
        deps.views.patients.search(family=typed, limit=AUDIT_PATIENTS).items
    return [p.id for p in found]
