"""SPS + order + patient -> MWL dataset (PS3.4 K.6.1.2.2, IHE RAD-5)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta, timezone

from dicom_support import order, patient

from accord.dicom.worklist import WorklistItem, mwl_dataset
from accord.workflow.status import Status


def _item(**kw: object) -> WorklistItem:
    p = patient("1001", "Doe", "John")
    o = order("o1", p, accession="A001", **kw)  # type: ignore[arg-type]
    return WorklistItem(p, o, o.steps[0])


def test_attributes_of_rad5() -> None:
    ds = mwl_dataset(_item())
    assert str(ds.PatientName) == "Doe^John"
    assert (ds.PatientID, ds.IssuerOfPatientID, ds.PatientBirthDate, ds.PatientSex) == (
        "1001", "HOSP", "19700102", "M")
    assert ds.OtherPatientIDsSequence[0].PatientID == "X1001"
    assert ds.AdmissionID == "Vo1"
    assert ds.AccessionNumber == "A001"
    assert ds.RequestedProcedureID == "RPA001"
    assert ds.RequestedProcedureDescription == "CT Head"
    code = ds.RequestedProcedureCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) == (
        "CTHEAD", "99LOCAL", "CT Head")
    assert ds.StudyInstanceUID == "1.2.826.0.1.1"
    assert str(ds.ReferringPhysicianName) == "Smith^Anna"
    assert ds.RequestedProcedurePriority == "ROUTINE"
    sps = ds.ScheduledProcedureStepSequence[0]
    assert sps.Modality == "CT"
    assert sps.ScheduledStationAETitle == "CT1"
    assert (sps.ScheduledProcedureStepStartDate, sps.ScheduledProcedureStepStartTime) == (
        "20260302", "093000")
    assert sps.ScheduledProcedureStepDescription == "CT head plain"
    assert sps.ScheduledProcedureStepID == "A001-S1"
    assert sps.ScheduledProtocolCodeSequence[0].CodeValue == "CTP1"
    assert sps.ScheduledProcedureStepLocation == "Radiology 1"
    assert sps.ScheduledStationName == "CT1 room"
    assert str(sps.ScheduledPerformingPhysicianName) == "Tech^Tina"
    assert sps.ScheduledProcedureStepStatus == "SCHEDULED"
    assert "SpecificCharacterSet" not in ds  # plain ASCII: the default repertoire


def test_start_is_local_time_of_the_department() -> None:
    ds = mwl_dataset(_item(), tz=timezone(timedelta(hours=14)))
    sps = ds.ScheduledProcedureStepSequence[0]
    assert (sps.ScheduledProcedureStepStartDate, sps.ScheduledProcedureStepStartTime) == (
        "20260302", "233000")


def test_status_terms() -> None:
    assert mwl_dataset(_item(status=Status.ARRIVED)).ScheduledProcedureStepSequence[
        0].ScheduledProcedureStepStatus == "ARRIVED"
    assert mwl_dataset(_item(status=Status.IN_PROGRESS)).ScheduledProcedureStepSequence[
        0].ScheduledProcedureStepStatus == "STARTED"


def test_values_are_made_valid_without_touching_identifiers() -> None:
    p = patient("1001", "Doe", "John")
    o = order("o1", p, accession="ACC-0123456789-XYZ")
    step = dataclasses.replace(o.steps[0], station_name="A very long station name",
                               description="Head \\ neck")
    ds = mwl_dataset(WorklistItem(p, o, step))
    sps = ds.ScheduledProcedureStepSequence[0]
    assert sps.ScheduledStationName == "A very long stat"  # SH: 16 characters
    assert sps.ScheduledProcedureStepDescription == "Head   neck"  # not two values
    assert ds.AccessionNumber == "ACC-0123456789-XYZ"  # an identifier is never cut
