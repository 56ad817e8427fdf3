"""The operator's pages: what came in and what went out. The message search (every
message received, AR'd and unparseable input too), the message viewer (segments and
fields by name, the raw bytes, the ACK sent, the deliveries it caused), the outbound
list and one outbound message (to whom, its ACK, its attempts), the DICOM log (worklist
queries and MPPS by station) and the error queue.

Rules:
- A page reads what its API route reads (``accord.web.api``: ``search_messages``,
  ``list_deliveries``, the DICOM log view), with the same filters, so a list and its
  route, and the dashboard figure that links to it, agree.
- Changes go through the engine, never around it: an inbound message is reprocessed
  through ingest and an outbound row sent again through delivery
  (``WebDeps.reprocess_message`` / ``reprocess_outbox``), each audited.
- Raw bytes are shown as text in their character set, and as hexadecimal too when they
  are not text (unparseable input); they can be downloaded exactly as received.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from accord.errors import AccordError
from accord.hl7 import ack_code_in, parse
from accord.hl7.spec import describe
from accord.store import InvalidStateError, NotFoundError, OutboxRow, StoredMessage
from accord.store.workflow.dicom_events import KINDS as DICOM_KINDS
from accord.web.api import iso_time, list_deliveries, search_messages
from accord.web.auth import Principal
from accord.web.console.render import page, render, with_query
from accord.web.deps import WebDeps, get_deps, record, require
from accord.web.permissions import Action
from accord.workflow.model import Patient

router = APIRouter(include_in_schema=False)
Operator = Annotated[Principal, Depends(require(Action.ERRORS_REPROCESS))]
Reader = Annotated[Principal, Depends(page(Action.MESSAGES_READ))]
DELIVERIES_SHOWN = 1000
PAGE = 100
HEX_SHOWN = 4096  # bytes of a hex dump on the page (the download has them all)
MESSAGE_FILTERS = ("control_id", "sender", "type", "ack", "status", "patient", "accession",
                   "since", "until")


def _text(data: bytes | None, charset: str) -> str:
    if not data:
        return ""
    try:
        text = data.decode(charset or "utf-8")
    except (LookupError, UnicodeDecodeError):
        text = data.decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _printable(data: bytes) -> bool:
    """Whether bytes read as text (HL7 is text; junk on the port often is not)."""
    sample = data[:HEX_SHOWN]
    return not any(b < 0x09 or 0x0E <= b < 0x20 for b in sample if b not in (0x0B, 0x1C))


def hex_dump(data: bytes) -> str:
    """Offset, 16 bytes in hexadecimal, and their printable characters, per line."""
    lines = []
    for at in range(0, min(len(data), HEX_SHOWN), 16):
        chunk = data[at:at + 16]
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{at:08x}  {chunk.hex(' '):<47}  {text}")
    return "\n".join(lines)


def patients_of(deps: WebDeps, messages: Iterable[StoredMessage]
                ) -> dict[int, list[Patient]]:
    """The stored patients each message names (by its PID-3 values)."""
    messages = list(messages)
    values = {v for m in messages for v in m.patient_ids}
    ids = deps.views.patients.ids_naming(values)
    people = deps.views.patients.by_id(ids)
    holders: dict[str, set[str]] = {}
    for p in people.values():
        for i in p.identifiers:
            holders.setdefault(i.value, set()).add(p.id)
    return {m.id: [people[pid] for pid in sorted({h for v in m.patient_ids
                                                  for h in holders.get(v, ())})]
            for m in messages}


def patients_by_key(deps: WebDeps, keys: Iterable[str]) -> dict[str, Patient]:
    """The stored patient of each outbox ``patient_key`` (``CX-1^^^CX-4``, or CX-1)."""
    wanted = {k for k in keys if k}
    people = deps.views.patients.by_id(deps.views.patients.ids_naming(
        k.partition("^^^")[0] for k in wanted))
    found: dict[str, Patient] = {}
    for p in people.values():
        for i in p.identifiers:
            for key in (f"{i.value}^^^{i.authority}", i.value):
                if key in wanted and p.merged_into is None:
                    found.setdefault(key, p)
    return found


def _pid5(m: StoredMessage) -> str:
    """The name a message carries (PID-5), for one whose patient is not on file."""
    try:
        msg = parse(m.raw)
    except AccordError:
        return ""
    family, given = msg.get("PID-5.1"), msg.get("PID-5.2")
    return f"{family}, {given}" if given else family


# --- messages received -------------------------------------------------------------------
@router.get("/messages", response_class=HTMLResponse)
def messages_page(request: Request, _: Reader, control_id: str = "", sender: str = "",
                  type: str = "", ack: str = "", status: str = "", patient: str = "",
                  accession: str = "", since: str = "", until: str = "",
                  cursor: str = "") -> Response:
    """Every message received, newest first: by MSH-10, sender, type, ACK code, status,
    patient (PID-3), accession and receive time."""
    deps = get_deps(request)
    form = {"control_id": control_id.strip()[:199], "sender": sender.strip()[:460],
            "type": type.strip()[:64], "ack": ack.strip()[:2], "status": status[:64],
            "patient": patient.strip()[:199], "accession": accession.strip()[:199],
            "since": since.strip()[:40], "until": until.strip()[:40]}
    found = search_messages(deps, cursor=cursor or None, limit=PAGE, **form)
    people = patients_of(deps, found.items)
    orders = deps.views.orders.by_accession(a for m in found.items for a in m.accessions)
    record(request, Action.MESSAGES_READ.value, object_type="message_search",
           count=len(found.items),
           patient_ids=[p.id for ps in people.values() for p in ps],
           detail={"filters": sorted(k for k, v in form.items() if v)})
    nxt = found.next_cursor
    return render(request, "messages.html", rows=found.items, people=people, orders=orders,
                  form=form, next_url=with_query("/messages", **form, cursor=nxt)
                  if nxt else "")


@router.get("/messages/{message_id}", response_class=HTMLResponse)
def message_page(request: Request, message_id: int, principal: Reader) -> Response:
    """Segments and fields with names and paths, decoded; raw bytes; ACK; deliveries."""
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
    people = patients_of(deps, [m])[m.id]
    record(request, Action.MESSAGES_READ.value, object_type="message", object_id=str(m.id),
           patient_ids=[p.id for p in people])
    text = _printable(m.raw)
    return render(request, "message.html", m=m, parsed=parsed, raw=_text(m.raw, m.charset),
                  hex=hex_dump(m.raw) if not text or m.parse_error else "",
                  ack=_text(m.ack, ""), deliveries=deliveries, people=people,
                  orders=deps.views.orders.by_accession(m.accessions),
                  acks={d.id: ack_code_in(d.last_ack) for d in deliveries},
                  can_reprocess=deps.may(principal.role, Action.ERRORS_REPROCESS))


@router.get("/messages/{message_id}/raw")
def message_raw(request: Request, message_id: int, _: Reader) -> Response:
    """The bytes exactly as received (a download)."""
    deps = get_deps(request)
    try:
        m = deps.store.get_message(message_id)
    except NotFoundError as exc:
        raise HTTPException(404, "no such message") from exc
    record(request, Action.MESSAGES_READ.value, object_type="message", object_id=str(m.id),
           detail={"raw": True})
    return Response(m.raw, media_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="message-{m.id}.hl7"'})


# --- messages sent -----------------------------------------------------------------------
@router.get("/deliveries", response_class=HTMLResponse)
def deliveries_page(request: Request, _: Reader, destination: str = "", status: str = "",
                    accession: str = "", delivered_since: str = "",
                    delivered_until: str = "", current: str = "",
                    cursor: str = "") -> Response:
    """What was sent (or waits to be sent) downstream, newest first."""
    deps = get_deps(request)
    form = {"destination": destination.strip()[:64], "status": status[:64],
            "accession": accession.strip()[:199],
            "delivered_since": delivered_since.strip()[:40],
            "delivered_until": delivered_until.strip()[:40],
            "current": "1" if current else ""}
    found = list_deliveries(deps, destination=form["destination"], status=form["status"],
                            accession=form["accession"],
                            delivered_since=form["delivered_since"],
                            delivered_until=form["delivered_until"],
                            current=bool(current), cursor=cursor or None, limit=PAGE)
    orders = deps.views.orders.by_accession(r.accession for r in found.items)
    people = patients_by_key(deps, (r.patient_key for r in found.items))
    record(request, Action.MESSAGES_READ.value, object_type="delivery_search",
           count=len(found.items),
           patient_ids=[o.order.patient_id for o in orders.values()]
           + [p.id for p in people.values()],
           detail={"filters": sorted(k for k, v in form.items() if v)})
    nxt = found.next_cursor
    return render(request, "deliveries.html", rows=found.items, orders=orders, form=form,
                  people=people,
                  acks={r.id: ack_code_in(r.last_ack) for r in found.items},
                  destinations=[d.name for d in getattr(deps.config, "destinations", ())],
                  next_url=with_query("/deliveries", **form, cursor=nxt) if nxt else "")


@router.get("/deliveries/{row_id}", response_class=HTMLResponse)
def delivery_page(request: Request, row_id: int, principal: Reader) -> Response:
    """One outbound message: to whom, the message as sent, its ACK, its attempts."""
    deps = get_deps(request)
    try:
        row: OutboxRow = deps.store.get_outbox(row_id)
    except NotFoundError as exc:
        raise HTTPException(404, "no such delivery") from exc
    order = deps.views.orders.by_accession([row.accession]).get(row.accession)
    record(request, Action.MESSAGES_READ.value, object_type="delivery",
           object_id=str(row_id), patient_ids=[order.order.patient_id] if order else [])
    parsed: dict[str, Any] | None
    try:
        parsed = describe(parse(row.payload))
    except AccordError:
        parsed = None
    return render(request, "delivery.html", d=row, order=order, parsed=parsed,
                  payload=_text(row.payload, ""), ack=_text(row.last_ack, ""),
                  ack_code=ack_code_in(row.last_ack),
                  can_reprocess=deps.may(principal.role, Action.ERRORS_REPROCESS))


@router.post("/deliveries/{row_id}/resend")
async def resend(request: Request, row_id: int, _: Operator) -> Response:
    """Send an outbound row again (same payload and MSH-10, a new row)."""
    deps = get_deps(request)
    try:
        row = await run_in_threadpool(deps.store.get_outbox, row_id)
    except NotFoundError as exc:
        raise HTTPException(404, "no such delivery") from exc
    ok = await _reprocess(request, "outbox", row_id)
    target = f"/messages/{row.source_message_id}" if row.source_message_id else \
        f"/deliveries/{row_id}"
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


# --- the DICOM log -------------------------------------------------------------------------
@router.get("/dicom", response_class=HTMLResponse)
def dicom_page(request: Request, _: Reader, station: str = "", kind: str = "",
               accession: str = "", since: str = "", until: str = "",
               cursor: str = "") -> Response:
    """Each worklist query and MPPS the DICOM side answered, by station, newest first."""
    deps = get_deps(request)
    form = {"station": station.strip()[:16], "kind": kind[:8],
            "accession": accession.strip()[:199], "since": since.strip()[:40],
            "until": until.strip()[:40]}
    if form["kind"] and form["kind"] not in DICOM_KINDS:
        raise HTTPException(400, "kind must be find or mpps")
    try:
        found = deps.views.dicom.list(
            station=form["station"] or None, kind=form["kind"] or None,
            accession=form["accession"] or None, since=iso_time(form["since"], "since"),
            until=iso_time(form["until"], "until"), cursor=cursor or None, limit=PAGE)
    except ValueError as exc:
        raise HTTPException(400, "invalid cursor") from exc
    orders = deps.views.orders.by_accession(e.accession for e in found.items)
    record(request, Action.MESSAGES_READ.value, object_type="dicom_log",
           count=len(found.items),
           patient_ids=[o.order.patient_id for o in orders.values()],
           detail={"filters": sorted(k for k, v in form.items() if v)})
    nxt = found.next_cursor
    return render(request, "dicom.html", rows=found.items, orders=orders, form=form,
                  next_url=with_query("/dicom", **form, cursor=nxt) if nxt else "")


# --- error queue -------------------------------------------------------------------------
@router.get("/errors", response_class=HTMLResponse)
def errors_page(request: Request, _: Annotated[Principal, Depends(page(Action.ERRORS_READ))],
                cursor: str = "") -> Response:
    """Inbound messages answered AE and outbound rows that failed for good, each with
    its patient and order (AR'd input is not reprocessable: the message search has it)."""
    deps = get_deps(request)
    try:
        found = deps.store.error_queue(cursor=cursor or None, limit=PAGE)
    except ValueError as exc:
        raise HTTPException(400, "invalid cursor") from exc
    inbound = [e.message for e in found.items if e.message is not None]
    people = patients_of(deps, inbound)
    accessions = [a for m in inbound for a in m.accessions]
    accessions += [e.outbox.accession for e in found.items if e.outbox is not None]
    orders = deps.views.orders.by_accession(accessions)
    named = {m.id: _pid5(m) for m in inbound if not people.get(m.id)}
    record(request, Action.ERRORS_READ.value, object_type="error_queue",
           count=len(found.items),
           patient_ids=[p.id for ps in people.values() for p in ps]
           + [o.order.patient_id for o in orders.values()])
    nxt = found.next_cursor
    return render(request, "errors.html", entries=found.items, people=people, orders=orders,
                  named=named,
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
