"""Alembic environment: runs on the connection given by ``migrations.upgrade``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from accord.store.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("Accord migrations run through accord.store.schema.migrations.upgrade()")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
