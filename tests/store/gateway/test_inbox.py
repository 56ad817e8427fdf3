"""Store contract, the inbox (messages answered on store, not yet applied): the same
suite runs on SQLite and PostgreSQL.

Arrival order, exactly-once removal (including two connections racing for one row), the
outcome written back, the backlog and its oldest message, and retention leaving what
waits alone.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from accord.store import InboundMessage
from accord.store.gateway.store import SqlStore

from ..conftest import T0
from ..factories import inbound


def stored(store: SqlStore, count: int) -> list[int]:
    """``count`` messages saved and put in the inbox, one minute apart."""
    with store.transaction() as tx:
        ids = [tx.save_inbound(inbound(n, at=T0 + timedelta(minutes=n)))
               for n in range(count)]
        tx.inbox_add([(mid, T0 + timedelta(minutes=n)) for n, mid in enumerate(ids)])
    return ids


def test_oldest_first_and_the_backlog(store: SqlStore) -> None:
    assert store.backlog() == (0, None)
    ids = stored(store, 5)
    assert store.backlog() == (5, T0)
    with store.transaction() as tx:
        assert [m.id for m in tx.inbox_oldest(3)] == ids[:3]
        assert tx.inbox_remove(ids[0]) and tx.inbox_remove(ids[1])
    assert store.backlog() == (3, T0 + timedelta(minutes=2))
    with store.transaction() as tx:
        assert [m.id for m in tx.inbox_oldest(10)] == ids[2:]


def test_removal_is_exactly_once(store: SqlStore) -> None:
    [mid] = stored(store, 1)
    with store.transaction() as tx:
        assert tx.inbox_remove(mid)
        assert not tx.inbox_remove(mid)
    with store.transaction() as tx:
        assert not tx.inbox_remove(mid)


def test_a_removal_rolled_back_leaves_the_message_waiting(store: SqlStore) -> None:
    [mid] = stored(store, 1)
    try:
        with store.transaction() as tx:
            assert tx.inbox_remove(mid)
            raise RuntimeError("the apply failed")
    except RuntimeError:
        pass
    assert store.backlog()[0] == 1


def test_two_connections_racing_for_one_row(store: SqlStore) -> None:
    """One wins; the other finds nothing once the first committed (PostgreSQL: it waits
    for the row lock; SQLite: for the write lock)."""
    [mid] = stored(store, 1)
    results: list[bool] = []
    barrier = threading.Barrier(2)

    def apply() -> None:
        barrier.wait()
        with store.transaction() as tx:
            results.append(tx.inbox_remove(mid))

    threads = [threading.Thread(target=apply) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False, True]


def test_outcome_written_back_keeps_the_ack(store: SqlStore) -> None:
    [mid] = stored(store, 1)
    before = store.get_message(mid)
    with store.transaction() as tx:
        tx.record_outcome(mid, "error", {"error": "unknown code", "location": "OBR-4"})
    after = store.get_message(mid)
    assert (after.status, after.outcome["location"]) == ("error", "OBR-4")
    assert after.ack == before.ack and after.ack_code == before.ack_code
    assert [e.message.id for e in store.error_queue().items if e.message] == [mid]


def test_taken_at_once_or_not_at_all(store: SqlStore) -> None:
    ids = stored(store, 3)
    with store.transaction() as tx:
        assert tx.inbox_take(ids[:2])
        assert not tx.inbox_take(ids[1:])  # one of them was gone: the caller rolls back
    assert store.backlog()[0] == 0  # (this test committed; the applier would not have)
    with store.transaction() as tx:
        assert tx.inbox_take([])


def test_applied_record_completes_a_message_stored_with_custody_only(
        store: SqlStore) -> None:
    custody = inbound(1, charset="", receiving_app="", receiving_facility="",
                      message_type="", version="", patient_ids=(), accessions=(),
                      ack_code="CA", outcome={"applied": False})
    with store.transaction() as tx:
        mid = tx.save_inbound(custody)
        tx.inbox_add([(mid, custody.received_at)])
    assert store.search_messages(patient_id="PAT1").items == ()
    applied = inbound(1, status="error", outcome={"error": "unknown code"})
    with store.transaction() as tx:
        assert tx.inbox_take([mid])
        tx.record_applied([(mid, applied)])
    after = store.get_message(mid)
    assert (after.message_type, after.receiving_app, after.version) == ("ORM^O01",
                                                                        "ACCORD", "2.5.1")
    assert (after.status, after.outcome) == ("error", {"error": "unknown code"})
    assert (after.ack_code, after.ack) == ("CA", custody.ack)  # answered once, kept
    assert (after.patient_ids, after.accessions) == (("PAT1",), ("ACC1",))
    assert [m.id for m in store.search_messages(patient_id="PAT1").items] == [mid]


def test_retention_keeps_what_waits(store: SqlStore) -> None:
    ids = stored(store, 2)
    with store.transaction() as tx:
        tx.inbox_remove(ids[0])
    assert store.prune(T0 + timedelta(days=1)) == 1
    assert store.get_message(ids[1]).id == ids[1]


def custody(n: int) -> InboundMessage:
    """A message as ingest stores it when it answers on store: custody only."""
    return inbound(n, charset="", receiving_app="", receiving_facility="",
                   message_type="", version="", patient_ids=(), accessions=(),
                   ack_code="CA", outcome={"applied": False})


def test_custody_stored_claimed_and_queued_at_once(store: SqlStore) -> None:
    records = [custody(n) for n in range(1, 4)]
    with store.transaction() as tx:
        ids = tx.save_custody_many(records)
    assert ids is not None and ids == sorted(ids) and len(set(ids)) == 3
    assert store.backlog() == (3, records[0].received_at)
    for mid, record in zip(ids, records, strict=True):
        got = store.get_message(mid)
        assert (got.raw, got.ack, got.ack_code, got.control_id, got.sending_app,
                got.status, got.outcome) == (record.raw, record.ack, "CA",
                                             record.control_id, "RIS", "processed",
                                             {"applied": False})
        assert (got.message_type, got.patient_ids) == ("", ())  # the applier's to write
    with store.transaction() as tx:
        first = tx.find_first("RIS", "HOSP", "C2")
    assert first is not None and first.id == ids[1]  # a resend gets this one's ACK


def test_custody_of_a_claimed_message_is_refused(store: SqlStore) -> None:
    with store.transaction() as tx:
        assert tx.save_custody_many([custody(1)]) is not None
    try:
        with store.transaction() as tx:
            assert tx.save_custody_many([custody(2), custody(1)]) is None
            raise RuntimeError("the caller rolls back")
    except RuntimeError:
        pass
    with store.transaction() as tx:
        assert tx.save_custody_many([custody(3), custody(3)]) is None  # twice in a batch
    assert store.backlog()[0] == 1
