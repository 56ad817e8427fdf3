"""Database failures as :class:`accord.errors.StoreError`.

Rule: the error keeps the driver's exception name and first line only, never the
statement's parameters: they may carry patient data. The caller answers AE or retries;
nothing of the failed transaction was committed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError

from accord.errors import StoreError


def driver_error(exc: BaseException) -> StoreError:
    """``exc`` (a driver's or SQLAlchemy's error) as a StoreError (module rule)."""
    orig = getattr(exc, "orig", None) or exc
    first_line = (str(orig).splitlines() or [""])[0]
    return StoreError(f"database error: {type(orig).__name__}: {first_line}")


@contextmanager
def db_errors() -> Iterator[None]:
    """Raise SQLAlchemy's errors inside the block as StoreError."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise driver_error(exc) from exc
