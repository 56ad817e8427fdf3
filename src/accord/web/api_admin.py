"""The JSON API, accounts side: login/logout, the current user, users (admin), API
tokens (own), the audit log (auditor), configuration (admin).

The first-start setup page (``/setup``) is the console's (``console/login.py``), over
``Auth.complete_setup``. Rules in ``accord.web.api``; session and token rules in
``accord.web.auth``. Per-object rules: tokens are managed by their owner (or an
admin); the last enabled admin cannot be disabled or demoted; users cannot change their
own role.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from accord.errors import ConfigError
from accord.store.accounts import TokenRecord, UserExistsError, UserRecord
from accord.web import api_json as js
from accord.web import audit as audit_mod
from accord.web.api import Cursor, Deps, Limit, bad_request, iso_time, who
from accord.web.auth import SESSION_COOKIE, AuthError, NewSession, Principal
from accord.web.deps import CurrentUser, WebDeps, client_address, record
from accord.web.permissions import PERMISSIONS, Action, Role, allowed, allowed_on

router = APIRouter()


def session_cookie(response: Response, new: NewSession, max_age: int) -> None:
    """Set the session cookie: Secure, HttpOnly, SameSite=Strict (``accord.web.auth``)."""
    response.set_cookie(SESSION_COOKIE, new.cookie, max_age=max_age, path="/", secure=True,
                        httponly=True, samesite="strict")


class LoginRequest(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


@router.post("/api/login", tags=["auth"])
def login(request: Request, body: LoginRequest, response: Response, deps: Deps
          ) -> dict[str, Any]:
    """Open a session: sets the session cookie; answers the user and the CSRF token to
    send as ``X-CSRF-Token`` on unsafe requests."""
    new = do_login(request, deps.auth, body.name, body.password)
    session_cookie(response, new, int(deps.auth.limits.absolute.total_seconds()))
    return {"name": new.principal.name, "role": new.principal.role, "csrf_token": new.csrf}


def do_login(request: Request, auth: Any, name: str, password: str) -> NewSession:
    """Log in (rate-limited) and audit the outcome; raises HTTPException 401/429. For the
    console's login page too."""
    peer = client_address(request)
    deps = request.app.state.deps
    try:
        new: NewSession = auth.login(name, password, peer)
    except AuthError as exc:
        deps.auditor.record(None, "login", outcome="denied", peer=peer,
                            actor=name.strip().lower()[:64], detail={"reason": str(exc)})
        raise HTTPException(exc.status, str(exc)) from None
    deps.auditor.record(new.principal, "login", peer=peer)
    return new


@router.post("/api/logout", tags=["auth"])
def logout(request: Request, response: Response, deps: Deps,
           principal: CurrentUser) -> dict[str, Any]:
    """End the current session (and clear its cookie)."""
    deps.auth.logout(principal)
    record(request, "logout")
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True,
                           samesite="strict")
    return {"ok": True}


@router.get("/api/me", tags=["auth"])
def me(principal: CurrentUser) -> dict[str, Any]:
    """Who is logged in, with the actions their role allows."""
    actions = sorted(a.value for a in PERMISSIONS.get(Role(principal.role), frozenset()))
    return {"name": principal.name, "role": principal.role, "kind": principal.kind,
            "actions": actions}


def user_json(u: UserRecord) -> dict[str, Any]:
    return {"id": u.id, "name": u.name, "role": u.role, "disabled": u.disabled,
            "created_at": u.created_at.isoformat(),
            "password_changed_at": u.password_changed_at.isoformat()}


def token_json(t: TokenRecord) -> dict[str, Any]:
    return {"id": t.id, "user_id": t.user_id, "name": t.name, "prefix": t.prefix,
            "created_at": t.created_at.isoformat(),
            "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
            "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None}


@router.get("/api/users", tags=["users"])
def list_users(request: Request, deps: Deps,
               principal: Annotated[Principal, who(Action.USERS_READ)],
               limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    """Console users (admin)."""
    try:
        found = deps.auth.accounts.users.page(js.decode_cursor(cursor), limit)
    except ValueError as exc:
        raise bad_request(exc) from exc
    record(request, "users.list", object_type="user", count=len(found.items))
    return js.page([user_json(u) for u in found.items], found.next_cursor)


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Literal["viewer", "operator", "admin", "auditor"]
    password: str = Field(min_length=1, max_length=1024)


@router.post("/api/users", tags=["users"], status_code=201)
def add_user(request: Request, body: NewUser, deps: Deps,
             principal: Annotated[Principal, who(Action.USERS_WRITE)]) -> dict[str, Any]:
    """Create a user (admin)."""
    try:
        user = deps.auth.add_user(body.name, body.role, body.password)
    except UserExistsError as exc:
        raise HTTPException(409, str(exc)) from None
    except AuthError as exc:
        raise HTTPException(400, str(exc)) from None
    record(request, "users.add", object_type="user", object_id=str(user.id),
           detail={"name": user.name, "role": user.role})
    return user_json(user)


class UserChange(BaseModel):
    role: Literal["viewer", "operator", "admin", "auditor"] | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, max_length=1024)


@router.patch("/api/users/{user_id}", tags=["users"])
def change_user(request: Request, user_id: int, body: UserChange, deps: Deps,
                principal: Annotated[Principal, who(Action.USERS_WRITE)]) -> dict[str, Any]:
    """Change a user's role, disabled flag or password (admin); their sessions end."""
    accounts = deps.auth.accounts
    user = accounts.users.get(user_id)
    if user is None:
        raise HTTPException(404, f"no user {user_id}")
    if body.role is not None and user_id == principal.user_id and body.role != user.role:
        raise HTTPException(403, "you cannot change your own role")
    losing_admin = user.role == Role.ADMIN.value and not user.disabled and (
        (body.role is not None and body.role != Role.ADMIN.value) or body.disabled is True)
    if losing_admin and accounts.users.count(Role.ADMIN.value, enabled_only=True) <= 1:
        raise HTTPException(409, "the last enabled admin cannot be disabled or demoted")
    try:
        if body.password is not None:
            deps.auth.set_password(user_id, body.password)
        accounts.users.update(user_id, role=body.role, disabled=body.disabled,
                             now=deps.clock.now())
    except AuthError as exc:
        raise HTTPException(400, str(exc)) from None
    record(request, "users.change", object_type="user", object_id=str(user_id),
           detail={"role": body.role, "disabled": body.disabled,
                   "password": body.password is not None})
    changed = accounts.users.get(user_id)
    assert changed is not None
    return user_json(changed)


class NewToken(BaseModel):
    name: str = Field(default="", max_length=64)


@router.get("/api/tokens", tags=["tokens"])
def list_tokens(deps: Deps,
                principal: Annotated[Principal, who(Action.TOKENS_OWN)]) -> dict[str, Any]:
    """Your API tokens (without their secrets)."""
    if principal.user_id is None:
        return {"items": [], "next": None}
    tokens = deps.auth.accounts.tokens.of_user(principal.user_id)
    return {"items": [token_json(t) for t in tokens], "next": None}


@router.post("/api/tokens", tags=["tokens"], status_code=201)
def create_token(request: Request, body: NewToken, deps: Deps,
                 principal: Annotated[Principal, who(Action.TOKENS_OWN)]) -> dict[str, Any]:
    """A new API token for yourself: the secret is in this answer only."""
    if principal.user_id is None:
        raise HTTPException(400, "the ACCORD_API_TOKEN is not a user: it has no tokens")
    secret, token = deps.auth.create_token(principal.user_id, body.name)
    record(request, "tokens.create", object_type="token", object_id=str(token.id))
    return {**token_json(token), "token": secret}


@router.delete("/api/tokens/{token_id}", tags=["tokens"])
def revoke_token(request: Request, token_id: int, deps: Deps,
                 principal: Annotated[Principal, who(Action.TOKENS_OWN)]) -> dict[str, Any]:
    """Revoke a token: your own, or anyone's for an admin."""
    token = deps.auth.accounts.tokens.get(token_id)
    if token is None or not allowed_on(principal.user_id, principal.role, Action.TOKENS_OWN,
                                       token.user_id):
        record(request, "tokens.revoke", object_type="token", object_id=str(token_id),
               outcome="not_found" if token is None else "denied")
        raise HTTPException(404, f"no token {token_id}")  # not yours: not shown to exist
    deps.auth.accounts.tokens.revoke(token_id, deps.clock.now())
    record(request, "tokens.revoke", object_type="token", object_id=str(token_id))
    return {"ok": True, "id": token_id}


def _audit_filters(actor: str | None, patient: str | None, action: str | None,
                   since: str | None, until: str | None) -> dict[str, Any]:
    return {"actor": actor, "patient_id": patient, "action": action,
            "since": iso_time(since, "since"), "until": iso_time(until, "until")}


AuditQuery = Annotated[str | None, Query(max_length=64)]


@router.get("/api/audit", tags=["audit"])
def audit_log(request: Request, deps: Deps, principal: Annotated[Principal, who(Action.AUDIT_READ)],
              actor: AuditQuery = None, patient: AuditQuery = None, action: AuditQuery = None,
              since: str | None = None, until: str | None = None, limit: Limit = 100,
              cursor: Cursor = None) -> dict[str, Any]:
    """The audit log, newest first (filters: actor, patient id, action, since/until)."""
    filters = _audit_filters(actor, patient, action, since, until)
    try:
        found = deps.auditor.log.page(cursor=js.decode_cursor(cursor), limit=limit, **filters)
    except ValueError as exc:
        raise bad_request(exc) from exc
    record(request, "audit.read", object_type="audit", count=len(found.items))
    return js.page([audit_mod.as_json(e) for e in found.items], found.next_cursor)


@router.get("/api/audit/export", tags=["audit"])
def audit_export(request: Request, deps: Deps,
                 principal: Annotated[Principal, who(Action.AUDIT_EXPORT)],
                 format: Literal["csv", "json"] = "csv", actor: AuditQuery = None,
                 patient: AuditQuery = None, action: AuditQuery = None,
                 since: str | None = None, until: str | None = None) -> StreamingResponse:
    """Every matching audit record as CSV or JSON Lines (streamed)."""
    filters = _audit_filters(actor, patient, action, since, until)
    record(request, "audit.export", object_type="audit", detail={"format": format})
    rows = deps.auditor.export_rows(**filters)
    if format == "csv":
        return StreamingResponse(audit_mod.csv_lines(rows), media_type="text/csv",
                                 headers={"Content-Disposition":
                                          'attachment; filename="accord-audit.csv"'})
    return StreamingResponse(audit_mod.json_lines(rows), media_type="application/x-ndjson",
                             headers={"Content-Disposition":
                                      'attachment; filename="accord-audit.jsonl"'})


@router.get("/api/config", tags=["configuration"])
def config(request: Request, deps: Deps, principal: Annotated[Principal, who(Action.CONFIG_READ)]
           ) -> dict[str, Any]:
    """The running configuration (admin)."""
    if deps.config is None:
        raise HTTPException(404, "no configuration")
    record(request, "config.read", object_type="config")
    data: dict[str, Any] = deps.config.model_dump(mode="json")
    store = data.get("store") or {}
    if store.get("url"):  # never show a database password
        store["url"] = re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", store["url"])
    return data


async def reload_config(request: Request, deps: WebDeps) -> dict[str, Any]:
    """Reload the configuration file (``Runtime.reload``) and audit it, refused or not;
    HTTPException 400 names the key and line of a refused file, 503 when no engine runs."""
    if deps.reload is None:
        raise HTTPException(503, "reloading needs the running engine")
    try:
        done = dict(await deps.reload())
    except ConfigError as exc:
        await run_in_threadpool(functools.partial(
            record, request, "config.reload", object_type="config", outcome="refused",
            detail={"error": str(exc)}))
        raise HTTPException(400, f"configuration not reloaded: {exc}") from None
    await run_in_threadpool(functools.partial(
        record, request, "config.reload", object_type="config", detail=done))
    return done


@router.post("/api/config/reload", tags=["configuration"])
async def reload(request: Request, deps: Deps,
                 principal: Annotated[Principal, who(Action.CONFIG_WRITE)]) -> dict[str, Any]:
    """Read the configuration file again and apply what can change without a restart
    (destinations, dialects, station rules, alert rules, limits, retention): answers
    ``applied``, ``restart`` (keys that wait for a restart) and ``notes``; a file with
    an error is refused (400, naming the key and line) and the running one stays."""
    return await reload_config(request, deps)


def can(principal: Principal, action: Action) -> bool:
    """For pages: whether to show a control (the route checks again)."""
    return allowed(principal.role, action)
