"""The migration chain: linear, its revision ids unchanged, idempotent, ending where the
``Table`` definitions are (on SQLite and PostgreSQL), and a store made by an older
release opens and is upgraded to the latest schema."""

from __future__ import annotations

import json
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from accord.store import open_store, sqlite_url
from accord.store.db import connect
from accord.store.gateway.store import SqlStore
from accord.store.schema import metadata
from accord.store.schema.migrations import alembic_config, head_revision
from accord.store.workflow.codec import decode_patient
from accord.workflow.identity.compare import features
from accord.workflow.identity.index import stored_keys

from ..factories import inbound

# Revision ids are stored in every database (``alembic_version``): they never change.
CHAIN = ["0001_gateway", "0002_workflow", "0003_web", "0004_step_hold", "0007_console",
         "0008_operations", "0009_inbox", "0010_identity", "0011_identity_keys",
         "0012_identity_cities"]


def test_exactly_one_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"several migration heads: {heads}"
    assert heads[0] == head_revision()


def test_revision_ids_are_those_stores_hold() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    ids = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    assert ids[: len(CHAIN)] == CHAIN


def test_a_store_at_an_older_revision_is_upgraded_when_opened(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    old = connect(url)
    with old.write() as conn:
        command.upgrade(alembic_config(conn), CHAIN[0])
    with old.read() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == CHAIN[0]
        assert "orders" not in inspect(conn).get_table_names()
    old.close()
    store = open_store(url)
    try:
        with store.database.read() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == head_revision()
            assert {"orders", "users", "audit_log"} <= set(inspect(conn).get_table_names())
    finally:
        store.close()


def test_steps_of_held_orders_are_marked_held_by_the_upgrade(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    old = connect(url)
    with old.write() as conn:
        command.upgrade(alembic_config(conn), "0003_web")
        for oid, held in (("O-held", True), ("O-free", False)):
            conn.execute(text("INSERT INTO orders (id, patient_id, status, held, doc) "
                              "VALUES (:id, 'P1', 'scheduled', :held, '{}')"),
                         {"id": oid, "held": held})
            conn.execute(text("INSERT INTO procedure_steps (order_id, sps_id, status) "
                              "VALUES (:id, 'S1', 'scheduled')"), {"id": oid})
    old.close()
    store = open_store(url)
    try:
        with store.database.read() as conn:
            rows = conn.execute(text("SELECT order_id, held FROM procedure_steps "
                                     "ORDER BY order_id")).all()
    finally:
        store.close()
    assert [(r[0], bool(r[1])) for r in rows] == [("O-free", False), ("O-held", True)]


def test_migrations_idempotent_and_match_the_tables(store: SqlStore, store_url: str) -> None:
    with store.transaction() as tx:
        mid = tx.save_inbound(inbound(1))
    again = open_store(store_url)  # upgrade head on an up-to-date schema: no-op
    try:
        assert again.get_message(mid).control_id == "C1"
        with again.database.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == head_revision()
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            tables = set(inspect(conn).get_table_names())
    finally:
        again.close()
    assert diff == []
    assert {"messages", "message_keys", "dedupe", "outbox", "job_locks"} <= tables


def test_the_console_upgrade_fills_search_keys_accessions_and_audit_patients(
        tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    old = connect(url)
    orm = (b"MSH|^~\\&|ACCORD|RAD|RIS|RAD|||ORM^O01|X1|P|2.3.1\rPID|1||M1\r"
           b"ORC|SC|P1\rOBR|1|P1||CT^CT||||||||||||||Acc-9||||||CT\r")
    with old.write() as conn:
        command.upgrade(alembic_config(conn), "0004_step_hold")
        conn.execute(text("INSERT INTO orders (id, patient_id, status, accession, doc) "
                          "VALUES ('O1', 'P1', 'scheduled', 'Acc-9', '{}')"))
        conn.execute(text("INSERT INTO patient_identifiers (value, authority, patient_id, "
                          "position) VALUES ('MRN77', 'HOSP', 'P1', 0)"))
        for n, (kind, payload) in enumerate((("status", orm), ("adt", b"MSH|^~\\&|A"))):
            conn.execute(text(
                "INSERT INTO outbox (destination, kind, control_id, payload, status, "
                "created_at, next_attempt_at) VALUES ('ris', :k, :c, :p, 'delivered', "
                "'2026-03-02 08:00:00', '2026-03-02 08:00:00')"),
                {"k": kind, "c": f"X{n}", "p": payload})
        conn.execute(text("INSERT INTO audit_log (at, actor, action, outcome, detail, "
                          "patient_id) VALUES ('2026-03-02 08:00:00', 'ann', 'orders.read', "
                          "'ok', '{}', 'P1')"))
    old.close()
    store = open_store(url)
    try:
        with store.database.read() as conn:
            keys = (conn.scalar(text("SELECT accession_rev FROM orders")),
                    conn.scalar(text("SELECT value_rev FROM patient_identifiers")))
            accessions = conn.execute(text("SELECT kind, accession FROM outbox "
                                           "ORDER BY id")).all()
            audit = conn.execute(text("SELECT patient_id FROM audit_patients")).all()
    finally:
        store.close()
    assert keys == ("9-cca", "77nrm")
    assert [tuple(r) for r in accessions] == [("status", "Acc-9"), ("adt", "")]
    assert [r[0] for r in audit] == ["P1"]


def test_the_identity_upgrade_files_the_home_and_birthday_keys_of_stored_patients(
        tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    old = connect(url)
    doc = {"id": "P1", "name": {"family": "KOWALCZYK", "given": "ANNA"},
           "birth_date": "1970-03-04", "sex": "F", "identifiers": [],
           "address": {"street": "12 KING DRIVE", "postal_code": "2000"}}
    with old.write() as conn:
        command.upgrade(alembic_config(conn), "0009_inbox")
        conn.execute(text("INSERT INTO patients (id, doc) VALUES ('P1', :doc)"),
                     {"doc": json.dumps(doc)})
        command.upgrade(alembic_config(conn), "0010_identity")
        conn.execute(text("INSERT INTO identity_counts (key, count) VALUES ('7:stale', 5)"))
    old.close()
    store = open_store(url)
    try:
        with store.database.read() as conn:
            blocks = {r[0] for r in conn.execute(text(
                "SELECT key FROM patient_blocks WHERE patient_id = 'P1'"))}
            counts = dict(conn.execute(text(
                "SELECT key, count FROM identity_counts WHERE key LIKE '7:%' "
                "OR key LIKE '8:%'")).all())
    finally:
        store.close()
    f = features(decode_patient(doc).demographics)
    new = {k for k in stored_keys(f) if k.startswith(("7:", "8:"))}
    assert len(new) == 2 and new <= blocks  # one key each: home, and family + birthday
    assert counts == dict.fromkeys(new, 1)  # counted once; the stale count is gone


def test_the_city_upgrade_counts_the_cities_of_stored_patients_once(store_url: str) -> None:
    docs = [{"id": f"P{n}", "name": {"family": "KOWALCZYK", "given": given},
             "birth_date": "1970-03-04", "sex": "F", "identifiers": [],
             "address": {"street": f"{n} KING DRIVE", "city": "Springfield"}}
            for n, given in ((1, "ANNA"), (2, "EWA"))]
    open_store(store_url).close()  # at the head
    old = connect(store_url)
    with old.write() as conn:  # back to the revision before, with stale city counts
        command.downgrade(alembic_config(conn), "0011_identity_keys")
        for doc in docs:
            conn.execute(text("INSERT INTO patients (id, doc) VALUES (:id, :doc)"),
                         {"id": doc["id"], "doc": json.dumps(doc)})
        conn.execute(text("INSERT INTO identity_counts (key, count) "
                          "VALUES ('city:SPRINGFIELD', 7), ('city:ATHENS', 3)"))
    old.close()
    store = open_store(store_url)
    try:
        with store.database.read() as conn:
            counts = dict(conn.execute(text(
                "SELECT key, count FROM identity_counts WHERE key LIKE 'city:%'")).all())
    finally:
        store.close()
    assert counts == {"city:SPRINGFIELD": 2}  # both patients, once; the stale counts gone
