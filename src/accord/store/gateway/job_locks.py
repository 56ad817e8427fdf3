"""Background job locks: pruning, reconciliation and worklist-log housekeeping run on one
node at a time, whichever node asks first.

Rules:
- SQLite (one machine): a lease row in ``job_locks`` held until ``now + ttl``; its
  holder renews it, and another node takes it over once it has run out.
- PostgreSQL (several nodes): a session advisory lock
  (:class:`accord.store.db.postgres.SessionLocks`), freed the moment its holder's
  session ends, so a dead node never blocks a job for a whole lease. The row is still
  written there, only so an operator can see which node runs what.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, or_, update
from sqlalchemy.exc import IntegrityError

from accord.store.db import Database
from accord.store.schema import job_locks

if TYPE_CHECKING:
    from accord.store.db.postgres import SessionLocks


class JobLocks:
    """The job locks of one store (see the module rules)."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._sessions: SessionLocks | None = None
        if database.dialect == "postgresql":
            from accord.store.db.postgres import SessionLocks

            self._sessions = SessionLocks(database.engine)

    def try_lock(self, name: str, node: str, ttl_seconds: float, now: datetime) -> bool:
        """Take (or renew) job ``name`` for ``node``; False when another node holds it."""
        until = now + timedelta(seconds=ttl_seconds)
        if self._sessions is not None:
            return self._sessions.try_lock(name, node, until)
        with self._db.write() as conn:
            renewed = conn.execute(
                update(job_locks)
                .where(
                    job_locks.c.name == name,
                    or_(job_locks.c.node == node, job_locks.c.lease_until < now),
                )
                .values(node=node, lease_until=until)
            )
            if renewed.rowcount == 1:
                return True
            try:
                with conn.begin_nested():
                    conn.execute(insert(job_locks).values(name=name, node=node, lease_until=until))
            except IntegrityError:
                return False
            return True

    def release(self, name: str, node: str) -> None:
        """Give job ``name`` back now, if ``node`` holds it through this store."""
        if self._sessions is not None:
            self._sessions.release(name, node)
            return
        with self._db.write() as conn:
            conn.execute(
                delete(job_locks).where(job_locks.c.name == name, job_locks.c.node == node)
            )

    def close(self) -> None:
        """Release every job this store holds (PostgreSQL; SQLite leases run out)."""
        if self._sessions is not None:
            self._sessions.close()
