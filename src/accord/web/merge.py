"""A merge asked for by a person (console or JSON API), sent the way a RIS would send it.

Rule: the merge is an ADT^A40 (PID-3 the survivor, MRG-1 the merged patient's
identifiers; HL7 v2.5.1 §3.3.40, IHE RAD-12) built here and run through ingest, so it is
stored, applied by the workflow in one transaction, traced, and sent downstream through
the outbox like any A40. Its MSH-4 is ``CONSOLE`` so a trace shows where it came from.
"""

from __future__ import annotations

from datetime import datetime

from accord.engine.processor import encode_like
from accord.mapping.dialect import Dialect
from accord.mapping.outbound import build
from accord.workflow.events import PatientMerged
from accord.workflow.model import Patient

MERGE_FACILITY = "CONSOLE"


def merge_message(survivor: Patient, merged: Patient, control_id: str,
                  now: datetime) -> bytes:
    """The ADT^A40 merging ``merged`` into ``survivor`` (module rule), as wire bytes."""
    msg = build(PatientMerged(survivor, merged), Dialect(), control_id=control_id, now=now,
                receiving_application="ACCORD")
    assert msg is not None  # the default dialect sends every ADT event
    msg.set("MSH-4", MERGE_FACILITY)
    return encode_like(msg.to_er7(), msg)
