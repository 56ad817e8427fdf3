"""PostgreSQL specifics: the psycopg 3 driver, row locks for claims, advisory locks.

Rules: only what must differ from SQLite lives here. Several nodes share one database,
so a claim locks the rows it hands out with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL 15
§SELECT "The Locking Clause") and schema upgrades run under a transaction-level advisory
lock (§9.27.10) so nodes starting together do not race.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Select, Table, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from accord.errors import ConfigError

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


def create_postgres_engine(url: str) -> Engine:
    """A pooled engine; ``pool_pre_ping`` so nodes reconnect after a database restart;
    keepalives and an idle-transaction timeout so a vanished node's locks are freed.
    An ``options`` parameter in the URL replaces :data:`SESSION_OPTIONS`."""
    parsed = psycopg_url(url)
    connect_args: dict[str, Any] = dict(CLIENT_KEEPALIVES)
    if "options" not in parsed.query:
        connect_args["options"] = SESSION_OPTIONS
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
