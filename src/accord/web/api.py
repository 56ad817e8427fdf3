"""The JSON API, engine side: health, stats, the dashboard's figures, messages received
and sent, the DICOM log, the error queue, metrics (the interface is described in
docs/interface.md). Patients, orders, the worklist and findings are in
``api_workflow``; accounts, audit and configuration in ``api_admin``.

Rules: every route but ``/api/health`` requires a principal and declares its action
(``require``); lists answer ``{"items": [...], "next": CURSOR_OR_NULL}`` with
``cursor=`` and ``limit=`` (1..1000); a bad cursor or filter is a 400, an unknown id a
404, an action that does not apply in the record's state a 409. Views of patient data
and every change are audited before the answer goes out.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from accord.store import (
    MESSAGE_STATUSES,
    OUTBOX_STATUSES,
    InvalidStateError,
    NotFoundError,
    OutboxRow,
    Page,
    StoredMessage,
)
from accord.store.workflow.dicom_events import KINDS as DICOM_KINDS
from accord.web import api_json as js
from accord.web import figures
from accord.web.auth import Principal
from accord.web.deps import WebDeps, get_deps, record, require
from accord.web.permissions import Action

router = APIRouter()
Deps = Annotated[WebDeps, Depends(get_deps)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[str | None, Query(max_length=512)]


def who(action: Action) -> Any:
    """The dependency of a route that takes ``action``."""
    return Depends(require(action))


def bad_request(exc: Exception) -> HTTPException:
    return HTTPException(400, str(exc))


@router.get("/api/health", tags=["engine"])
def health(deps: Deps) -> JSONResponse:
    """200 ``{"status": "ok", ...}`` once every listener is up (no authentication).

    ``storage_faults`` lists each component (ingest, apply, delivery, jobs, mpps) whose
    last commit failed: since when, the last failure, how many, the driver's error class
    and first line. While any is listed the status is ``degraded``, still 200: the
    engine is up and recovers by itself when its commits succeed again."""
    listeners = deps.ready()
    store_ok = deps.store.ping()
    up = store_ok and all(listeners.values())
    faults = [{"component": f.component, "since": f.since.isoformat(),
               "last": f.at.isoformat(), "failures": f.failures,
               "error_class": f.error_class, "error": f.error}
              for f in deps.storage_faults()]
    status = ("degraded" if faults else "ok") if up else "starting"
    body = {"status": status, "listeners": listeners, "store": store_ok,
            "storage_faults": faults, "node": deps.node_id}
    return JSONResponse(body, status_code=200 if up else 503)


@router.get("/api/stats", tags=["engine"])
def stats(deps: Deps, principal: Annotated[Principal, who(Action.STATS_READ)]) -> dict[str, Any]:
    """Whole-store counts: messages, errors, outbox, patients, orders, open findings; the
    backlog of messages stored and not yet applied, and the age of the oldest in seconds;
    the store's size in bytes and its average growth per day (the last two weeks)."""
    return figures.whole_store(deps)


@router.get("/api/dashboard", tags=["engine"])
def dashboard(request: Request, principal: Annotated[Principal, who(Action.STATS_READ)]
              ) -> dict[str, Any]:
    """The dashboard's figures, as the console shows them: HL7 in per interface and out
    per destination, DICOM per station, today's orders by modality and status, open
    findings by kind. Each is the size of the list that ``/api/messages``,
    ``/api/deliveries``, ``/api/dicom``, ``/api/orders`` or ``/api/findings`` answers
    with the same filters and the window's ``since`` and ``until``."""
    dash, window = figures.dashboard(request)
    return js.dashboard_json(dash, window)


@router.get("/api/alerts", tags=["engine"])
def alerts(request: Request, principal: Annotated[Principal, who(Action.STATS_READ)]
           ) -> dict[str, Any]:
    """The open alerts, oldest first, as the dashboard shows them: ``key`` (rule and
    subject), ``rule``, ``subject`` (destination, sender, finding kind, or the component
    whose commits fail for ``storage_fault``), ``summary`` (what happened, in words, no
    patient data), ``severity`` and ``since``. Empty when the alert monitor does not
    run."""
    monitor = getattr(request.app.state, "alerts", None)
    open_alerts = monitor.open_alerts() if monitor is not None else []
    items = [{"key": a.condition.key, "rule": a.condition.rule,
              "subject": a.condition.subject, "summary": a.condition.summary,
              "severity": a.condition.severity, "since": a.since.isoformat()}
             for a in open_alerts]
    return {"items": items, "next": None}


@router.get("/api/peers", tags=["engine"])
def peers(deps: Deps, principal: Annotated[Principal, who(Action.STATS_READ)]) -> dict[str, Any]:
    """This node's client addresses per listener (``mllp``, ``dicom``) and what each did:
    ``open``, ``messages`` (DICOM: associations), ``denied`` (allow-lists), ``refused``
    (limits), ``shed``, ``junk``, ``silent`` (no message within the grace; DICOM:
    released idle), ``tls_failed``; ``last_seen`` is dropped (a monotonic clock)."""
    items = [{k: v for k, v in row.items() if k != "last_seen"} for row in deps.peers()]
    return {"items": items, "next": None}


@router.get("/metrics", tags=["engine"], response_class=Response)
def metrics(deps: Deps, principal: Annotated[Principal, who(Action.METRICS_READ)]) -> Response:
    """Prometheus text format (counters and latency histograms per interface and
    destination; queue depth per destination)."""
    if deps.metrics is None:
        raise HTTPException(404, "metrics are not enabled")
    return Response(generate_latest(deps.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def iso_time(value: str | None, name: str) -> datetime | None:
    """A query parameter as an aware time (400 when it is not ISO 8601 with a zone)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise HTTPException(400, f"{name}: not an ISO 8601 time") from exc
    if parsed.utcoffset() is None:
        raise HTTPException(400, f"{name}: give a time zone (e.g. Z or +00:00)")
    return parsed


def statuses(value: str | None, known: Collection[str]) -> tuple[Any, ...] | None:
    """A ``status`` filter: one status or several, comma-separated (400 when unknown)."""
    if not value:
        return None
    wanted = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    unknown = [v for v in wanted if v not in known]
    if unknown or not wanted:
        raise HTTPException(400, f"status must be among {', '.join(sorted(known))}")
    return wanted


ACK_CODES = frozenset({"AA", "AE", "AR", "CA", "CE", "CR"})


def search_messages(deps: WebDeps, *, control_id: str | None, type: str | None,
                    sender: str | None, patient: str | None, accession: str | None,
                    status: str | None, ack: str | None, since: str | None,
                    until: str | None, cursor: str | None, limit: int) -> Page[StoredMessage]:
    """The message search of the page and the route (``cursor``: the store's); 400 on a
    bad filter."""
    if ack and ack.upper() not in ACK_CODES:
        raise HTTPException(400, f"ack must be one of {', '.join(sorted(ACK_CODES))}")
    try:
        return deps.store.search_messages(
            control_id=control_id or None, message_type=type or None, sender=sender or None,
            patient_id=patient or None, accession=accession or None,
            status=statuses(status, MESSAGE_STATUSES), ack_code=ack.upper() if ack else None,
            since=iso_time(since, "since"), until=iso_time(until, "until"),
            cursor=cursor, limit=limit)
    except ValueError as exc:
        raise bad_request(exc) from exc


@router.get("/api/messages", tags=["messages"])
def list_messages(
    request: Request, deps: Deps, principal: Annotated[Principal, who(Action.MESSAGES_READ)],
    limit: Limit = 100, cursor: Cursor = None, status: str | None = None,
    control_id: str | None = None, type: str | None = None, sender: str | None = None,
    patient: str | None = None, accession: str | None = None, since: str | None = None,
    until: str | None = None, ack: str | None = None,
) -> dict[str, Any]:
    """Stored messages, newest first (filters: status (one, or several comma-separated),
    control_id (MSH-10), type, sender (``MSH-3^MSH-4``, ``MSH-3``, or ``-`` for input
    without an MSH-3), patient (PID-3 value), accession, ack (the ACK code sent),
    since/until on the receive time)."""
    try:
        store_cursor = js.decode_cursor(cursor)
    except ValueError as exc:
        raise bad_request(exc) from exc
    found = search_messages(deps, control_id=control_id, type=type, sender=sender,
                            patient=patient, accession=accession, status=status, ack=ack,
                            since=since, until=until, cursor=store_cursor, limit=limit)
    ids = [m.id for m in found.items]
    record(request, "messages.list", object_type="message", count=len(ids),
           patient_ids=deps.views.patients.ids_naming(
               {p for m in found.items for p in m.patient_ids}),
           detail={"ids": ids[:1000], "filters": _filters(request)})
    return js.page([js.message_summary(m) for m in found.items], found.next_cursor)


def list_deliveries(deps: WebDeps, *, destination: str | None, status: str | None,
                    accession: str | None, delivered_since: str | None,
                    delivered_until: str | None, current: bool, cursor: str | None,
                    limit: int) -> Page[OutboxRow]:
    """The outbound list of the page and the route: rows queued for downstream systems,
    newest first (``current``: not superseded by a resend); 400 on a bad filter."""
    try:
        return deps.store.list_outbox(
            destination=destination or None, status=statuses(status, OUTBOX_STATUSES),
            accession=accession or None,
            delivered_since=iso_time(delivered_since, "delivered_since"),
            delivered_until=iso_time(delivered_until, "delivered_until"),
            current=current, cursor=cursor, limit=limit)
    except ValueError as exc:
        raise bad_request(exc) from exc


@router.get("/api/deliveries", tags=["messages"])
def deliveries(
    request: Request, deps: Deps, principal: Annotated[Principal, who(Action.MESSAGES_READ)],
    limit: Limit = 100, cursor: Cursor = None, destination: str | None = None,
    status: str | None = None, accession: str | None = None,
    delivered_since: str | None = None, delivered_until: str | None = None,
    current: bool = False,
) -> dict[str, Any]:
    """Messages sent (or to send) downstream, newest first (filters: destination, status
    (one or several comma-separated), accession (the order a row is about),
    delivered_since/delivered_until, current (not superseded by a resend))."""
    try:
        store_cursor = js.decode_cursor(cursor)
    except ValueError as exc:
        raise bad_request(exc) from exc
    found = list_deliveries(deps, destination=destination, status=status,
                            accession=accession, delivered_since=delivered_since,
                            delivered_until=delivered_until, current=current,
                            cursor=store_cursor, limit=limit)
    record(request, "deliveries.list", object_type="outbox", count=len(found.items),
           detail={"filters": _filters(request)})
    return js.page([js.outbox_json(r) for r in found.items], found.next_cursor)


@router.get("/api/deliveries/{row_id}", tags=["messages"])
def delivery(request: Request, row_id: int, deps: Deps,
             principal: Annotated[Principal, who(Action.MESSAGES_READ)]) -> dict[str, Any]:
    """One outbound row: its message as sent, the ACK received, its attempts."""
    try:
        row = deps.store.get_outbox(row_id)
    except NotFoundError:
        raise HTTPException(404, f"no delivery {row_id}") from None
    record(request, "deliveries.view", object_type="outbox", object_id=str(row_id))
    return {**js.outbox_json(row), "payload": row.payload.decode("utf-8", "replace"),
            "ack": (row.last_ack or b"").decode("utf-8", "replace")}


@router.get("/api/dicom", tags=["messages"])
def dicom_log(
    request: Request, deps: Deps, principal: Annotated[Principal, who(Action.MESSAGES_READ)],
    limit: Limit = 100, cursor: Cursor = None, station: str | None = None,
    kind: str | None = None, accession: str | None = None, since: str | None = None,
    until: str | None = None,
) -> dict[str, Any]:
    """The DICOM log: each worklist query (``find``) and MPPS (``mpps``) the SCP
    answered, newest first (filters: station (calling AE title), kind, accession,
    since/until)."""
    if kind is not None and kind not in DICOM_KINDS:
        raise HTTPException(400, f"kind must be one of {', '.join(DICOM_KINDS)}")
    try:
        found = deps.views.dicom.list(station=station, kind=kind, accession=accession,
                                      since=iso_time(since, "since"),
                                      until=iso_time(until, "until"),
                                      cursor=js.decode_cursor(cursor), limit=limit)
    except ValueError as exc:
        raise bad_request(exc) from exc
    record(request, "dicom.list", object_type="dicom_event", count=len(found.items),
           detail={"filters": _filters(request)})
    return js.page([js.dicom_event_json(e) for e in found.items], found.next_cursor)


def _filters(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if k not in ("cursor", "limit")}


@router.get("/api/messages/{message_id}", tags=["messages"])
def get_message(request: Request, message_id: int, deps: Deps,
                principal: Annotated[Principal, who(Action.MESSAGES_READ)]) -> dict[str, Any]:
    """One message: raw text, parsed fields with names, outcome, ACK, deliveries."""
    try:
        m = deps.store.get_message(message_id)
    except NotFoundError:
        record(request, "messages.view", object_type="message", object_id=str(message_id),
               outcome="not_found")
        raise HTTPException(404, f"no message {message_id}") from None
    deliveries = deps.store.list_outbox(source_message_id=m.id, oldest_first=True,
                                        limit=1000).items
    patients = deps.views.patients.ids_naming(m.patient_ids)
    record(request, "messages.view", object_type="message", object_id=str(m.id),
           patient_ids=patients)
    return js.message_json(m, deliveries)


@router.get("/api/errors", tags=["errors"])
def list_errors(request: Request, deps: Deps,
                principal: Annotated[Principal, who(Action.ERRORS_READ)],
                limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    """The error queue: inbound messages answered AE/AR and outbox rows failed for good,
    newest first. Ids are ``m<message id>`` or ``o<outbox row id>``."""
    try:
        found = deps.store.error_queue(cursor=js.decode_cursor(cursor), limit=limit)
    except ValueError as exc:
        raise bad_request(exc) from exc
    ids = [js.error_id(e) for e in found.items]
    record(request, "errors.list", object_type="error", count=len(ids), detail={"ids": ids})
    return js.page([js.error_json(e) for e in found.items], found.next_cursor)


class ReprocessMany(BaseModel):
    ids: list[str] = Field(min_length=1, max_length=1000)


async def _reprocess(request: Request, deps: WebDeps, error_id: str) -> dict[str, Any]:
    kind, number = _error_ref(error_id)
    action = deps.reprocess_message if kind == "m" else deps.reprocess_outbox
    if action is None:
        raise HTTPException(503, "reprocessing needs the running engine")
    try:
        new_id = await action(number)
    except NotFoundError:
        outcome, status = "not_found", 404
    except InvalidStateError as exc:
        outcome, status, reason = "invalid_state", 409, str(exc)
    else:
        result: dict[str, Any] = {"id": error_id, "new_id": new_id}
        if kind == "m":
            new = deps.store.get_message(new_id)
            result.update(status=new.status, ack_code=new.ack_code)
        await _audit_async(request, "errors.reprocess", object_type="error",
                           object_id=error_id, detail={"new_id": new_id})
        return result
    await _audit_async(request, "errors.reprocess", object_type="error", object_id=error_id,
                       outcome=outcome)
    raise HTTPException(status, reason if status == 409 else f"no error {error_id}")


async def _audit_async(request: Request, action: str, **fields: Any) -> None:
    from starlette.concurrency import run_in_threadpool

    await run_in_threadpool(lambda: record(request, action, **fields))


def _error_ref(error_id: str) -> tuple[str, int]:
    kind, number = (error_id[0], error_id[1:]) if error_id[:1] in ("m", "o") else ("m",
                                                                                     error_id)
    if not number.isdigit():
        raise HTTPException(400, "error ids are m<message id>, o<outbox id> or a message id")
    return kind, int(number)


@router.post("/api/errors/{error_id}/reprocess", tags=["errors"])
async def reprocess(request: Request, error_id: str, deps: Deps,
                    principal: Annotated[Principal, who(Action.ERRORS_REPROCESS)]
                   ) -> dict[str, Any]:
    """Reprocess one error-queue entry: an inbound message runs through processing
    again (a new message, ``reprocess_of`` the original); an outbox row is sent again."""
    return await _reprocess(request, deps, error_id)


@router.post("/api/errors/reprocess", tags=["errors"])
async def reprocess_many(request: Request, body: ReprocessMany, deps: Deps,
                         principal: Annotated[Principal, who(Action.ERRORS_REPROCESS)]
                        ) -> dict[str, Any]:
    """Reprocess several entries; each answers on its own (``ok`` or ``error``)."""
    results: list[dict[str, Any]] = []
    for error_id in body.ids:
        try:
            results.append({"ok": True, **await _reprocess(request, deps, error_id)})
        except HTTPException as exc:
            results.append({"ok": False, "id": error_id, "error": exc.detail})
    return {"items": results, "next": None}
