"""Interoperability with DCMTK's own SCUs (`findscu -W`, `echoscu`) as modalities."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest

from accord.dicom.scp import DicomServer

pytestmark = pytest.mark.skipif(shutil.which("findscu") is None,
                                reason="DCMTK not installed (apt-get install dcmtk)")


def test_findscu_worklist_query(scp: DicomServer, tmp_path: Path) -> None:
    cmd = ["findscu", "-W", "-aec", "ACCORD", "-aet", "DCMTKSCU",
           "-k", "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=CT1",
           "-k", "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20260302",
           "-k", "ScheduledProcedureStepSequence[0].Modality",
           "-k", "PatientName", "-k", "PatientID", "-k", "AccessionNumber",
           "-X", "--output-directory", str(tmp_path), "127.0.0.1", str(scp.port)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    answers = [pydicom.dcmread(p) for p in sorted(tmp_path.glob("rsp*.dcm"))]
    assert [(a.AccessionNumber, a.PatientID) for a in answers] == [("A001", "1001"),
                                                                   ("A002", "1002")]
    assert str(answers[1].PatientName) == "Müller^Jürgen"  # decoded from ISO_IR 100
    assert answers[0].ScheduledProcedureStepSequence[0].Modality == "CT"


def test_echoscu(scp: DicomServer) -> None:
    done = subprocess.run(["echoscu", "-aec", "ACCORD", "127.0.0.1", str(scp.port)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
