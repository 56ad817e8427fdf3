"""The operator's pages: the message viewer (segments and fields by name, raw text, the
ACK sent, the deliveries it caused) and the error queue.

Rule: changes go through the engine, never around it: an inbound message is
reprocessed through ingest and an outbound row sent again through delivery
(``WebDeps.reprocess_message`` / ``reprocess_outbox``), each audited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from accord.errors import AccordError
from accord.hl7 import parse
from accord.hl7.spec import describe
from accord.store import InvalidStateError, NotFoundError
from accord.web.auth import Principal
from accord.web.console.render import page, render, with_query
from accord.web.deps import get_deps, record, require
from accord.web.permissions import Action, allowed

router = APIRouter(include_in_schema=False)
Operator = Annotated[Principal, Depends(require(Action.ERRORS_REPROCESS))]
DELIVERIES_SHOWN = 1000
PAGE = 100


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
                                        limit=DELIVERIES_SHOWN).items
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
        found = deps.store.error_queue(cursor=cursor or None, limit=PAGE)
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
