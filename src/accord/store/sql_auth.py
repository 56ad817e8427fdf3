"""Console accounts over SQLAlchemy Core: users, sessions, API tokens, login attempts,
one-time setup tokens (tables in ``schema_web``); the audit log is ``sql_audit``.

Rules:
- Secrets never reach this module in the clear: callers pass hashes (Argon2id for
  passwords, SHA-256 of 256-bit random tokens); see ``accord.web.auth``.
- Every method is one short transaction on the store's engine; failures are StoreError.
- Nothing here counts a whole table per request except :meth:`AuthStore.count_users`
  (a few rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from accord.store import Page, StoreError
from accord.store.schema.accounts import (
    api_tokens,
    login_attempts,
    sessions,
    setup_tokens,
    users,
)
from accord.store.sql_area import SqlArea, id_cursor
from accord.store.sql_audit import AuditEntry, AuditLog

__all__ = ["AuditEntry", "AuthStore", "SessionRecord", "SqlArea", "TokenRecord",
           "UserExistsError", "UserRecord", "id_cursor"]


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


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A server-side session (the cookie carries the token; the row its SHA-256)."""

    token_hash: str
    user: UserRecord
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    peer: str


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A per-user API token (bearer); ``prefix`` is shown to tell tokens apart."""

    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _user(row: Any) -> UserRecord:
    m = row._mapping
    return UserRecord(
        m["id"],
        m["name"],
        m["role"],
        m["password_hash"],
        bool(m["disabled"]),
        m["created_at"],
        m["password_changed_at"],
    )


class AuthStore(AuditLog):
    """Accounts and the audit log on a SQL store (see the module rules)."""

    # -- users ------------------------------------------------------------------------
    def add_user(self, name: str, role: str, password_hash: str, now: datetime) -> UserRecord:
        """Create a user; raises UserExistsError when the name is taken."""
        try:
            with self.write() as conn:
                uid = conn.execute(
                    insert(users).returning(users.c.id),
                    {
                        "name": name,
                        "role": role,
                        "password_hash": password_hash,
                        "disabled": False,
                        "created_at": now,
                        "password_changed_at": now,
                    },
                ).scalar_one()
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise UserExistsError(f"user {name!r} exists already") from None
            raise
        return UserRecord(uid, name, role, password_hash, False, now, now)

    def user_by_name(self, name: str) -> UserRecord | None:
        with self.read() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        return _user(row) if row else None

    def user(self, user_id: int) -> UserRecord | None:
        with self.read() as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).first()
        return _user(row) if row else None

    def list_users(self, cursor: str | None = None, limit: int = 100) -> Page[UserRecord]:
        after = id_cursor(cursor)
        stmt = select(users).order_by(users.c.id).limit(limit + 1)
        if after is not None:
            stmt = stmt.where(users.c.id > after)
        with self.read() as conn:
            rows = [_user(r) for r in conn.execute(stmt)]
        nxt = str(rows[limit - 1].id) if len(rows) > limit else None
        return Page(tuple(rows[:limit]), nxt)

    def count_users(self, role: str | None = None, enabled_only: bool = False) -> int:
        stmt = select(func.count()).select_from(users)
        if role is not None:
            stmt = stmt.where(users.c.role == role)
        if enabled_only:
            stmt = stmt.where(users.c.disabled.is_(False))
        with self.read() as conn:
            return int(conn.scalar(stmt) or 0)

    def update_user(
        self,
        user_id: int,
        *,
        role: str | None = None,
        disabled: bool | None = None,
        password_hash: str | None = None,
        now: datetime,
    ) -> bool:
        """Change a user's role, disabled flag or password; ends their sessions when
        anything but the role changes, or the role does (privileges must not linger)."""
        values: dict[str, Any] = {}
        if role is not None:
            values["role"] = role
        if disabled is not None:
            values["disabled"] = disabled
        if password_hash is not None:
            values.update(password_hash=password_hash, password_changed_at=now)
        if not values:
            return self.user(user_id) is not None
        with self.write() as conn:
            done = (
                conn.execute(
                    update(users).where(users.c.id == user_id).values(**values)
                ).rowcount
                == 1
            )
            if done:
                conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
        return done

    # -- sessions ---------------------------------------------------------------------
    def add_session(
        self, token_hash: str, user_id: int, csrf_token: str, now: datetime, peer: str
    ) -> None:
        with self.write() as conn:
            conn.execute(
                insert(sessions),
                {
                    "token_hash": token_hash,
                    "user_id": user_id,
                    "csrf_token": csrf_token,
                    "created_at": now,
                    "last_seen_at": now,
                    "peer": peer[:64],
                },
            )

    def session(self, token_hash: str) -> SessionRecord | None:
        s = sessions.c
        stmt = (
            select(
                users,
                s.token_hash,
                s.csrf_token,
                s.created_at.label("s_created"),
                s.last_seen_at,
                s.peer,
            )
            .join(users, users.c.id == s.user_id)
            .where(s.token_hash == token_hash)
        )
        with self.read() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        m = row._mapping
        return SessionRecord(
            m["token_hash"],
            _user(row),
            m["csrf_token"],
            m["s_created"],
            m["last_seen_at"],
            m["peer"],
        )

    def touch_session(self, token_hash: str, now: datetime) -> None:
        with self.write() as conn:
            conn.execute(
                update(sessions)
                .where(sessions.c.token_hash == token_hash)
                .values(last_seen_at=now)
            )

    def delete_session(self, token_hash: str) -> None:
        with self.write() as conn:
            conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash))

    def prune_sessions(self, idle_before: datetime, created_before: datetime) -> int:
        """Delete sessions idle since ``idle_before`` or created before ``created_before``."""
        s = sessions.c
        with self.write() as conn:
            return int(
                conn.execute(
                    delete(sessions).where(
                        (s.last_seen_at < idle_before) | (s.created_at < created_before)
                    )
                ).rowcount
            )

    # -- API tokens -------------------------------------------------------------------
    def add_token(
        self, user_id: int, name: str, token_hash: str, prefix: str, now: datetime
    ) -> int:
        with self.write() as conn:
            return int(
                conn.execute(
                    insert(api_tokens).returning(api_tokens.c.id),
                    {
                        "user_id": user_id,
                        "name": name[:64],
                        "token_hash": token_hash,
                        "prefix": prefix,
                        "created_at": now,
                    },
                ).scalar_one()
            )

    def token_user(self, token_hash: str) -> tuple[TokenRecord, UserRecord] | None:
        """The live (not revoked) token with this hash, and its user."""
        t = api_tokens.c
        stmt = (
            select(
                users,
                t.id.label("t_id"),
                t.user_id,
                t.name.label("t_name"),
                t.prefix,
                t.created_at.label("t_created"),
                t.last_used_at,
                t.revoked_at,
            )
            .join(users, users.c.id == t.user_id)
            .where(t.token_hash == token_hash, t.revoked_at.is_(None))
        )
        with self.read() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        m = row._mapping
        token = TokenRecord(
            m["t_id"],
            m["user_id"],
            m["t_name"],
            m["prefix"],
            m["t_created"],
            m["last_used_at"],
            m["revoked_at"],
        )
        return token, _user(row)

    def touch_token(self, token_id: int, now: datetime) -> None:
        with self.write() as conn:
            conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == token_id)
                .values(last_used_at=now)
            )

    def tokens_of(self, user_id: int) -> list[TokenRecord]:
        t = api_tokens.c
        stmt = (
            select(t.id, t.user_id, t.name, t.prefix, t.created_at, t.last_used_at, t.revoked_at)
            .where(t.user_id == user_id)
            .order_by(t.id)
        )
        with self.read() as conn:
            return [TokenRecord(*r) for r in conn.execute(stmt)]

    def token(self, token_id: int) -> TokenRecord | None:
        t = api_tokens.c
        stmt = select(
            t.id, t.user_id, t.name, t.prefix, t.created_at, t.last_used_at, t.revoked_at
        ).where(t.id == token_id)
        with self.read() as conn:
            row = conn.execute(stmt).first()
        return TokenRecord(*row) if row else None

    def revoke_token(self, token_id: int, now: datetime) -> bool:
        with self.write() as conn:
            return (
                conn.execute(
                    update(api_tokens)
                    .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                    .values(revoked_at=now)
                ).rowcount
                == 1
            )

    # -- login attempts ---------------------------------------------------------------
    def add_attempt(self, name: str, peer: str, ok: bool, now: datetime) -> None:
        with self.write() as conn:
            conn.execute(
                insert(login_attempts),
                {"at": now, "name": name[:64], "peer": peer[:64], "ok": ok},
            )

    def failures_since(
        self, since: datetime, *, name: str | None = None, peer: str | None = None
    ) -> int:
        """Failed logins at or after ``since`` for a user name or a peer address (an
        indexed range: bounded by the rate limit window, never the whole table)."""
        a = login_attempts.c
        where: list[ColumnElement[bool]] = [a.at >= since, a.ok.is_(False)]
        if name is not None:
            where.append(a.name == name[:64])
        if peer is not None:
            where.append(a.peer == peer[:64])
        with self.read() as conn:
            return int(
                conn.scalar(select(func.count()).select_from(login_attempts).where(*where)) or 0
            )

    def prune_attempts(self, before: datetime) -> int:
        with self.write() as conn:
            return int(
                conn.execute(
                    delete(login_attempts).where(login_attempts.c.at < before)
                ).rowcount
            )

    # -- setup tokens -----------------------------------------------------------------
    def add_setup_token(self, token_hash: str, now: datetime, expires_at: datetime) -> None:
        with self.write() as conn:
            conn.execute(
                insert(setup_tokens),
                {"token_hash": token_hash, "created_at": now, "expires_at": expires_at},
            )

    def use_setup_token(self, token_hash: str, now: datetime) -> bool:
        """Mark the token used; True only the first time, before it expires, and only
        while no user exists (the link creates the FIRST admin, nothing else)."""
        st = setup_tokens.c
        with self.write() as conn:
            if conn.scalar(select(func.count()).select_from(users)):
                return False
            return (
                conn.execute(
                    update(setup_tokens)
                    .where(st.token_hash == token_hash, st.used_at.is_(None), st.expires_at > now)
                    .values(used_at=now)
                ).rowcount
                == 1
            )
