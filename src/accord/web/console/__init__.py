"""The console: server-rendered pages (Jinja2 and htmx served locally, no CDN).

One module per page group, each with its own router: ``dashboard`` (figures and
alerts), ``maintenance`` (the dashboard's store size panel, the configuration reload),
``exams`` (orders, patients, worklist), ``operations`` (message viewer, error
queue), ``review`` (findings, duplicate pairs and merges), ``admin`` (code mappings,
audit log), ``peers`` (the dashboard's client-connections panel) and ``login``
(login, logout, first-admin setup); ``render`` holds what
every page is built with. :func:`install` adds them all to an app.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from accord.web.console import (
    admin,
    dashboard,
    exams,
    login,
    maintenance,
    operations,
    peers,
    review,
)
from accord.web.console.render import STATIC, LoginRedirect, html_errors, to_login
from accord.web.deps import WebDeps

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Add the console to ``app`` (its ``state.deps`` is a :class:`WebDeps`): the pages,
    the login pages, static files (unless mounted already), the alert monitor
    (``app.state.alerts``) and HTML error pages for non-API paths."""
    deps: WebDeps = app.state.deps
    for group in (login, dashboard, maintenance, exams, operations, review, admin, peers):
        app.include_router(group.router)
    if not any(getattr(r, "path", "") == "/static" for r in app.routes):
        app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.state.alerts = dashboard.alert_monitor(deps)
    app.add_exception_handler(StarletteHTTPException, html_errors)
    app.add_exception_handler(LoginRedirect, to_login)
