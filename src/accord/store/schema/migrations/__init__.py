"""Alembic migrations of the store, applied by :func:`accord.store.open_store`.

There is no ``alembic.ini``: :func:`upgrade` builds the configuration in code and hands
Alembic the open connection (``config.attributes["connection"]``), so the upgrade runs
inside the caller's transaction (and, on PostgreSQL, under its advisory lock).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at these migrations (no ini file)."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Bring the schema on ``connection`` up to ``revision`` (idempotent)."""
    command.upgrade(alembic_config(connection), revision)


def head_revision() -> str:
    """The revision id a fully migrated store is at (the latest of the chain)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migration revisions found")
    return head
