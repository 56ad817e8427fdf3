"""What every console page is built with: the page gate, the templates with their shared
context, links with query strings, and the HTML error pages.

Rules:
- Every page checks its action on the server (:func:`page`, built on
  ``accord.web.deps.require``); a page asked for without a session redirects to
  ``/login`` and comes back after it.
- Every template gets the user, the navigation their role allows, the session's CSRF
  token (forms carry it as ``csrf_token``; htmx requests send ``X-CSRF-Token`` from
  ``<body hx-headers>``) and the flash message.
- Errors on console paths are HTML pages with generic text; the API keeps FastAPI's
  JSON answers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from accord.web.auth import Principal
from accord.web.deps import authenticate, csrf_token, require
from accord.web.permissions import Action, allowed

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
STATIC = TEMPLATES.parent / "static"
templates = Jinja2Templates(directory=str(TEMPLATES))

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
TITLES = {400: "Bad request", 401: "Log in first", 403: "Not allowed", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 413: "Too large",
          429: "Too many attempts"}


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


async def html_errors(request: Request, exc: Exception) -> Response:
    """HTML error pages for console paths; the API keeps FastAPI's JSON answers."""
    assert isinstance(exc, StarletteHTTPException)
    if request.url.path.startswith("/api") or request.url.path == "/metrics":
        return await http_exception_handler(request, exc)
    if exc.status_code == 401 and request.method == "GET":
        return RedirectResponse(with_query("/login", next=request.url.path), 303)
    request.state.principal = getattr(request.state, "principal", None)
    detail = exc.detail if isinstance(exc.detail, str) and exc.status_code < 500 else ""
    return render(request, "error.html", status=exc.status_code, code=exc.status_code,
                  heading=TITLES.get(exc.status_code, "Error"), detail=detail)


async def to_login(request: Request, exc: Exception) -> Response:
    """The answer to a :class:`LoginRedirect`: the login page, then back."""
    assert isinstance(exc, LoginRedirect)
    return RedirectResponse(with_query("/login", next=exc.next_url), 303)
