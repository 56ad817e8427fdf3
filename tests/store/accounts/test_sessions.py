"""Sessions, API tokens and login attempts (``accord.store.accounts.sessions``) on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accord.store.accounts import Accounts
from accord.store.gateway.store import SqlStore

from ..conftest import T0


@pytest.fixture
def accounts(store: SqlStore) -> Accounts:
    return Accounts.over(store.database)


def test_sessions_answer_with_their_user_and_are_pruned(accounts: Accounts) -> None:
    user = accounts.users.add("alice", "viewer", "hash", T0)
    accounts.sessions.add("old", user.id, "c1", T0, "10.0.0.1")
    accounts.sessions.add("new", user.id, "c2", T0 + timedelta(hours=1), "10.0.0.2")
    found = accounts.sessions.get("new")
    assert found is not None and found.user == user and found.csrf_token == "c2"
    accounts.sessions.touch("old", T0 + timedelta(minutes=30))
    assert accounts.sessions.prune(T0 + timedelta(minutes=31), T0 - timedelta(days=1)) == 1
    assert accounts.sessions.get("old") is None and accounts.sessions.get("new") is not None


def test_a_revoked_token_is_not_found(accounts: Accounts) -> None:
    user = accounts.users.add("alice", "viewer", "hash", T0)
    token_id = accounts.tokens.add(user.id, "ci", "digest", "acc_abcdefgh", T0)
    found = accounts.tokens.with_user("digest")
    assert found is not None and found[1] == user and found[0].id == token_id
    assert [t.id for t in accounts.tokens.of_user(user.id)] == [token_id]
    assert accounts.tokens.revoke(token_id, T0) and not accounts.tokens.revoke(token_id, T0)
    assert accounts.tokens.with_user("digest") is None
    token = accounts.tokens.get(token_id)
    assert token is not None and token.revoked_at == T0


def test_failures_are_counted_per_name_and_peer_within_the_window(accounts: Accounts) -> None:
    for minute, name, ok in ((0, "alice", False), (5, "alice", False), (6, "bob", False),
                             (7, "alice", True)):
        accounts.attempts.add(name, "10.0.0.9", ok, T0 + timedelta(minutes=minute))
    since = T0 + timedelta(minutes=1)
    assert accounts.attempts.failures_since(since, name="alice") == 1
    assert accounts.attempts.failures_since(since, peer="10.0.0.9") == 2
    assert accounts.attempts.prune(since) == 1
