"""The worklist as the console and the JSON API show it: scheduled procedure steps as a
modality's MWL query sees them (DICOM PS3.4 K.6), in start order.

Rules:
- A step is listed when its order is in a status the worklist serves (scheduled,
  arrived) and is not held, and (given the worklist's horizon,
  ``dicom.worklist_horizon_hours``) it has no start or started after it, as the MWL
  serves it. These conditions are in the SQL that cuts the page, so a page is never
  short while more steps match (a held order is skipped by the query, not by the code
  that reads the page).
- The page is cut on ``procedure_steps`` alone (its station/date and date/modality
  indexes; a step row carries its order's status and hold flag); only the page's orders
  and patients are then read, so a busy day costs one page of reads.
- Keyset-paginated on (start date, start time, order id, SPS ID); steps without a start
  time have start date "" and come first.
- Each row carries the open findings that concern it (by its accession, and the
  ``unmapped_code`` finding of its procedure code when the step has no station), so the
  page flags a row a modality will show wrongly, or not at all, and links to why: two
  indexed reads for the whole page.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, or_, select

from accord.store.db import Database
from accord.store.db.paging import SEP, clamp, cursor_time, cut, split_cursor
from accord.store.records import Page
from accord.store.schema.workflow import wf_findings, wf_orders, wf_procedure_steps
from accord.store.views.findings import StoredFinding
from accord.store.workflow import codec
from accord.store.workflow.repository import patients_by_id
from accord.workflow.findings import FindingKind, Resolution
from accord.workflow.model import Order, Patient, ProcedureStep
from accord.workflow.status import ON_WORKLIST

CHOICES = 500  # station AE titles offered by the page's filter, at most


@dataclass(frozen=True, slots=True)
class WorklistRow:
    """One scheduled procedure step with its order and patient, as the MWL serves it."""

    order: Order
    patient: Patient | None
    step: ProcedureStep
    findings: tuple[StoredFinding, ...] = ()  # open ones about this row (module rules)

    @property
    def stationless(self) -> bool:
        """No station is scheduled: a modality asking for its own steps never sees it."""
        return not self.step.station_ae_titles


def _after(after: list[str]) -> ColumnElement[bool]:
    """Strictly after (start date, start time, order id, SPS ID)."""
    s = wf_procedure_steps.c
    date, at, order_id, sps_id = after
    same_time = or_(s.order_id > order_id, and_(s.order_id == order_id, s.sps_id > sps_id))
    if not date:
        return or_(s.start_date > "", and_(s.start_date == "", same_time))
    when = cursor_time(at)
    return or_(s.start_date > date, and_(s.start_date == date, or_(
        s.start_at > when, and_(s.start_at == when, same_time))))


def _key(found: tuple[Any, WorklistRow]) -> str:
    k = found[0]
    at = k.start_at.isoformat() if k.start_at is not None else ""
    return SEP.join((k.start_date, at, k.order_id, k.sps_id))


def step_rows(conn: Connection, *, station: str | None = None, modality: str | None = None,
              date: str | None = None, cursor: str | None = None,
              limit: int = 100, started_after: datetime | None = None) -> Page[WorklistRow]:
    """The steps the MWL serves, by station AE, modality and start date (YYYYMMDD);
    ``started_after``: the worklist's horizon (a step without a start stays)."""
    limit = clamp(limit)
    s = wf_procedure_steps.c
    where: list[ColumnElement[bool]] = [s.status.in_(sorted(v.value for v in ON_WORKLIST)),
                                        s.held.is_(False)]
    if started_after is not None:
        where.append(or_(s.start_at.is_(None), s.start_at >= started_after))
    for col, value in ((s.station_ae, station), (s.modality, modality), (s.start_date, date)):
        if value:
            where.append(col == value)
    after = split_cursor(cursor, 4)
    if after:
        where.append(_after(after))
    keys = conn.execute(
        select(s.start_date, s.start_at, s.order_id, s.sps_id)
        .where(*where)
        .order_by(s.start_date, s.start_at, s.order_id, s.sps_id)
        .limit(limit + 1)
    ).all()
    wanted = sorted({k.order_id for k in keys})
    orders = {r.id: codec.decode_order(r.doc) for r in conn.execute(
        select(wf_orders.c.id, wf_orders.c.doc).where(wf_orders.c.id.in_(wanted)))
    } if wanted else {}
    people = patients_by_id(conn, (o.patient_id for o in orders.values()))
    about = _findings(conn, orders.values())
    rows: list[tuple[Any, WorklistRow]] = []
    for k in keys:
        order = orders[k.order_id]
        # The step rows are rewritten with the order's document: the step is in it.
        step = next((st for st in order.steps if st.sps_id == k.sps_id), None)
        if step is not None:
            found = about.get(order.accession, [])
            if not step.station_ae_titles:
                found = found + about.get(f"code:{order.procedure_code}", [])
            rows.append((k, WorklistRow(order, people.get(order.patient_id), step,
                                        tuple(found))))
    page, nxt = cut(rows, limit, _key)
    return Page(tuple(row for _, row in page), nxt)


def _findings(conn: Connection, orders: Iterable[Order]) -> dict[str, list[StoredFinding]]:
    """Open findings by accession, and open ``unmapped_code`` findings by ``code:<code>``
    (their subject), for the page's orders."""
    f = wf_findings.c
    accessions = sorted({o.accession for o in orders if o.accession})
    out: dict[str, list[StoredFinding]] = {}
    if accessions:
        for r in conn.execute(select(f.id, f.doc).where(
                f.accession.in_(accessions), f.resolution == Resolution.OPEN.value)
                .order_by(f.id)):
            sf = StoredFinding(int(r.id), codec.decode_finding(r.doc))
            out.setdefault(sf.finding.accession, []).append(sf)
    codes = {o.procedure_code for o in orders if any(not s.station_ae_titles for s in o.steps)}
    if codes:
        for r in conn.execute(select(f.id, f.doc).where(
                f.kind == FindingKind.UNMAPPED_CODE.value,
                f.resolution == Resolution.OPEN.value).limit(CHOICES)):
            sf = StoredFinding(int(r.id), codec.decode_finding(r.doc))
            if sf.finding.subject in codes and not sf.finding.accession:
                out.setdefault(f"code:{sf.finding.subject}", []).append(sf)
    return out


class WorklistView:
    """The worklist of one database (see the module rules)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def steps(self, *, station: str | None = None, modality: str | None = None,
              date: str | None = None, cursor: str | None = None,
              limit: int = 100, started_after: datetime | None = None) -> Page[WorklistRow]:
        """The steps the MWL serves, in start order (those started after
        ``started_after``, the worklist's horizon, or without a start); a bad cursor
        raises ValueError."""
        with self._db.read() as conn:
            return step_rows(conn, station=station, modality=modality, date=date,
                             cursor=cursor, limit=limit, started_after=started_after)

    def choices(self, date: str) -> tuple[list[str], list[str]]:
        """The station AE titles and modalities with steps on ``date`` (for the page's
        filter): two index-only reads, no row fetched."""
        s = wf_procedure_steps.c
        day = date.replace("-", "")
        with self._db.read() as conn:
            stations = conn.execute(
                select(s.station_ae).where(s.start_date == day, s.station_ae != "")
                .distinct().limit(CHOICES)).scalars().all()
            modalities = conn.execute(
                select(s.modality).where(s.start_date == day, s.modality != "")
                .distinct().limit(100)).scalars().all()
        return sorted(stations), sorted(modalities)
