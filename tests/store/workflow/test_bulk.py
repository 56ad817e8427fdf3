"""The bulk loader writes exactly what the engine stores: department traffic applied
through the workflow processor, then the same values bulk-loaded into the emptied
tables, give the same rows in every workflow table, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select

from accord.clock import ControlIds
from accord.engine.workflow import Outbound, WorkflowProcessor
from accord.errors import StoreError
from accord.hl7 import parse
from accord.mapping.dialect import Dialects
from accord.store.gateway.store import SqlStore
from accord.store.schema import (
    wf_findings,
    wf_identity_counts,
    wf_identity_features,
    wf_orders,
    wf_patient_blocks,
    wf_patient_identifiers,
    wf_patients,
    wf_procedure_steps,
    wf_reports,
    wf_trace_events,
    wf_visits,
)
from accord.store.workflow import codec
from accord.store.workflow.bulk import bulk_load
from accord.store.workflow.repository import reading, repository_for
from accord.workflow.identity import Matcher
from accord.workflow.identity.frequencies import LEARNED_KEYS
from accord.workflow.memory import SequentialIds

from ..conftest import T0

TABLES = (wf_patients, wf_patient_identifiers, wf_patient_blocks, wf_visits, wf_orders,
          wf_procedure_steps, wf_reports, wf_findings, wf_trace_events, wf_identity_features,
          wf_identity_counts)
AUTO_IDS = {"findings", "trace_events"}  # numbered by the database: not compared


def snapshot(store: SqlStore) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with store.database.read() as conn:
        for table in TABLES:
            cols = [c for c in table.c if not (table.name in AUTO_IDS and c.name == "id")]
            # a count that went back to 0 (a patient updated) is the same as none; the
            # registrations the matcher counted are its learning, not a value's rows
            rows = [r for r in conn.execute(select(*cols)).all()
                    if not (table is wf_identity_counts
                            and (r.count == 0 or r.key in LEARNED_KEYS))]
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def apply_department(store: SqlStore, exams: int) -> None:
    from datetime import UTC, datetime

    from accord.demo.traffic import Department

    dialects = Dialects.from_config({})
    processor = WorkflowProcessor(
        dialects=dialects, outbound=Outbound((), dialects, ControlIds("OUT")),
        ids=SequentialIds(), repository=repository_for, matcher=Matcher())
    dept = Department(seed=7)
    now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    for n in range(exams):
        at = now + timedelta(minutes=n)
        visit = dept.visit(at)
        texts = list(visit.messages)
        if visit.order is not None and n % 2:
            texts.append(dept.report(at, visit.order, final=n % 4 == 1))
        for text in texts:
            # The demo puts the visit number in PV1-18: moved to PV1-19, where it goes.
            text = text.replace("Marcus|||||||||||V", "Marcus||||||||||||V")
            try:
                msg = parse(text)
            except Exception:
                continue  # the deliberately malformed ones: nothing to apply
            with store.transaction() as tx:
                processor.process(msg, tx, at)


def read_values(store: SqlStore) -> dict[str, list[Any]]:
    with store.database.read() as conn:
        return {
            "patients": [codec.decode_patient(r.doc)
                         for r in conn.execute(select(wf_patients.c.doc))],
            "visits": [codec.decode_visit(r.doc) for r in conn.execute(select(wf_visits.c.doc))],
            "orders": [(codec.decode_order(r.doc), r.updated_at) for r in conn.execute(
                select(wf_orders.c.doc, wf_orders.c.updated_at))],
            "reports": [codec.decode_report(r.doc)
                        for r in conn.execute(select(wf_reports.c.doc))],
            "findings": [codec.decode_finding(r.doc) for r in conn.execute(
                select(wf_findings.c.doc).order_by(wf_findings.c.id))],
            "trace": [codec.decode_trace(r.doc) for r in conn.execute(
                select(wf_trace_events.c.doc).order_by(wf_trace_events.c.id))],
        }


def test_bulk_rows_equal_the_engines(store: SqlStore) -> None:
    apply_department(store, 40)
    engine_rows = snapshot(store)
    values = read_values(store)
    assert len(values["patients"]) > 30 and len(values["orders"]) > 30
    assert values["reports"] and values["findings"] and values["visits"]
    with store.database.write() as conn:
        for table in TABLES:
            conn.execute(delete(table))

    with bulk_load(store.database) as load:
        half = len(values["patients"]) // 2
        load.patients(values["patients"][:half])
        load.commit()
        load.patients(values["patients"][half:])
        load.visits(values["visits"])
        load.orders(values["orders"])
        load.reports(values["reports"])
        load.findings(values["findings"])
        load.trace(values["trace"])

    assert snapshot(store) == engine_rows
    with reading(store.database, T0) as repo:
        for patient in values["patients"][:5]:
            assert repo.patient(patient.id) == patient
        for order, _ in values["orders"][:5]:
            assert repo.order(order.id) == order


def test_a_failed_load_keeps_what_was_committed(store: SqlStore) -> None:
    apply_department(store, 3)
    values = read_values(store)
    with store.database.write() as conn:
        for table in TABLES:
            conn.execute(delete(table))
    with pytest.raises(StoreError), bulk_load(store.database) as load:
        load.patients(values["patients"][:1])
        load.commit()
        load.patients(values["patients"][1:])
        load.patients(values["patients"][1:])  # already there: the batch fails
    with reading(store.database, T0) as repo:
        first, *rest = values["patients"]
        assert repo.patient(first.id) == first
        assert all(repo.patient(p.id) is None for p in rest)
