"""The DICOM log's writes: one row per request the SCP answered (a worklist C-FIND, an
MPPS N-CREATE or N-SET), with the calling AE title (``dicom_events``).

Rules:
- An MPPS row is written on the caller's transaction (:meth:`DicomEventLog.add_in`),
  the one that stores the MPPS and applies its status: the log never shows an MPPS the
  store does not hold, nor misses one it does.
- Worklist queries change nothing: the bridge gathers their rows and writes them in one
  transaction every few seconds (:meth:`DicomEventLog.add`), so a C-FIND never waits for
  a commit.
- Rows older than the configured age are deleted in blocks (:meth:`DicomEventLog.prune`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from accord.store import Tx
from accord.store.db import Database
from accord.store.db.sanitize import clean_text
from accord.store.gateway.store import connection_of
from accord.store.schema.workflow import wf_dicom_events

KINDS = ("find", "mpps")


@dataclass(frozen=True, slots=True)
class DicomEvent:
    """One request the SCP answered: ``kind`` ``find`` (``matches``: the items sent;
    ``status`` ``ok`` or ``refused``) or ``mpps`` (``status``: the MPPS status it set,
    ``sop_instance_uid``, ``accession`` of the step it references)."""

    at: datetime
    kind: str
    station: str  # the calling AE title
    peer: str = ""
    status: str = ""
    matches: int = 0
    accession: str = ""
    sop_instance_uid: str = ""
    summary: str = ""
    id: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"DICOM event kind must be one of {KINDS}")


def _row(e: DicomEvent) -> dict[str, Any]:
    return {"at": e.at, "kind": e.kind, "station": clean_text(e.station)[:16],
            "peer": clean_text(e.peer)[:64], "status": clean_text(e.status)[:16],
            "matches": e.matches, "accession": clean_text(e.accession)[:199],
            "sop_instance_uid": clean_text(e.sop_instance_uid)[:64],
            "summary": clean_text(e.summary)[:255]}


def event_of(row: Any) -> DicomEvent:
    """A ``dicom_events`` row as a value."""
    m = row._mapping
    return DicomEvent(at=m["at"], kind=m["kind"], station=m["station"], peer=m["peer"],
                      status=m["status"], matches=m["matches"], accession=m["accession"],
                      sop_instance_uid=m["sop_instance_uid"], summary=m["summary"],
                      id=m["id"])


def add_events(conn: Connection, events: Sequence[DicomEvent]) -> None:
    if events:
        conn.execute(insert(wf_dicom_events), [_row(e) for e in events])


class DicomEventLog:
    """Writes the DICOM log of one database (see the module rules)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def add_in(self, tx: Tx, event: DicomEvent) -> None:
        """One row, on the caller's transaction (an MPPS)."""
        add_events(connection_of(tx), [event])

    def add(self, events: Sequence[DicomEvent]) -> None:
        """Rows in a transaction of their own (the worklist queries gathered)."""
        if events:
            with self._db.write() as conn:
                add_events(conn, events)

    def prune(self, before: datetime, block: int = 1000) -> int:
        """Delete one block of rows older than ``before``; how many were deleted."""
        e = wf_dicom_events.c
        with self._db.write() as conn:
            ids = list(conn.scalars(select(e.id).where(e.at < before).order_by(e.id)
                                    .limit(block)))
            if ids:
                conn.execute(delete(wf_dicom_events).where(e.id.in_(ids)))
        return len(ids)
