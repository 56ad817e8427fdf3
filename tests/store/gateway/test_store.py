"""The SqlStore as a whole: retention (pruning in blocks), stats and queue depth, the
job locks, ping, the hooks run after a commit. Same suite on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from accord.store.gateway.store import SqlStore, SqlTx
from accord.store.schema import dedupe, message_keys

from ..conftest import T0
from ..factories import inbound, item

CUTOFF = T0 + timedelta(days=30)
OLD = T0  # received before CUTOFF
NEW = T0 + timedelta(days=31)


def test_prune_respects_queued_and_error_messages(store: SqlStore) -> None:
    with store.transaction() as tx:
        plain = tx.save_inbound(inbound(1, at=OLD))
        tx.claim_control_id("RIS", "HOSP", "C1", plain)
        delivered = tx.save_inbound(inbound(2, at=OLD))
        queued = tx.save_inbound(inbound(3, at=OLD))
        out_error = tx.save_inbound(inbound(4, at=OLD))
        in_error = tx.save_inbound(inbound(5, at=OLD, status="error", ack_code="AE"))
        recent = tx.save_inbound(inbound(6, at=NEW))
        rows = tx.enqueue(
            [
                item("d1", n=2, source_message_id=delivered),
                item("d2", n=3, source_message_id=queued),
                item("d3", n=4, source_message_id=out_error),
            ],
            OLD,
        )
    [r] = store.claim("d1", "n1", OLD, 60)
    store.mark_delivered(r.id, "n1", b"", OLD)
    [r] = store.claim("d3", "n1", OLD, 60)
    store.mark_error(r.id, "n1", "AR", None)

    assert store.prune(CUTOFF, block_size=2) == 2  # plain and delivered only
    remaining = {m.id for m in store.search_messages(limit=100).items}
    assert remaining == {queued, out_error, in_error, recent}
    assert {o.id for o in store.list_outbox().items} == {rows[1], rows[2]}
    with store.transaction() as tx:
        # the dedupe claim went with the message: a resend now would be applied again
        assert tx.find_first("RIS", "HOSP", "C1") is None
    assert store.search_messages(patient_id="PAT1").items == ()


def test_prune_after_error_is_resolved(store: SqlStore) -> None:
    with store.transaction() as tx:
        bad = tx.save_inbound(inbound(1, at=OLD, status="error", ack_code="AE"))
        tx.save_inbound(inbound(1, at=OLD, reprocess_of=bad))
        mid = tx.save_inbound(inbound(2, at=OLD))
        [rid] = tx.enqueue([item(n=2, source_message_id=mid)], OLD)
    store.claim("pacs", "n1", OLD, 60)
    store.mark_error(rid, "n1", "AR", None)
    assert store.prune(CUTOFF) == 2  # the superseded inbound error and its reprocess
    new_id = store.reprocess_outbox(rid, OLD)
    assert store.prune(CUTOFF) == 0  # the resend is pending
    store.claim("pacs", "n1", OLD, 60)
    store.mark_delivered(new_id, "n1", b"", OLD)
    assert store.prune(CUTOFF) == 1
    assert store.stats()["messages"] == 0
    assert store.list_outbox().items == ()


def test_prune_works_in_blocks(store: SqlStore) -> None:
    with store.transaction() as tx:
        for n in range(25):
            mid = tx.save_inbound(inbound(n, at=OLD))
            tx.claim_control_id("RIS", "HOSP", f"C{n}", mid)
        tx.save_inbound(inbound(99, at=NEW))
    commits: list[object] = []
    count = commits.append  # one bound method: event.remove needs the same object
    event.listen(store.database.engine, "commit", count)
    try:
        assert store.prune(CUTOFF, block_size=4) == 25
    finally:
        event.remove(store.database.engine, "commit", count)
    # 6 full blocks + 1 short one of messages, then one (empty) block of orphan outbox rows
    assert len(commits) == 8
    assert store.stats()["messages"] == 1
    with store.database.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(dedupe)) == 0
        assert conn.scalar(select(func.count()).select_from(message_keys)) == 2  # PAT99, ACC99


def test_prune_orphan_outbox_rows(store: SqlStore) -> None:
    with store.transaction() as tx:  # e.g. MPPS status updates: no source message
        done, waiting = tx.enqueue([item("ris", n=1), item("ris", n=2)], OLD)
    store.claim("ris", "n1", OLD, 60)
    store.mark_delivered(done, "n1", b"", OLD)
    assert store.prune(CUTOFF) == 0
    assert [o.id for o in store.list_outbox().items] == [waiting]


def test_stats_cover_the_whole_store(store: SqlStore) -> None:
    with store.transaction() as tx:
        tx.save_inbound(inbound(1))
        tx.save_inbound(inbound(2, status="error", ack_code="AE"))
        tx.save_inbound(inbound(3, status="rejected", ack_code="AR"))
        tx.save_inbound(inbound(1, status="duplicate", duplicate_of=1))
        tx.enqueue([item("a", n=1), item("b", n=2), item("c", n=3), item("d", n=4)], T0)
    for dest, outcome in (("a", "delivered"), ("b", "error"), ("c", "in_flight")):
        [r] = store.claim(dest, "n1", T0, 60)
        if outcome == "delivered":
            store.mark_delivered(r.id, "n1", b"", T0)
        elif outcome == "error":
            store.mark_error(r.id, "n1", "AR", None)
    assert store.stats() == {
        "messages": 4,
        "processed": 1,
        "errors": 1,
        "rejected": 1,
        "duplicates": 1,
        "outbox_pending": 1,
        "outbox_in_flight": 1,
        "outbox_delivered": 1,
        "outbox_error": 1,
        "outbox_cancelled": 0,
    }


def test_queue_depth_counts_waiting_and_error_queue_rows_per_destination(
        store: SqlStore) -> None:
    with store.transaction() as tx:
        tx.enqueue([item("a", n=1), item("a", n=2), item("b", n=3), item("c", n=4)], T0)
    [head] = store.claim("a", "n1", T0, 60)  # a: one in flight, one pending
    [failed] = store.claim("b", "n1", T0, 60)
    store.mark_error(failed.id, "n1", "AR", None)
    [sent] = store.claim("c", "n1", T0, 60)
    store.mark_delivered(sent.id, "n1", b"", T0)  # delivered rows are not counted
    assert store.queue_depth() == {("a", "in_flight"): 1, ("a", "pending"): 1,
                                   ("b", "error"): 1}
    store.reprocess_outbox(failed.id, T0)  # leaves the error queue, queued again
    assert store.queue_depth() == {("a", "in_flight"): 1, ("a", "pending"): 1,
                                   ("b", "pending"): 1}
    assert head.destination == "a"


def test_job_lock_is_exclusive(store: SqlStore) -> None:
    assert store.try_job_lock("prune", "n1", 60, T0)
    assert not store.try_job_lock("prune", "n2", 60, T0 + timedelta(seconds=59))
    assert store.try_job_lock("reconcile", "n2", 60, T0)  # another job
    assert store.try_job_lock("prune", "n1", 60, T0 + timedelta(seconds=59))  # renew
    store.release_job_lock("prune", "n2")  # not the holder: no effect
    assert not store.try_job_lock("prune", "n2", 60, T0 + timedelta(seconds=60))
    store.release_job_lock("prune", "n1")
    assert store.try_job_lock("prune", "n2", 60, T0 + timedelta(seconds=61))


def test_job_lock_is_exclusive_until_expiry(store: SqlStore) -> None:
    if store.dialect == "postgresql":
        pytest.skip("PostgreSQL: a session advisory lock, no lease (test_job_locks.py)")
    assert store.try_job_lock("prune", "n1", 60, T0)
    assert not store.try_job_lock("prune", "n2", 60, T0 + timedelta(seconds=59))
    assert store.try_job_lock("reconcile", "n2", 60, T0)  # another job
    assert store.try_job_lock("prune", "n1", 60, T0 + timedelta(seconds=59))  # renew
    assert not store.try_job_lock("prune", "n2", 60, T0 + timedelta(seconds=61))
    assert store.try_job_lock("prune", "n2", 60, T0 + timedelta(seconds=120))  # expired
    store.release_job_lock("prune", "n1")  # not the holder: no effect
    assert not store.try_job_lock("prune", "n1", 60, T0 + timedelta(seconds=121))
    store.release_job_lock("prune", "n2")
    assert store.try_job_lock("prune", "n1", 60, T0 + timedelta(seconds=122))


def test_ping(store: SqlStore) -> None:
    assert store.ping()


def test_hooks_run_after_the_commit_and_only_then(store: SqlStore) -> None:
    ran: list[str] = []

    def hook(name: str, tx: SqlTx) -> None:
        tx.after_commit(lambda: ran.append(name))

    with store.transaction() as tx:
        hook("first", tx)
        with tx.savepoint():
            hook("kept savepoint", tx)
        with pytest.raises(RuntimeError), tx.savepoint():
            hook("undone savepoint", tx)
            raise RuntimeError("this message failed")
        hook("last", tx)
        assert ran == []  # not before the commit
    assert ran == ["first", "kept savepoint", "last"]

    ran.clear()
    with pytest.raises(RuntimeError), store.pinned_transaction() as tx:
        hook("rolled back", tx)
        raise RuntimeError("the whole batch failed")
    with store.pinned_transaction() as tx:
        hook("pinned", tx)
    assert ran == ["pinned"]


def test_a_failing_hook_leaves_the_commit_and_the_other_hooks(
        store: SqlStore, caplog: pytest.LogCaptureFixture) -> None:
    ran: list[int] = []
    with store.transaction() as tx:
        mid = tx.save_inbound(inbound(1))
        tx.after_commit(lambda: 1 / 0)  # type: ignore[arg-type, return-value]
        tx.after_commit(lambda: ran.append(mid))
    assert ran == [mid]
    assert store.get_message(mid).control_id == "C1"
    assert "a hook after commit failed" in caplog.text
