"""Retention beyond the message gateway: trace events, resolved findings, MPPS instances
and the audit log, each kept for its own number of days and pruned in blocks
(docs/operations.md, "Retention"). Received messages are pruned by
:meth:`accord.store.gateway.store.SqlStore.prune`.

Rules:
- Each block is one short transaction of at most ``block`` rows, so pruning a year of
  backlog never holds a lock for long; a round goes on until a block comes back short.
- What is still needed is never pruned: an open finding (whatever its age), an MPPS
  instance still IN PROGRESS.
- Trace events and the audit log are append-only, their ids growing with time: a block
  is read from the oldest id up and stops at the first row that is not old enough, so a
  round costs what it deletes (no index on the time column, no table scan).
- The audit log's floor (never less than ``store.retention.audit_floor`` days) is checked
  where the settings are read (``accord.config``); here a cutoff is a cutoff.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy import Column, Connection, Table, delete, select

from accord.store.db import Database
from accord.store.schema import audit_log, wf_findings, wf_mpps, wf_trace_events

KINDS = ("trace", "findings", "mpps", "audit")
"""What this module prunes, as named in ``store.retention``."""


def _oldest_prefix(table: Table, at: Column[datetime]) -> Callable[
        [Connection, datetime, int], int]:
    """A block step for an append-only table: the oldest rows by id, up to the first row
    at or after the cutoff."""
    key = table.c.id

    def step(conn: Connection, before: datetime, block: int) -> int:
        rows = conn.execute(select(key, at).order_by(key).limit(block)).all()
        ids = []
        for row_id, when in rows:
            if when >= before:
                break
            ids.append(row_id)
        if ids:
            conn.execute(delete(table).where(key.in_(ids)))
        return len(ids)  # short of ``block`` when it reached the cutoff or the end

    return step


def _resolved_findings(conn: Connection, before: datetime, block: int) -> int:
    f = wf_findings.c
    ids = list(conn.scalars(select(f.id).where(f.last_seen < before, f.resolution != "open")
                            .order_by(f.last_seen).limit(block)))
    if ids:
        conn.execute(delete(wf_findings).where(f.id.in_(ids)))
    return len(ids)


def _finished_mpps(conn: Connection, before: datetime, block: int) -> int:
    m = wf_mpps.c
    uids = list(conn.scalars(select(m.sop_instance_uid)
                             .where(m.updated_at < before, m.status != "IN PROGRESS")
                             .order_by(m.updated_at).limit(block)))
    if uids:
        conn.execute(delete(wf_mpps).where(m.sop_instance_uid.in_(uids)))
    return len(uids)


STEPS: Mapping[str, Callable[[Connection, datetime, int], int]] = {
    "trace": _oldest_prefix(wf_trace_events, wf_trace_events.c.at),
    "findings": _resolved_findings,
    "mpps": _finished_mpps,
    "audit": _oldest_prefix(audit_log, audit_log.c.at),
}


class Retention:
    """Prunes the tables of :data:`KINDS` on one database (module rules)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def prune(self, cutoffs: Mapping[str, datetime], block: int = 1000) -> dict[str, int]:
        """Delete, per kind in ``cutoffs``, what is older than its cutoff; returns how
        many rows went, per kind."""
        return {kind: self._prune(STEPS[kind], before, max(1, block))
                for kind, before in cutoffs.items()}

    def _prune(self, step: Callable[[Connection, datetime, int], int], before: datetime,
               block: int) -> int:
        total = 0
        while True:
            with self._db.write() as conn:
                done = step(conn, before, block)
            total += done
            if done < block:
                return total
