"""Alembic migrations of the store, applied by :func:`accord.store.open_store`.

There is no ``alembic.ini``: :func:`upgrade` builds the configuration in code and hands
Alembic the open connection (``config.attributes["connection"]``), so the upgrade runs
inside the caller's transaction (and, on PostgreSQL, under its advisory lock).

Rule: a store whose revision this code does not know was made by a newer Accord. It is
never opened, let alone "upgraded": :func:`check_known` refuses it with one line, so an
older release started by mistake on a newer store cannot write rows the newer schema
does not expect.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from accord.errors import StoreError

SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at these migrations (no ini file)."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Bring the schema on ``connection`` up to ``revision`` (idempotent)."""
    check_known(connection)
    command.upgrade(alembic_config(connection), revision)


@cache
def revisions() -> tuple[str, ...]:
    """Every revision id this code ships, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    return tuple(rev.revision for rev in reversed(list(script.walk_revisions())))


def head_revision() -> str:
    """The revision id a fully migrated store is at (the latest of the chain)."""
    known = revisions()
    if not known:
        raise RuntimeError("no migration revisions found")
    return known[-1]


def current_revision(connection: Connection) -> str | None:
    """The revision the database on ``connection`` is at (None: never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def check_known(connection: Connection) -> None:
    """Refuse a store at a revision this code does not ship (a newer Accord made it)."""
    current = current_revision(connection)
    if current is not None and current not in revisions():
        raise StoreError(
            f"the store is at schema revision {current}, newer than this Accord knows "
            f"(its newest is {head_revision()}): run the Accord release that made it, "
            "or restore a backup taken with this one")
