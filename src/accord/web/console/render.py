"""What every console page is built with: the page gate, the templates with their shared
context, links with query strings, and the HTML error pages.

Rules:
- Every page checks its action on the server (:func:`page`, built on
  ``accord.web.deps.require``); a page asked for without a session redirects to
  ``/login`` and comes back after it.
- Every template gets the user, the navigation their role allows, ``can(action)`` (what
  to show as a link or a button; the target checks again), the session's CSRF token
  (forms carry it as ``csrf_token``; htmx requests send ``X-CSRF-Token`` from
  ``<body hx-headers>``) and the flash message.
- People, not ids: lists show a patient's name and identifier (``MRN9863826 · HOSP``,
  never in HL7 encoding) and an order's accession, each a link (``_macros.html``); text
  that names patients by Accord id shows their names (:func:`people_in`).
- Errors on console paths are HTML pages with generic text and the navigation; the API
  keeps FastAPI's JSON answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from accord.web.auth import Principal
from accord.web.deps import authenticate, csrf_token, get_deps, require
from accord.web.permissions import Action
from accord.workflow.model import Patient

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
STATIC = TEMPLATES.parent / "static"
templates = Jinja2Templates(directory=str(TEMPLATES))

NAV: tuple[tuple[str, str, Action], ...] = (
    ("/", "Dashboard", Action.STATS_READ),
    ("/worklist", "Worklist", Action.WORKLIST_READ),
    ("/orders", "Orders", Action.ORDERS_READ),
    ("/patients", "Patients", Action.PATIENTS_READ),
    ("/messages", "Messages", Action.MESSAGES_READ),
    ("/errors", "Error queue", Action.ERRORS_READ),
    ("/findings", "Findings", Action.FINDINGS_READ),
    ("/duplicates", "Duplicates", Action.DUPLICATES_READ),
    ("/mappings", "Mappings", Action.CONFIG_READ),
    ("/users", "Users", Action.USERS_READ),
    ("/audit", "Audit log", Action.AUDIT_READ),
)
# Pages shown under another entry of the navigation (the messages page's tabs).
UNDER = {"/deliveries": "/messages", "/dicom": "/messages"}
PATIENT_ID = re.compile(r"\bP-[0-9a-f]{32}\b")
# Why a page is refused, when the role table alone does not say it plainly.
WHY_NOT = {
    Action.AUDIT_READ: "The audit log is read by auditors: the people who act do not read "
                       "the record of their own acts. A deployment may let admins read it "
                       "too (audit.admin_can_read: true in the configuration).",
}
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
        try:
            return check(request, principal)
        except HTTPException as exc:
            if exc.status_code == 403 and action in WHY_NOT:
                raise HTTPException(403, WHY_NOT[action]) from exc
            raise

    gate.__name__ = f"page_{action.name.lower()}"
    return gate


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A template with the shared context: user, navigation, ``can``, CSRF token, flash."""
    principal: Principal | None = getattr(request.state, "principal", None)
    deps = get_deps(request)

    def can(action: str) -> bool:
        return principal is not None and deps.may(principal.role, Action(action))

    nav = [(h, label, a) for h, label, a in NAV if can(a.value)]
    context.setdefault("flash", request.query_params.get("flash", "")[:200])
    context.setdefault("flash_kind", "err" if request.query_params.get("failed") else "ok")
    first = "/" + request.url.path.strip("/").split("/")[0]
    base = {"user": principal, "nav": nav, "can": can,
            "csrf": csrf_token(request) if principal else "",
            "active": UNDER.get(first, first) if request.url.path != "/" else "/"}
    # Cache-Control: no-store comes from the app's guard (accord.web.app) on every page.
    return templates.TemplateResponse(request, name, {**base, **context},
                                      status_code=status)


def with_query(path: str, **params: Any) -> str:
    """``path?params`` with empty values dropped."""
    kept = {k: v for k, v in params.items() if v not in ("", None)}
    return f"{path}?{urlencode(kept)}" if kept else path


async def html_errors(request: Request, exc: Exception) -> Response:
    """HTML error pages for console paths, with the navigation of whoever asked (a path
    no route has never ran the page's session check: it is done here); the API keeps
    FastAPI's JSON answers."""
    assert isinstance(exc, StarletteHTTPException)
    if request.url.path.startswith("/api") or request.url.path == "/metrics":
        return await http_exception_handler(request, exc)
    if exc.status_code == 401 and request.method == "GET":
        return RedirectResponse(with_query("/login", next=request.url.path), 303)
    principal = getattr(request.state, "principal", None)
    if principal is None:
        principal = await run_in_threadpool(authenticate, request)
    request.state.principal = principal
    detail = exc.detail if isinstance(exc.detail, str) and exc.status_code < 500 else ""
    return render(request, "error.html", status=exc.status_code, code=exc.status_code,
                  heading=TITLES.get(exc.status_code, "Error"), detail=detail)


def people_in(text: str, patients: Mapping[str, Patient], link: bool) -> Markup:
    """``text`` with each Accord patient id it names shown as that patient's name and
    first identifier (a link to the patient page when ``link``); ids of patients not in
    ``patients`` stay as they are. Everything else is escaped."""
    out: list[str] = []
    last = 0
    for m in PATIENT_ID.finditer(text):
        out.append(str(escape(text[last:m.start()])))
        p = patients.get(m.group())
        if p is None:
            out.append(str(escape(m.group())))
        else:
            label = escape(f"{person_name(p)} ({identifier_text(p)})")
            out.append(f'<a href="/patients/{escape(p.id)}">{label}</a>' if link
                       else str(label))
        last = m.end()
    out.append(str(escape(text[last:])))
    return Markup("".join(out))


def patient_ids_in(text: str) -> list[str]:
    """The Accord patient ids ``text`` names (for :func:`people_in`)."""
    return PATIENT_ID.findall(text)


def person_name(p: Patient) -> str:
    """``Family, Given`` (the family name alone when there is no given name)."""
    n = p.demographics.name
    return f"{n.family}, {n.given}" if n.given else n.family or "(no name)"


def identifier_text(p: Patient) -> str:
    """The first identifier as people read it: ``MRN9863826 · HOSP``."""
    if not p.identifiers:
        return "no identifier"
    i = p.identifiers[0]
    return f"{i.value} · {i.authority}" if i.authority else i.value


def hl7_person(value: str) -> str:
    """An HL7 XCN/XPN as written in a field (``1234^Welby^Marcus`` or ``Welby^Marcus``)
    read as a name: ``Marcus Welby``."""
    parts = value.split("^")
    if len(parts) > 2 and parts[0].isdigit():
        parts = parts[1:]
    family, given = parts[0], parts[1] if len(parts) > 1 else ""
    return f"{given} {family}".strip() or value


async def to_login(request: Request, exc: Exception) -> Response:
    """The answer to a :class:`LoginRedirect`: the login page, then back."""
    assert isinstance(exc, LoginRedirect)
    return RedirectResponse(with_query("/login", next=exc.next_url), 303)


templates.env.filters.update(hl7_person=hl7_person, people_in=people_in)
templates.env.globals.update(person_name=person_name, identifier_text=identifier_text)
