"""What routes depend on: the parts of the engine they use, and who is asking.

Rules:
- :class:`WebDeps` is built once by ``create_app`` (from a Runtime, or directly in
  tests) and kept on ``app.state.deps``; routes get it with :func:`get_deps`. No
  globals.
- :func:`current_user` authenticates (session cookie, else ``Authorization: Bearer``),
  enforces CSRF on unsafe methods for cookie sessions, and leaves the principal on
  ``request.state.principal`` for auditing. :func:`require` adds the role check of
  ``accord.web.permissions``; a refusal is audited. :func:`record` audits what a route
  or page did, as that principal (rules of the audit log in ``accord.web.audit``).
- Dependencies are plain (sync) functions: FastAPI runs them in its thread pool, so the
  blocking store calls never stall the engine's event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from accord.clock import Clock, ControlIds
from accord.store import CommitFault, Store
from accord.store.views import Views
from accord.store.workflow.catalog import CodeTables
from accord.web.audit import Auditor
from accord.web.auth import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, Auth, Principal, csrf_ok
from accord.web.permissions import PERMISSIONS, Action, Table, allowed

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass
class WebDeps:
    """The engine parts the console and API use.

    ``reprocess_message`` / ``reprocess_outbox`` / ``inject`` are the engine's async
    actions (``Ingestor.reprocess``, ``Deliverer.reprocess``, ``Ingestor.inject``);
    ``ready`` says whether every listener is up (``/api/health``); ``metrics`` is
    the Prometheus registry holder (``accord.web.metrics.Metrics``) or None; ``peers``
    lists this node's client addresses per listener with their counters
    (``accord.mllp.admission.PeerCounters`` as dicts, with a ``listener`` key);
    ``reload`` reads the configuration file again (``Runtime.reload``) and answers what
    it applied, raising ConfigError when the file is refused; ``storage_faults`` lists
    the components whose last commit failed (``accord.store.CommitFault``).
    """

    store: Store
    clock: Clock
    auth: Auth
    views: Views
    auditor: Auditor
    code_tables: CodeTables
    control_ids: ControlIds = field(default_factory=ControlIds)
    reprocess_message: Callable[[int], Awaitable[int]] | None = None
    reprocess_outbox: Callable[[int], Awaitable[int]] | None = None
    inject: Callable[[bytes, str], Awaitable[int]] | None = None
    ready: Callable[[], dict[str, bool]] = field(default_factory=lambda: (lambda: {}))
    metrics: Any = None
    node_id: str = ""
    config: Any = None
    peers: Callable[[], list[dict[str, Any]]] = field(default_factory=lambda: (lambda: []))
    storage_faults: Callable[[], list[CommitFault]] = field(
        default_factory=lambda: (lambda: []))
    reload: Callable[[], Awaitable[Mapping[str, Any]]] | None = None
    permissions: Table = field(default_factory=lambda: PERMISSIONS)  # this deployment's
    caches: dict[str, Any] = field(default_factory=dict)  # the web layer's, by name

    def worklist_since(self) -> datetime | None:
        """The worklist's horizon now: steps that started before it are not served
        (``dicom.worklist_horizon_hours``); None without a configuration."""
        dicom = getattr(self.config, "dicom", None)
        if dicom is None:
            return None
        horizon: timedelta = dicom.worklist_horizon
        return self.clock.now() - horizon

    def may(self, role: str, action: Action) -> bool:
        """Whether ``role`` may take ``action`` here."""
        return allowed(role, action, self.permissions)


def get_deps(request: Request) -> WebDeps:
    deps: WebDeps = request.app.state.deps
    return deps


def client_address(request: Request) -> str:
    """The peer address (no proxy headers are trusted)."""
    return request.client.host if request.client else ""


def authenticate(request: Request) -> Principal | None:
    """The principal of the request's session cookie or bearer token, or None."""
    auth = get_deps(request).auth
    peer = client_address(request)
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return auth.bearer(header[7:].strip(), peer)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return auth.session(cookie, peer)
    return None


def supplied_csrf(request: Request) -> str | None:
    """The CSRF token sent with a request: header, else an already parsed form field."""
    token = request.headers.get(CSRF_HEADER)
    if token:
        return token
    form = getattr(request.state, "form", None)
    if form is not None:
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def current_user(request: Request) -> Principal:
    """Dependency: the authenticated principal; 401 without one, 403 on a missing or
    wrong CSRF token (cookie sessions, unsafe methods; header ``X-CSRF-Token`` or form
    field ``csrf_token``)."""
    if (request.method not in SAFE_METHODS and CSRF_HEADER not in request.headers
            and request.headers.get("content-type", "").startswith(_FORM_TYPES)):
        request.state.form = await request.form()  # cached: the route reads it again
    return await run_in_threadpool(_current_user, request)


def _current_user(request: Request) -> Principal:
    principal = authenticate(request)
    if principal is None:
        raise HTTPException(401, "authentication required",
                            headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = principal
    if request.method not in SAFE_METHODS and not csrf_ok(principal, supplied_csrf(request)):
        get_deps(request).auditor.record(principal, "csrf", outcome="denied",
                                         object_id=request.url.path)
        raise HTTPException(403, "missing or wrong CSRF token")
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]


def require(action: Action) -> Callable[..., Principal]:
    """Dependency factory: the principal, when their role may take ``action`` (403 and an
    audit record otherwise)."""

    def check(request: Request, principal: CurrentUser) -> Principal:
        if not get_deps(request).may(principal.role, action):
            get_deps(request).auditor.record(principal, action.value, outcome="denied",
                                             object_id=request.url.path)
            raise HTTPException(403, f"role {principal.role} may not {action.value}")
        return principal

    check.__name__ = f"require_{action.name.lower()}"
    return check


def csrf_token(request: Request) -> str:
    """The CSRF token to embed in pages and forms of the current session ("" when the
    request has no session)."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        principal = authenticate(request)
    return principal.csrf or "" if principal is not None else ""


def record(request: Request, action: str, **fields: Any) -> None:
    """Audit from a route or page: the principal of ``request`` (set by
    :func:`current_user`) did ``action``. Keyword fields as :meth:`Auditor.record`
    (``outcome``, ``object_type``, ``object_id``, ``patient_ids``, ``detail``, ``count``)."""
    principal = getattr(request.state, "principal", None)
    peer = request.client.host if request.client else ""
    get_deps(request).auditor.record(principal, action, peer=fields.pop("peer", peer),
                                     **fields)
