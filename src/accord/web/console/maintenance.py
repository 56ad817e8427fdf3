"""The dashboard's maintenance panel: the store's size and its growth per day, and, for
admins, the "Reload configuration" action (as SIGHUP: ``accord.reload``; audited).

The panel is its own partial (``_maintenance.html``), loaded by htmx from
``/dashboard/maintenance`` so the dashboard page only includes its placeholder; the size
changes slowly, so it refreshes every minute.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from accord.web.api_admin import reload_config
from accord.web.auth import Principal
from accord.web.console.render import page, render, with_query
from accord.web.deps import get_deps, require
from accord.web.permissions import Action, allowed

router = APIRouter(include_in_schema=False)


@router.get("/dashboard/maintenance", response_class=HTMLResponse)
def maintenance_panel(request: Request,
                      principal: Annotated[Principal, Depends(page(Action.STATS_READ))]
                      ) -> Response:
    """The panel's body (htmx)."""
    size = get_deps(request).views.storage.size()
    return render(request, "_maintenance.html", size=size,
                  can_reload=allowed(principal.role, Action.CONFIG_WRITE))


@router.post("/config/reload")
async def reload_config_page(
        request: Request,
        principal: Annotated[Principal, Depends(require(Action.CONFIG_WRITE))]) -> Response:
    """The panel's "Reload configuration" button: back to the dashboard with what was
    applied, or why the file was refused."""
    try:
        done = await reload_config(request, get_deps(request))
    except HTTPException as exc:
        return RedirectResponse(with_query("/", flash=str(exc.detail), failed="1"), 303)
    said = [f"Configuration reloaded. Applied: {', '.join(done['applied']) or 'no change'}."]
    if done["restart"]:
        said.append(f"Waiting for a restart: {', '.join(done['restart'])}.")
    said += [str(note) for note in done["notes"]]
    return RedirectResponse(with_query("/", flash=" ".join(said)), 303)
