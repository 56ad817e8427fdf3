"""The DICOM log as the console and the JSON API list it: the worklist queries and MPPS
the SCP answered, newest first, by station, kind, accession and time.

Rules: newest first by the time of the request, keyset-paginated on (time, id)
(worklist queries are written a few seconds after they were answered: the time, not the
row's id, is their place in the list); the time index (``ix_dicom_events_at``) drives
the order, station and kind narrow it; ``since`` is inclusive and ``until`` exclusive,
the bounds the dashboard counts with.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select

from accord.store.db import Database
from accord.store.db.paging import SEP, clamp, cursor_time, cut, split_cursor
from accord.store.records import Page
from accord.store.schema.workflow import wf_dicom_events
from accord.store.workflow.dicom_events import DicomEvent, event_of


class DicomLogView:
    """The DICOM log of one database (see the module rules)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def list(self, *, station: str | None = None, kind: str | None = None,
             accession: str | None = None, since: datetime | None = None,
             until: datetime | None = None, cursor: str | None = None,
             limit: int = 100) -> Page[DicomEvent]:
        """Requests matching every given filter, newest first; a bad cursor raises
        ValueError."""
        limit = clamp(limit)
        e = wf_dicom_events.c
        where: list[ColumnElement[bool]] = []
        for column, value in ((e.station, station), (e.kind, kind), (e.accession, accession)):
            if value is not None:
                where.append(column == value)
        if since is not None:
            where.append(e.at >= since)
        if until is not None:
            where.append(e.at < until)
        after = split_cursor(cursor, 2)
        if after:
            at, ident = cursor_time(after[0]), int(after[1])
            where.append(or_(e.at < at, and_(e.at == at, e.id < ident)))
        with self._db.read() as conn:
            rows = conn.execute(select(wf_dicom_events).where(*where)
                                .order_by(e.at.desc(), e.id.desc()).limit(limit + 1)).all()
        page, nxt = cut(rows, limit, lambda r: f"{r.at.isoformat()}{SEP}{r.id}")
        return Page(tuple(event_of(r) for r in page), nxt)
