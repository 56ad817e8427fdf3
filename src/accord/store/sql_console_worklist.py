"""The worklist page's queries: scheduled procedure steps as the modality's MWL query
sees them (DICOM PS3.4 K.6), one day at a time, keyset-paginated in start-time order.

Rule: the step keys are sorted and cut to one page on ``procedure_steps`` alone (its
station/date and date/modality indexes); only that page's orders and patients are read.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, or_, select

from accord.store.schema.workflow import wf_orders, wf_procedure_steps
from accord.store.sql_console import SEP, clamp, patients_by_id
from accord.store.sql_web import WorklistRow
from accord.store.workflow import codec
from accord.workflow.status import ON_WORKLIST


def worklist(conn: Connection, *, date: str, station: str = "", modality: str = "",
             cursor: str | None = None, limit: int = 100) -> tuple[list[WorklistRow], str | None]:
    """The steps a modality's MWL query gets for one day (YYYYMMDD), optionally one
    station AE and modality, in start-time order; ``(rows, next_cursor)``.

    The step keys are sorted and cut to the page first (``procedure_steps`` only), and
    only the page's orders are read, so a busy day costs one page of order reads."""
    limit = clamp(limit)
    s = wf_procedure_steps.c
    stmt = select(s.order_id, s.sps_id, s.start_at).where(
        s.start_date == date, s.status.in_(sorted(v.value for v in ON_WORKLIST)))
    if station:
        stmt = stmt.where(s.station_ae == station)
    if modality:
        stmt = stmt.where(s.modality == modality)
    if cursor:
        at, sep, rest = cursor.partition(SEP)
        order_id, sep2, sps = rest.partition(SEP)
        if not (sep and sep2):
            raise ValueError("invalid cursor")
        key = datetime.fromisoformat(at)
        stmt = stmt.where(or_(s.start_at > key, and_(s.start_at == key, or_(
            s.order_id > order_id, and_(s.order_id == order_id, s.sps_id > sps)))))
    keys = conn.execute(stmt.order_by(s.start_at, s.order_id, s.sps_id)
                        .limit(limit + 1)).all()
    o = wf_orders.c
    wanted = {k.order_id for k in keys}
    found = {r.id: codec.decode_order(r.doc) for r in conn.execute(
        select(o.id, o.doc).where(o.id.in_(wanted), o.held.is_(False)))} if wanted else {}
    people = patients_by_id(conn, [x.patient_id for x in found.values()])
    rows = []
    for k in keys[:limit]:
        order = found.get(k.order_id)  # a held order is not on the worklist
        step = next((st for st in order.steps if st.sps_id == k.sps_id), None) if order else None
        if order is not None and step is not None:
            rows.append(WorklistRow(order, people.get(order.patient_id), step))
    nxt = None
    if len(keys) > limit and keys[limit - 1].start_at is not None:
        last = keys[limit - 1]
        nxt = SEP.join((last.start_at.isoformat(), last.order_id, last.sps_id))
    return rows, nxt


def worklist_choices(conn: Connection, date: str) -> tuple[list[str], list[str]]:
    """The station AE titles and modalities that have steps on ``date`` (for the filter):
    two index-only reads (station/date and date/modality indexes), no row is fetched."""
    s = wf_procedure_steps.c
    day = date.replace("-", "")
    stations = conn.execute(select(s.station_ae).where(s.start_date == day, s.station_ae != "")
                            .distinct().limit(500)).scalars().all()
    modalities = conn.execute(select(s.modality).where(s.start_date == day, s.modality != "")
                              .distinct().limit(100)).scalars().all()
    return sorted(stations), sorted(modalities)
