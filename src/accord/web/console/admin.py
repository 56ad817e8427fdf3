"""The administrator's and auditor's pages: procedure code mappings (edit with history)
and the audit log (page rules in ``render.py``).

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
from accord.web.deps import get_deps, record, require
from accord.web.permissions import Action, allowed
from accord.workflow.findings import FindingKind, Resolution

router = APIRouter(include_in_schema=False)
UNMAPPED_SHOWN = 200


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
                  can_edit=allowed(principal.role, Action.CONFIG_WRITE), **extra)


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
               actor: str = "", action: str = "", cursor: str = "") -> Response:
    deps = get_deps(request)
    try:
        found = deps.auditor.log.page(actor=actor[:64] or None, action=action[:64] or None,
                                      cursor=cursor or None, limit=100)
    except ValueError as exc:
        raise HTTPException(400, "invalid cursor") from exc
    record(request, Action.AUDIT_READ.value, object_type="audit", count=len(found.items))
    nxt = found.next_cursor
    export = ("/api/audit/export" if allowed(principal.role, Action.AUDIT_EXPORT) else "")
    return render(request, "audit.html", entries=found.items, actor=actor, action=action,
                  export_url=export,
                  next_url=with_query("/audit", actor=actor, action=action, cursor=nxt)
                  if nxt else "")
