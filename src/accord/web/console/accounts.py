"""Who may use the console and the API: the users page (admins: add a user, set a role,
disable or enable, reset a password) and the API token pages (everyone: their own
tokens, made with an expiry, listed, revoked; admins: anyone's, to list and revoke).

Rules:
- Every change goes through the same checks as its API route (``api_admin``:
  ``change_user_as``, ``new_token``): one's own role cannot be changed, the last
  enabled admin cannot be disabled or demoted; every change is audited, and a user's
  sessions end when their role, flag or password changes.
- A token's secret is shown once, in the answer to the form that made it (never in a
  link, never again); only its first characters are kept in the clear to tell tokens
  apart.
- A token is created for oneself only: an admin revokes another user's tokens but never
  makes one in their name.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from accord.store.accounts import UserExistsError
from accord.web.api_admin import MAX_TOKEN_DAYS, change_user_as, new_token
from accord.web.auth import AuthError, Principal
from accord.web.console.render import page, render, with_query
from accord.web.deps import get_deps, record, require
from accord.web.permissions import ROLES, Action, allowed_on

router = APIRouter(include_in_schema=False)
Admin = Annotated[Principal, Depends(require(Action.USERS_WRITE))]
Owner = Annotated[Principal, Depends(require(Action.TOKENS_OWN))]
EXPIRIES = ((30, "30 days"), (90, "90 days"), (365, "a year"), (0, "never (until revoked)"))


# --- users -------------------------------------------------------------------------------
@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request,
               principal: Annotated[Principal, Depends(page(Action.USERS_READ))]) -> Response:
    """Every user, with the controls an admin has over each."""
    deps = get_deps(request)
    found = deps.auth.accounts.users.page(limit=1000).items
    record(request, Action.USERS_READ.value, object_type="user", count=len(found))
    return render(request, "users.html", users=found, roles=ROLES,
                  me=principal.user_id,
                  can_write=deps.may(principal.role, Action.USERS_WRITE))


@router.post("/users")
async def add_user(request: Request, _: Admin,
                   name: Annotated[str, Form(max_length=64)],
                   role: Annotated[str, Form(max_length=16)],
                   password: Annotated[str, Form(max_length=1024)]) -> Response:
    """Add a user (the name's and the password's rules are the API's)."""
    deps = get_deps(request)
    name = name.strip().lower()
    try:
        user = await run_in_threadpool(deps.auth.add_user, name, role, password)
    except (AuthError, UserExistsError) as exc:
        return RedirectResponse(with_query("/users", flash=f"Not added: {exc}", failed="1"),
                                303)
    await run_in_threadpool(record, request, "users.add", object_type="user",
                            object_id=str(user.id), detail={"name": user.name,
                                                            "role": user.role})
    return RedirectResponse(with_query("/users", flash=f"User {user.name} ({user.role}) "
                                       "added."), 303)


@router.post("/users/{user_id}")
async def change_user(request: Request, user_id: int, principal: Admin,
                      change: Annotated[str, Form(max_length=16)],
                      role: Annotated[str, Form(max_length=16)] = "",
                      password: Annotated[str, Form(max_length=1024)] = "") -> Response:
    """One change to a user: ``role`` (to ``role``), ``disable``, ``enable`` or
    ``password`` (reset to ``password``)."""
    if change == "role" and role not in ROLES:
        raise HTTPException(400, "unknown role")
    if change not in ("role", "disable", "enable", "password"):
        raise HTTPException(400, "change must be role, disable, enable or password")
    try:
        user = await run_in_threadpool(lambda: change_user_as(
            request, principal, user_id, role=role if change == "role" else None,
            disabled={"disable": True, "enable": False}.get(change),
            password=password if change == "password" else None))
    except HTTPException as exc:
        if exc.status_code == 404:
            raise
        return RedirectResponse(with_query("/users", flash=f"Not changed: {exc.detail}",
                                           failed="1"), 303)
    said = {"role": f"is now {user.role}", "disable": "is disabled (sessions ended)",
            "enable": "is enabled", "password": "has a new password (sessions ended)"}
    return RedirectResponse(with_query("/users", flash=f"{user.name} {said[change]}."), 303)


# --- API tokens --------------------------------------------------------------------------
@router.get("/tokens", response_class=HTMLResponse)
def tokens_page(request: Request, principal: Annotated[Principal,
                                                       Depends(page(Action.TOKENS_OWN))]
                ) -> Response:
    """Your API tokens, and the form that makes one."""
    return _tokens(request, principal, principal.user_id)


@router.get("/users/{user_id}/tokens", response_class=HTMLResponse)
def user_tokens_page(request: Request, user_id: int,
                     principal: Annotated[Principal, Depends(page(Action.USERS_READ))]
                     ) -> Response:
    """A user's API tokens (admins: to see and revoke them)."""
    return _tokens(request, principal, user_id)


def _tokens(request: Request, principal: Principal, user_id: int | None,
            secret: str = "", status: int = 200) -> Response:
    deps = get_deps(request)
    owner = deps.auth.accounts.users.get(user_id) if user_id is not None else None
    if owner is None:
        if user_id is not None:
            raise HTTPException(404, "no such user")
        return render(request, "tokens.html", owner=None, tokens=[], own=True,
                      expiries=EXPIRIES, secret="", now=deps.clock.now())
    if not allowed_on(principal.user_id, principal.role, Action.TOKENS_OWN, owner.id):
        raise HTTPException(404, "no such user")
    found = deps.auth.accounts.tokens.of_user(owner.id)
    return render(request, "tokens.html", status=status, owner=owner, tokens=found,
                  own=owner.id == principal.user_id, expiries=EXPIRIES, secret=secret,
                  now=deps.clock.now(), base=str(request.base_url).rstrip("/"))


@router.post("/tokens", response_class=HTMLResponse)
async def create_token(request: Request, principal: Owner,
                       name: Annotated[str, Form(max_length=64)] = "",
                       days: Annotated[int, Form(ge=0, le=MAX_TOKEN_DAYS)] = 90) -> Response:
    """Make a token for yourself; the answer shows its secret, once."""
    secret, _ = await run_in_threadpool(new_token, request, principal, name.strip(),
                                        days or None)
    return await run_in_threadpool(_tokens, request, principal, principal.user_id, secret,
                                   201)


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: int, principal: Owner) -> Response:
    """Revoke a token: your own, or anyone's for an admin."""
    deps = get_deps(request)
    token = await run_in_threadpool(deps.auth.accounts.tokens.get, token_id)
    if token is None or not allowed_on(principal.user_id, principal.role, Action.TOKENS_OWN,
                                       token.user_id):
        await run_in_threadpool(record, request, "tokens.revoke", object_type="token",
                                object_id=str(token_id),
                                outcome="not_found" if token is None else "denied")
        raise HTTPException(404, "no such token")
    await run_in_threadpool(deps.auth.accounts.tokens.revoke, token_id, deps.clock.now())
    await run_in_threadpool(record, request, "tokens.revoke", object_type="token",
                            object_id=str(token_id))
    back = "/tokens" if token.user_id == principal.user_id else \
        f"/users/{token.user_id}/tokens"
    return RedirectResponse(with_query(back, flash=f"Token {token.prefix}… revoked."), 303)
