"""Forgiving look-ups (``accord.store.db.search``) on SQLite and PostgreSQL: any case,
then a suffix, then a fragment that names one value only."""

from __future__ import annotations

from accord.store.db.search import forgiving, search_key
from accord.store.gateway.store import SqlStore
from accord.store.schema.workflow import wf_orders

from ..views.builders import order, patient, save


def test_the_key_is_the_value_casefolded_and_reversed() -> None:
    assert search_key(" Acc-12x ") == "x21-cca"
    assert search_key("") == ""


def test_case_then_suffix_then_a_unique_fragment(store: SqlStore) -> None:
    save(store, patient("P1"), *(order(o, "P1") for o in ("A1206X46", "B1206X47", "C9X46")))
    column = wf_orders.c.accession_rev
    with store.database.read() as conn:
        def found(typed: str) -> list[str]:
            return sorted(k[::-1] for k in forgiving(conn, column, typed))

        assert found("acc-a1206x46") == ["acc-a1206x46"]  # any case (exact key)
        assert found("x46") == ["acc-a1206x46", "acc-c9x46"]  # every value ending so
        assert found("06x4") == []  # a fragment in two values is no answer
        assert found("9x4") == ["acc-c9x46"]  # a fragment in one value is
        assert found("zz") == [] and found("") == []
