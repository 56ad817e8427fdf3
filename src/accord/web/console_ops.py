"""The operator's pages: message viewer, error queue, findings, duplicates review,
mappings, audit log (rules as in :mod:`accord.web.console`).

Changes go through the engine, never around it: reprocess through ingest and delivery
(``WebDeps.reprocess_message`` / ``reprocess_outbox``), a merge as an ADT^A40 injected
into ingest (so it is stored, applied, traced and sent downstream through the outbox
like a received A40), code-table edits as a new stored version.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from accord.errors import AccordError
from accord.hl7 import parse
from accord.hl7.spec import describe
from accord.mapping.dialect import Dialect
from accord.mapping.outbound import build
from accord.store import InvalidStateError, NotFoundError
from accord.store.views.findings import StoredFinding
from accord.web.auth import Principal
from accord.web.console import page, render, with_query
from accord.web.deps import get_deps, record, require
from accord.web.permissions import Action, allowed
from accord.workflow.events import PatientMerged
from accord.workflow.findings import FindingKind, Resolution
from accord.workflow.model import Patient

router = APIRouter(include_in_schema=False)
Operator = Annotated[Principal, Depends(require(Action.ERRORS_REPROCESS))]

EXPLAIN: dict[str, str] = {
    "unknown_order": "A report or status arrived for an order Accord never received.",
    "visit_mismatch": "The report's visit (PV1-19) differs from its order's visit.",
    "status_regression": "A status change the status table forbids (e.g. final → "
                         "preliminary); it was recorded, not applied.",
    "cancelled_but_performed": "The exam was cancelled but evidence says it was "
                               "performed (MPPS or a report), or cancelled after it started.",
    "duplicate_order": "A different order claims the same number (accession, placer, "
                       "filler or Study Instance UID).",
    "potential_duplicate_patient": "Two patient records look like the same person; "
                                   "review them side by side.",
    "merged_patient_reference": "A sender used an identifier that was merged away.",
    "unmapped_code": "A procedure code no code table knows; the order is held off the "
                     "worklist until it is mapped.",
    "missing_required_field": "A field the workflow needs was empty (see Field).",
    "field_drift": "A field this sender always filled arrived empty.",
}


# --- message viewer ----------------------------------------------------------------------
def _text(data: bytes | None, charset: str) -> str:
    if not data:
        return ""
    try:
        text = data.decode(charset or "utf-8")
    except (LookupError, UnicodeDecodeError):
        text = data.decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n")


@router.get("/messages/{message_id}", response_class=HTMLResponse)
def message_page(request: Request, message_id: int,
                 principal: Annotated[Principal, Depends(page(Action.MESSAGES_READ))]
                 ) -> Response:
    """Segments and fields with names and paths, decoded; raw text; ACK; deliveries."""
    deps = get_deps(request)
    try:
        m = deps.store.get_message(message_id)
    except NotFoundError as exc:
        record(request, Action.MESSAGES_READ.value, object_type="message",
               object_id=str(message_id), outcome="not_found")
        raise HTTPException(404, "no such message") from exc
    parsed: dict[str, Any] | None
    try:
        parsed = describe(parse(m.raw))
    except AccordError:
        parsed = None
    deliveries = deps.store.list_outbox(source_message_id=m.id, oldest_first=True,
                                        limit=1000).items
    patients = deps.views.patients.ids_naming(m.patient_ids)
    record(request, Action.MESSAGES_READ.value, object_type="message", object_id=str(m.id),
           patient_ids=patients)
    return render(request, "message.html", m=m, parsed=parsed, raw=_text(m.raw, m.charset),
                  ack=_text(m.ack, ""), deliveries=deliveries,
                  can_reprocess=allowed(principal.role, Action.ERRORS_REPROCESS))


@router.post("/deliveries/{row_id}/resend")
async def resend(request: Request, row_id: int, _: Operator) -> Response:
    """Send an outbound row again (same payload and MSH-10, a new row)."""
    deps = get_deps(request)
    row = await run_in_threadpool(deps.store.get_outbox, row_id)
    ok = await _reprocess(request, "outbox", row_id)
    target = f"/messages/{row.source_message_id}" if row.source_message_id else "/errors"
    flash = "Queued for resend." if ok else "Could not resend this row."
    return RedirectResponse(with_query(target, flash=flash, failed="" if ok else "1"), 303)


async def _reprocess(request: Request, source: str, ident: int) -> bool:
    deps = get_deps(request)
    action = deps.reprocess_message if source == "message" else deps.reprocess_outbox
    if action is None:
        raise HTTPException(409, "reprocessing is not available on this node")
    try:
        new_id = await action(ident)
    except (NotFoundError, InvalidStateError):
        await run_in_threadpool(record, request, Action.ERRORS_REPROCESS.value,
                                object_type=source, object_id=str(ident), outcome="refused")
        return False
    await run_in_threadpool(record, request, Action.ERRORS_REPROCESS.value,
                            object_type=source, object_id=str(ident),
                            detail={"new_id": new_id})
    return True


# --- error queue -------------------------------------------------------------------------
@router.get("/errors", response_class=HTMLResponse)
def errors_page(request: Request, _: Annotated[Principal, Depends(page(Action.ERRORS_READ))],
                cursor: str = "") -> Response:
    deps = get_deps(request)
    try:
        found = deps.store.error_queue(cursor=cursor or None, limit=100)
    except ValueError as exc:
        raise HTTPException(400, "invalid cursor") from exc
    record(request, Action.ERRORS_READ.value, object_type="error_queue",
           count=len(found.items))
    nxt = found.next_cursor
    return render(request, "errors.html", entries=found.items,
                  next_url=with_query("/errors", cursor=nxt) if nxt else "")


@router.post("/errors/reprocess")
async def reprocess_many(request: Request, _: Operator) -> Response:
    """Reprocess the selected entries (``ids``: ``message:N`` / ``outbox:N``)."""
    form = await request.form()
    picked = [str(v) for v in form.getlist("ids")][:500]
    done = failed = 0
    for item in picked:
        source, _sep, ident = item.partition(":")
        if source not in ("message", "outbox") or not ident.isdigit():
            raise HTTPException(400, "bad selection")
        if await _reprocess(request, source, int(ident)):
            done += 1
        else:
            failed += 1
    flash = f"Reprocessed {done}" + (f"; {failed} could not be" if failed else "") + "."
    return RedirectResponse(with_query("/errors", flash=flash,
                                       failed=str(failed) if failed else ""), 303)


# --- findings ----------------------------------------------------------------------------
@router.get("/findings", response_class=HTMLResponse)
def findings_page(request: Request,
                  _: Annotated[Principal, Depends(page(Action.FINDINGS_READ))],
                  kind: str = "", resolution: str = "open", accession: str = "",
                  cursor: str = "") -> Response:
    kinds = [k.value for k in FindingKind]
    if (kind and kind not in kinds) or resolution not in ("", "open", "resolved", "ignored"):
        raise HTTPException(400, "unknown kind or state")
    try:
        found = get_deps(request).views.findings.list(
            kind=kind or None, resolution=resolution or None,
            accession=accession[:199] or None, cursor=cursor or None, limit=100)
    except ValueError as exc:
        raise HTTPException(400, "invalid cursor") from exc
    record(request, Action.FINDINGS_READ.value, object_type="findings",
           patient_ids=[sf.finding.patient_id for sf in found.items], count=len(found.items))
    nxt = found.next_cursor
    return render(request, "findings.html", rows=found.items, kinds=kinds, kind=kind,
                  resolution=resolution, accession=accession,
                  next_url=with_query("/findings", kind=kind, resolution=resolution,
                                      accession=accession, cursor=nxt) if nxt else "")


@router.get("/findings/{finding_id}", response_class=HTMLResponse)
def finding_page(request: Request, finding_id: int,
                 principal: Annotated[Principal, Depends(page(Action.FINDINGS_READ))]
                 ) -> Response:
    sf = get_deps(request).views.findings.get(finding_id)
    if sf is None:
        raise HTTPException(404, "no such finding")
    record(request, Action.FINDINGS_READ.value, object_type="finding",
           object_id=str(finding_id), patient_ids=[sf.finding.patient_id])
    return render(request, "finding.html", sf=sf,
                  explanation=EXPLAIN.get(sf.finding.kind.value, ""),
                  can_resolve=allowed(principal.role, Action.FINDINGS_RESOLVE),
                  can_dups=allowed(principal.role, Action.DUPLICATES_READ))


@router.post("/findings/{finding_id}/resolve")
async def resolve(request: Request, finding_id: int,
                  _: Annotated[Principal, Depends(require(Action.FINDINGS_RESOLVE))],
                  resolution: Annotated[str, Form(max_length=16)],
                  note: Annotated[str, Form(max_length=500)] = "") -> Response:
    if resolution not in ("resolved", "ignored"):
        raise HTTPException(400, "resolution must be resolved or ignored")
    deps = get_deps(request)
    who = request.state.principal.name
    done = await run_in_threadpool(deps.views.findings.resolve, finding_id,
                                   Resolution(resolution), f"{resolution} by {who}: {note}"
                                   if note else f"{resolution} by {who}", deps.clock.now())
    if done is None:
        raise HTTPException(404, "no such finding")
    await run_in_threadpool(record, request, Action.FINDINGS_RESOLVE.value,
                            object_type="finding", object_id=str(finding_id),
                            patient_ids=[done.finding.patient_id],
                            detail={"resolution": resolution})
    return RedirectResponse(with_query(f"/findings/{finding_id}",
                                       flash=f"Finding {resolution}."), 303)


# --- duplicates --------------------------------------------------------------------------
@router.get("/duplicates", response_class=HTMLResponse)
def duplicates_page(request: Request,
                    _: Annotated[Principal, Depends(page(Action.DUPLICATES_READ))],
                    cursor: str = "") -> Response:
    try:
        found = get_deps(request).views.findings.duplicates(cursor=cursor or None, limit=100)
    except ValueError as exc:
        raise HTTPException(400, "invalid cursor") from exc
    record(request, Action.DUPLICATES_READ.value, object_type="duplicates",
           patient_ids=[p.id for pair in found.items for p in (pair.a, pair.b) if p],
           count=len(found.items))
    nxt = found.next_cursor
    return render(request, "duplicates.html", pairs=found.items,
                  next_url=with_query("/duplicates", cursor=nxt) if nxt else "")


def compare_rows(a: Patient, b: Patient) -> list[tuple[str, str, str, bool]]:
    """The side-by-side rows: field, A's value, B's value, whether they agree."""
    def ident(p: Patient) -> str:
        return ", ".join(f"{i.value}^^^{i.authority}" for i in p.identifiers)

    def fields(p: Patient) -> list[tuple[str, str]]:
        d = p.demographics
        return [("Family name", d.name.family), ("Given name", d.name.given),
                ("Middle name", d.name.middle),
                ("Birth date", d.birth_date.isoformat() if d.birth_date else ""),
                ("Sex", d.sex), ("Street", d.address.street), ("City", d.address.city),
                ("Postal code", d.address.postal_code), ("Phone", d.phone),
                ("National id", d.national_id), ("Mother's maiden name",
                                                 d.mothers_maiden_name),
                ("Identifiers (PID-3)", ident(p))]

    return [(label, va, vb, va.casefold().strip() == vb.casefold().strip())
            for (label, va), (_, vb) in zip(fields(a), fields(b), strict=True)]


@router.get("/duplicates/{finding_id}", response_class=HTMLResponse)
def duplicate_page(request: Request, finding_id: int,
                   principal: Annotated[Principal, Depends(page(Action.DUPLICATES_READ))]
                   ) -> Response:
    sf, a, b = _pair(request, finding_id)
    record(request, Action.DUPLICATES_READ.value, object_type="duplicate",
           object_id=str(finding_id), patient_ids=[a.id, b.id])
    return render(request, "duplicate.html", finding=sf.finding, finding_id=finding_id,
                  a=a, b=b, rows=compare_rows(a, b), score=float(sf.finding.score or 0.0),
                  open=sf.finding.resolution is Resolution.OPEN,
                  can_merge=allowed(principal.role, Action.PATIENTS_MERGE))


def _pair(request: Request, finding_id: int) -> tuple[StoredFinding, Patient, Patient]:
    pair = get_deps(request).views.findings.pair(finding_id)
    if pair is None:
        raise HTTPException(404, "no such duplicate pair")
    if pair.a is None or pair.b is None:
        raise HTTPException(404, "a patient of this pair no longer exists")
    return pair.finding, pair.a, pair.b


def merge_message(survivor: Patient, merged: Patient, control_id: str,
                  now: Any) -> bytes:
    """The ADT^A40 (PID survivor, MRG-1 the merged identifiers; IHE RAD-12) a console
    merge injects into ingest."""
    msg = build(PatientMerged(survivor, merged), Dialect(), control_id=control_id, now=now)
    assert msg is not None
    return msg.to_er7().encode("utf-8")


@router.post("/duplicates/{finding_id}/merge")
async def merge(request: Request, finding_id: int,
                principal: Annotated[Principal, Depends(require(Action.PATIENTS_MERGE))],
                survivor: Annotated[str, Form(max_length=1)]) -> Response:
    """Merge the pair: stored and applied as an A40 from Accord, sent downstream."""
    if survivor not in ("a", "b"):
        raise HTTPException(400, "survivor must be a or b")
    deps = get_deps(request)
    sf, a, b = await run_in_threadpool(_pair, request, finding_id)
    if sf.finding.resolution is not Resolution.OPEN:
        raise HTTPException(409, "this pair was already decided")
    if deps.inject is None:
        raise HTTPException(409, "merging is not available on this node")
    keep, gone = (a, b) if survivor == "a" else (b, a)
    payload = merge_message(keep, gone, deps.control_ids.next(), deps.clock.now())
    message_id = await deps.inject(payload, f"console:{principal.name}")
    stored = await run_in_threadpool(deps.store.get_message, message_id)
    ok = stored.status == "processed"
    if ok:
        await run_in_threadpool(deps.views.findings.resolve, finding_id,
                                Resolution.RESOLVED, f"merged by {principal.name}",
                                deps.clock.now())
    await run_in_threadpool(record, request, Action.PATIENTS_MERGE.value,
                            object_type="patient", object_id=keep.id,
                            patient_ids=[keep.id, gone.id],
                            outcome="ok" if ok else "failed",
                            detail={"merged": gone.id, "message_id": message_id})
    flash = "Merged; ADT^A40 queued downstream." if ok else "The merge was not applied."
    return RedirectResponse(with_query(f"/duplicates/{finding_id}", flash=flash,
                                       failed="" if ok else "1"), 303)


@router.post("/duplicates/{finding_id}/distinct")
async def not_duplicate(request: Request, finding_id: int,
                        principal: Annotated[Principal, Depends(require(Action.PATIENTS_MERGE))]
                        ) -> Response:
    deps = get_deps(request)
    _, a, b = await run_in_threadpool(_pair, request, finding_id)
    await run_in_threadpool(deps.views.findings.resolve, finding_id, Resolution.IGNORED,
                            f"not a duplicate ({principal.name})", deps.clock.now())
    await run_in_threadpool(record, request, Action.FINDINGS_RESOLVE.value,
                            object_type="duplicate", object_id=str(finding_id),
                            patient_ids=[a.id, b.id], detail={"resolution": "distinct"})
    return RedirectResponse(with_query(f"/duplicates/{finding_id}",
                                       flash="Marked as not a duplicate."), 303)


__all__ = ["compare_rows", "merge_message", "router"]
