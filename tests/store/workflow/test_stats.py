"""Field statistics kept per write transaction (``accord.store.workflow.stats``):
written once before the commit, exactly as written per message would have left them;
gone with a rollback; savepoints see the database and undo only their own writes."""

from __future__ import annotations

from sqlalchemy import select

from accord.store import Tx
from accord.store.gateway.store import SqlStore
from accord.store.schema import wf_field_stats
from accord.store.workflow.repository import repository_for
from accord.workflow.findings import FieldStat, FieldStats, observe_fields

from ..conftest import T0

TYPE = "ORM^O01"


def _message(tx: Tx, filled: str) -> None:
    """One message of ``TYPE`` from RIS, as the engine observes it."""
    repo = repository_for(tx, T0)
    repo.focus(TYPE)
    stats, _ = observe_fields(repo.field_stats("RIS"), TYPE,
                              [("PV1-19", filled), ("OBR-4", "CT")], 3)
    repo.save_field_stats(stats)


def _stored(store: SqlStore) -> dict[str, tuple[int, int, int, bool]]:
    c = wf_field_stats.c
    with store.database.engine.connect() as conn:
        rows = conn.execute(select(c.path, c.seen, c.filled, c.streak, c.drifting)
                            .where(c.sender == "RIS")).all()
    return {r.path: (r.seen, r.filled, r.streak, bool(r.drifting)) for r in rows}


def test_a_transaction_writes_its_messages_statistics_once(store: SqlStore) -> None:
    with store.transaction() as tx:
        for value in ("V1", "V2", ""):
            _message(tx, value)
        assert _stored(store) == {}  # not yet: once, before the commit
    assert _stored(store) == {"PV1-19": (3, 2, 0, False), "OBR-4": (3, 3, 3, False)}
    with store.transaction() as tx:  # the next transaction reads what was written
        _message(tx, "V3")
        repo = repository_for(tx, T0)
        repo.focus(TYPE)
        assert repo.field_stats("RIS").fields[(TYPE, "PV1-19")] == FieldStat(4, 3, 1, False)
    assert _stored(store)["PV1-19"] == (4, 3, 1, False)


def test_a_rollback_takes_the_statistics_with_it(store: SqlStore) -> None:
    class Boom(Exception):
        pass

    try:
        with store.transaction() as tx:
            _message(tx, "V1")
            raise Boom
    except Boom:
        pass
    assert _stored(store) == {}
    with store.transaction() as tx:
        _message(tx, "V1")
    assert _stored(store)["PV1-19"] == (1, 1, 1, False)


def test_a_savepoint_rolled_back_undoes_only_its_own_message(store: SqlStore) -> None:
    class Boom(Exception):
        pass

    with store.transaction() as tx:
        _message(tx, "V1")
        try:
            with tx.savepoint():
                _message(tx, "V2")
                raise Boom
        except Boom:
            pass
        with tx.savepoint():
            _message(tx, "V3")
        _message(tx, "V4")
    assert _stored(store)["PV1-19"] == (3, 3, 3, False)


def test_unfocused_reads_see_what_is_pending(store: SqlStore) -> None:
    with store.transaction() as tx:
        _message(tx, "V1")
        repo = repository_for(tx, T0)  # no focus: every message type of the sender
        once = FieldStat(1, 1, 1, False)
        assert repo.field_stats("RIS") == FieldStats("RIS", {(TYPE, "PV1-19"): once,
                                                             (TYPE, "OBR-4"): once})
