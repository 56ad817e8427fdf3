"""Forgiving look-ups of numbers people type: an accession or an MRN as it is written on
a request form, in any case, or only its end, or a piece of it.

Rules:
- A searchable number is stored a second time as its *search key*: casefolded and
  reversed (:func:`search_key`), in an indexed column next to it. An exact match in any
  case is then one index look-up, and a suffix match one index range (a suffix of the
  value is a prefix of the key).
- :func:`forgiving` tries, in order, and stops at the first that finds anything: the
  value in any case, then values ending with it, then values holding it, which counts
  only when exactly one value does (a fragment that names several is no answer; the
  caller shows nothing rather than a guess). The fragment step reads the key index
  alone, and only for a fragment of :data:`MIN_FRAGMENT` characters or more.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, select

MIN_FRAGMENT = 3
FRAGMENT_CANDIDATES = 2  # reading two rows is enough to know a fragment is not unique


def search_key(value: str) -> str:
    """The search key of a number: casefolded and reversed (module rules)."""
    return value.strip().casefold()[::-1][:199]


def _prefix(column: Any, prefix: str) -> ColumnElement[bool]:
    """``column LIKE 'prefix%'`` as a range (a B-tree range on both databases)."""
    return and_(column >= prefix, column < prefix + "\U0010ffff")


def forgiving(conn: Connection, key_column: Any, typed: str,
              limit: int = 1000) -> list[str]:
    """The search keys in ``key_column`` that ``typed`` names (module rules): the exact
    key, else keys of values ending with it, else the one key of a value holding it."""
    wanted = search_key(typed)
    if not wanted:
        return []
    for cond in (key_column == wanted, _prefix(key_column, wanted)):
        found = list(conn.scalars(select(key_column).where(cond).distinct().limit(limit)))
        if found:
            return found
    if len(wanted) < MIN_FRAGMENT:
        return []
    pattern = "%" + wanted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    found = list(conn.scalars(select(key_column).where(key_column.like(pattern, escape="\\"))
                              .distinct().limit(FRAGMENT_CANDIDATES)))
    return found if len(found) == 1 else []
