"""MPPS N-CREATE/N-SET -> status commands and findings (PS3.4 F.7), without sockets."""

from __future__ import annotations

from datetime import UTC, datetime

from dicom_support import Department, mpps_create, mpps_set, order, patient

from accord.dicom.mpps import (
    MppsInstance,
    MppsRejected,
    MppsResult,
    StatusCommand,
    StepRef,
    UnscheduledProcedure,
    n_create,
    n_set,
)
from accord.dicom.worklist import WorklistItem
from accord.workflow.status import Status

UID = "1.2.826.0.7.1"


def _items(dept: Department) -> list[WorklistItem]:
    return dept.index.items()


def _created(dept: Department, *refs: dict[str, str]) -> MppsResult:
    result = n_create(UID, mpps_create(*refs), None, _items(dept),
                      list(dept.patients.values()))
    assert isinstance(result, MppsResult)
    return result


def test_in_progress_by_sps_id_and_accession(dept: Department) -> None:
    result = _created(dept, {"accession": "A001", "sps": "A001-S1"})
    assert result.instance.status == "IN PROGRESS"
    assert result.outcome == StatusCommand(
        UID, Status.IN_PROGRESS,
        (StepRef("o1", "A001-S1", "A001", "1.2.826.0.1.1"),), "CT1",
        datetime(2026, 3, 2, 9, 35, 12, tzinfo=UTC), None)


def test_all_referenced_steps_by_uid_accession_and_sps(dept: Department) -> None:
    p = patient("1001", "Doe", "John")
    two = order("o9", p, accession="A009", steps=2)
    dept.index.put_order(two, p)
    result = _created(dept, {"uid": "1.2.826.0.1.9"}, {"accession": "A002"},
                      {"sps": "A003-S1"})
    assert isinstance(result.outcome, StatusCommand)
    assert [(s.order_id, s.sps_id) for s in result.outcome.steps] == [
        ("o2", "A002-S1"), ("o3", "A003-S1"), ("o9", "A009-S1"), ("o9", "A009-S2")]


def test_sps_id_narrows_an_order_with_several_steps(dept: Department) -> None:
    p = patient("1001", "Doe", "John")
    dept.index.put_order(order("o9", p, accession="A009", steps=2), p)
    result = _created(dept, {"accession": "A009", "sps": "A009-S2"})
    assert isinstance(result.outcome, StatusCommand)
    assert [s.sps_id for s in result.outcome.steps] == ["A009-S2"]


def test_unscheduled_procedure_offers_the_best_patient(dept: Department) -> None:
    by_id = n_create(UID, mpps_create({}, patient_id="1002", name="MUELLER^J"), None,
                     _items(dept), list(dept.patients.values()))
    assert isinstance(by_id, MppsResult)
    assert isinstance(by_id.outcome, UnscheduledProcedure)
    assert (by_id.outcome.kind, by_id.outcome.best_match) == ("unscheduled_procedure",
                                                              "pat-1002")
    by_name = n_create(UID, mpps_create({}, patient_id="TMP77", name="DOE^JOHN"), None,
                       _items(dept), list(dept.patients.values()))
    assert isinstance(by_name, MppsResult) and isinstance(by_name.outcome,
                                                          UnscheduledProcedure)
    assert by_name.outcome.best_match == "pat-1001"
    nobody = n_create(UID, mpps_create({}, patient_id="TMP78", name="ZZYZX^Q"), None,
                      _items(dept), list(dept.patients.values()))
    assert isinstance(nobody, MppsResult) and isinstance(nobody.outcome, UnscheduledProcedure)
    assert nobody.outcome.best_match is None


def test_create_rules(dept: Department) -> None:
    existing = MppsInstance(UID, "IN PROGRESS", mpps_create())
    assert n_create(UID, mpps_create(), existing, [], []) == MppsRejected(
        0x0111, "duplicate SOP Instance UID")
    done = mpps_create()
    done.PerformedProcedureStepStatus = "COMPLETED"
    rejected = n_create(UID, done, None, [], [])
    assert isinstance(rejected, MppsRejected) and rejected.status == 0x0106
    missing = mpps_create()
    del missing.ScheduledStepAttributesSequence
    rejected = n_create(UID, missing, None, [], [])
    assert isinstance(rejected, MppsRejected) and rejected.status == 0x0120


def test_completed_and_then_no_more_changes(dept: Department) -> None:
    created = _created(dept, {"accession": "A001", "sps": "A001-S1"})
    progress = mpps_set("IN PROGRESS")
    middle = n_set(created.instance, progress, _items(dept), [])
    assert isinstance(middle, MppsResult) and middle.outcome is None
    done = n_set(middle.instance, mpps_set("COMPLETED"), _items(dept), [])
    assert isinstance(done, MppsResult)
    assert isinstance(done.outcome, StatusCommand)
    assert done.outcome.status is Status.COMPLETED
    assert done.outcome.ended == datetime(2026, 3, 2, 10, 2, tzinfo=UTC)
    again = n_set(done.instance, mpps_set("DISCONTINUED"), _items(dept), [])
    assert isinstance(again, MppsRejected) and again.status == 0x0110


def test_final_state_requires_attributes(dept: Department) -> None:
    created = _created(dept, {"accession": "A001"})
    no_series = n_set(created.instance, mpps_set("COMPLETED", series=False), _items(dept), [])
    assert isinstance(no_series, MppsRejected)
    assert "PerformedSeriesSequence" in no_series.comment
    stopped = n_set(created.instance, mpps_set("DISCONTINUED", series=False), _items(dept), [])
    assert isinstance(stopped, MppsResult) and isinstance(stopped.outcome, StatusCommand)
    assert stopped.outcome.status is Status.DISCONTINUED


def test_set_keeps_create_only_attributes(dept: Department) -> None:
    created = _created(dept, {"accession": "A001"})
    mods = mpps_set("COMPLETED")
    mods.PatientID = "9999"
    done = n_set(created.instance, mods, _items(dept), [])
    assert isinstance(done, MppsResult)
    assert done.instance.dataset.PatientID == "1001"


def test_set_leaves_the_current_instance_as_it_was(dept: Department) -> None:
    created = _created(dept, {"accession": "A001"})
    before = created.instance.dataset.to_json()
    done = n_set(created.instance, mpps_set("COMPLETED"), _items(dept), [])
    assert isinstance(done, MppsResult)
    assert done.instance.dataset.PerformedProcedureStepStatus == "COMPLETED"
    assert created.instance.dataset.to_json() == before


def test_set_on_unknown_instance() -> None:
    result = n_set(None, mpps_set("COMPLETED"), [], [])
    assert isinstance(result, MppsRejected) and result.status == 0x0112


def test_an_attribute_list_that_cannot_be_read_is_refused_with_a_status() -> None:
    """Fuzz regression: a value whose bytes do not fit its VR, read lazily by pydicom."""
    from pydicom.dataelem import RawDataElement
    from pydicom.dataset import Dataset
    from pydicom.tag import Tag

    from accord.dicom.mpps import MppsInstance, MppsRejected, n_create, n_set

    ds = Dataset()
    ds._dict[Tag(0x00081163)] = RawDataElement(Tag(0x00081163), "FD", 2, b"?\xff", 0,
                                               True, True)
    created = n_create("1.2.3", ds, None, [], [])
    assert isinstance(created, MppsRejected) and created.status == 0x0106
    current = MppsInstance("1.2.3", "IN PROGRESS", Dataset())
    changed = n_set(current, ds, [], [])
    assert isinstance(changed, MppsRejected) and changed.status == 0x0106
