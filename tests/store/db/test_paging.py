"""Paging (``accord.store.db.paging``): one page size rule and the cursor fields every
list of the store uses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from accord.store.db.paging import MAX_LIMIT, clamp, cursor_time, cut, id_cursor, split_cursor


def test_page_sizes_are_1_to_1000() -> None:
    assert [clamp(n) for n in (-5, 0, 1, 50, 1000, 1001, 10**9)] == [1, 1, 1, 50, 1000,
                                                                      1000, 1000]
    assert MAX_LIMIT == 1000


def test_cut_keeps_the_page_and_names_the_next() -> None:
    assert cut([1, 2, 3], 2, str) == ([1, 2], "2")  # a third row: there is a next page
    assert cut([1, 2], 2, str) == ([1, 2], None)
    assert cut([], 2, str) == ([], None)


def test_cursors_not_made_here_are_refused() -> None:
    assert id_cursor(None) is None and id_cursor("") is None and id_cursor("42") == 42
    assert split_cursor("a|b", 2) == ["a", "b"] and split_cursor(None, 2) is None
    assert cursor_time("2026-03-02T08:00:00+00:00") == datetime(2026, 3, 2, 8, tzinfo=UTC)
    for bad in (lambda: id_cursor("-1"), lambda: id_cursor("x"),
                lambda: split_cursor("a|b|c", 2), lambda: cursor_time("yesterday")):
        with pytest.raises(ValueError):
            bad()
