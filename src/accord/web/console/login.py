"""The login and logout pages, and the one-time setup page (first admin).

Rules:
- Before a session exists, forms are protected by a double-submit token: ``GET /login``
  sets a random ``accord_login_csrf`` cookie (HttpOnly, SameSite=Strict) and puts the
  same value in the form; ``POST /login`` refuses a mismatch (403).
- The session cookie is ``Secure; HttpOnly; SameSite=Strict`` (``accord.web.auth``).
- ``next`` only ever leads to a local path, never another site.
- Failed logins are audited with the user name tried and the peer, never the password.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from accord.web.auth import SESSION_COOKIE, AuthError
from accord.web.console.render import render, with_query
from accord.web.deps import CurrentUser, client_address, get_deps

router = APIRouter(include_in_schema=False)
LOGIN_CSRF = "accord_login_csrf"


def safe_next(value: str) -> str:
    """A local path to go back to after login ("/" for anything else)."""
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value[:500]


def _login_form(request: Request, next_url: str, error: str = "",
                status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    request.state.principal = None
    resp = render(request, "login.html", status=status, login_csrf=token,
                  next_url=safe_next(next_url), error=error)
    resp.set_cookie(LOGIN_CSRF, token, httponly=True, secure=True, samesite="strict",
                    path="/login", max_age=3600)
    return resp


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    return _login_form(request, next)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, username: Annotated[str, Form(max_length=200)],
                password: Annotated[str, Form(max_length=1024)],
                csrf_token: Annotated[str, Form(max_length=200)] = "",
                next: Annotated[str, Form(max_length=500)] = "/") -> Response:
    """Check the form token, then the password (rate-limited); open a session."""
    expected = request.cookies.get(LOGIN_CSRF, "")
    if not expected or not hmac.compare_digest(expected, csrf_token):
        return _login_form(request, next, "The form expired; please try again.", 403)
    deps = get_deps(request)
    peer = client_address(request)
    try:
        session = await run_in_threadpool(deps.auth.login, username, password, peer)
    except AuthError as exc:
        await run_in_threadpool(deps.auditor.record, None, "login", outcome="denied",
                                actor=username.strip().lower()[:64], peer=peer)
        return _login_form(request, next, str(exc), exc.status)
    await run_in_threadpool(deps.auditor.record, session.principal, "login", peer=peer)
    resp = RedirectResponse(safe_next(next), 303)
    resp.set_cookie(SESSION_COOKIE, session.cookie, httponly=True, secure=True,
                    samesite="strict", path="/")
    resp.delete_cookie(LOGIN_CSRF, path="/login")
    return resp


@router.post("/logout")
async def logout(request: Request, principal: CurrentUser) -> Response:
    """End the session (CSRF-checked like every form)."""
    deps = get_deps(request)
    await run_in_threadpool(deps.auth.logout, principal)
    await run_in_threadpool(deps.auditor.record, principal, "logout")
    resp = RedirectResponse("/login", 303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.get("/setup", response_class=HTMLResponse)
def setup_page(request: Request, token: str = "") -> Response:
    """The first admin, from the one-time link printed at the first start."""
    request.state.principal = None
    form = secrets.token_urlsafe(24)
    resp = render(request, "setup.html", token=token[:200], login_csrf=form, error="")
    resp.set_cookie(LOGIN_CSRF, form, httponly=True, secure=True, samesite="strict",
                    path="/setup", max_age=3600)
    return resp


@router.post("/setup", response_class=HTMLResponse)
async def setup(request: Request, token: Annotated[str, Form(max_length=200)],
                username: Annotated[str, Form(max_length=200)],
                password: Annotated[str, Form(max_length=1024)],
                csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    expected = request.cookies.get(LOGIN_CSRF, "")
    request.state.principal = None
    if not expected or not hmac.compare_digest(expected, csrf_token):
        return render(request, "setup.html", status=403, token=token, login_csrf="",
                      error="The form expired; reload the setup link.")
    deps = get_deps(request)
    try:
        user = await run_in_threadpool(deps.auth.complete_setup, token, username, password)
    except AuthError as exc:
        return render(request, "setup.html", status=exc.status, token=token,
                      login_csrf="", error=str(exc))
    await run_in_threadpool(deps.auditor.record, None, "setup", actor=user.name,
                            object_type="user", object_id=str(user.id),
                            peer=client_address(request))
    return RedirectResponse(with_query("/login", flash="Administrator created; log in."),
                            303)
