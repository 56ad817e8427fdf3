"""Housekeeping tables: what the store keeps about itself.

``store_sizes`` holds the store's size once a day (the last measurement of the day
wins), so the dashboard can show how fast it grows; the rows are tiny (one a day) and
are never pruned.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table

from accord.store.schema.base import UtcDateTime, metadata

store_sizes = Table(
    "store_sizes",
    metadata,
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, UTC
    Column("at", UtcDateTime(), nullable=False),
    Column("bytes", BigInteger(), nullable=False),
)
