"""Store contract, outbox: FIFO per destination, per-patient mode, leases and takeover,
delivery outcomes, rotate, reprocess. Same suite on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accord.store import InvalidStateError, NotFoundError
from accord.store.gateway.store import SqlStore

from ..conftest import T0
from ..factories import inbound, item

LATER = T0 + timedelta(seconds=1)


def enqueue(store: SqlStore, *items: object) -> list[int]:
    with store.transaction() as tx:
        return tx.enqueue(list(items), T0)  # type: ignore[arg-type]


def test_enqueue_keeps_order_and_fields(store: SqlStore) -> None:
    with store.transaction() as tx:
        mid = tx.save_inbound(inbound(1))
        ids = tx.enqueue([item(n=n, patient="P1", source_message_id=mid) for n in range(3)], T0)
    assert ids == sorted(ids)
    row = store.get_outbox(ids[0])
    assert (row.status, row.attempts, row.source_message_id) == ("pending", 0, mid)
    assert (row.created_at, row.next_attempt_at) == (T0, T0)
    assert row.payload == item(n=0).payload and row.control_id == "OUTpacs0"
    assert [r.id for r in store.list_outbox(source_message_id=mid, oldest_first=True).items] == ids
    with pytest.raises(NotFoundError):
        store.get_outbox(10_000)


def test_fifo_one_in_flight_per_destination(store: SqlStore) -> None:
    ids = enqueue(store, *(item(n=n) for n in range(3)), item("ris", n=9))
    [first] = store.claim("pacs", "n1", LATER, 60, limit=10)
    assert first.id == ids[0]
    assert (first.status, first.claimed_by, first.attempts) == ("in_flight", "n1", 1)
    assert first.lease_until == LATER + timedelta(seconds=60)
    assert store.claim("pacs", "n2", LATER, 60) == []  # head in flight blocks the queue
    assert [r.id for r in store.claim("ris", "n2", LATER, 60)] == [ids[3]]  # other queue
    assert store.mark_delivered(first.id, "n1", b"MSA|AA|OUTpacs0\r", LATER)
    [second] = store.claim("pacs", "n2", LATER, 60)
    assert second.id == ids[1]
    delivered = store.get_outbox(first.id)
    assert (delivered.status, delivered.last_ack, delivered.delivered_at) == (
        "delivered",
        b"MSA|AA|OUTpacs0\r",
        LATER,
    )


def test_retry_keeps_head_of_queue(store: SqlStore) -> None:
    ids = enqueue(store, item(n=1), item(n=2))
    [row] = store.claim("pacs", "n1", LATER, 60)
    retry_at = LATER + timedelta(seconds=30)
    assert store.mark_retry(row.id, "n1", "connection refused", retry_at)
    assert store.claim("pacs", "n1", LATER + timedelta(seconds=29), 60) == []  # not due
    [again] = store.claim("pacs", "n1", retry_at, 60)
    assert again.id == ids[0]
    assert (again.attempts, again.last_error) == (2, "connection refused")


def test_error_moves_the_queue_on(store: SqlStore) -> None:
    ids = enqueue(store, item(n=1), item(n=2))
    [row] = store.claim("pacs", "n1", LATER, 60)
    assert store.mark_error(row.id, "n1", "AR: unknown patient", b"MSA|AR|OUTpacs1\r")
    failed = store.get_outbox(row.id)
    assert (failed.status, failed.last_error, failed.last_ack) == (
        "error",
        "AR: unknown patient",
        b"MSA|AR|OUTpacs1\r",
    )
    assert [r.id for r in store.claim("pacs", "n1", LATER, 60)] == [ids[1]]
    assert store.stats()["outbox_error"] == 1
    assert [e.outbox.id for e in store.error_queue().items if e.outbox] == [ids[0]]


def test_outcomes_need_the_claim(store: SqlStore) -> None:
    [rid] = enqueue(store, item())
    assert not store.mark_delivered(rid, "n1", b"", LATER)  # never claimed
    store.claim("pacs", "n1", LATER, 60)
    assert not store.mark_delivered(rid, "n2", b"", LATER)
    assert not store.mark_retry(rid, "n2", "x", LATER)
    assert not store.mark_error(rid, "n2", "x", None)
    assert store.rotate(rid, "n2", "x", LATER) is None
    assert store.get_outbox(rid).status == "in_flight"


def test_lease_expiry_takeover(store: SqlStore) -> None:
    """A node dies mid-delivery: its row is claimable again once the lease expires, and
    the dead node's late outcome is refused."""
    [rid] = enqueue(store, item())
    store.claim("pacs", "dead", LATER, 30)
    assert store.claim("pacs", "alive", LATER + timedelta(seconds=29), 30) == []
    [taken] = store.claim("pacs", "alive", LATER + timedelta(seconds=31), 30)
    assert (taken.id, taken.claimed_by, taken.attempts) == (rid, "alive", 2)
    assert not store.mark_delivered(rid, "dead", b"late", LATER + timedelta(seconds=32))
    assert store.mark_delivered(rid, "alive", b"ok", LATER + timedelta(seconds=32))
    assert store.get_outbox(rid).last_ack == b"ok"


def test_per_patient_order_kept_and_parallel_across_patients(store: SqlStore) -> None:
    ids = enqueue(
        store,
        item(n=1, patient="A"),
        item(n=2, patient="B"),
        item(n=3, patient="A"),
        item(n=4, patient="C"),
        item(n=5, patient="B"),
    )
    batch = store.claim("pacs", "n1", LATER, 60, limit=10, per_patient=True)
    assert [r.id for r in batch] == [ids[0], ids[1], ids[3]]  # one head per patient
    assert store.claim("pacs", "n2", LATER, 60, limit=10, per_patient=True) == []
    assert store.mark_delivered(ids[1], "n1", b"", LATER)  # B's head done
    assert [r.id for r in store.claim("pacs", "n2", LATER, 60, limit=10, per_patient=True)] == [
        ids[4]
    ]
    # A's second row waits for A's first, whatever the limit
    assert store.mark_retry(ids[0], "n1", "timeout", LATER + timedelta(seconds=10))
    assert store.claim("pacs", "n2", LATER, 60, limit=10, per_patient=True) == []
    later = store.claim("pacs", "n2", LATER + timedelta(seconds=10), 60, limit=10, per_patient=True)
    assert [r.id for r in later] == [ids[0]]


def test_per_patient_limit(store: SqlStore) -> None:
    ids = enqueue(store, *(item(n=n, patient=f"P{n}") for n in range(5)))
    assert [r.id for r in store.claim("pacs", "n1", LATER, 60, limit=2, per_patient=True)] == ids[
        :2
    ]


def test_rotate_moves_row_behind_the_queue(store: SqlStore) -> None:
    ids = enqueue(store, item(n=1), item(n=2))
    [row] = store.claim("pacs", "n1", LATER, 60)
    new_id = store.rotate(row.id, "n1", "AE three times", LATER)
    assert new_id is not None and new_id > ids[1]
    old = store.get_outbox(row.id)
    assert (old.status, old.superseded_by) == ("cancelled", new_id)
    assert old.last_error is not None and "AE three times" in old.last_error
    [nxt] = store.claim("pacs", "n1", LATER, 60)
    assert nxt.id == ids[1]  # the queue is no longer blocked
    assert store.mark_delivered(nxt.id, "n1", b"", LATER)
    [moved] = store.claim("pacs", "n1", LATER, 60)
    assert (moved.id, moved.rotated_from, moved.control_id, moved.payload) == (
        new_id,
        row.id,
        row.control_id,
        row.payload,
    )
    assert store.stats()["outbox_cancelled"] == 1


def test_reprocess_outbox_links_and_resends_same_msh10(store: SqlStore) -> None:
    [rid] = enqueue(store, item(n=1))
    [row] = store.claim("pacs", "n1", LATER, 60)
    with pytest.raises(InvalidStateError):
        store.reprocess_outbox(rid, LATER)  # still in flight
    store.mark_error(rid, "n1", "AR", b"MSA|AR\r")
    new_id = store.reprocess_outbox(rid, LATER)
    new = store.get_outbox(new_id)
    assert (new.status, new.reprocess_of, new.attempts) == ("pending", rid, 0)
    assert (new.control_id, new.payload) == (row.control_id, row.payload)
    assert store.get_outbox(rid).superseded_by == new_id
    assert store.error_queue().items == ()
    with pytest.raises(InvalidStateError):
        store.reprocess_outbox(rid, LATER)  # already resent
    with pytest.raises(NotFoundError):
        store.reprocess_outbox(10_000, LATER)
    assert [r.id for r in store.claim("pacs", "n1", LATER, 60)] == [new_id]


def test_list_outbox_filters_and_pages(store: SqlStore) -> None:
    ids = enqueue(store, *(item(n=n) for n in range(7)), item("ris", n=1))
    store.claim("pacs", "n1", LATER, 60)
    assert [r.id for r in store.list_outbox(status="in_flight").items] == [ids[0]]
    assert [r.id for r in store.list_outbox(destination="ris").items] == [ids[7]]
    assert [r.id for r in store.list_outbox(control_id="OUTpacs3").items] == [ids[3]]
    walked: list[int] = []
    cursor = None
    while True:
        page = store.list_outbox(destination="pacs", oldest_first=True, cursor=cursor, limit=3)
        walked += [r.id for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert walked == ids[:7]
    newest = store.list_outbox(limit=2)
    assert [r.id for r in newest.items] == [ids[7], ids[6]] and newest.next_cursor is not None


def test_claim_run_is_a_prefix_of_the_queue(store: SqlStore) -> None:
    ids = enqueue(store, *(item(n=n) for n in range(6)), item("ris", n=1))
    run = store.claim_run("pacs", "n1", LATER, 60, limit=4)
    assert [r.id for r in run] == ids[:4]
    assert all(r.status == "in_flight" and r.claimed_by == "n1" for r in run)
    assert run == [store.get_outbox(i) for i in ids[:4]]  # every field as stored
    assert store.claim_run("pacs", "n2", LATER, 60, limit=4) == []  # head in flight
    assert store.claim("pacs", "n2", LATER, 60) == []
    acks = [(ids[0], b"MSA|AA|0\r"), (ids[1], b"MSA|AA|1\r")]
    assert store.mark_delivered_many(acks, "n1", LATER) == 2
    assert store.mark_delivered_many([(ids[2], b"x")], "n2", LATER) == 0  # not n2's
    assert store.release_many([ids[2], ids[3]], "n1") == 2
    released = store.get_outbox(ids[2])
    assert (released.status, released.attempts, released.claimed_by) == ("pending", 0, None)
    assert store.get_outbox(ids[1]).last_ack == b"MSA|AA|1\r"
    assert [r.id for r in store.claim_run("pacs", "n2", LATER, 60, limit=10)] == ids[2:6]


def test_claim_run_stops_at_a_row_not_due(store: SqlStore) -> None:
    ids = enqueue(store, *(item(n=n) for n in range(3)))
    [head] = store.claim("pacs", "n1", LATER, 60)
    store.mark_retry(head.id, "n1", "timeout", LATER + timedelta(seconds=30))
    assert store.claim_run("pacs", "n1", LATER, 60, limit=3) == []  # the head waits
    run = store.claim_run("pacs", "n1", LATER + timedelta(seconds=30), 60, limit=3)
    assert [r.id for r in run] == ids
    expired = store.claim_run("pacs", "n2", LATER + timedelta(seconds=91), 60, limit=3)
    assert [r.id for r in expired] == ids  # the whole run taken over after the lease


def test_odd_text_in_outbox_is_stored(store: SqlStore) -> None:
    [rid] = enqueue(store, item(patient="P\x00"))
    [row] = store.claim("pacs", "n1", LATER, 60, per_patient=True)
    assert row.patient_key == "P\ufffd"
    assert store.mark_error(rid, "n1", "receiver said \x00", b"MSA|AR\x00\r")
    failed = store.get_outbox(rid)
    assert (failed.last_error, failed.last_ack) == ("receiver said \ufffd", b"MSA|AR\x00\r")
