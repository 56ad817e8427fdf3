"""PostgreSQL sessions of a node (``create_postgres_engine``): a node host that vanishes
without closing its connections must not hold its locks for hours. Every pooled
connection asks the server to probe its client (TCP keepalives) and to end a transaction
left idle (with several nodes, another node's resend waits on a dead node's dedupe claim
until then)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from accord.store import open_store
from accord.store.gateway.store import SqlStore

pytestmark = pytest.mark.postgres


def test_sessions_free_a_vanished_nodes_locks(pg_database: str) -> None:
    store = open_store(pg_database)
    assert isinstance(store, SqlStore)
    try:
        with store.database.engine.connect() as conn:
            shown = {name: conn.execute(text(f"SHOW {name}")).scalar_one()
                     for name in ("idle_in_transaction_session_timeout",
                                  "tcp_keepalives_idle", "tcp_keepalives_interval",
                                  "tcp_keepalives_count")}
    finally:
        store.close()
    assert shown == {"idle_in_transaction_session_timeout": "1min",
                     "tcp_keepalives_idle": "30", "tcp_keepalives_interval": "10",
                     "tcp_keepalives_count": "3"}


def test_url_options_win(pg_database: str) -> None:
    store = open_store(pg_database + "?options=-c%20statement_timeout%3D5000")
    assert isinstance(store, SqlStore)
    try:
        with store.database.engine.connect() as conn:
            timeout = conn.execute(text("SHOW statement_timeout")).scalar_one()
            idle = conn.execute(text("SHOW idle_in_transaction_session_timeout")).scalar_one()
    finally:
        store.close()
    assert (timeout, idle) == ("5s", "0")
