"""The reviewer's pages: findings (what each kind means, resolving one) and potential
duplicate patients (side by side, merge, or mark as distinct).

Rules:
- A finding page explains its kind in the words of ``accord.workflow.findings`` (each
  kind's label and explanation live with the kind).
- A merge goes through the engine: an ADT^A40 injected into ingest
  (``accord.web.merge``), stored, applied, traced and sent downstream like a received
  A40; the pair's finding is resolved only once the merge was applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from accord.store.views.findings import StoredFinding
from accord.store.views.orders import OrderRow
from accord.web.auth import Principal
from accord.web.console.render import page, patient_ids_in, render, with_query
from accord.web.deps import get_deps, record, require
from accord.web.merge import merge_message
from accord.web.permissions import Action, allowed
from accord.workflow.findings import FindingKind, Resolution
from accord.workflow.identity import COMPARISONS, MatchResult
from accord.workflow.model import Patient

router = APIRouter(include_in_schema=False)
PAGE = 100


@router.get("/findings", response_class=HTMLResponse)
def findings_page(request: Request,
                  _: Annotated[Principal, Depends(page(Action.FINDINGS_READ))],
                  kind: str = "", resolution: str = "open", accession: str = "",
                  cursor: str = "") -> Response:
    kinds = list(FindingKind)
    known = {k.value for k in kinds}
    if (kind and kind not in known) or resolution not in ("", "open", "resolved", "ignored"):
        raise HTTPException(400, "unknown kind or state")
    try:
        found = get_deps(request).views.findings.list(
            kind=kind or None, resolution=resolution or None,
            accession=accession[:199] or None, cursor=cursor or None, limit=PAGE)
    except ValueError as exc:
        raise HTTPException(400, "invalid cursor") from exc
    people, orders = _named(request, found.items)
    record(request, Action.FINDINGS_READ.value, object_type="findings",
           patient_ids=list(people), count=len(found.items))
    nxt = found.next_cursor
    return render(request, "findings.html", rows=found.items, kinds=kinds, kind=kind,
                  chosen=FindingKind(kind) if kind else None, people=people, orders=orders,
                  resolution=resolution, accession=accession,
                  next_url=with_query("/findings", kind=kind, resolution=resolution,
                                      accession=accession, cursor=nxt) if nxt else "")


def _named(request: Request, found: Iterable[StoredFinding]
           ) -> tuple[dict[str, Patient], dict[str, OrderRow]]:
    """The patients and orders findings name (by id, in their detail too, and by
    accession), to show people and orders instead of ids."""
    found = list(found)
    views = get_deps(request).views
    ids = {i for sf in found for i in (sf.finding.patient_id, sf.finding.subject,
                                       *patient_ids_in(sf.finding.detail)) if i}
    people = views.patients.by_id(ids)
    return people, views.orders.by_accession(sf.finding.accession for sf in found)


@router.get("/findings/{finding_id}", response_class=HTMLResponse)
def finding_page(request: Request, finding_id: int,
                 principal: Annotated[Principal, Depends(page(Action.FINDINGS_READ))]
                 ) -> Response:
    deps = get_deps(request)
    sf = deps.views.findings.get(finding_id)
    if sf is None:
        raise HTTPException(404, "no such finding")
    people, orders = _named(request, [sf])
    record(request, Action.FINDINGS_READ.value, object_type="finding",
           object_id=str(finding_id), patient_ids=list(people))
    return render(request, "finding.html", sf=sf, people=people, orders=orders,
                  refs=[_message_search(ref) for ref in sf.finding.messages],
                  can_resolve=deps.may(principal.role, Action.FINDINGS_RESOLVE),
                  can_dups=deps.may(principal.role, Action.DUPLICATES_READ))


def _message_search(ref: str) -> tuple[str, str]:
    """A finding's message ref (``SENDER/MSH-10``, or ``MPPS <uid>``) and the search that
    finds the message it names ("" for an MPPS: the DICOM log has it)."""
    sender, sep, control_id = ref.rpartition("/")
    if not sep or ref.startswith("MPPS "):
        return ref, ""
    return ref, with_query("/messages", sender=sender, control_id=control_id)


@router.post("/findings/{finding_id}/resolve")
async def resolve(request: Request, finding_id: int,
                  _: Annotated[Principal, Depends(require(Action.FINDINGS_RESOLVE))],
                  resolution: Annotated[str, Form(max_length=16)],
                  note: Annotated[str, Form(max_length=500)] = "") -> Response:
    if resolution not in ("resolved", "ignored"):
        raise HTTPException(400, "resolution must be resolved or ignored")
    deps = get_deps(request)
    who = request.state.principal.name
    done = await run_in_threadpool(deps.views.findings.resolve, finding_id,
                                   Resolution(resolution), f"{resolution} by {who}: {note}"
                                   if note else f"{resolution} by {who}", deps.clock.now())
    if done is None:
        raise HTTPException(404, "no such finding")
    await run_in_threadpool(record, request, Action.FINDINGS_RESOLVE.value,
                            object_type="finding", object_id=str(finding_id),
                            patient_ids=[done.finding.patient_id],
                            detail={"resolution": resolution})
    return RedirectResponse(with_query(f"/findings/{finding_id}",
                                       flash=f"Finding {resolution}."), 303)


# --- duplicates --------------------------------------------------------------------------
@router.get("/duplicates", response_class=HTMLResponse)
def duplicates_page(request: Request,
                    _: Annotated[Principal, Depends(page(Action.DUPLICATES_READ))],
                    cursor: str = "") -> Response:
    try:
        found = get_deps(request).views.findings.duplicates(cursor=cursor or None, limit=PAGE)
    except ValueError as exc:
        raise HTTPException(400, "invalid cursor") from exc
    record(request, Action.DUPLICATES_READ.value, object_type="duplicates",
           patient_ids=[p.id for pair in found.items for p in (pair.a, pair.b) if p],
           count=len(found.items))
    nxt = found.next_cursor
    return render(request, "duplicates.html", pairs=found.items,
                  next_url=with_query("/duplicates", cursor=nxt) if nxt else "")


# comparison -> its label and each side's value as shown
_COMPARED: dict[str, tuple[str, Callable[[Patient], str]]] = {
    "family_name": ("Family name", lambda p: p.demographics.name.family),
    "given_name": ("Given name", lambda p: p.demographics.name.given),
    "birth_date": ("Birth date", lambda p: p.demographics.birth_date.isoformat()
                   if p.demographics.birth_date else ""),
    "sex": ("Sex", lambda p: p.demographics.sex),
    "contact": ("Address and phone", lambda p: " · ".join(v for v in (
        ", ".join(x for x in (p.demographics.address.street, p.demographics.address.city,
                              p.demographics.address.postal_code) if x),
        p.demographics.phone) if v)),
    "national_id": ("National ID", lambda p: p.demographics.national_id),
    "mothers_maiden_name": ("Mother's maiden name",
                            lambda p: p.demographics.mothers_maiden_name),
}
_TERMS = {"prior": "Prior (population)", "household": "Household relation"}


@dataclass(frozen=True, slots=True)
class CompareRow:
    """One compared field of a pair: the values, the outcome (exact, similar,
    different, missing: both empty or one side empty), the level as the matcher named
    it, and the bits it added to the score (of which the term-frequency effect)."""

    label: str
    a: str
    b: str
    outcome: str
    level: str
    weight: float
    tf: float


def _outcome(name: str, level: str) -> str:
    levels = dict(COMPARISONS)[name]
    if level == "missing":
        return "missing"
    if level == levels[0]:
        return "exact"
    return "different" if level == levels[-1] else "similar"


def compare_rows(a: Patient, b: Patient, result: MatchResult) -> list[CompareRow]:
    """The side-by-side rows of one comparison (``result``, of A against B)."""
    rows = []
    for term in result.fields:
        if term.name not in _COMPARED:
            continue
        label, value = _COMPARED[term.name]
        rows.append(CompareRow(label, value(a), value(b), _outcome(term.name, term.level),
                               term.level.replace("_", " "), term.weight, term.tf))
    return rows


def summary(rows: Iterable[CompareRow]) -> list[tuple[str, list[str]]]:
    """The outcomes and their fields, in the table's order: what the summary says."""
    by: dict[str, list[str]] = {o: [] for o in ("exact", "similar", "different", "missing")}
    for row in rows:
        by[row.outcome].append(row.label if row.outcome != "similar"
                               else f"{row.label} ({row.level})")
    return [(o, fields) for o, fields in by.items() if fields]


def other_rows(a: Patient, b: Patient) -> list[tuple[str, str, str]]:
    """Shown for the reviewer, not compared by the matcher."""
    def ident(p: Patient) -> str:
        return ", ".join(f"{i.value} · {i.authority}" for i in p.identifiers)

    return [("Middle name", a.demographics.name.middle, b.demographics.name.middle),
            ("Name suffix", a.demographics.name.suffix, b.demographics.name.suffix),
            ("Identifiers (PID-3)", ident(a), ident(b))]


@router.get("/duplicates/{finding_id}", response_class=HTMLResponse)
def duplicate_page(request: Request, finding_id: int,
                   principal: Annotated[Principal, Depends(page(Action.DUPLICATES_READ))]
                   ) -> Response:
    sf, a, b = _pair(request, finding_id)
    views = get_deps(request).views.findings
    result = views.explain(a, b)
    rows = compare_rows(a, b, result)
    group = views.group(sf.finding)
    record(request, Action.DUPLICATES_READ.value, object_type="duplicate",
           object_id=str(finding_id), patient_ids=[a.id, b.id])
    terms = [(_TERMS[t.name], t.level.replace("_", " "), t.weight) for t in result.fields
             if t.name in _TERMS]
    return render(request, "duplicate.html", finding=sf.finding, finding_id=finding_id,
                  a=a, b=b, rows=rows, summary=summary(rows), others=other_rows(a, b),
                  terms=terms, result=result, score=float(sf.finding.score or 0.0),
                  group=group if len(group.patients) > 2 else None,
                  open=sf.finding.resolution is Resolution.OPEN,
                  can_merge=allowed(principal.role, Action.PATIENTS_MERGE))


def _pair(request: Request, finding_id: int) -> tuple[StoredFinding, Patient, Patient]:
    pair = get_deps(request).views.findings.pair(finding_id)
    if pair is None:
        raise HTTPException(404, "no such duplicate pair")
    if pair.a is None or pair.b is None:
        raise HTTPException(404, "a patient of this pair no longer exists")
    return pair.finding, pair.a, pair.b


@router.post("/duplicates/{finding_id}/merge")
async def merge(request: Request, finding_id: int,
                principal: Annotated[Principal, Depends(require(Action.PATIENTS_MERGE))],
                survivor: Annotated[str, Form(max_length=1)]) -> Response:
    """Merge the pair: stored and applied as an A40 from Accord, sent downstream."""
    if survivor not in ("a", "b"):
        raise HTTPException(400, "survivor must be a or b")
    deps = get_deps(request)
    sf, a, b = await run_in_threadpool(_pair, request, finding_id)
    if sf.finding.resolution is not Resolution.OPEN:
        raise HTTPException(409, "this pair was already decided")
    if deps.inject is None:
        raise HTTPException(409, "merging is not available on this node")
    keep, gone = (a, b) if survivor == "a" else (b, a)
    payload = merge_message(keep, gone, deps.control_ids.next(), deps.clock.now())
    message_id = await deps.inject(payload, f"console:{principal.name}")
    stored = await run_in_threadpool(deps.store.get_message, message_id)
    ok = stored.status == "processed"
    if ok:
        await run_in_threadpool(partial(deps.views.findings.resolve, same_person=True),
                                finding_id, Resolution.RESOLVED,
                                f"merged by {principal.name}", deps.clock.now())
    await run_in_threadpool(record, request, Action.PATIENTS_MERGE.value,
                            object_type="patient", object_id=keep.id,
                            patient_ids=[keep.id, gone.id],
                            outcome="ok" if ok else "failed",
                            detail={"merged": gone.id, "message_id": message_id})
    flash = "Merged; ADT^A40 queued downstream." if ok else "The merge was not applied."
    return RedirectResponse(with_query(f"/duplicates/{finding_id}", flash=flash,
                                       failed="" if ok else "1"), 303)


@router.post("/duplicates/{finding_id}/distinct")
async def not_duplicate(request: Request, finding_id: int,
                        principal: Annotated[Principal, Depends(require(Action.PATIENTS_MERGE))]
                        ) -> Response:
    deps = get_deps(request)
    _, a, b = await run_in_threadpool(_pair, request, finding_id)
    await run_in_threadpool(deps.views.findings.resolve, finding_id, Resolution.IGNORED,
                            f"not a duplicate ({principal.name})", deps.clock.now())
    await run_in_threadpool(record, request, Action.FINDINGS_RESOLVE.value,
                            object_type="duplicate", object_id=str(finding_id),
                            patient_ids=[a.id, b.id], detail={"resolution": "distinct"})
    return RedirectResponse(with_query(f"/duplicates/{finding_id}",
                                       flash="Marked as not a duplicate."), 303)
