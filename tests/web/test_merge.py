"""The merge a person asks for (``accord.web.merge``): the ADT^A40 the console and the API
both send through ingest, the survivor in PID, the merged patient's identifiers in MRG."""

from __future__ import annotations

from datetime import UTC, date, datetime

from accord.hl7 import parse
from accord.web.merge import MERGE_FACILITY, merge_message
from accord.workflow.model import Demographics, Identifier, Patient, PersonName

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _patient(pid: str, mrn: str) -> Patient:
    return Patient(pid, (Identifier(mrn, "HOSP", "MR"),),
                   Demographics(PersonName("Testfamily", "Anna"), date(1970, 1, 2), "F"))


def test_an_a40_from_the_console_facility() -> None:
    msg = parse(merge_message(_patient("P-1", "KEEP1"), _patient("P-2", "GONE2"), "CTL42", NOW))
    assert msg.get("MSH-9") == "ADT^A40^ADT_A39"
    assert (msg.get("MSH-4"), msg.get("MSH-5"), msg.get("MSH-10")) == (
        MERGE_FACILITY, "ACCORD", "CTL42")
    assert msg.get("PID-3.1") == "KEEP1" and msg.get("MRG-1.1") == "GONE2"
