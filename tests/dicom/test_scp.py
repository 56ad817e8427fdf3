"""End to end on 127.0.0.1: real pynetdicom SCUs as modalities against the Accord SCP."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from dicom_support import (
    Department,
    SqliteMppsSink,
    associate,
    mpps_create,
    mpps_set,
    mwl_find,
    mwl_query,
    serve,
)
from pydicom.dataset import Dataset

from accord.dicom.index import WorklistEntry
from accord.dicom.query import Query
from accord.dicom.scp import (
    DUL_IDLE_POLL,
    MODALITY_WORKLIST_FIND,
    MPPS,
    DicomServer,
    _InstanceLocks,
)


def _full_query() -> Dataset:
    ds = mwl_query(IssuerOfPatientID="", PatientBirthDate="", PatientSex="", AdmissionID="",
                   RequestedProcedureID="", RequestedProcedureDescription="",
                   ReferringPhysicianName="", SpecificCharacterSet="ISO_IR 100",
                   sps={"ScheduledStationAETitle": "CT1",
                        "ScheduledProcedureStepStartDate": "20260302",
                        "ScheduledProcedureStepDescription": "",
                        "ScheduledProcedureStepLocation": "",
                        "ScheduledPerformingPhysicianName": "",
                        "ScheduledProcedureStepStatus": ""})
    ds.RequestedProcedureCodeSequence = []
    ds.ScheduledProcedureStepSequence[0].ScheduledProtocolCodeSequence = []
    return ds


def test_order_appears_with_its_attributes(scp: DicomServer) -> None:
    found = mwl_find(scp, _full_query())
    assert [d.AccessionNumber for d in found] == ["A001", "A002"]
    doe = found[0]
    assert (str(doe.PatientName), doe.PatientID, doe.IssuerOfPatientID, doe.PatientBirthDate,
            doe.PatientSex, doe.AdmissionID) == ("Doe^John", "1001", "HOSP", "19700102", "M",
                                                 "Vo1")
    assert (doe.RequestedProcedureID, doe.RequestedProcedureDescription,
            doe.StudyInstanceUID, str(doe.ReferringPhysicianName)) == (
        "RPA001", "CT Head", "1.2.826.0.1.1", "Smith^Anna")
    assert doe.RequestedProcedureCodeSequence[0].CodeValue == "CTHEAD"
    sps = doe.ScheduledProcedureStepSequence[0]
    assert (sps.Modality, sps.ScheduledStationAETitle, sps.ScheduledProcedureStepStartDate,
            sps.ScheduledProcedureStepStartTime, sps.ScheduledProcedureStepDescription,
            sps.ScheduledProcedureStepID, sps.ScheduledProcedureStepLocation,
            str(sps.ScheduledPerformingPhysicianName), sps.ScheduledProcedureStepStatus) == (
        "CT", "CT1", "20260302", "093000", "CT head plain", "A001-S1", "Radiology 1",
        "Tech^Tina", "SCHEDULED")
    assert sps.ScheduledProtocolCodeSequence[0].CodeValue == "CTP1"
    assert "OtherPatientIDsSequence" not in doe  # only the requested keys


def test_query_keys_filter(scp: DicomServer) -> None:
    def accessions(**keys: Any) -> list[str]:
        return [d.AccessionNumber for d in mwl_find(scp, mwl_query(**keys))]

    assert accessions() == ["A001", "A003", "A002", "A004"]  # A005 is completed: not served
    assert accessions(sps={"ScheduledStationAETitle": "MR1"}) == ["A003"]
    assert accessions(sps={"Modality": "US"}) == ["A004"]
    assert accessions(sps={"ScheduledProcedureStepStartDate": "20260303-20260310"}) == ["A004"]
    assert accessions(PatientID="1002") == ["A002"]
    assert accessions(AccessionNumber="A00[1]") == []
    assert accessions(AccessionNumber="A00*") == ["A001", "A003", "A002", "A004"]
    assert accessions(PatientName="SMI*") == ["A004"]
    assert accessions(PatientName="doe^jo*") == ["A001"]


def test_cancel_and_merge_show_on_the_worklist(dept: Department, scp: DicomServer) -> None:
    dept.index.remove("o2")
    assert [d.AccessionNumber for d in mwl_find(scp, mwl_query(PatientID="1002"))] == []
    survivor = dept.patients["pat-1004"]
    dept.index.merge_patient("pat-1001", survivor)
    found = mwl_find(scp, mwl_query(AccessionNumber="A001"))
    assert (found[0].PatientID, str(found[0].PatientName)) == ("1004", "Smith^Jane")


def test_charsets_survive_the_round_trip(scp: DicomServer) -> None:
    latin = mwl_find(scp, mwl_query(PatientName="MÜLLER*", SpecificCharacterSet="ISO_IR 100"))
    assert [(d.SpecificCharacterSet, str(d.PatientName)) for d in latin] == [
        ("ISO_IR 100", "Müller^Jürgen")]
    utf8 = mwl_find(scp, mwl_query(PatientName="müller^jürgen",
                                   SpecificCharacterSet="ISO_IR 192"))
    assert [str(d.PatientName) for d in utf8] == ["Müller^Jürgen"]
    japanese = mwl_find(scp, mwl_query(PatientName="山田*",
                                       SpecificCharacterSet=["", "ISO 2022 IR 87"]))
    assert len(japanese) == 1
    assert list(japanese[0].SpecificCharacterSet) == ["", "ISO 2022 IR 87"]
    assert str(japanese[0].PatientName) == "Yamada^Tarou=山田^太郎=やまだ^たろう"
    assert japanese[0].PatientName.ideographic == "山田^太郎"


def test_umlauts_in_utf8_order(dept: Department, scp: DicomServer) -> None:
    o4 = dept.orders["o4"]
    dept.index.put_order(o4, dept.patients["pat-1002"])  # Müller on a UTF-8 order
    found = mwl_find(scp, mwl_query(AccessionNumber="A004"))
    assert (found[0].SpecificCharacterSet, str(found[0].PatientName)) == (
        "ISO_IR 192", "Müller^Jürgen")


def test_echo(scp: DicomServer) -> None:
    assoc = associate(scp)
    try:
        assert assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()


def test_an_idle_association_naps_between_polls(scp: DicomServer) -> None:
    """The accepted association's DUL thread naps DUL_IDLE_POLL when idle, not 1 ms, and
    still answers at once."""
    assoc = associate(scp)
    try:
        accepted = scp._server.active_associations
        assert [a.dul._run_loop_delay for a in accepted] == [DUL_IDLE_POLL]
        assert assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()


def test_station_scoping(dept: Department, sink: SqliteMppsSink) -> None:
    server = serve(dept, sink, scope_to_station=True)
    try:
        assert [d.AccessionNumber for d in mwl_find(server, mwl_query(), calling="MR1")] == [
            "A003"]
        assert mwl_find(server, mwl_query(), calling="NOWHERE") == []
    finally:
        server.stop()


class _GatedSource:
    """The real index behind a gate after the first entry: a slow source (as a store
    query streaming rows would be), so that the C-CANCEL lands mid-answer."""

    def __init__(self, dept: Department, gate: threading.Event) -> None:
        self._dept, self._gate = dept, gate
        self.referenced = dept.index.referenced
        self.patients = dept.index.patients

    def candidates(self, query: Query) -> Iterator[WorklistEntry]:
        entries = self._dept.index.candidates(query)
        yield entries[0]
        self._gate.wait(10)
        for _ in range(200):
            # slow, as rows streaming from a store are: the C-CANCEL PDU, sent before the
            # gate opened, reaches the SCP while the answer is still going out
            time.sleep(0.01)
            yield from entries[1:]


def test_c_cancel_is_honoured(dept: Department, sink: SqliteMppsSink) -> None:
    from accord.dicom.scp import ScpConfig, start_scp

    gate = threading.Event()
    server = start_scp(ScpConfig(port=0), _GatedSource(dept, gate), sink)
    assoc = associate(server)
    try:
        statuses = []
        for status, _ in assoc.send_c_find(mwl_query(), MODALITY_WORKLIST_FIND, msg_id=7):
            statuses.append(status.Status)
            if len(statuses) == 1:
                assoc.send_c_cancel(7, None, query_model=MODALITY_WORKLIST_FIND)
                gate.set()
        assert statuses[-1] == 0xFE00
        assert len(statuses) < 200
    finally:
        assoc.release()
        server.stop()


def test_association_limit(dept: Department, sink: SqliteMppsSink) -> None:
    server = serve(dept, sink, maximum_associations=2)
    held = [associate(server), associate(server)]
    try:
        from pynetdicom import AE

        ae = AE(ae_title="THIRD")
        ae.add_requested_context(MODALITY_WORKLIST_FIND)
        third = ae.associate("127.0.0.1", server.port, ae_title="ACCORD")
        assert third.is_rejected
        held.pop().release()
        for _ in range(100):  # room again once the released association's thread ends
            again = ae.associate("127.0.0.1", server.port, ae_title="ACCORD")
            if again.is_established:
                held.append(again)
                break
            time.sleep(0.05)
        assert held[-1].is_established and len(held) == 2
    finally:
        for a in held:
            a.release()
        server.stop()


def test_pdu_size_is_advertised(dept: Department, sink: SqliteMppsSink) -> None:
    server = serve(dept, sink, maximum_pdu_size=32768)
    assoc = associate(server)
    try:
        assert assoc.acceptor.maximum_length == 32768
    finally:
        assoc.release()
        server.stop()


def test_acse_timeout_drops_a_silent_peer(dept: Department, sink: SqliteMppsSink) -> None:
    server = serve(dept, sink, acse_timeout=0.3)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            assert raw.recv(1024) == b""  # closed by the SCP, not by our 10 s timeout
    finally:
        server.stop()


def test_mpps_in_progress_then_completed(scp: DicomServer, sink: SqliteMppsSink) -> None:
    uid = "1.2.826.0.7.42"
    assoc = associate(scp, calling="CT1")
    try:
        status, echoed = assoc.send_n_create(
            mpps_create({"accession": "A001", "sps": "A001-S1", "uid": "1.2.826.0.1.1"}),
            MPPS, uid)
        assert status.Status == 0x0000
        assert echoed is None or len(echoed) == 0  # the attribute list: a user option
        assert sink.instance(uid) is not None  # stored before the response
        status, echoed = assoc.send_n_set(mpps_set("COMPLETED"), MPPS, uid)
        assert status.Status == 0x0000
        assert echoed is None or len(echoed) == 0
        status, _ = assoc.send_n_set(mpps_set("DISCONTINUED"), MPPS, uid)
        assert status.Status == 0x0110
        status, _ = assoc.send_n_create(mpps_create(), MPPS, uid)
        assert status.Status == 0x0111
    finally:
        assoc.release()
    outcomes = sink.outcomes()
    assert [(kind, body["status"]) for kind, body in outcomes] == [
        ("StatusCommand", "in_progress"), ("StatusCommand", "completed")]
    assert outcomes[1][1]["steps"][0]["order_id"] == "o1"


def test_mpps_unscheduled_and_bad_uid(scp: DicomServer, sink: SqliteMppsSink) -> None:
    assoc = associate(scp)
    try:
        status, _ = assoc.send_n_create(mpps_create({}, patient_id="1003",
                                                    name="Yamada^Tarou"),
                                        MPPS, "1.2.826.0.7.43")
        assert status.Status == 0x0000
        status, _ = assoc.send_n_set(mpps_set("COMPLETED"), MPPS, "1.2.826.0.7.99")
        assert status.Status == 0x0112
    finally:
        assoc.release()
    (kind, body), = sink.outcomes()
    assert (kind, body["best_match"]) == ("UnscheduledProcedure", "pat-1003")


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_a_uid_is_never_a_path(scp: DicomServer, sink: SqliteMppsSink) -> None:
    assoc = associate(scp)
    try:
        status, _ = assoc.send_n_create(mpps_create(), MPPS, "1.2.3/../../etc/passwd")
        assert status.Status == 0x0117
    finally:
        assoc.release()
    assert sink.outcomes() == []


def test_no_log_line_per_worklist_response(scp: DicomServer,
                                           caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert len(mwl_find(scp, _full_query())) == 2
    # the SCP's own line per response (the SCU here logs what it receives elsewhere)
    lines = [r.getMessage() for r in caplog.records if r.name == "pynetdicom.service_class"]
    assert not [m for m in lines if "Find SCP Response" in m], lines


def test_one_mpps_instance_at_a_time_and_others_side_by_side() -> None:
    """A read-modify-record of one SOP instance waits for another of the same instance;
    another instance (another modality) does not wait, and nothing is kept after."""
    locks = _InstanceLocks()
    got_same = threading.Event()

    def same() -> None:
        with locks.hold("1.2.3"):
            got_same.set()

    with locks.hold("1.2.3"):
        waiter = threading.Thread(target=same)
        waiter.start()
        with locks.hold("1.2.4"):  # another instance: not blocked
            pass
        assert not got_same.wait(0.2)
    waiter.join(5)
    assert got_same.is_set()
    assert locks._held == {}
