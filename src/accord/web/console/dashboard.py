"""The dashboard: the figures an operator watches (interfaces, destinations, open findings
by kind) and the open alerts, refreshed in place by htmx.

Rule: the figures come from the alert monitor's last read when it is fresh (every
viewer shares it; the store computes them once per monitor interval), else from the
dashboard view directly.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from accord.errors import ConfigError
from accord.web.alerts import AlertMonitor, AlertSettings
from accord.web.auth import Principal
from accord.web.console.render import page, render
from accord.web.deps import WebDeps, authenticate, get_deps, require
from accord.web.permissions import Action, allowed
from accord.workflow.findings import FindingKind

router = APIRouter(include_in_schema=False)
DASHBOARD_WINDOW = timedelta(hours=1)
REFRESH_SECONDS = 5


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
            "kind_labels": {k.value: k.label for k in FindingKind},
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


def alert_monitor(deps: WebDeps) -> AlertMonitor:
    """The alert monitor of the config's ``alerts:`` (the runtime runs it as a job)."""
    try:
        settings = AlertSettings.from_config(getattr(deps.config, "alerts", None) or {})
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    names = [d.name for d in getattr(deps.config, "destinations", ())]
    return AlertMonitor(deps.views.dashboard, deps.clock, settings, destinations=names)
