"""C-FIND responses kept on their worklist entry: same bytes as building them, never
stale, gone with their entry, bounded per entry."""

from __future__ import annotations

import dataclasses
import gc
import weakref

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
    assert {len(e.responses) for e in dept.index.candidates(q)} == {3}


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


def test_the_answers_kept_per_entry_are_bounded(dept: Department) -> None:
    cache = ResponseCache(per_entry=2)
    entry = dept.index.candidates(_query())[0]
    shapes = [_query(), _query(SpecificCharacterSet="ISO_IR 100"), _query(PatientID="")]
    for q in shapes:
        cache.identifier(q, signature(q.identifier), entry, True, True)
    assert len(entry.responses) == 2
    third = shapes[2]  # not kept, still answered, the same as a fresh one
    answer = cache.identifier(third, signature(third.identifier), entry, True, True)
    assert _encode(answer, True, True) == _encode(response(third, entry.dataset), True, True)


def test_the_answers_go_with_their_entry(dept: Department) -> None:
    cache = ResponseCache()
    q = _query(AccessionNumber="A001")
    (entry,) = dept.index.candidates(q)
    cache.identifier(q, signature(q.identifier), entry, True, True)
    gone = weakref.ref(entry)
    order_id = entry.item.order.id
    del entry
    assert dept.index.remove(order_id) == 1
    gc.collect()
    assert gone() is None  # nothing else holds it, nor its answers


def test_no_answer_is_kept_when_the_cache_is_off(dept: Department) -> None:
    cache = ResponseCache(per_entry=0)
    q = _query()
    entry = dept.index.candidates(q)[0]
    cache.identifier(q, signature(q.identifier), entry, True, True)
    assert entry.responses == {}
