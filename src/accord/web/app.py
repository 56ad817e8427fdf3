"""The web application: ``create_app(runtime_or_deps)`` → FastAPI (console + JSON API).

Rules:
- Nothing but ``/api/health``, the login and setup pages and static assets answers
  without a session or token: every route declares its action, and an outer guard
  refuses any other request that carries no credential at all (401) before routing.
- Request bodies are capped before parsing (``MAX_BODY``, 1 MiB: 413), from the
  ``Content-Length`` header and again while the body streams in.
- Security headers on every answer (CSP without inline script, no framing, no sniffing,
  no referrer), errors included; API answers are ``Cache-Control: no-store`` (they carry
  patient data). A route that fails answers a plain 500: the traceback is logged, never
  shown.
- OpenAPI at ``/api/openapi.json`` and Swagger UI at ``/api/docs`` (both need a
  principal); the Swagger UI files are vendored under ``web/static/swagger`` (from the
  npm package ``swagger-ui-dist``), nothing is fetched from a CDN.
- The console (:func:`accord.web.console.install`) is added unless ``extra_routers``
  replaces it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accord.web import api, api_admin, api_workflow, console
from accord.web.audit import Auditor
from accord.web.auth import SESSION_COOKIE, Auth
from accord.web.deps import WebDeps, current_user
from accord.web.metrics import Metrics
from accord.web.permissions import table

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
STATIC_DIR = Path(__file__).resolve().parent / "static"
OPEN_PATHS = frozenset({"/api/health", "/login", "/setup", "/api/login", "/favicon.ico"})
OPEN_PREFIXES = ("/static/",)
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


class _TooLarge(Exception):
    pass


class Guard:
    """The outer ASGI layer: body cap, credential presence, security headers, timing."""

    def __init__(self, app: ASGIApp, max_body: int, metrics: Metrics | None) -> None:
        self.app = app
        self.max_body = max_body
        self.metrics = metrics

    def _refusal(self, scope: Scope, path: str) -> tuple[int, str] | None:
        """413 for a declared body over the cap; 401 for a closed path without any
        credential (a session cookie or a bearer token; the route checks it)."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            return 413, "request body too large"
        if not _open(path) and not _has_credential(headers):
            return 401, "authentication required"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        refusal = self._refusal(scope, path)
        if refusal is not None:
            if refusal[0] == 401 and _console_page(scope, path):
                await _to_login(send, path)  # a person at a browser: show the login page
            else:
                await _plain(send, *refusal, path)
            return
        started = time.perf_counter()
        state = {"sent": False, "seen": 0, "refused": False}

        async def capped() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["seen"] += len(message.get("body", b""))
                if state["seen"] > self.max_body:
                    # Answer now: the app may turn the exception into its own 400.
                    if not state["sent"]:
                        state["sent"] = state["refused"] = True
                        await _plain(send, 413, "request body too large", path)
                    raise _TooLarge
            return message

        async def with_headers(message: Message) -> None:
            if state["refused"]:
                return  # the 413 went out already
            if message["type"] == "http.response.start":
                state["sent"] = True
                message["headers"] = list(message.get("headers", [])) + _security(path)
            await send(message)

        try:
            await self.app(scope, capped, with_headers)
        except _TooLarge:
            pass  # answered 413 in capped()
        except Exception:
            # A bug: the traceback goes to the log, never to the client, and the answer
            # carries the security headers like every other (Starlette's own 500 page,
            # outside this layer, would not).
            log.exception("%s %s failed", scope.get("method", ""), path)
            if not state["sent"]:
                await _plain(send, 500, "internal error", path)
        finally:
            if self.metrics is not None:
                route = scope.get("route")
                label = getattr(route, "path", "other")
                self.metrics.http_latency.labels(label).observe(time.perf_counter() - started)


def _open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def _console_page(scope: Scope, path: str) -> bool:
    """A page a person opens (not the API, not metrics): worth a redirect to /login."""
    return scope.get("method") in ("GET", "HEAD") and not path.startswith(("/api", "/metrics"))


async def _to_login(send: Send, path: str) -> None:
    """303 to the login page, which returns to ``path`` after a successful login."""
    location = "/login?" + urlencode({"next": path}) if path not in ("", "/") else "/login"
    headers = [(b"location", location.encode("latin-1")), (b"content-length", b"0"),
               *_security(path)]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _has_credential(headers: dict[str, str]) -> bool:
    if headers.get("authorization", "")[:7].lower() == "bearer ":
        return True
    return f"{SESSION_COOKIE}=" in headers.get("cookie", "")


def _security(path: str) -> list[tuple[bytes, bytes]]:
    out = [(b"content-security-policy", (DOCS_CSP if path == "/api/docs" else CSP).encode()),
           (b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
           (b"referrer-policy", b"no-referrer"),
           (b"cross-origin-opener-policy", b"same-origin")]
    if not path.startswith("/static/"):
        out.append((b"cache-control", b"no-store"))
    return out


async def _plain(send: Send, status: int, text: str, path: str) -> None:
    body = json.dumps({"detail": text}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()), *_security(path)]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_DOCS_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Accord API</title><link rel="stylesheet" href="/static/swagger/swagger-ui.css">
</head><body><div id="swagger-ui"></div>
<script src="/static/swagger/swagger-ui-bundle.js"></script>
<script src="/static/swagger/swagger-init.js"></script></body></html>"""


def _docs_router(app: FastAPI) -> APIRouter:
    router = APIRouter(dependencies=[Depends(current_user)], include_in_schema=False)

    @router.get("/api/openapi.json")
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @router.get("/api/docs", response_class=HTMLResponse)
    def docs() -> HTMLResponse:
        return HTMLResponse(_DOCS_PAGE)

    return router


def build_deps(runtime_or_deps: Any, *, api_token: str | None = None,
               hasher: PasswordHasher | None = None) -> WebDeps:
    """The :class:`WebDeps` of a Runtime (or the given WebDeps unchanged)."""
    if isinstance(runtime_or_deps, WebDeps):
        return runtime_or_deps
    rt = runtime_or_deps
    token = api_token if api_token is not None else os.environ.get("ACCORD_API_TOKEN") or None
    auth = Auth(rt.accounts, rt.clock, api_token=token, hasher=hasher)
    metrics = getattr(rt, "metrics", None)

    def ready() -> dict[str, bool]:
        listeners = {"mllp": rt.mllp.port > 0}
        if getattr(rt, "bridge", None) is not None:
            listeners["dicom"] = rt.dicom_port > 0
        http = getattr(rt, "http", None)
        if http is not None:
            listeners["http"] = http.port > 0
        return listeners

    async def reload() -> dict[str, Any]:
        done = await rt.reload()
        return dict(done.as_json())

    return WebDeps(store=rt.store, clock=rt.clock, auth=auth, views=rt.views,
                   auditor=Auditor(rt.accounts.audit, rt.clock), code_tables=rt.code_tables,
                   control_ids=rt.control_ids,
                   reprocess_message=rt.ingestor.reprocess,
                   reprocess_outbox=rt.deliverer.reprocess, inject=rt.ingestor.inject,
                   ready=ready, metrics=metrics, node_id=rt.node_id, config=rt.config,
                   peers=getattr(rt, "peers", lambda: []),
                   storage_faults=rt.store.database.commits.failing,
                   reload=reload if hasattr(rt, "reload") else None,
                   permissions=table(admin_reads_audit=rt.config.audit.admin_can_read))


def create_app(runtime_or_deps: Any, *, extra_routers: Sequence[APIRouter] | None = None,
               api_token: str | None = None, hasher: PasswordHasher | None = None,
               max_body: int = MAX_BODY) -> FastAPI:
    """The console + API application over a Runtime (or prepared :class:`WebDeps`).

    ``extra_routers``: routers to include instead of the console (default: the console,
    :func:`accord.web.console.install`; ``[]`` for the API alone). ``api_token``: the
    admin bearer token (default: env ``ACCORD_API_TOKEN``). ``hasher``: the Argon2id
    parameters (tests pass cheap ones).
    """
    deps = build_deps(runtime_or_deps, api_token=api_token, hasher=hasher)
    app = FastAPI(title="Accord", summary="Integration engine for medical imaging: JSON API",
                  version=_version(), docs_url=None, redoc_url=None, openapi_url=None)
    app.state.deps = deps
    for router in (api.router, api_workflow.router, api_admin.router, _docs_router(app)):
        app.include_router(router)
    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    if extra_routers is None:
        console.install(app)
    for router in extra_routers or ():
        app.include_router(router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(Guard, max_body=max_body, metrics=deps.metrics)
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        app.openapi_schema = get_openapi(title=app.title, version=app.version,
                                         summary=app.summary, routes=app.routes)
    return app.openapi_schema


def _version() -> str:
    from accord import __version__

    return str(__version__)


def setup_link(app: FastAPI, base_url: str) -> str | None:
    """The first-start setup link of ``app``'s store (None once a user exists)."""
    deps: WebDeps = app.state.deps
    return deps.auth.setup_link(base_url)
