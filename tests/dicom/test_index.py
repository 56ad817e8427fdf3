"""The indexed worklist: narrowing never loses a match; updates, cancels and merges."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from dicom_support import Department, mwl_query, order, patient
from pydicom.dataset import Dataset

from accord.dicom.index import WorklistIndex
from accord.dicom.query import Query, compile_query
from accord.workflow.model import PersonName


def _find(index: WorklistIndex, identifier: Dataset) -> list[str]:
    q = compile_query(identifier)
    assert isinstance(q, Query)
    return [e.item.order.accession for e in index.candidates(q) if q.matches(e.dataset)]


def test_narrowing_agrees_with_a_full_scan(dept: Department) -> None:
    big = WorklistIndex()
    start = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
    for n in range(300):
        p = patient(f"{n:04d}", ["Doe", "Dorn", "Smith", "Müller"][n % 4], f"G{n}")
        big.put_order(order(f"o{n}", p, accession=f"B{n:04d}", station=f"ST{n % 7}",
                            modality=["CT", "MR", "US"][n % 3],
                            start=start + timedelta(hours=5 * n)), p)
    queries = [
        mwl_query(sps={"ScheduledStationAETitle": "ST4",
                       "ScheduledProcedureStepStartDate": "20260305"}),
        mwl_query(sps={"Modality": "MR",
                       "ScheduledProcedureStepStartDate": "20260310-20260320"}),
        mwl_query(PatientName="DO*"), mwl_query(PatientName="d*^g1*"),
        mwl_query(PatientID="0042"), mwl_query(AccessionNumber="B0099"),
        mwl_query(PatientName="*ll*"),
    ]
    for identifier in queries:
        q = compile_query(identifier)
        assert isinstance(q, Query)
        everything = big.candidates(compile_query(Dataset()))  # type: ignore[arg-type]
        scan = sorted(e.item.order.accession for e in everything if q.matches(e.dataset))
        assert sorted(_find(big, identifier)) == scan
        assert scan  # each query shape finds something


def test_candidates_are_narrowed(dept: Department) -> None:
    q = compile_query(mwl_query(AccessionNumber="A003"))
    assert isinstance(q, Query)
    assert [e.item.order.accession for e in dept.index.candidates(q)] == ["A003"]


def test_cancel_removes_the_order(dept: Department) -> None:
    assert dept.index.remove("o1") == 1
    assert _find(dept.index, mwl_query(PatientID="1001")) == []
    assert dept.index.remove("o1") == 0


def test_reschedule_replaces_steps(dept: Department) -> None:
    o2 = dept.orders["o2"]
    moved = dataclasses.replace(o2.steps[0], start=datetime(2026, 3, 9, 8, 0, tzinfo=UTC),
                                station_ae_titles=("CT2",))
    dept.index.put_order(dataclasses.replace(o2, steps=(moved,)),
                         dept.patients[o2.patient_id])
    assert _find(dept.index, mwl_query(sps={"ScheduledStationAETitle": "CT1"})) == [
        "A001", "A005"]
    assert _find(dept.index, mwl_query(sps={"ScheduledProcedureStepStartDate": "20260309"})
                 ) == ["A002"]
    dept.index.put_order(dataclasses.replace(o2, steps=()), dept.patients[o2.patient_id])
    assert _find(dept.index, mwl_query(AccessionNumber="A002")) == []


def test_merge_repoints_items_to_the_survivor(dept: Department) -> None:
    survivor = patient("2001", "Doe", "Jonathan")
    assert dept.index.merge_patient("pat-1001", survivor) == 1
    assert _find(dept.index, mwl_query(PatientID="1001")) == []
    assert _find(dept.index, mwl_query(PatientID="2001")) == ["A001"]
    assert _find(dept.index, mwl_query(PatientName="Doe^Jonathan")) == ["A001"]


def test_demographics_update_rerenders(dept: Department) -> None:
    old = dept.patients["pat-1004"]
    renamed = dataclasses.replace(old, demographics=dataclasses.replace(
        old.demographics, name=PersonName("Smith-Jones", "Jane")))
    assert dept.index.update_patient(renamed) == 2
    assert _find(dept.index, mwl_query(PatientName="Smith-J*")) == ["A004", "A005"]
    assert _find(dept.index, mwl_query(PatientName="Smith^Jane")) == []


def test_mpps_lookups(dept: Department) -> None:
    found = dept.index.referenced(accessions=["A002"], sps_ids=["A003-S1"])
    assert sorted(i.order.accession for i in found) == ["A002", "A003"]
    assert [p.id for p in dept.index.patients(patient_id="1003")] == ["pat-1003"]
    assert [p.id for p in dept.index.patients(family="Mueller")] == []
    assert [p.id for p in dept.index.patients(family="müller")] == ["pat-1002"]


def test_find_for_the_api(dept: Department) -> None:
    from accord.dicom.query import worklist_keys

    q = compile_query(worklist_keys(station="CT1"))
    assert isinstance(q, Query)
    assert [e.item.order.accession for e in dept.index.find(q)] == ["A001", "A002"]
    from accord.workflow.status import Status

    everything = dept.index.find(q, statuses=set(Status))
    assert [e.item.order.accession for e in everything] == ["A001", "A002", "A005"]
    by_date = compile_query(worklist_keys(modality="US", date="20260303"))
    assert isinstance(by_date, Query)
    assert [e.item.order.accession for e in dept.index.find(by_date)] == ["A004"]


def test_posted_values_are_those_of_the_dataset_which_is_built_on_first_use() -> None:
    """The posting lists are filled without building the MWL dataset; what they hold is
    what the dataset reads back (the index only narrows, so they must agree)."""
    index = WorklistIndex()
    people = [
        patient("0001", "Doe", "Jane"),
        patient("0\\02", "O\\Brien", "Pat"),  # a backslash would split the value (VM)
        patient("0003", "Yamada", "Taro", ideographic=PersonName("山田", "太郎"),
                phonetic=PersonName("やまだ", "たろう")),
        patient("0004", "", "Nobody"),
        dataclasses.replace(patient("0005", "Solo", "Han"), identifiers=()),
    ]
    for n, p in enumerate(people):
        index.put_order(order(f"o{n}", p, accession=f"P{n}"), p)
    everything = index.candidates(compile_query(Dataset()))  # type: ignore[arg-type]
    assert all(e._dataset is None for e in everything)  # nothing built yet
    for entry in everything:
        ds = entry.dataset
        families = [g.split("^")[0].strip().casefold() for g in str(ds.PatientName).split("=")]
        assert entry.postings["family"] == [f for f in families if f]
        assert entry.postings["patient_id"] == ([ds.PatientID] if ds.PatientID else [])
        assert entry.dataset is ds  # kept for the entry's life


def test_expire_drops_the_steps_that_started_before_the_cutoff(dept: Department) -> None:
    index = WorklistIndex()
    start = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    p = patient("0001", "Doe", "Jo")
    for n in range(4):  # 23:30, then 01:30, 03:30, 05:30 the next day
        index.put_order(order(f"o{n}", p, accession=f"E{n}", start=start + timedelta(hours=2 * n)),
                        p)
    undated = order("o9", p, accession="E9")
    index.put_order(dataclasses.replace(undated, steps=tuple(
        dataclasses.replace(s, start=None) for s in undated.steps)), p)
    assert index.expire(start + timedelta(hours=3)) == 2  # a cutoff the next day, 02:30
    assert sorted(i.order.accession for i in index.items()) == ["E2", "E3", "E9"]
    assert index.expire(start + timedelta(hours=3)) == 0
    assert index.expire(start + timedelta(days=30)) == 2  # a step without start stays
    assert [i.order.accession for i in index.items()] == ["E9"]
