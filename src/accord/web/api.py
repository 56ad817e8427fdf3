"""The JSON API, engine side: health, stats, messages, the error queue, metrics (the
interface is described in docs/interface.md). Patients, orders, the worklist and
findings are in ``api_workflow``; accounts, audit and configuration in ``api_admin``.

Rules: every route but ``/api/health`` requires a principal and declares its action
(``require``); lists answer ``{"items": [...], "next": CURSOR_OR_NULL}`` with
``cursor=`` and ``limit=`` (1..1000); a bad cursor or filter is a 400, an unknown id a
404, an action that does not apply in the record's state a 409. Views of patient data
and every change are audited before the answer goes out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from accord.store import MESSAGE_STATUSES, InvalidStateError, NotFoundError
from accord.web import api_json as js
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
    """200 ``{"status": "ok", ...}`` once every listener is up (no authentication)."""
    listeners = deps.ready()
    store_ok = deps.store.ping()
    up = store_ok and all(listeners.values())
    body = {"status": "ok" if up else "starting", "listeners": listeners,
            "store": store_ok, "node": deps.node_id}
    return JSONResponse(body, status_code=200 if up else 503)


@router.get("/api/stats", tags=["engine"])
def stats(deps: Deps, principal: Annotated[Principal, who(Action.STATS_READ)]) -> dict[str, Any]:
    """Whole-store counts: messages, errors, outbox, patients, orders, open findings; the
    store's size in bytes and its average growth per day (the last two weeks)."""
    counts: dict[str, Any] = dict(deps.store.stats())
    counts.update(deps.views.dashboard.counts())
    size = deps.views.storage.size()
    counts.update(store_bytes=size.bytes, store_growth_per_day=size.growth_per_day)
    return counts


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


@router.get("/api/messages", tags=["messages"])
def list_messages(
    request: Request, deps: Deps, principal: Annotated[Principal, who(Action.MESSAGES_READ)],
    limit: Limit = 100, cursor: Cursor = None, status: str | None = None,
    control_id: str | None = None, type: str | None = None, sender: str | None = None,
    patient: str | None = None, accession: str | None = None, since: str | None = None,
    until: str | None = None,
) -> dict[str, Any]:
    """Stored messages, newest first (filters: status, control_id, type, sender,
    patient (PID-3 value), accession, since/until on the receive time)."""
    if status is not None and status not in MESSAGE_STATUSES:
        raise HTTPException(400, f"status must be one of {', '.join(sorted(MESSAGE_STATUSES))}")
    try:
        found = deps.store.search_messages(
            control_id=control_id, message_type=type, sender=sender, patient_id=patient,
            accession=accession, status=status,  # type: ignore[arg-type]
            since=iso_time(since, "since"), until=iso_time(until, "until"),
            cursor=js.decode_cursor(cursor), limit=limit)
    except ValueError as exc:
        raise bad_request(exc) from exc
    ids = [m.id for m in found.items]
    record(request, "messages.list", object_type="message", count=len(ids),
           detail={"ids": ids[:1000], "filters": _filters(request)})
    return js.page([js.message_summary(m) for m in found.items], found.next_cursor)


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
