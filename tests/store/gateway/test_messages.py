"""Store contract, inbound side: the same suite runs on SQLite and PostgreSQL.

Save + search keys + every search filter + keyset pagination; dedupe by MSH-3 + MSH-4 +
MSH-10 (including a race between connections); savepoint isolation for group commit;
reprocess links; the error queue.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from accord.errors import StoreError
from accord.store import InvalidStateError, NotFoundError, StoredMessage
from accord.store.gateway.store import SqlStore

from ..conftest import T0
from ..factories import inbound, item


def save(store: SqlStore, *messages: object) -> list[int]:
    with store.transaction() as tx:
        return [tx.save_inbound(m) for m in messages]  # type: ignore[arg-type]


def test_save_and_read_back_exactly(store: SqlStore) -> None:
    raw = b"MSH|^~\\&|RIS|HOSP|||20260302||ORM^O01|C1|P|2.5.1\rPID|||X\xe9\r\x00tail"
    msg = inbound(1, raw=raw, charset="8859/1", outcome={"findings": [{"kind": "k"}], "n": 2})
    [mid] = save(store, msg)
    got = store.get_message(mid)
    assert got.raw == raw
    assert got.ack == msg.ack
    assert got.outcome == {"findings": [{"kind": "k"}], "n": 2}
    assert got.received_at == msg.received_at
    assert got.received_at.utcoffset() == timedelta(0)
    assert (got.patient_ids, got.accessions) == (("PAT1",), ("ACC1",))
    assert (got.sending_app, got.message_type, got.control_id) == ("RIS", "ORM^O01", "C1")


def test_get_missing_message(store: SqlStore) -> None:
    with pytest.raises(NotFoundError):
        store.get_message(999)


def test_naive_datetime_refused() -> None:
    from datetime import datetime

    with pytest.raises(ValueError):
        inbound(1, at=datetime(2026, 1, 1))


def test_unparseable_input_is_stored(store: SqlStore) -> None:
    msg = inbound(
        1,
        raw=b"\x0bgarbage",
        sending_app="",
        sending_facility="",
        control_id="",
        message_type="",
        parse_error="no MSH segment",
        status="rejected",
        ack_code="AR",
        patient_ids=(),
        accessions=(),
    )
    [mid] = save(store, msg)
    got = store.get_message(mid)
    assert (got.status, got.parse_error, got.raw) == ("rejected", "no MSH segment", b"\x0bgarbage")


def test_search_by_each_key(store: SqlStore) -> None:
    ids = save(
        store,
        inbound(1, patient_ids=("P1", "P2"), accessions=("A1",)),
        inbound(2, patient_ids=("P2",), accessions=("A2",), message_type="ADT^A08"),
        inbound(3, sending_app="HIS", sending_facility="OTHER", status="error", ack_code="AE"),
    )

    def found(**filters: object) -> list[int]:
        return [m.id for m in store.search_messages(**filters).items]  # type: ignore[arg-type]

    assert found(patient_id="P2") == [ids[1], ids[0]]
    assert found(patient_id="P1") == [ids[0]]
    assert found(accession="A2") == [ids[1]]
    assert found(control_id="C3") == [ids[2]]
    assert found(message_type="ADT^A08") == [ids[1]]
    assert found(message_type="ORM") == [ids[2], ids[0]]
    assert found(sender="HIS") == [ids[2]]
    assert found(sender="RIS^HOSP") == [ids[1], ids[0]]
    assert found(sender="RIS^OTHER") == []
    assert found(status="error") == [ids[2]]
    assert found(patient_id="P2", accession="A1") == [ids[0]]
    assert found(patient_id="nobody") == []


def test_search_by_time_range(store: SqlStore) -> None:
    ids = save(store, *(inbound(n, at=T0 + timedelta(minutes=n)) for n in range(5)))
    page = store.search_messages(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3))
    assert [m.id for m in page.items] == [ids[2], ids[1]]  # since inclusive, until exclusive


def test_keyset_pagination_walks_everything_once(store: SqlStore) -> None:
    ids = save(store, *(inbound(n) for n in range(23)))
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page = store.search_messages(cursor=cursor, limit=5)
        seen += [m.id for m in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)
    assert pages == 5
    assert store.search_messages(limit=23).next_cursor is None


def test_bad_cursor_is_refused(store: SqlStore) -> None:
    with pytest.raises(ValueError):
        store.search_messages(cursor="1; DROP TABLE messages")


def test_dedupe_first_claim_wins(store: SqlStore) -> None:
    with store.transaction() as tx:
        assert tx.find_first("RIS", "HOSP", "C1") is None
        first = tx.save_inbound(inbound(1))
        assert tx.claim_control_id("RIS", "HOSP", "C1", first)
    with store.transaction() as tx:
        found = tx.find_first("RIS", "HOSP", "C1")
        assert found is not None and found.id == first
        dup = tx.save_inbound(inbound(1, status="duplicate", duplicate_of=found.id, ack=found.ack))
        assert not tx.claim_control_id("RIS", "HOSP", "C1", dup)
        # other facility, same MSH-10: a different message
        other = tx.save_inbound(inbound(1, sending_facility="ELSEWHERE"))
        assert tx.claim_control_id("RIS", "ELSEWHERE", "C1", other)
    got = store.get_message(dup)
    assert (got.status, got.duplicate_of, got.ack) == ("duplicate", first, inbound(1).ack)
    assert store.stats()["duplicates"] == 1


def test_dedupe_within_one_group_commit(store: SqlStore) -> None:
    with store.transaction() as tx:
        a = tx.save_inbound(inbound(7))
        assert tx.claim_control_id("RIS", "HOSP", "C7", a)
        found = tx.find_first("RIS", "HOSP", "C7")
        assert found is not None and found.id == a


def test_dedupe_race_between_connections(store: SqlStore) -> None:
    """Four connections save and claim the same MSH-10 at once: exactly one wins."""
    barrier = threading.Barrier(4)
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def contender() -> None:
        try:
            barrier.wait()
            with store.transaction() as tx:
                mid = tx.save_inbound(inbound(9))
                won = tx.claim_control_id("RIS", "HOSP", "C9", mid)
            results.append((mid, won))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=contender) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    winners = [mid for mid, won in results if won]
    assert len(results) == 4 and len(winners) == 1
    with store.transaction() as tx:
        first = tx.find_first("RIS", "HOSP", "C9")
    assert first is not None and first.id == winners[0]


def test_claim_waits_for_uncommitted_holder(store: SqlStore) -> None:
    """A claim racing an uncommitted one loses once the holder commits (no double apply)."""
    claimed = threading.Event()
    outcome: list[bool] = []

    def holder() -> None:
        with store.transaction() as tx:
            mid = tx.save_inbound(inbound(5))
            assert tx.claim_control_id("RIS", "HOSP", "C5", mid)
            claimed.set()
            threading.Event().wait(0.3)  # keep the claim uncommitted for a while

    t = threading.Thread(target=holder)
    t.start()
    assert claimed.wait(30)
    with store.transaction() as tx:
        mid = tx.save_inbound(inbound(5, status="duplicate", duplicate_of=1))
        outcome.append(tx.claim_control_id("RIS", "HOSP", "C5", mid))
    t.join(30)
    assert outcome == [False]


def test_savepoint_isolates_one_failure(store: SqlStore) -> None:
    """Group commit: the middle message fails, the others are committed."""
    kept: list[int] = []
    with store.transaction() as tx:
        for n in (1, 2, 3):
            try:
                with tx.savepoint():
                    mid = tx.save_inbound(inbound(n))
                    tx.claim_control_id("RIS", "HOSP", f"C{n}", mid)
                    tx.enqueue([item(n=n)], T0)
                    if n == 2:
                        raise RuntimeError("message 2 cannot be applied")
                    kept.append(mid)
            except RuntimeError:
                pass
    assert [m.id for m in store.search_messages().items] == kept[::-1]
    assert store.search_messages(control_id="C2").items == ()
    assert [r.control_id for r in store.list_outbox(oldest_first=True).items] == [
        "OUTpacs1",
        "OUTpacs3",
    ]
    with store.transaction() as tx:
        assert tx.find_first("RIS", "HOSP", "C2") is None


def test_lost_claim_in_savepoint_keeps_transaction_usable(store: SqlStore) -> None:
    with store.transaction() as tx:
        a = tx.save_inbound(inbound(1))
        assert tx.claim_control_id("RIS", "HOSP", "C1", a)
        b = tx.save_inbound(inbound(2))
        assert not tx.claim_control_id("RIS", "HOSP", "C1", b)
        tx.save_inbound(inbound(3))  # still usable after the constraint said no
    assert store.stats()["messages"] == 3


def test_failed_block_rolls_back_everything(store: SqlStore) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.save_inbound(inbound(1))
        raise RuntimeError("crash before commit")
    assert store.stats()["messages"] == 0


def test_over_long_wire_fields_are_stored_and_dedupe(store: SqlStore) -> None:
    long_id = "9" * 300
    with store.transaction() as tx:
        mid = tx.save_inbound(inbound(1, control_id=long_id, peer="p" * 1000))
        assert tx.claim_control_id("RIS", "HOSP", long_id, mid)
        assert not tx.claim_control_id("RIS", "HOSP", long_id, mid)
        found = tx.find_first("RIS", "HOSP", long_id)
    assert found is not None and found.id == mid
    assert [m.id for m in store.search_messages(control_id=long_id).items] == [mid]


def test_database_errors_become_store_errors(store: SqlStore) -> None:
    """A constraint violation (here a foreign key: enforced on SQLite too) is a
    StoreError, and nothing of the transaction is kept."""
    with pytest.raises(StoreError), store.transaction() as tx:
        tx.save_inbound(inbound(1))
        tx.enqueue([item(source_message_id=424242)], T0)
    assert store.stats()["messages"] == 0


def test_reprocess_message_links_and_leaves_error_queue(store: SqlStore) -> None:
    [bad] = save(store, inbound(1, status="error", ack_code="AE", outcome={"error": "OBR-4"}))
    with store.transaction() as tx:
        assert tx.claim_control_id("RIS", "HOSP", "C1", bad)
    assert [e.message.id for e in store.error_queue().items if e.message] == [bad]
    original = store.reprocess_message(bad)
    assert original.raw == inbound(1).raw
    with store.transaction() as tx:
        again = tx.save_inbound(inbound(1, reprocess_of=bad))
        assert tx.claim_control_id("RIS", "HOSP", "C1", again, takeover_from=bad)
        first = tx.find_first("RIS", "HOSP", "C1")
    assert first is not None and first.id == again  # later resends get the new ACK
    assert store.get_message(again).reprocess_of == bad
    assert store.get_message(bad).superseded_by == again
    assert store.error_queue().items == ()
    assert store.stats()["errors"] == 0
    with pytest.raises(InvalidStateError):
        store.reprocess_message(bad)
    with pytest.raises(InvalidStateError):
        store.reprocess_message(again)


def test_error_queue_merges_inbound_and_outbound(store: SqlStore) -> None:
    m_ids = save(store, *(inbound(n, status="error", ack_code="AE") for n in range(3)))
    with store.transaction() as tx:
        o_ids = tx.enqueue([item(n=n) for n in range(3)], T0 + timedelta(seconds=1, milliseconds=1))
    for oid in o_ids:
        [row] = store.claim("pacs", "n1", T0 + timedelta(seconds=5), 60)
        assert row.id == oid
        assert store.mark_error(oid, "n1", "AR from PACS", b"MSA|AR|x\r")
    entries: list[StoredMessage | object] = []
    cursor = None
    while True:
        page = store.error_queue(cursor=cursor, limit=2)
        entries += [e.message or e.outbox for e in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    got = [(type(e).__name__, e.id) for e in entries]  # type: ignore[attr-defined]
    # newest first: message 2 (T0+2s), outbox rows (T0+1.001s), message 1, message 0
    assert got == [
        ("StoredMessage", m_ids[2]),
        ("OutboxRow", o_ids[2]),
        ("OutboxRow", o_ids[1]),
        ("OutboxRow", o_ids[0]),
        ("StoredMessage", m_ids[1]),
        ("StoredMessage", m_ids[0]),
    ]


def test_bulk_save_matches_one_by_one(store: SqlStore) -> None:
    """Group commit's fast path stores the same rows and keys as save_inbound."""
    batch = [inbound(n, patient_ids=(f"P{n}", "SHARED")) for n in range(4)]
    with store.transaction() as tx:
        ids = tx.save_inbound_many(batch)
        assert tx.claim_control_ids([("RIS", "HOSP", f"C{n}", ids[n]) for n in range(4)])
        assert tx.save_inbound_many([]) == [] and tx.claim_control_ids([])
    assert ids == sorted(ids)
    for n, mid in enumerate(ids):
        got = store.get_message(mid)
        assert (got.raw, got.control_id, got.patient_ids) == (
            batch[n].raw,
            f"C{n}",
            tuple(sorted((f"P{n}", "SHARED"))),
        )
    assert len(store.search_messages(patient_id="SHARED").items) == 4
    with pytest.raises(ValueError), store.transaction() as tx:
        tx.save_inbound_many([inbound(9, reprocess_of=ids[0])])


def test_bulk_claim_is_all_or_nothing(store: SqlStore) -> None:
    with store.transaction() as tx:
        held = tx.save_inbound(inbound(1))
        assert tx.claim_control_id("RIS", "HOSP", "C1", held)
        a, b = tx.save_inbound_many([inbound(2), inbound(1)])
        assert not tx.claim_control_ids([("RIS", "HOSP", "C2", a), ("RIS", "HOSP", "C1", b)])
        assert tx.find_first("RIS", "HOSP", "C2") is None  # nothing of the batch claimed
        assert not tx.claim_control_ids([("RIS", "HOSP", "C3", a), ("RIS", "HOSP", "C3", b)])
        assert tx.claim_control_id("RIS", "HOSP", "C2", a)  # the transaction is usable
    assert store.stats()["messages"] == 3


def test_nul_and_surrogates_are_stored_alike_on_both(store: SqlStore) -> None:
    """PostgreSQL refuses NUL in text and JSON; the message is stored anyway (raw bytes
    exact), with U+FFFD in the text columns, and found by the same search on both."""
    odd = "C\x00\udce9"
    raw = b"MSH|^~\\&|R\x00IS|HOSP|||20260302||ORM^O01|C\x00\xe9|P|2.5.1\r"
    msg = inbound(
        1,
        raw=raw,
        sending_app="R\x00IS",
        control_id=odd,
        parse_error="NUL at \x00",
        outcome={"detail": "bad \x00 byte", "k\x00": ["\udce9"]},
        patient_ids=("P\x001",),
        status="rejected",
        ack_code="AR",
    )
    with store.transaction() as tx:
        mid = tx.save_inbound(msg)
        assert tx.claim_control_id("R\x00IS", "HOSP", odd, mid)
        found = tx.find_first("R\x00IS", "HOSP", odd)
        [bulk] = tx.save_inbound_many([inbound(2, control_id=odd, sending_app="R\x00IS")])
        assert not tx.claim_control_ids([("R\x00IS", "HOSP", odd, bulk)])
    assert found is not None and found.id == mid
    got = store.get_message(mid)
    assert got.raw == raw
    assert (got.control_id, got.sending_app) == ("C\ufffd\ufffd", "R\ufffdIS")
    assert got.outcome == {"detail": "bad \ufffd byte", "k\ufffd": ["\ufffd"]}
    assert got.parse_error == "NUL at \ufffd"
    assert [m.id for m in store.search_messages(control_id=odd).items] == [bulk, mid]
    assert [m.id for m in store.search_messages(patient_id="P\x001").items] == [mid]
    assert len(store.search_messages(sender="R\x00IS^HOSP").items) == 2


def test_bulk_claim_without_savepoint_leaves_the_rollback_to_the_caller(
        store: SqlStore) -> None:
    """Ingest's fast path: ``keep_usable=False`` spends no savepoint; on False the
    caller rolls the whole transaction back, and nothing of it is kept."""
    with store.transaction() as tx:
        held = tx.save_inbound(inbound(1))
        assert tx.claim_control_id("RIS", "HOSP", "C1", held)
    with store.transaction() as tx:
        [fresh] = tx.save_inbound_many([inbound(5)])
        assert tx.claim_control_ids([("RIS", "HOSP", "C5", fresh)], keep_usable=False)

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon), store.transaction() as tx:
        a, b = tx.save_inbound_many([inbound(2), inbound(1)])
        assert not tx.claim_control_ids(
            [("RIS", "HOSP", "C2", a), ("RIS", "HOSP", "C1", b)], keep_usable=False)
        raise Abandon
    assert store.stats()["messages"] == 2
    with store.transaction() as tx:
        assert tx.find_first("RIS", "HOSP", "C2") is None
        first = tx.find_first("RIS", "HOSP", "C1")
        assert first is not None and first.id == held


def test_pinned_transaction_keeps_its_connection_and_starts_over_after_a_failure(
        store: SqlStore) -> None:
    with store.pinned_transaction() as tx:
        kept = tx.connection
        tx.save_inbound(inbound(1))
    with store.pinned_transaction() as tx:
        assert tx.connection is kept
        tx.save_inbound(inbound(2))
    with pytest.raises(RuntimeError), store.pinned_transaction() as tx:
        tx.save_inbound(inbound(3))
        raise RuntimeError("processing failed")
    assert kept.closed  # a failed transaction's connection is not reused
    with store.pinned_transaction() as tx:
        assert tx.connection is not kept
        tx.save_inbound(inbound(4))
    assert store.stats()["messages"] == 3  # 1, 2 and 4

    other: list[object] = []

    def elsewhere() -> None:
        with store.pinned_transaction() as tx:
            other.append(tx.connection)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    with store.pinned_transaction() as tx:
        assert other and other[0] is not tx.connection  # one per thread


def test_pinned_transaction_without_waiting_refuses_a_held_lock(store: SqlStore) -> None:
    """``wait=False`` (ingest's inline commit on the event loop) never waits for another
    writer: StoreBusy at once, nothing written, the connection still good after."""
    from accord.errors import StoreBusy

    if store.dialect != "sqlite":
        pytest.skip("SQLite only: PostgreSQL writers do not share one lock")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.transaction() as tx:
            tx.save_inbound(inbound(9))
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        with pytest.raises(StoreBusy), store.pinned_transaction(wait=False) as tx:
            tx.save_inbound(inbound(1))
    finally:
        release.set()
        holder.join()
    with store.pinned_transaction(wait=False) as tx:
        tx.save_inbound(inbound(2))
    with store.pinned_transaction() as tx:  # back to waiting on the same connection
        tx.save_inbound(inbound(3))
    assert store.stats()["messages"] == 3  # 9, 2 and 3
