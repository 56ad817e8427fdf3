"""What every table module builds on: the one ``MetaData`` (with its naming convention)
and the column types shared by both databases.

Rule: import nothing else of ``accord.store`` here, so that any table module may import
this one first. Take tables and ``metadata`` from :mod:`accord.store.schema`, which loads
every area's tables onto it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["NAMING", "Id", "Json", "UtcDateTime", "metadata"]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identities.
Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, aware UTC out, on both databases (SQLite has no zones:
    stored as naive UTC text, which also sorts correctly)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is UTC:  # the usual case: the engine's clocks give UTC
            return value.replace(tzinfo=None) if dialect.name == "sqlite" else value
        if value.utcoffset() is None:
            raise ValueError("naive datetime given to the store; use aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        process = super().bind_processor(dialect)
        if dialect.name != "sqlite" or process is None:
            return process
        chained = process

        def utc_text(value: Any) -> Any:
            # A UTC datetime written straight in SQLite's DATETIME storage format (what
            # the chain of this type and DateTime gives): two conversions per timestamp
            # were a tenth of an ACK-on-store commit's Python time (measured).
            if type(value) is datetime and value.tzinfo is UTC:
                return (f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
                        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
                        f".{value.microsecond:06d}")
            return chained(value)

        return utc_text

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
