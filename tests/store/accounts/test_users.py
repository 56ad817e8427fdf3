"""Users and setup tokens (``accord.store.accounts.users``) on SQLite and PostgreSQL:
unique names, a change that ends the user's sessions, and setup tokens that create the
first user only, once, before they expire."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accord.store.accounts import Accounts, UserExistsError
from accord.store.gateway.store import SqlStore

from ..conftest import T0


@pytest.fixture
def accounts(store: SqlStore) -> Accounts:
    return Accounts.over(store.database)


def test_names_are_unique_and_users_page_in_id_order(accounts: Accounts) -> None:
    alice = accounts.users.add("alice", "viewer", "hash-a", T0)
    with pytest.raises(UserExistsError):
        accounts.users.add("alice", "admin", "hash-b", T0)
    bob = accounts.users.add("bob", "admin", "hash-b", T0)
    first = accounts.users.page(limit=1)
    assert [u.name for u in first.items] == ["alice"]
    assert [u.name for u in accounts.users.page(first.next_cursor).items] == ["bob"]
    assert accounts.users.named("bob") == bob and accounts.users.get(alice.id) == alice
    assert accounts.users.count() == 2 and accounts.users.count("admin") == 1


def test_a_change_ends_the_users_sessions(accounts: Accounts) -> None:
    user = accounts.users.add("alice", "viewer", "hash-a", T0)
    accounts.sessions.add("s1", user.id, "csrf", T0, "127.0.0.1")
    assert accounts.sessions.get("s1") is not None
    assert accounts.users.update(user.id, role="operator", now=T0)
    assert accounts.sessions.get("s1") is None
    changed = accounts.users.get(user.id)
    assert changed is not None and changed.role == "operator"
    assert not accounts.users.update(999_999, disabled=True, now=T0)


def test_a_setup_token_creates_the_first_user_only(accounts: Accounts) -> None:
    accounts.setup.add("t-expired", T0, T0 + timedelta(hours=1))
    assert not accounts.setup.use("t-expired", T0 + timedelta(hours=2))
    accounts.setup.add("t1", T0, T0 + timedelta(hours=24))
    assert accounts.setup.use("t1", T0)
    assert not accounts.setup.use("t1", T0)  # once
    accounts.setup.add("t2", T0, T0 + timedelta(hours=24))
    accounts.users.add("admin", "admin", "hash", T0)
    assert not accounts.setup.use("t2", T0)  # a user exists: not needed any more
