"""Keyset paging: page sizes and cursors, the same for every list the store answers.

Rules:
- A page holds 1 to :data:`MAX_LIMIT` items: every list (messages, outbox, error queue,
  orders, patients, worklist, findings, users, audit) cuts its pages through
  :func:`clamp`, whoever asks (the JSON API up to 1000, the console smaller pages).
- Never OFFSET: a cursor is the sort key of the last item as text (fields joined by
  ``|``), and the next page starts strictly after it, so rows written meanwhile never
  shift a page. A cursor that is not one of ours raises ValueError (answered 400).
- A list reads ``limit + 1`` rows: the extra row only says whether a next page exists
  (:func:`cut`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

MAX_LIMIT = 1000
SEP = "|"
R = TypeVar("R")


def clamp(limit: int) -> int:
    """A page size within 1..MAX_LIMIT."""
    return max(1, min(int(limit), MAX_LIMIT))


def cut(rows: Sequence[R], limit: int, key: Callable[[R], str]) -> tuple[list[R], str | None]:
    """The first ``limit`` of ``rows`` (read as ``limit + 1``) and the cursor of the next
    page: ``key`` of the last row kept, or None when this was the last page."""
    page = list(rows[:limit])
    return page, (key(page[-1]) if len(rows) > limit and page else None)


def id_cursor(cursor: str | None) -> int | None:
    """A cursor on integer ids: the last id as decimal text."""
    if not cursor:
        return None
    if not cursor.isdigit():
        raise ValueError(f"invalid cursor {cursor!r}")
    return int(cursor)


def split_cursor(cursor: str | None, parts: int) -> list[str] | None:
    """The ``parts`` fields of a cursor (None for no cursor)."""
    if not cursor:
        return None
    fields = cursor.split(SEP)
    if len(fields) != parts:
        raise ValueError(f"invalid cursor {cursor!r}")
    return fields


def cursor_time(text: str) -> datetime:
    """A time field of a cursor (ISO 8601)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"invalid cursor time {text!r}") from exc
