"""The dashboard: both sides of the loop — HL7 received per interface and sent per
destination, the DICOM side per station (worklist queries, MPPS), today's orders by
modality and status, open findings by kind — and the open alerts, refreshed in place by
htmx.

Rules:
- The figures are those of ``GET /api/dashboard`` (``accord.web.figures``): one read,
  shared by every viewer and the API.
- Every count is a link to the list behind it, with the same filters and the same time
  bounds (:func:`links`), so what a figure says and what its list shows agree; a link
  is shown only to a role that may open that list.
- Other parts of the engine add their own panels: a template partial each, included
  from ``_dashboard.html`` (one line), reading the figures they add to ``/api/stats``
  (the ``stats`` of the context, at most half a minute old).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from accord.errors import ConfigError
from accord.store.views.dashboard import Dashboard
from accord.web import figures
from accord.web.alerts import AlertMonitor, AlertSettings
from accord.web.auth import Principal
from accord.web.console.render import page, render, with_query
from accord.web.deps import WebDeps, authenticate, get_deps, require
from accord.web.permissions import Action
from accord.workflow.findings import FindingKind
from accord.workflow.status import Status

router = APIRouter(include_in_schema=False)
REFRESH_SECONDS = 5
FAILED = "error,rejected"  # the message search's statuses of an errored interface
QUEUED = "pending,in_flight"


def _iso(t: datetime | None) -> str:
    return t.isoformat() if t is not None else ""


def links(dash: Dashboard) -> dict[str, Any]:
    """The list behind each figure, with the window's bounds (module rules)."""
    since, until = _iso(dash.since), _iso(dash.until)
    day = dash.day
    return {
        "received": {i.sender: with_query("/messages", sender=i.sender, since=since,
                                          until=until) for i in dash.interfaces},
        "errored": {i.sender: with_query("/messages", sender=i.sender, status=FAILED,
                                         since=since, until=until) for i in dash.interfaces},
        "rejected": {i.sender: with_query("/messages", sender=i.sender, status="rejected",
                                          since=since, until=until) for i in dash.interfaces},
        "queued": {d.name: with_query("/deliveries", destination=d.name, status=QUEUED)
                   for d in dash.destinations},
        "errors": {d.name: with_query("/deliveries", destination=d.name, status="error",
                                      current="1") for d in dash.destinations},
        "delivered": {d.name: with_query("/deliveries", destination=d.name,
                                         delivered_since=since, delivered_until=until)
                      for d in dash.destinations},
        "queries": {s.station: with_query("/dicom", station=s.station, kind="find",
                                          since=since, until=until) for s in dash.stations},
        "mpps": {s.station: with_query("/dicom", station=s.station, kind="mpps",
                                       since=since, until=until) for s in dash.stations},
        "orders": {(m, st): with_query("/orders", date=day, modality=m, status=st)
                   for m, st, _ in dash.orders_today},
        "modality": {m: with_query("/orders", date=day, modality=m)
                     for m, _, _ in dash.orders_today},
        "findings": {k: with_query("/findings", kind=k) for k, _ in dash.findings},
    }


def orders_table(dash: Dashboard) -> tuple[list[str], list[str], dict[tuple[str, str], int]]:
    """Today's orders as a table: modalities (rows), statuses (columns, in the order of
    the workflow), and the count of each cell."""
    cells = {(m, st): n for m, st, n in dash.orders_today}
    modalities = sorted({m for m, _ in cells})
    order = [s.value for s in Status]
    statuses = sorted({st for _, st in cells}, key=lambda st: order.index(st)
                      if st in order else len(order))
    return modalities, statuses, cells


def _context(request: Request) -> dict[str, Any]:
    deps = get_deps(request)
    dash, window = figures.dashboard(request)
    monitor: AlertMonitor | None = getattr(request.app.state, "alerts", None)
    modalities, statuses, cells = orders_table(dash)
    return {"dash": dash, "alerts": monitor.open_alerts() if monitor else [],
            "window_minutes": int(window), "refresh": REFRESH_SECONDS,
            "links": links(dash), "modalities": modalities, "statuses": statuses,
            "cells": cells, "stats": figures.whole_store_recent(deps),
            "kinds": {k.value: k for k in FindingKind}}


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    """The dashboard; an auditor lands on the audit log, a visitor on the login page."""
    principal = authenticate(request)
    if principal is None:
        return RedirectResponse("/login", 303)
    deps = get_deps(request)
    if not deps.may(principal.role, Action.STATS_READ) and deps.may(principal.role,
                                                                      Action.AUDIT_READ):
        return RedirectResponse("/audit", 303)
    request.state.principal = require(Action.STATS_READ)(request, principal)
    return render(request, "dashboard.html", **_context(request))


@router.get("/dashboard/live", response_class=HTMLResponse)
def dashboard_live(request: Request,
                   _: Annotated[Principal, Depends(page(Action.STATS_READ))]) -> Response:
    """The dashboard's body alone, for htmx polling."""
    return render(request, "_dashboard.html", **_context(request))


def alert_monitor(deps: WebDeps) -> AlertMonitor:
    """The alert monitor of the config's ``alerts:`` (the runtime runs it as a job)."""
    try:
        settings = AlertSettings.from_config(getattr(deps.config, "alerts", None) or {})
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return AlertMonitor(deps.views.dashboard, deps.clock, settings,
                        destinations=figures.destinations(deps),
                        stations=lambda: figures.stations(deps),
                        storage_faults=deps.storage_faults)
