"""The console: server-rendered pages (Jinja2 + htmx served locally, no CDN).

Rules (issue 6, "Pages" and "Security"):
- Every page checks its action on the server (:func:`page`, built on
  ``accord.web.deps.require``); a page without a session redirects to ``/login``.
- Every view of patient data is audited before it is rendered (``accord.web.audit``),
  with Accord's patient ids, never field values.
- Every form carries the session's CSRF token (``csrf_token`` field; htmx requests send
  the ``X-CSRF-Token`` header from ``<body hx-headers>``); ``current_user`` checks it.
- Lists are keyset-paginated and every query is indexed (``accord.store.sql_console``),
  so pages stay fast on a million orders.
- Nothing here logs patient data: errors are answered with generic text.

:func:`install` adds the pages to an app; ``console_ops`` holds the operator pages
(messages, error queue, findings, duplicates, mappings, audit).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from accord.errors import ConfigError
from accord.store.views.orders import OrderQuery
from accord.web.alerts import AlertMonitor, AlertSettings
from accord.web.auth import Principal
from accord.web.deps import WebDeps, authenticate, csrf_token, get_deps, record, require
from accord.web.permissions import Action, allowed
from accord.workflow.status import Status
from accord.workflow.trace import explain

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)

NAV: tuple[tuple[str, str, Action], ...] = (
    ("/", "Dashboard", Action.STATS_READ),
    ("/worklist", "Worklist", Action.WORKLIST_READ),
    ("/orders", "Orders", Action.ORDERS_READ),
    ("/errors", "Error queue", Action.ERRORS_READ),
    ("/findings", "Findings", Action.FINDINGS_READ),
    ("/duplicates", "Duplicates", Action.DUPLICATES_READ),
    ("/mappings", "Mappings", Action.CONFIG_READ),
    ("/audit", "Audit log", Action.AUDIT_READ),
)
DASHBOARD_WINDOW = timedelta(hours=1)
REFRESH_SECONDS = 5
WORKLIST_PAGE = 50  # a station's day fits in one or two pages
ORDERS_PAGE = 50
MESSAGES_SHOWN = 200  # on an order page


class LoginRedirect(Exception):
    """A page was asked for without a session: go to the login page, then come back."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def page(action: Action) -> Callable[..., Principal]:
    """Dependency for a GET page: the principal allowed to take ``action``; no session
    redirects to the login page, a session without the role gets 403 (audited)."""
    check = require(action)

    def gate(request: Request) -> Principal:
        principal = authenticate(request)
        if principal is None:
            raise LoginRedirect(request.url.path + (f"?{request.url.query}"
                                                    if request.url.query else ""))
        request.state.principal = principal
        return check(request, principal)

    gate.__name__ = f"page_{action.name.lower()}"
    return gate


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A template with the shared context: user, navigation, CSRF token, flash."""
    principal: Principal | None = getattr(request.state, "principal", None)
    nav = [(h, label, a) for h, label, a in NAV
           if principal is not None and allowed(principal.role, a)]
    context.setdefault("flash", request.query_params.get("flash", "")[:200])
    context.setdefault("flash_kind", "err" if request.query_params.get("failed") else "ok")
    base = {"user": principal, "nav": nav, "csrf": csrf_token(request) if principal else "",
            "active": "/" + request.url.path.strip("/").split("/")[0]
            if request.url.path != "/" else "/"}
    # Cache-Control: no-store comes from the app's guard (accord.web.app) on every page.
    return templates.TemplateResponse(request, name, {**base, **context},
                                      status_code=status)


def with_query(path: str, **params: Any) -> str:
    """``path?params`` with empty values dropped."""
    kept = {k: v for k, v in params.items() if v not in ("", None)}
    return f"{path}?{urlencode(kept)}" if kept else path


# --- dashboard ---------------------------------------------------------------------------
def _dashboard_context(request: Request) -> dict[str, Any]:
    deps = get_deps(request)
    monitor: AlertMonitor | None = getattr(request.app.state, "alerts", None)
    if monitor is not None:  # read by the monitor's loop, shared by every viewer
        dash = monitor.snapshot(timedelta(seconds=3 * monitor.settings.interval))
    else:
        names = [d.name for d in getattr(deps.config, "destinations", ())]
        dash = deps.views.dashboard.figures(deps.clock.now(), DASHBOARD_WINDOW, names)
    principal: Principal = request.state.principal
    window = monitor.settings.window_minutes if monitor else DASHBOARD_WINDOW.total_seconds() / 60
    return {"dash": dash, "alerts": monitor.open_alerts() if monitor else [],
            "window_minutes": int(window),
            "refresh": REFRESH_SECONDS,
            "can_findings": allowed(principal.role, Action.FINDINGS_READ)}


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    """The dashboard; an auditor lands on the audit log, a visitor on the login page."""
    principal = authenticate(request)
    if principal is None:
        return RedirectResponse("/login", 303)
    if not allowed(principal.role, Action.STATS_READ) and allowed(principal.role,
                                                                  Action.AUDIT_READ):
        return RedirectResponse("/audit", 303)
    request.state.principal = require(Action.STATS_READ)(request, principal)
    return render(request, "dashboard.html", **_dashboard_context(request))


@router.get("/dashboard/live", response_class=HTMLResponse)
def dashboard_live(request: Request,
                   _: Annotated[Principal, Depends(page(Action.STATS_READ))]) -> Response:
    """The dashboard's body alone, for htmx polling."""
    return render(request, "_dashboard.html", **_dashboard_context(request))


# --- orders ------------------------------------------------------------------------------
@router.get("/orders", response_class=HTMLResponse)
def orders(request: Request, _: Annotated[Principal, Depends(page(Action.ORDERS_READ))],
           accession: str = "", mrn: str = "", name: str = "", study_uid: str = "",
           status: str = "", date: str = "", cursor: str = "") -> Response:
    """Order search by accession, MRN, name, Study Instance UID, status, date."""
    q = OrderQuery(accession=accession.strip()[:199], mrn=mrn.strip()[:199], name=name[:199],
                   study_uid=study_uid.strip()[:64], status=status[:16], date=date[:10])
    form = {k: getattr(q, k) for k in ("accession", "mrn", "name", "study_uid", "status",
                                       "date")}
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
                  can_raw=allowed(principal.role, Action.MESSAGES_READ))


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
    return render(request, "patient.html", d=detail,
                  can_dups=allowed(principal.role, Action.DUPLICATES_READ))


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
                                          limit=WORKLIST_PAGE)
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


# --- errors as pages -------------------------------------------------------------------------
_TITLES = {400: "Bad request", 401: "Log in first", 403: "Not allowed", 404: "Not found",
           405: "Method not allowed", 409: "Conflict", 413: "Too large",
           429: "Too many attempts"}


async def _html_errors(request: Request, exc: Exception) -> Response:
    """HTML error pages for console paths; the API keeps FastAPI's JSON answers."""
    from fastapi.exception_handlers import http_exception_handler

    assert isinstance(exc, StarletteHTTPException)
    if request.url.path.startswith("/api") or request.url.path == "/metrics":
        return await http_exception_handler(request, exc)
    if exc.status_code == 401 and request.method == "GET":
        return RedirectResponse(with_query("/login", next=request.url.path), 303)
    request.state.principal = getattr(request.state, "principal", None)
    detail = exc.detail if isinstance(exc.detail, str) and exc.status_code < 500 else ""
    return render(request, "error.html", status=exc.status_code, code=exc.status_code,
                  heading=_TITLES.get(
        exc.status_code, "Error"), detail=detail)


async def _to_login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRedirect)
    return RedirectResponse(with_query("/login", next=exc.next_url), 303)


def _alert_monitor(app: FastAPI) -> AlertMonitor:
    """The alert monitor of the config's ``alerts:`` (the runtime runs it as a job)."""
    deps = get_deps_of(app)
    try:
        settings = AlertSettings.from_config(getattr(deps.config, "alerts", None) or {})
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    names = [d.name for d in getattr(deps.config, "destinations", ())]
    return AlertMonitor(deps.views.dashboard, deps.clock, settings, destinations=names)


def get_deps_of(app: FastAPI) -> WebDeps:
    deps: WebDeps = app.state.deps
    return deps


def install(app: FastAPI) -> None:
    """Add the console to ``app`` (its ``state.deps`` is a ``WebDeps``): pages, the
    login page, static files and HTML error pages for non-API paths."""
    from fastapi.staticfiles import StaticFiles

    import accord.web.console_admin as console_admin
    import accord.web.console_auth as console_auth
    import accord.web.console_ops as console_ops

    app.include_router(console_auth.router)
    app.include_router(router)
    app.include_router(console_ops.router)
    app.include_router(console_admin.router)
    if not any(getattr(r, "path", "") == "/static" for r in app.routes):
        app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.state.alerts = _alert_monitor(app)
    app.add_exception_handler(StarletteHTTPException, _html_errors)
    app.add_exception_handler(LoginRedirect, _to_login)
