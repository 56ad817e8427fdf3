"""Workflow rows for the view tests, written through the SQL repository as ingest writes
them (synthetic values only: no real patient data)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from accord.store.gateway.store import SqlStore
from accord.store.workflow.repository import repository_for
from accord.workflow.findings import Finding, FindingKind
from accord.workflow.model import (
    Demographics,
    Identifier,
    Order,
    Patient,
    PersonName,
    ProcedureStep,
)
from accord.workflow.status import Status
from accord.workflow.trace import TraceEvent

from ..conftest import T0

DAY = "20260302"  # T0's date


def patient(pid: str, family: str = "Testfamily", given: str = "Anna", mrn: str = "",
            merged_into: str | None = None) -> Patient:
    return Patient(pid, (Identifier(mrn or f"MRN-{pid}", "HOSP", "MR"),),
                   Demographics(PersonName(family, given), date(1970, 1, 2), "F"),
                   merged_into)


def order(oid: str, pid: str, *, at: datetime = T0, station: str = "CT1", modality: str = "CT",
          status: Status = Status.SCHEDULED, held: bool = False, steps: int = 1) -> Order:
    return Order(
        oid, pid, status, accession=f"ACC-{oid}", placer_number=f"PL-{oid}",
        study_instance_uid="1.2.826.0.1.3680043.10.1." + ".".join(str(ord(c)) for c in oid),
        modality=modality, hold_reason="unmapped code" if held else "",
        steps=tuple(ProcedureStep(f"{oid}-S{n}", modality, (station,), start=at + timedelta(
            minutes=n)) for n in range(steps)))


def save(store: SqlStore, *values: Patient | Order | Finding | TraceEvent,
         now: datetime = T0) -> None:
    """Save patients, orders, findings and trace events in one transaction at ``now``
    (an order's ``updated_at``)."""
    with store.transaction() as tx:
        repo = repository_for(tx, now)
        for value in values:
            if isinstance(value, Patient):
                repo.save_patient(value)
            elif isinstance(value, Order):
                repo.save_order(value)
            elif isinstance(value, TraceEvent):
                repo.add_trace(value)
            else:
                repo.save_finding(value)
        repo.flush()


def finding(kind: FindingKind, *, accession: str = "", patient_id: str = "", subject: str = "",
            at: datetime = T0, score: float | None = None) -> Finding:
    return Finding(kind, f"{kind.label} (test)", at, accession=accession,
                   patient_id=patient_id, subject=subject, source="RIS", score=score)
