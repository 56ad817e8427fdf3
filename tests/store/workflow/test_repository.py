"""The workflow Repository contract on the SQL store, SQLite and PostgreSQL alike: values
read back exactly as saved, lookups by every key, blocking candidates, savepoints leave
no stale state, and the worklist log follows every order change."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, timedelta

import pytest
from sqlalchemy import delete, func, select

from accord.errors import StoreError
from accord.mapping.procedures import catalog_from_config
from accord.store.gateway.store import SqlStore
from accord.store.schema.workflow import wf_orders, wf_procedure_steps, wf_worklist_log
from accord.store.workflow.catalog import CodeTables
from accord.store.workflow.repository import SqlRepository, reading, repository_for
from accord.workflow.findings import FieldStat, FieldStats, Finding, FindingKind, Resolution
from accord.workflow.model import (
    Address,
    Demographics,
    Identifier,
    Order,
    Patient,
    PersonName,
    ProcedureStep,
    Report,
    Visit,
)
from accord.workflow.status import Status
from accord.workflow.trace import Change, TraceEvent

from ..conftest import T0


@contextmanager
def repo(store: SqlStore) -> Iterator[SqlRepository]:
    """A repository on one committed transaction (as ingest uses it)."""
    with store.transaction() as tx:
        r = repository_for(tx, T0)
        yield r
        r.flush()


def patient(
    pid: str = "P1",
    value: str = "MRN1",
    family: str = "Müller",
    born: date | None = date(1970, 1, 2),
) -> Patient:
    return Patient(
        pid,
        (Identifier(value, "HOSP", "MR"), Identifier(f"X{value}", "OTHER")),
        Demographics(
            PersonName(family, "Jürgen", "K"),
            born,
            "M",
            Address("1 Main St", "", "Springfield", "IL", "62701", "US"),
            "555-0100",
            "123-45-6789",
            "Schmidt",
            PersonName("山田", "太郎"),
            PersonName("やまだ", "たろう"),
        ),
    )


def order(oid: str = "O1", pid: str = "P1", accession: str = "A1", **kw: object) -> Order:
    step = ProcedureStep(
        "S1",
        "CT",
        ("CT1", "CT2"),
        "CT room",
        "Radiology",
        T0 + timedelta(hours=1),
        "CT head",
        "P1",
        "^Tech^Tina",
    )
    values: dict[str, object] = dict(
        id=oid,
        patient_id=pid,
        status=Status.SCHEDULED,
        accession=accession,
        placer_number=f"PL{oid}",
        filler_number=f"FI{oid}",
        requested_procedure_id=f"RP{oid}",
        study_instance_uid=f"1.2.3.{oid[1:]}",
        procedure_code="CTHEAD",
        procedure_description="CT head",
        modality="CT",
        visit_number="V1",
        priority="R",
        referring_physician="1^Smith^Anna",
        reason="pain",
        steps=(step,),
        source="RIS",
        coding_system="L",
        body_part="HEAD",
        charset="UNICODE UTF-8",
    )
    values.update(kw)
    return Order(**values)  # type: ignore[arg-type]


def test_values_read_back_exactly(store: SqlStore) -> None:
    p = patient()
    o = order()
    r = Report(
        "R1",
        "A1",
        Status.FINAL,
        "No bleed.\nNo fracture.",
        "RAD^ANNA",
        T0,
        "V1",
        "O1",
        "P1",
        "PLO1",
        "FIO1",
        "REPORTING",
    )
    v = Visit("V1", "P1", "O", "RAD^1", "1^Welby", T0, None)
    f = Finding(
        FindingKind.UNKNOWN_ORDER,
        "report for an order never received",
        T0,
        accession="A1",
        patient_id="P1",
        subject="A1",
        location="OBR-18",
        source="REPORTING",
        messages=("REPORTING/1",),
        score=0.5,
    )
    e = TraceEvent(
        T0,
        "RIS/1",
        "RIS",
        "ORC-1 NW",
        "O1",
        "A1",
        (Change("status", "", "scheduled"),),
        ("station CT1 by rule x",),
        "applied",
    )
    with repo(store) as w:
        w.save_patient(p)
        w.save_order(o)
        w.save_report(r)
        w.save_visit(v)
        w.save_finding(f)
        w.add_trace(e)
    with repo(store) as w:
        assert w.patient("P1") == p
        assert w.order("O1") == o
        assert w.reports_by("accession", "A1") == [r]
        assert w.visit("V1") == v
        assert w.finding(f.key) == f
        assert w.trace(accession="A1") == [e]
        assert w.patient("nobody") is None and w.order("nothing") is None


def test_lookups_by_every_key(store: SqlStore) -> None:
    with repo(store) as w:
        w.save_patient(patient())
        w.save_order(order())
        w.save_order(order("O2", accession="A2"))
        w.save_report(Report("R1", "A9", Status.PRELIMINARY, placer_number="PLX"))
    with repo(store) as w:
        assert w.patient_by_identifier(Identifier("MRN1", "HOSP")).id == "P1"  # type: ignore[union-attr]
        assert w.patient_by_identifier(Identifier("MRN1", "ELSEWHERE")) is None
        for key, value in (
            ("accession", "A1"),
            ("placer_number", "PLO1"),
            ("filler_number", "FIO1"),
            ("study_instance_uid", "1.2.3.1"),
            ("requested_procedure_id", "RPO1"),
            ("sps_id", "S1"),
        ):
            found = [o.id for o in w.orders_by(key, value)]
            assert found == (["O1", "O2"] if key == "sps_id" else ["O1"]), key
        assert w.orders_by("accession", "") == []
        assert [o.id for o in w.orders_of("P1")] == ["O1", "O2"]
        assert [r.id for r in w.reports_by("placer_number", "PLX")] == ["R1"]
        assert w.reports_by("order_id", "O1") == []
        assert w.visits_of("P1") == []


def test_one_lookup_for_every_number_tries_them_in_order(store: SqlStore) -> None:
    with repo(store) as w:
        w.save_patient(patient())
        w.save_order(order())
        w.save_order(order("O2", accession="A2"))
        w.save_report(Report("R1", "A9", Status.PRELIMINARY, placer_number="PLX"))
        w.save_report(Report("R2", "A1", Status.FINAL, placer_number="PLY"))
    with repo(store) as w:
        def first(*numbers: tuple[str, str]) -> str | None:
            found = w.order_by_numbers(numbers)
            return found.id if found is not None else None

        assert first(("accession", "A2"), ("placer_number", "PLO1")) == "O2"
        assert first(("accession", "NONE"), ("placer_number", "PLO1")) == "O1"
        assert first(("accession", "NONE"), ("sps_id", "S1")) == "O1"  # first by id
        assert first(("filler_number", "FIO2"), ("sps_id", "S1")) == "O2"
        assert first(("accession", ""), ("requested_procedure_id", "RPO2")) == "O2"
        assert first(("accession", "NONE"), ("placer_number", "NONE")) is None
        assert first() is None
        found = w.reports_by_numbers([("placer_number", "PLX"), ("accession", "A1"),
                                      ("filler_number", "")])
        assert [r.id for r in found] == ["R1", "R2"]
        assert [r.id for r in w.reports_by_numbers([("accession", "A1"),
                                                    ("placer_number", "PLX")])] == ["R2", "R1"]
        assert w.reports_by_numbers([]) == []


def test_a_patient_save_is_seen_by_the_next_lookup(store: SqlStore) -> None:
    with repo(store) as w:
        w.save_patient(patient())
        assert w.patient_by_identifier(Identifier("MRN1", "HOSP")).id == "P1"  # type: ignore[union-attr]
        w.save_patient(Patient("P2", (Identifier("MRN1", "HOSP"),)))  # takes it over
        assert w.patient_by_identifier(Identifier("MRN1", "HOSP")).id == "P2"  # type: ignore[union-attr]
        w.save_patient(replace(patient(), merged_into="P2"))
        assert w.patient("P1").merged_into == "P2"  # type: ignore[union-attr]


def test_identifiers_follow_the_last_save(store: SqlStore) -> None:
    with repo(store) as w:
        w.save_patient(patient())
    with repo(store) as w:
        p = w.patient("P1")
        assert p is not None
        w.save_patient(Patient("P1", (Identifier("NEW1", "HOSP"),), p.demographics))
        w.save_patient(Patient("P2", (Identifier("XMRN1", "OTHER"),)))  # takes it over
    with repo(store) as w:
        assert w.patient_by_identifier(Identifier("MRN1", "HOSP")) is None
        assert w.patient_by_identifier(Identifier("NEW1", "HOSP")).id == "P1"  # type: ignore[union-attr]
        assert w.patient_by_identifier(Identifier("XMRN1", "OTHER")).id == "P2"  # type: ignore[union-attr]


def test_candidates_block_on_phonetic_family_and_birth(store: SqlStore) -> None:
    with repo(store) as w:
        w.save_patient(patient("P1", "M1", "Mueller", date(1970, 1, 2)))
        w.save_patient(patient("P2", "M2", "Miller", date(1970, 5, 5)))  # same soundex+year
        w.save_patient(patient("P3", "M3", "Okafor", date(1990, 1, 1)))
        w.save_patient(
            Patient(
                "P4",
                (Identifier("M4", "HOSP"),),
                Demographics(PersonName("Mueller", "Jürgen"), date(1970, 1, 2)),
                merged_into="P1",
            )
        )
    with repo(store) as w:
        probe = Demographics(PersonName("Muller", "Juergen"), date(1970, 1, 2))
        found = {p.id for p in w.candidates(probe)}
        assert {"P1", "P2"} <= found and "P3" not in found
        assert "P4" not in found  # tombstones are never candidates
        assert w.candidates(Demographics()) == []


def test_duplicate_order_number_is_refused_by_the_store(store: SqlStore) -> None:
    with repo(store) as w:
        w.save_patient(patient())
        w.save_order(order())
    with pytest.raises(StoreError), repo(store) as w:
        w.save_order(order("O9", accession="A1"))  # another order with accession A1
    with repo(store) as w:
        assert [o.id for o in w.orders_by("accession", "A1")] == ["O1"]


def test_a_rolled_back_savepoint_leaves_nothing_behind(store: SqlStore) -> None:
    with store.transaction() as tx:
        w = repository_for(tx, T0)
        w.save_patient(patient())
        with pytest.raises(RuntimeError), tx.savepoint():
            inner = repository_for(tx, T0)
            inner.save_order(order())
            inner.save_patient(patient("P1", "CHANGED"))
            inner.flush()
            raise RuntimeError("this message failed")
        again = repository_for(tx, T0)  # the next message gets a fresh repository
        assert again.order("O1") is None
        assert again.patient_by_identifier(Identifier("MRN1", "HOSP")).id == "P1"  # type: ignore[union-attr]
        assert again.patient_by_identifier(Identifier("CHANGED", "HOSP")) is None


def test_findings_stats_and_trace_order(store: SqlStore) -> None:
    f1 = Finding(FindingKind.FIELD_DRIFT, "PV1-19 empty", T0, subject="ORM PV1-19", source="RIS")
    f2 = Finding(
        FindingKind.VISIT_MISMATCH,
        "visit differs",
        T0,
        accession="A1",
        patient_id="P1",
        resolution=Resolution.RESOLVED,
        count=3,
    )
    stats = FieldStats(
        "RIS",
        {
            ("ORM^O01", "PV1-19"): FieldStat(21, 20, 0, True),
            ("ORM^O01", "OBR-4"): FieldStat(21, 21, 21, False),
        },
    )
    later = TraceEvent(T0 + timedelta(minutes=2), "RIS/2", "RIS", "second", "O1", "A1")
    earlier = TraceEvent(T0, "RIS/1", "RIS", "first", "O1", "A1")
    with repo(store) as w:
        for f in (f1, f2):
            w.save_finding(f)
        w.save_field_stats(stats)
        w.add_trace(later)
        w.add_trace(earlier)
    with repo(store) as w:
        assert w.findings_about(accession="A1") == [f2]
        assert w.findings_about(patient_id="P1") == [f2]
        assert w.field_stats("RIS") == stats
        assert w.field_stats("NOBODY") == FieldStats("NOBODY")
        assert [e.summary for e in w.trace(order_id="O1")] == ["first", "second"]
        w.save_finding(replace(f1, detail="again", count=2))
    with reading(store.database, T0) as r:
        stored = r.finding(f1.key)
        assert stored is not None and (stored.count, stored.detail) == (2, "again")


def test_worklist_log_follows_order_and_patient_changes(store: SqlStore) -> None:
    def log_size() -> int:
        with store.database.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(wf_worklist_log)).scalar_one())

    with repo(store) as w:
        w.save_patient(patient())
        w.save_order(order())
    assert log_size() == 1
    with repo(store) as w:
        p = w.patient("P1")
        assert p is not None
        w.save_patient(Patient(p.id, p.identifiers, Demographics(PersonName("Renamed"))))
    assert log_size() == 2  # the order's worklist item shows the patient: logged again


Rows = list[tuple[object, ...]]


def _rows_of(store: SqlStore, oid: str) -> tuple[Rows, Rows]:
    """The ``orders`` row (but ``updated_at``) and the ``procedure_steps`` rows of ``oid``."""
    o, s = wf_orders.c, wf_procedure_steps.c
    with store.database.engine.connect() as conn:
        orders = [tuple(r) for r in conn.execute(
            select(*(c for c in wf_orders.c if c.name != "updated_at")).where(o.id == oid))]
        steps = sorted(tuple(r) for r in conn.execute(
            select(s.sps_id, s.station_ae, s.modality, s.start_at, s.start_date, s.status,
                   s.held).where(s.order_id == oid)))
    return orders, steps


@pytest.mark.parametrize("change", ["status", "hold", "steps", "numbers", "nothing"])
def test_a_read_order_saved_again_has_the_rows_a_fresh_write_gives(
        store: SqlStore, change: str) -> None:
    """An order read and saved again (the columns that moved, its step rows' status and
    hold, or its steps anew) leaves the rows that writing it from scratch leaves."""
    later = T0 + timedelta(hours=5)
    moved: dict[str, object] = {
        "status": {"status": Status.IN_PROGRESS},
        "hold": {"hold_reason": "ORC-1 HD"},
        "steps": {"steps": (ProcedureStep("S2", "MR", ("MR1",), start=later),
                            ProcedureStep("S3", "MR", (), start=later))},
        "numbers": {"accession": "A9", "placer_number": "PL9", "source": "OTHER"},
        "nothing": {},
    }[change]
    wanted = replace(order(), **moved)  # type: ignore[arg-type]
    with repo(store) as w:
        w.save_patient(patient())
        w.save_order(order())
    with repo(store) as w:
        first = w.order("O1")
        assert first is not None
        w.save_order(replace(first, **moved))  # type: ignore[arg-type]
    saved = _rows_of(store, "O1")
    with store.database.engine.begin() as conn:
        conn.execute(delete(wf_procedure_steps).where(wf_procedure_steps.c.order_id == "O1"))
        conn.execute(delete(wf_orders).where(wf_orders.c.id == "O1"))
    with repo(store) as w:
        w.save_order(wanted)
    assert saved == _rows_of(store, "O1")
    assert len(saved[0]) == 1 and len(saved[1]) == 2
    with reading(store.database, T0) as r:
        assert r.order("O1") == wanted


def test_code_table_versions_are_kept_with_time_and_author(store: SqlStore) -> None:
    v1 = catalog_from_config({"procedures": [
        {"code": "CTHEAD", "modality": "CT", "stations": ["CT1"], "duration_minutes": 15}]},
        at=T0, author="config").table
    tables = CodeTables(store.database)
    first = tables.sync(v1, at=T0, author="alice")
    assert [v.number for v in first.versions] == [1]
    assert tables.sync(v1, at=T0 + timedelta(days=1), author="bob") == first
    v2 = catalog_from_config({"procedures": [{"code": "MRKNEE", "modality": "MR"}]},
                             at=T0, author="config").table
    second = tables.sync(v2, at=T0 + timedelta(days=2), author="bob")
    stored = tables.load()
    assert stored == second
    assert [(v.number, v.author, v.at) for v in stored.versions] == [
        (1, "alice", T0), (2, "bob", T0 + timedelta(days=2))]
    assert stored.versions[0].entries["CTHEAD"].stations == ("CT1",)
    assert sorted(stored.versions[1].entries) == ["MRKNEE"]
    assert stored.lookup("CTHEAD") is None
