"""The Runner stores exactly what SQLAlchemy stores and reads back the same values, on
SQLite (its DB-API path) and PostgreSQL (plain ``Connection.execute``) alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from accord.store.db.compiled import Runner
from accord.store.db.upsert import upsert
from accord.store.gateway.store import SqlStore
from accord.store.schema import wf_field_stats, wf_orders, wf_trace_events
from accord.store.workflow import statements as Q

from ..factories import inbound

AT = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
DOC: dict[str, Any] = {"text": "Müller \u5c71\u7530", "n": [1, 2.5, None], "ok": True}


def _order(oid: str) -> dict[str, Any]:
    return {"id": oid, "patient_id": "P1", "status": "scheduled", "accession": f"A{oid}",
            "placer_number": "", "filler_number": "", "requested_procedure_id": "",
            "study_instance_uid": "", "source": "RIS", "held": True, "updated_at": AT,
            "doc": DOC}


def _stored(store: SqlStore, oid: str) -> tuple[Any, ...]:
    with store.database.engine.connect() as conn:
        row = conn.execute(text("SELECT status, held, updated_at, doc FROM orders "
                                "WHERE id = :id"), {"id": oid}).one()
        return tuple(row)


def test_writes_are_stored_as_sqlalchemy_stores_them(store: SqlStore) -> None:
    with store.transaction() as tx:
        upsert(tx.connection, wf_orders, [_order("O1")], ["id"])
        upsert(tx.connection, wf_orders, [_order("O2")], ["id"], Runner(tx.connection))
    assert _stored(store, "O1") == _stored(store, "O2")
    with store.transaction() as tx:  # the upsert updates on the second run
        changed = {**_order("O2"), "status": "completed", "held": False}
        upsert(tx.connection, wf_orders, [changed], ["id"], Runner(tx.connection))
    assert _stored(store, "O2")[:2] in (("completed", False), ("completed", 0))


def test_reads_give_the_values_sqlalchemy_gives(store: SqlStore) -> None:
    with store.transaction() as tx:
        runner = Runner(tx.connection)
        runner.run(insert(wf_trace_events), [
            {"at": AT, "order_id": "O1", "accession": "A1", "message": "m", "doc": DOC},
            {"at": AT, "order_id": "O1", "accession": "A2", "message": "m", "doc": {}}])
        stmt = select(wf_trace_events.c.at, wf_trace_events.c.doc).where(
            wf_trace_events.c.order_id == bindparam("value")).order_by(wf_trace_events.c.id)
        fast = runner.rows(stmt, {"value": "O1"})
        plain = [tuple(r) for r in tx.connection.execute(stmt, {"value": "O1"})]
        assert fast == plain == [(AT, DOC), (AT, {})]
        assert runner.rows(stmt, {"value": "none"}) == []


def test_statements_it_cannot_take_go_through_sqlalchemy(store: SqlStore) -> None:
    with store.transaction() as tx:
        runner = Runner(tx.connection)
        runner.run(insert(wf_field_stats), [
            {"sender": "RIS", "message_type": "ORM^O01", "path": p, "seen": 2, "filled": 1,
             "streak": 0, "drifting": p == "PV1-19"} for p in ("PV1-19", "OBR-18")])
        rows = runner.rows(Q.FIELD_STATS, {"sender": "RIS"})
        assert sorted((r[1], bool(r[5])) for r in rows) == [("OBR-18", False),
                                                           ("PV1-19", True)]
        # An expanding IN parameter: SQLAlchemy renders it, the Runner hands it over.
        assert runner.rows(Q.CANDIDATES, {"keys": ["0:x"], "limit": 5}) == []
        runner.run(insert(wf_trace_events), [])  # nothing to do


def test_a_run_counts_the_rows_an_update_changed(store: SqlStore) -> None:
    orders = [_order(f"O{n}") for n in range(3)]
    held = update(wf_orders).where(wf_orders.c.id == bindparam("oid")).values(held=False)
    with store.transaction() as tx:
        runner = Runner(tx.connection)
        runner.run(insert(wf_orders), orders)
        assert runner.run(held, [{"oid": "O1"}]) == 1
        assert runner.run(held, [{"oid": "O0"}, {"oid": "O2"}, {"oid": "O9"}]) == 2
        assert runner.run(held, []) == 0


def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(store: SqlStore) -> None:
    with store.transaction() as tx:
        runner = Runner(tx.connection)
        runner.run(insert(wf_orders), [_order("O1")])
        with pytest.raises(IntegrityError), tx.savepoint():
            runner.run(insert(wf_orders), [_order("O1")])
        assert [r[0] for r in runner.rows(Q.ORDER, {"id": "O1"})] == [DOC]


def test_a_bulk_saved_message_is_stored_as_a_single_save_stores_it(store: SqlStore) -> None:
    record = inbound(1, control_id="C\x00D", outcome={"k": "v\x00", "n": [1, None]},
                     patient_ids=("MRN1", "MRN1^^^HOSP"), accessions=("A1",))
    with store.transaction() as tx:
        one = tx.save_inbound(record)
        many = tx.save_inbound_many([record, inbound(2)])
    assert many[0] > one and many[1] == many[0] + 1
    with store.database.engine.connect() as conn:
        rows = [tuple(conn.execute(text("SELECT * FROM messages WHERE id = :id"),
                                   {"id": mid}).one())[1:] for mid in (one, many[0])]
        keys = [sorted(tuple(r)[1:] for r in conn.execute(
            text("SELECT * FROM message_keys WHERE message_id = :id"), {"id": mid}))
            for mid in (one, many[0])]
    assert rows[0] == rows[1]
    assert keys[0] == keys[1] and len(keys[0]) == 3
