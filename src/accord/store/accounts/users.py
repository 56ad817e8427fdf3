"""Console and API users, and the one-time setup tokens that create the first of them.

Rules:
- Passwords never reach this module in the clear: callers pass Argon2id hashes
  (``accord.web.auth``).
- A change of role, of the disabled flag or of the password ends the user's sessions in
  the same transaction: privileges must not linger in an open session.
- A setup token creates the FIRST user only: it is refused once any user exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from accord.errors import StoreError
from accord.store.db import Database
from accord.store.db.paging import clamp, cut, id_cursor
from accord.store.records import Page
from accord.store.schema.accounts import sessions, setup_tokens, users


class UserExistsError(StoreError):
    """A user with that name exists already."""


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A console user; ``password_hash`` is an Argon2id PHC string."""

    id: int
    name: str
    role: str
    password_hash: str
    disabled: bool
    created_at: datetime
    password_changed_at: datetime


def user_of(row: Any) -> UserRecord:
    """A ``users`` row (or a join that selects all its columns) as a record."""
    m = row._mapping
    return UserRecord(m["id"], m["name"], m["role"], m["password_hash"], bool(m["disabled"]),
                      m["created_at"], m["password_changed_at"])


class Users:
    """The users of one database (see the module rules)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, name: str, role: str, password_hash: str, now: datetime) -> UserRecord:
        """Create a user; raises UserExistsError when the name is taken."""
        try:
            with self._db.write() as conn:
                uid = conn.execute(
                    insert(users).returning(users.c.id),
                    {"name": name, "role": role, "password_hash": password_hash,
                     "disabled": False, "created_at": now, "password_changed_at": now},
                ).scalar_one()
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise UserExistsError(f"user {name!r} exists already") from None
            raise
        return UserRecord(uid, name, role, password_hash, False, now, now)

    def named(self, name: str) -> UserRecord | None:
        with self._db.read() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        return user_of(row) if row else None

    def get(self, user_id: int) -> UserRecord | None:
        with self._db.read() as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).first()
        return user_of(row) if row else None

    def page(self, cursor: str | None = None, limit: int = 100) -> Page[UserRecord]:
        """Users in id order."""
        limit = clamp(limit)
        after = id_cursor(cursor)
        stmt = select(users).order_by(users.c.id).limit(limit + 1)
        if after is not None:
            stmt = stmt.where(users.c.id > after)
        with self._db.read() as conn:
            rows = [user_of(r) for r in conn.execute(stmt)]
        found, nxt = cut(rows, limit, lambda u: str(u.id))
        return Page(tuple(found), nxt)

    def count(self, role: str | None = None, enabled_only: bool = False) -> int:
        """How many users (of ``role``; enabled only): a few rows, never a large table."""
        stmt = select(func.count()).select_from(users)
        if role is not None:
            stmt = stmt.where(users.c.role == role)
        if enabled_only:
            stmt = stmt.where(users.c.disabled.is_(False))
        with self._db.read() as conn:
            return int(conn.scalar(stmt) or 0)

    def update(self, user_id: int, *, role: str | None = None, disabled: bool | None = None,
               password_hash: str | None = None, now: datetime) -> bool:
        """Change a user's role, disabled flag or password; their sessions end (module
        rules). False when there is no such user."""
        values: dict[str, Any] = {}
        if role is not None:
            values["role"] = role
        if disabled is not None:
            values["disabled"] = disabled
        if password_hash is not None:
            values.update(password_hash=password_hash, password_changed_at=now)
        if not values:
            return self.get(user_id) is not None
        with self._db.write() as conn:
            done = conn.execute(
                update(users).where(users.c.id == user_id).values(**values)).rowcount == 1
            if done:
                conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
        return done


class SetupTokens:
    """One-time links that create the first admin (stored as SHA-256 digests)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, token_hash: str, now: datetime, expires_at: datetime) -> None:
        with self._db.write() as conn:
            conn.execute(insert(setup_tokens),
                         {"token_hash": token_hash, "created_at": now, "expires_at": expires_at})

    def use(self, token_hash: str, now: datetime) -> bool:
        """Mark the token used; True only the first time, before it expires, and only
        while no user exists (module rules)."""
        st = setup_tokens.c
        with self._db.write() as conn:
            if conn.scalar(select(func.count()).select_from(users)):
                return False
            return conn.execute(
                update(setup_tokens)
                .where(st.token_hash == token_hash, st.used_at.is_(None), st.expires_at > now)
                .values(used_at=now)
            ).rowcount == 1
