"""``accord trace ACCESSION``: the life of one order across systems, and why it is where
it is: the order's trace (docs/model.md, "Trace") in plain words.

Reads the store (``--data DIR`` or ``--db URL``, else the config's): the order(s) with
that accession, every trace event of the order (messages, MPPS, merges) with what each
changed and the rules that mapped, filtered or rejected it, what went out about it (each
outbound message: to whom, its MSH-10, its status, the ACK received and its attempts),
the findings about it, and a plain-words answer to "is it on a worklist, and if not,
why not". ``--json`` prints the same as one JSON object. Exit 1 when nothing is known
about the accession.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from accord.cli import app, fail
from accord.config import load_config
from accord.hl7 import ack_code_in
from accord.store import OutboxRow, open_store
from accord.store.db import Database
from accord.store.workflow.repository import reading
from accord.workflow.findings import Finding
from accord.workflow.model import Order
from accord.workflow.status import ON_WORKLIST
from accord.workflow.trace import TraceEvent, explain

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML config file.")]
DataOpt = Annotated[Path | None, typer.Option("--data", help="Data directory (SQLite).")]
DbOpt = Annotated[str | None, typer.Option("--db", help="Store URL (postgresql://…).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object instead of text.")]
SENT_SHOWN = 1000  # outbound messages of one order


def worklist_words(order: Order) -> str:
    """Whether the order's steps are on a Modality Worklist, and if not, why not."""
    if order.hold_reason:
        return f"not on any worklist: held ({order.hold_reason})"
    if order.status not in ON_WORKLIST:
        return f"not on any worklist: the order is {order.status.value}"
    stations = sorted({ae for step in order.steps for ae in step.station_ae_titles})
    if not stations:
        return ("on the worklist without a Scheduled Station AE Title: only queries that "
                "do not ask for a station find it")
    starts = sorted(s.start for s in order.steps if s.start is not None)
    when = f", scheduled {starts[0].strftime('%Y-%m-%d %H:%M')} UTC" if starts else ""
    return f"on the worklist of {', '.join(stations)}{when}"


def _order_lines(order: Order) -> list[str]:
    return [
        f"order {order.id}: {order.status.value}; patient {order.patient_id}; "
        f"placer {order.placer_number or '-'}, filler {order.filler_number or '-'}; "
        f"Study Instance UID {order.study_instance_uid or '-'}",
        f"  procedure {order.procedure_code or '-'} {order.procedure_description}".rstrip(),
        f"  worklist: {worklist_words(order)}",
    ]


def _finding_line(f: Finding) -> str:
    seen = f"seen {f.count}×" if f.count > 1 else "seen once"
    return f"  [{f.resolution.value}] {f.kind.value} ({seen}): {f.detail}"


def _sent_line(r: OutboxRow) -> str:
    ack = ack_code_in(r.last_ack)
    when = r.delivered_at or r.created_at
    tries = f", {r.attempts} attempt(s)" if r.attempts != 1 else ""
    error = f": {r.last_error}" if r.last_error and r.status != "delivered" else ""
    return (f"  {when:%Y-%m-%d %H:%M:%S} to {r.destination}: {r.kind} {r.control_id} "
            f"{r.status}{f', ACK {ack}' if ack else ''}{tries}{error}")


def _sent_json(r: OutboxRow) -> dict[str, Any]:
    return {"destination": r.destination, "kind": r.kind, "control_id": r.control_id,
            "status": r.status, "ack_code": ack_code_in(r.last_ack), "attempts": r.attempts,
            "created_at": r.created_at.isoformat(),
            "delivered_at": r.delivered_at.isoformat() if r.delivered_at else None,
            "last_error": r.last_error}


def _as_json(accession: str, orders: list[Order], events: list[TraceEvent],
             findings: list[Finding], sent: list[OutboxRow]) -> dict[str, Any]:
    return {
        "accession": accession,
        "orders": [{"id": o.id, "status": o.status.value, "patient": o.patient_id,
                    "placer_number": o.placer_number, "filler_number": o.filler_number,
                    "study_instance_uid": o.study_instance_uid,
                    "procedure_code": o.procedure_code, "hold_reason": o.hold_reason,
                    "stations": sorted({a for s in o.steps for a in s.station_ae_titles}),
                    "worklist": worklist_words(o)} for o in orders],
        "events": [{"at": e.at.isoformat(), "message": e.message, "source": e.source,
                    "summary": e.summary, "outcome": e.outcome,
                    "changes": [{"attribute": c.attribute, "before": c.before,
                                 "after": c.after} for c in e.changes],
                    "rules": list(e.rules)} for e in events],
        "findings": [{"kind": f.kind.value, "detail": f.detail, "count": f.count,
                      "resolution": f.resolution.value,
                      "severity": f.severity.value if f.severity else None} for f in findings],
        "explanation": explain(events),
        "sent": [_sent_json(r) for r in sent],
    }


def collect(database: Database, accession: str) -> tuple[list[Order], list[TraceEvent],
                                                          list[Finding]]:
    """The orders with ``accession``, their trace (oldest first) and findings."""
    with reading(database, datetime.now(UTC)) as repo:
        orders = list(repo.orders_by("accession", accession))
        events: list[TraceEvent] = []
        for order_id in [o.id for o in orders] or [""]:  # one call per order: no repeats
            events += [e for e in repo.trace(order_id=order_id, accession=accession)
                       if not events or e.order_id == order_id or not e.order_id]
        findings = {f.key: f for f in repo.findings_about(accession=accession)}
    return orders, sorted(dict.fromkeys(events), key=lambda e: e.at), list(findings.values())


@app.command()
def trace(accession: str, config: ConfigOpt = None, data: DataOpt = None, db: DbOpt = None,
          as_json: JsonOpt = False) -> None:
    """The life of one order across systems, and why it is where it is."""
    cfg = load_config(config, {"store.data_dir": str(data) if data is not None else None,
                               "store.url": db})
    if not cfg.store.url and not (cfg.store.data_dir / "accord.db").exists():
        raise fail(f"no store in {cfg.store.data_dir} (give --data DIR or --db URL)")
    store = open_store(cfg.store.resolved_url())
    try:
        orders, events, findings = collect(store.database, accession)
        sent = list(store.list_outbox(accession=accession, oldest_first=True,
                                      limit=SENT_SHOWN).items)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(_as_json(accession, orders, events, findings, sent),
                              ensure_ascii=False, indent=2))
    else:
        lines = [f"accession {accession}"]
        for order in orders:
            lines += _order_lines(order)
        lines.append("history:")
        lines += [f"  {line}" for line in explain(events)]
        if sent:
            lines.append("sent:")
            lines += [_sent_line(r) for r in sent]
        if findings:
            lines.append("findings:")
            lines += [_finding_line(f) for f in findings]
        typer.echo("\n".join(lines))
    if not orders and not events and not findings:
        raise typer.Exit(1)
