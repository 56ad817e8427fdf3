"""bench/exams.py: the values it gives for an exam are those the engine stores when it
applies the exam's messages (so a store loaded in bulk from them is a store the engine
could have made)."""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import exams
import population
from sqlalchemy import select

from accord.clock import ControlIds
from accord.engine.workflow import Outbound, WorkflowProcessor
from accord.hl7 import parse
from accord.mapping.dialect import Dialects
from accord.store import open_store, sqlite_url
from accord.store.gateway.store import SqlStore
from accord.store.schema import wf_orders, wf_patient_identifiers
from accord.store.workflow.repository import reading, repository_for
from accord.workflow.memory import SequentialIds
from accord.workflow.status import Status

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def test_values_equal_what_the_engine_stores(tmp_path: Path) -> None:
    store = open_store(sqlite_url(tmp_path))
    assert isinstance(store, SqlStore)
    dialects = Dialects.from_config({})
    processor = WorkflowProcessor(
        dialects=dialects, outbound=Outbound((), dialects, ControlIds("OUT")),
        ids=SequentialIds(), repository=repository_for)
    rng = random.Random(3)
    records = population.skewed(300, seed=5).records
    cases = []
    for n, record in enumerate(records):
        e = exams.exam(n, NOW + timedelta(hours=rng.randrange(48)), rng)
        sent = NOW + timedelta(minutes=n)
        texts = [population.adt(record, f"A{n}"),
                 exams.orm(record, e, "NW", "SC", f"N{n}", sent)]
        final = n % 3 == 0
        if final:
            texts += [exams.orm(record, e, "SC", "IP", f"I{n}", sent),
                      exams.orm(record, e, "SC", "CM", f"C{n}", sent),
                      exams.oru(record, e, f"R{n}", sent)]
        for text in texts:
            with store.transaction() as tx:
                outcome = processor.process(parse(text), tx, sent)
                assert outcome.error is None, outcome.detail
        cases.append((record, e, final, sent))
    with store.database.read() as conn:
        owner = dict(conn.execute(select(wf_patient_identifiers.c.value,
                                         wf_patient_identifiers.c.patient_id)).all())
        order_ids = dict(conn.execute(select(wf_orders.c.accession, wf_orders.c.id)).all())
    with reading(store.database, NOW) as repo:
        for record, e, final, sent in cases:
            pid = owner[record.mrn]
            assert repo.patient(pid) == exams.patient_of(record, pid)
            status = Status.FINAL if final else Status.SCHEDULED
            expected = exams.done(exams.order_of(e, order_ids[e.accession], pid), status)
            assert repo.order(expected.id) == expected
            assert repo.visit(e.visit) == exams.visit_of(e, pid)
            if final:
                reports = repo.reports_by("accession", e.accession)
                assert reports == [exams.report_of(e, reports[0].id, expected, sent)]
    store.close()
