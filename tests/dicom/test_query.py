"""C-FIND identifier matching (PS3.4 C.2.2.2) against worklist datasets, without sockets."""

from __future__ import annotations

import pytest
from dicom_support import Department, department, mwl_query
from pydicom.dataset import Dataset

from accord.dicom.query import Query, QueryRejected, compile_query, response
from accord.dicom.worklist import mwl_dataset


@pytest.fixture(scope="module")
def items() -> dict[str, Dataset]:
    d: Department = department()
    return {i.order.accession: mwl_dataset(i) for i in d.index.items()}


def _matching(items: dict[str, Dataset], identifier: Dataset) -> list[str]:
    q = compile_query(identifier)
    assert isinstance(q, Query)
    return sorted(acc for acc, ds in items.items() if q.matches(ds))


@pytest.mark.parametrize(("keys", "expected"), [
    ({}, ["A001", "A002", "A003", "A004", "A005"]),  # universal matching
    ({"PatientID": "1001"}, ["A001"]),  # single value
    ({"PatientID": "100"}, []),
    ({"AccessionNumber": "A00?"}, ["A001", "A002", "A003", "A004", "A005"]),  # wildcard ?
    ({"AccessionNumber": "*3"}, ["A003"]),
    ({"AccessionNumber": "*"}, ["A001", "A002", "A003", "A004", "A005"]),
    ({"StudyInstanceUID": ["1.2.826.0.1.1", "1.2.826.0.1.4"]}, ["A001", "A004"]),  # UID list
    ({"sps": {"ScheduledStationAETitle": "CT1"}}, ["A001", "A002", "A005"]),
    ({"sps": {"ScheduledStationAETitle": "ct1"}}, []),  # AE is case-sensitive
    ({"sps": {"Modality": "MR"}}, ["A003"]),
    ({"sps": {"ScheduledProcedureStepStartDate": "20260302"}}, ["A001", "A002", "A003"]),
    ({"sps": {"ScheduledProcedureStepStartDate": "20260303-"}}, ["A004", "A005"]),
    ({"sps": {"ScheduledProcedureStepStartDate": "-20260302"}}, ["A001", "A002", "A003"]),
    ({"sps": {"ScheduledProcedureStepStartDate": "20260303-20260304"}}, ["A004"]),
    ({"sps": {"ScheduledProcedureStepStartTime": "1000-1200"}}, ["A002"]),
    ({"sps": {"ScheduledProcedureStepStartDate": "20260302",
              "ScheduledProcedureStepStartTime": "09-10"}}, ["A001", "A003"]),
    ({"sps": {"Modality": "CT", "ScheduledProcedureStepStartDate": "20260302-20260303"}},
     ["A001", "A002"]),
])
def test_key_matching(items: dict[str, Dataset], keys: dict[str, object],
                      expected: list[str]) -> None:
    assert _matching(items, mwl_query(**keys)) == expected


def test_date_and_time_ranges_combine_into_one_datetime_range(
        items: dict[str, Dataset]) -> None:
    # C.2.2.2.5.1: from 2 March 10:00 to 3 March 08:30, not "10:00-08:30 on each day".
    q = mwl_query(sps={"ScheduledProcedureStepStartDate": "20260302-20260303",
                       "ScheduledProcedureStepStartTime": "1000-0830"})
    assert _matching(items, q) == ["A002", "A004"]


@pytest.mark.parametrize(("name", "expected"), [
    ("DOE*", ["A001"]),
    ("doe^john", ["A001"]),  # case-insensitive
    ("Doe", ["A001"]),  # component-wise: the given name left out is not compared
    ("DOE^J*", ["A001"]),
    ("*OHN*", ["A001"]),  # the wildcard spans components
    ("Müller*", ["A002"]),
    ("MÜLLER^JÜRGEN", ["A002"]),
    ("山田*", ["A003"]),  # one group in the query: any group of the name
    ("Yamada^Tarou=山田^太郎", ["A003"]),
    ("=山田*", ["A003"]),
    ("=Yamada", []),  # the ideographic group must match as given
    ("Smith^Jane", ["A004", "A005"]),
    ("Smyth*", []),
])
def test_person_name_matching(items: dict[str, Dataset], name: str,
                              expected: list[str]) -> None:
    assert _matching(items, mwl_query(PatientName=name)) == expected


@pytest.mark.filterwarnings("ignore:Invalid value for VR DA")
def test_malformed_range_is_rejected_not_raised() -> None:
    q = compile_query(mwl_query(sps={"ScheduledProcedureStepStartDate": "2026-03"}))
    assert isinstance(q, QueryRejected)
    assert q.status == 0xA900


def test_response_has_only_requested_keys(items: dict[str, Dataset]) -> None:
    identifier = Dataset()
    identifier.PatientName = ""
    identifier.PatientWeight = ""  # a key the item does not have: returned empty
    sps = Dataset()
    sps.Modality = ""
    identifier.ScheduledProcedureStepSequence = [sps]
    identifier.RequestedProcedureCodeSequence = []  # no item: the whole sequence
    q = compile_query(identifier)
    assert isinstance(q, Query)
    out = response(q, items["A002"])
    assert [e.keyword for e in out] == ["SpecificCharacterSet", "PatientName", "PatientWeight",
                                        "RequestedProcedureCodeSequence",
                                        "ScheduledProcedureStepSequence"]
    assert out.SpecificCharacterSet == "ISO_IR 100"
    assert out.PatientWeight is None
    assert [e.keyword for e in out.ScheduledProcedureStepSequence[0]] == ["Modality"]
    assert out.RequestedProcedureCodeSequence[0].CodeValue == "CTHEAD"


def test_hints_carry_the_exact_keys() -> None:
    q = compile_query(mwl_query(PatientID="1001", PatientName="Doe^J*",
                                sps={"ScheduledStationAETitle": "CT1",
                                     "ScheduledProcedureStepStartDate": "20260301-20260302"}))
    assert isinstance(q, Query)
    h = q.hints
    assert (h.patient_id, h.station, h.date_from, h.date_to, h.name_prefix) == (
        "1001", "CT1", "20260301", "20260302", "doe")
    assert h.accession is None  # universal


def test_an_identifier_that_cannot_be_read_is_refused_with_a_status() -> None:
    """Fuzz regression (tests/fuzz/regressions/dicom): a 2-byte value for a 4-byte VR."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    ds = Dataset()
    ds.PatientID = "1001"
    ds._dict[Tag(0x00081163)] = RawDataElement(  # Time Range (FD) holding 2 bytes
        Tag(0x00081163), "FD", 2, b"?\xff", 0, True, True)
    rejected = compile_query(ds)
    assert isinstance(rejected, QueryRejected) and rejected.status == 0xC000
    assert "cannot be read" in rejected.reason


@pytest.mark.parametrize("pattern", ["Doe=====", "=/===", "A^B^C^D^E^F^G^H", "Doe^*^x^y^z^w^v=a"])
def test_person_name_patterns_of_any_shape_are_matched_without_failing(pattern: str) -> None:
    """Fuzz regression (tests/fuzz/regressions/dicom): more than three component groups,
    or more than five components, in a PN key."""
    query = compile_query(mwl_query(PatientName=pattern))
    assert isinstance(query, Query)
    candidate = Dataset()
    candidate.PatientName = "Doe^John=ド^ジョン=ど^じょん"
    assert query.matches(candidate) in (True, False)
    assert not query.matches(Dataset())
