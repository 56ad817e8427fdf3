"""The dashboard's client-connections panel: per listener and client address, what the
admission rules did (junk, silent, shed, refused, denied, TLS failures).

Rule: the panel is its own fragment (``_peers_panel.html`` is included by the dashboard
and loads ``/dashboard/peers`` with htmx), so the dashboard page knows nothing of it.
The counters are this node's, since it started (``WebDeps.peers``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from accord.web.auth import Principal
from accord.web.console.render import page, render
from accord.web.deps import get_deps
from accord.web.permissions import Action

router = APIRouter(include_in_schema=False)
TROUBLE = ("junk", "silent", "shed", "refused", "denied", "tls_failed")


@router.get("/dashboard/peers", response_class=HTMLResponse)
def peers_panel(request: Request,
                _: Annotated[Principal, Depends(page(Action.STATS_READ))]) -> Response:
    """The panel's table: addresses with trouble first, then by listener and address."""
    rows = get_deps(request).peers()
    rows.sort(key=lambda r: (-sum(r[k] for k in TROUBLE), r["listener"], r["address"]))
    return render(request, "_peers.html", rows=rows[:200], more=max(len(rows) - 200, 0))
