"""PostgreSQL specifics: the psycopg 3 driver, row locks for claims, advisory locks.

Rules: only what must differ from SQLite lives here. Several nodes share one database,
so a claim locks the rows it hands out with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL 15
§SELECT "The Locking Clause") and schema upgrades run under a transaction-level advisory
lock (§9.27.10) so nodes starting together do not race.

Background jobs (pruning, reconciliation) run on one node at a time under a
*session-level* advisory lock (``pg_try_advisory_lock``, §9.27.10), held by
:class:`SessionLocks` on one dedicated connection per job for as long as the node holds the
job. Why not the lease row SQLite uses: a lease outlives its holder, so when a node dies
every other node waits for the lease to run out (twice the job's interval: up to two
hours for hourly pruning). A session lock dies with its session: a crashed process's
connection closes and PostgreSQL frees the lock at once; a host that vanishes without a
FIN is found by the TCP keepalives below (:data:`SESSION_OPTIONS`) and its lock freed
within about 60 s. The ``job_locks`` row is still written (holder and time) so an
operator can see which node runs what; on PostgreSQL it decides nothing.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Connection, Engine, Select, Table, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from accord.errors import ConfigError
from accord.store.db.errors import driver_error

# Arbitrary constant naming "Accord schema migration" in pg_advisory_xact_lock.
MIGRATION_LOCK_ID = 0x4143_434F_5244_0001

S = TypeVar("S", bound=Select[Any])


def psycopg_url(url: str) -> URL:
    """``postgresql://…`` (or ``postgres://…``) mapped to the psycopg 3 driver."""
    try:
        parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    except ArgumentError as exc:
        raise ConfigError(f"invalid PostgreSQL URL: {exc}") from exc
    if parsed.drivername in ("postgresql", "postgresql+psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    raise ConfigError(f"not a PostgreSQL URL for psycopg 3: {parsed.drivername}")


# A node host that vanishes (power loss, partition) sends no FIN: without keepalives its
# open transaction keeps its row locks and dedupe claims for hours, and every other node
# resending that message or claiming that queue head waits on them. Server side: probe the
# client after 30 s idle, drop it ~30 s later, and end a transaction left idle for 60 s
# (Accord never leaves one idle; §20.11 idle_in_transaction_session_timeout, §20.3.1
# tcp_keepalives_*). Client side the same probes find a vanished server.
SESSION_OPTIONS = (
    "-c idle_in_transaction_session_timeout=60000 -c tcp_keepalives_idle=30 "
    "-c tcp_keepalives_interval=10 -c tcp_keepalives_count=3"
)
CLIENT_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
                     "keepalives_count": 3}


def _session_args(parsed: URL) -> dict[str, Any]:
    """Keepalives, and :data:`SESSION_OPTIONS` unless the URL sets its own ``options``."""
    connect_args: dict[str, Any] = dict(CLIENT_KEEPALIVES)
    if "options" not in parsed.query:
        connect_args["options"] = SESSION_OPTIONS
    return connect_args


def create_postgres_engine(url: str) -> Engine:
    """A pooled engine; ``pool_pre_ping`` so nodes reconnect after a database restart;
    keepalives and an idle-transaction timeout so a vanished node's locks are freed.
    An ``options`` parameter in the URL replaces :data:`SESSION_OPTIONS`."""
    parsed = psycopg_url(url)
    connect_args = _session_args(parsed)
    return create_engine(
        parsed,
        pool_pre_ping=True,
        pool_size=8,
        max_overflow=8,
        pool_recycle=1800,
        connect_args=connect_args,
    )


def lock_claimed(stmt: S, table: Table) -> S:
    """Lock the candidate rows of a claim, skipping rows another node is claiming."""
    return stmt.with_for_update(skip_locked=True, of=table)


def lock_migrations(conn: Connection) -> None:
    """Serialise schema upgrades across nodes until this transaction ends."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_ID})


# --- background job locks ----------------------------------------------------------------

_RECORD_HOLDER = (
    "INSERT INTO job_locks (name, node, lease_until) VALUES (%s, %s, %s) "
    "ON CONFLICT (name) DO UPDATE SET node = excluded.node, lease_until = excluded.lease_until"
)


def job_lock_key(name: str) -> int:
    """The signed 64-bit advisory lock key of background job ``name`` (stable across
    nodes and Python versions, unlike ``hash``)."""
    digest = hashlib.blake2b(f"accord.job:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(slots=True)
class _Held:
    node: str
    conn: psycopg.Connection[Any]


class SessionLocks:
    """The background job locks this store (node) holds: one dedicated autocommit
    connection per held job, outside the engine's pool, holding
    ``pg_try_advisory_lock(job_lock_key(name))`` until released, closed or dead.

    Thread-safe: jobs call in from ``asyncio.to_thread`` workers. One store holds a job
    for one ``node`` name at a time; asking for it under another name is refused, like
    the lease row. :meth:`release` only frees a lock this store holds.
    """

    def __init__(self, engine: Engine) -> None:
        cparams = dict(engine.dialect.create_connect_args(engine.url)[1])
        cparams.pop("context", None)  # SQLAlchemy's type adapters; plain psycopg here
        self._connect_args = {"connect_timeout": 10, **cparams, **_session_args(engine.url)}
        self._held: dict[str, _Held] = {}
        self._mutex = threading.Lock()

    def try_lock(self, name: str, node: str, until: datetime) -> bool:
        """True while this store holds job ``name`` for ``node`` (the dedicated session
        still answers, or a new one took the lock); False when another session holds it."""
        with self._mutex:
            held = self._held.get(name)
            if held is not None and self._alive(name, held, node, until):
                return held.node == node
            return self._acquire(name, node, until)

    def release(self, name: str, node: str) -> None:
        """Unlock and close job ``name``'s session, if this store holds it for ``node``."""
        with self._mutex:
            held = self._held.get(name)
            if held is None or held.node != node:
                return
            del self._held[name]
            _unlock_and_close(name, held)

    def close(self) -> None:
        """Release every job this store holds."""
        with self._mutex:
            held, self._held = self._held, {}
            for name, one in held.items():
                _unlock_and_close(name, one)

    def _alive(self, name: str, held: _Held, node: str, until: datetime) -> bool:
        """One round trip on the lock's own session: the holder refreshes its visibility
        row, anyone else just asks. A dead session is dropped (PostgreSQL freed its lock)."""
        try:
            if held.node == node:
                held.conn.execute(_RECORD_HOLDER, (name, node, until))
            else:
                held.conn.execute("SELECT 1")
        except psycopg.Error as exc:
            if not held.conn.closed:
                raise driver_error(exc) from exc
            del self._held[name]
            return False
        return True

    def _acquire(self, name: str, node: str, until: datetime) -> bool:
        try:
            conn = psycopg.connect(**self._connect_args, autocommit=True)
        except psycopg.Error as exc:
            raise driver_error(exc) from exc
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (job_lock_key(name),))
            got = row.fetchone() == (True,)
            if got:
                conn.execute(_RECORD_HOLDER, (name, node, until))
        except psycopg.Error as exc:
            conn.close()  # frees the lock if it was taken
            raise driver_error(exc) from exc
        if not got:
            conn.close()
            return False
        self._held[name] = _Held(node, conn)
        return True


def _unlock_and_close(name: str, held: _Held) -> None:
    """Forget the visibility row, unlock, close; closing alone frees the lock, so a
    session that is already dead is no error here."""
    try:
        held.conn.execute("DELETE FROM job_locks WHERE name = %s AND node = %s",
                          (name, held.node))
        held.conn.execute("SELECT pg_advisory_unlock(%s)", (job_lock_key(name),))
    except psycopg.Error:
        pass
    finally:
        held.conn.close()
