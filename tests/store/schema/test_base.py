"""The schema's column types: a UTC timestamp is written to SQLite exactly as the
generic ``UtcDateTime`` → ``DateTime`` chain writes it (the fast path changes no byte)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeDecorator

from accord.store.schema.base import UtcDateTime


@pytest.mark.parametrize("value", [
    datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(999, 1, 1, tzinfo=UTC),
    datetime(2026, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))),
    None,
])
def test_a_timestamp_is_stored_as_the_generic_chain_stores_it(value: datetime | None) -> None:
    dialect = sqlite.dialect()
    impl = UtcDateTime().dialect_impl(dialect)
    fast, generic = impl.bind_processor(dialect), TypeDecorator.bind_processor(impl, dialect)
    assert fast is not None and generic is not None
    assert fast(value) == generic(value)


def test_a_naive_timestamp_is_still_refused() -> None:
    dialect = sqlite.dialect()
    fast = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert fast is not None
    with pytest.raises(ValueError, match="naive"):
        fast(datetime(2026, 1, 1))
