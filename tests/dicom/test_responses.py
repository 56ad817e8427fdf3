"""Cached, pre-encoded C-FIND responses: same bytes as building them, never stale."""

from __future__ import annotations

import dataclasses

from dicom_support import Department, mwl_query
from pydicom.dataset import Dataset

from accord.dicom.query import Query, compile_query, response
from accord.dicom.responses import ResponseCache, _encode, signature
from accord.workflow.model import PersonName


def _query(**keys: object) -> Query:
    q = compile_query(mwl_query(**keys))
    assert isinstance(q, Query)
    return q


def test_cached_answer_equals_a_fresh_one(dept: Department) -> None:
    cache = ResponseCache()
    q = _query(SpecificCharacterSet="ISO_IR 100")
    for implicit, little in ((True, True), (False, True), (False, False)):
        for entry in dept.index.candidates(q):
            fresh = _encode(response(q, entry.dataset), implicit, little)
            first = cache.identifier(q, signature(q.identifier), entry, implicit, little)
            again = cache.identifier(q, signature(q.identifier), entry, implicit, little)
            assert _encode(first, implicit, little) == fresh == _encode(again, implicit, little)
    assert len(cache) == 3 * len(dept.index)


def test_an_updated_entry_is_not_served_from_the_cache(dept: Department) -> None:
    cache = ResponseCache()
    q = _query(AccessionNumber="A001")
    (entry,) = dept.index.candidates(q)
    before = cache.identifier(q, signature(q.identifier), entry, True, True)
    old = dept.patients["pat-1001"]
    dept.index.update_patient(dataclasses.replace(old, demographics=dataclasses.replace(
        old.demographics, name=PersonName("Roe", "Richard"))))
    (entry,) = dept.index.candidates(q)
    after = cache.identifier(q, signature(q.identifier), entry, True, True)
    assert (str(before.PatientName), str(after.PatientName)) == ("Doe^John", "Roe^Richard")


def test_shape_ignores_values_but_not_keys() -> None:
    a, b = mwl_query(PatientID="1"), mwl_query(PatientID="2")
    assert signature(a) == signature(b)
    c = Dataset()
    c.PatientID = "1"
    assert signature(a) != signature(c)
    with_code = mwl_query()
    item = Dataset()
    item.CodeValue = "X"
    with_code.RequestedProcedureCodeSequence = [item]
    other = mwl_query()
    item2 = Dataset()
    item2.CodeValue = "Y"
    other.RequestedProcedureCodeSequence = [item2]
    assert signature(with_code) != signature(other)  # item values choose items returned


def test_capacity_bounds_the_cache(dept: Department) -> None:
    cache = ResponseCache(capacity=2)
    q = _query()
    for entry in dept.index.candidates(q):
        cache.identifier(q, signature(q.identifier), entry, True, True)
    assert len(cache) == 2
