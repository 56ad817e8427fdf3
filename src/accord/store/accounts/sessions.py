"""How a user is recognised: console sessions, per-user API tokens, and the login
attempts the rate limit counts.

Rules:
- Secrets never reach this module in the clear: a session cookie and an API token are
  stored as the SHA-256 digest of a 256-bit random value (``accord.web.auth``), so a
  copy of the database opens no session.
- A session and a token answer with their user in one indexed join; a disabled user's
  session or token, and an expired token, are refused by the caller, which sees the
  user's flag and the token's expiry.
- Login failures are counted over an indexed time range (name or peer), never the whole
  table; old attempts and ended sessions are pruned at each login.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, insert, select, update

from accord.store.accounts.users import UserRecord, user_of
from accord.store.db import Database
from accord.store.schema.accounts import api_tokens, login_attempts, sessions, users


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
    expires_at: datetime | None = None  # None: until revoked

    def live(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


class Sessions:
    """Console sessions (see the module rules)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, token_hash: str, user_id: int, csrf_token: str, now: datetime,
            peer: str) -> None:
        with self._db.write() as conn:
            conn.execute(insert(sessions), {
                "token_hash": token_hash, "user_id": user_id, "csrf_token": csrf_token,
                "created_at": now, "last_seen_at": now, "peer": peer[:64]})

    def get(self, token_hash: str) -> SessionRecord | None:
        """The session with this digest, with its user."""
        s = sessions.c
        stmt = (
            select(users, s.token_hash, s.csrf_token, s.created_at.label("s_created"),
                   s.last_seen_at, s.peer)
            .join(users, users.c.id == s.user_id)
            .where(s.token_hash == token_hash)
        )
        with self._db.read() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        m = row._mapping
        return SessionRecord(m["token_hash"], user_of(row), m["csrf_token"], m["s_created"],
                             m["last_seen_at"], m["peer"])

    def touch(self, token_hash: str, now: datetime) -> None:
        with self._db.write() as conn:
            conn.execute(update(sessions).where(sessions.c.token_hash == token_hash)
                         .values(last_seen_at=now))

    def delete(self, token_hash: str) -> None:
        with self._db.write() as conn:
            conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash))

    def prune(self, idle_before: datetime, created_before: datetime) -> int:
        """Delete sessions idle since ``idle_before`` or created before ``created_before``."""
        s = sessions.c
        with self._db.write() as conn:
            return int(conn.execute(delete(sessions).where(
                (s.last_seen_at < idle_before) | (s.created_at < created_before))).rowcount)


_TOKEN_COLUMNS = (api_tokens.c.id, api_tokens.c.user_id, api_tokens.c.name, api_tokens.c.prefix,
                  api_tokens.c.created_at, api_tokens.c.last_used_at, api_tokens.c.revoked_at,
                  api_tokens.c.expires_at)


class Tokens:
    """Per-user API tokens (see the module rules)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, user_id: int, name: str, token_hash: str, prefix: str, now: datetime,
            expires_at: datetime | None = None) -> int:
        with self._db.write() as conn:
            return int(conn.execute(insert(api_tokens).returning(api_tokens.c.id), {
                "user_id": user_id, "name": name[:64], "token_hash": token_hash,
                "prefix": prefix, "created_at": now, "expires_at": expires_at}).scalar_one())

    def with_user(self, token_hash: str) -> tuple[TokenRecord, UserRecord] | None:
        """The live (not revoked) token with this digest, and its user."""
        t = api_tokens.c
        stmt = (
            select(users, t.id.label("t_id"), t.user_id, t.name.label("t_name"), t.prefix,
                   t.created_at.label("t_created"), t.last_used_at, t.revoked_at,
                   t.expires_at)
            .join(users, users.c.id == t.user_id)
            .where(t.token_hash == token_hash, t.revoked_at.is_(None))
        )
        with self._db.read() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        m = row._mapping
        token = TokenRecord(m["t_id"], m["user_id"], m["t_name"], m["prefix"], m["t_created"],
                            m["last_used_at"], m["revoked_at"], m["expires_at"])
        return token, user_of(row)

    def touch(self, token_id: int, now: datetime) -> None:
        with self._db.write() as conn:
            conn.execute(update(api_tokens).where(api_tokens.c.id == token_id)
                         .values(last_used_at=now))

    def of_user(self, user_id: int) -> list[TokenRecord]:
        stmt = select(*_TOKEN_COLUMNS).where(api_tokens.c.user_id == user_id).order_by(
            api_tokens.c.id)
        with self._db.read() as conn:
            return [TokenRecord(*r) for r in conn.execute(stmt)]

    def get(self, token_id: int) -> TokenRecord | None:
        with self._db.read() as conn:
            row = conn.execute(select(*_TOKEN_COLUMNS).where(api_tokens.c.id == token_id)).first()
        return TokenRecord(*row) if row else None

    def revoke(self, token_id: int, now: datetime) -> bool:
        with self._db.write() as conn:
            return conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            ).rowcount == 1


class LoginAttempts:
    """Login attempts, counted by the login rate limit (see the module rules)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def add(self, name: str, peer: str, ok: bool, now: datetime) -> None:
        with self._db.write() as conn:
            conn.execute(insert(login_attempts),
                         {"at": now, "name": name[:64], "peer": peer[:64], "ok": ok})

    def failures_since(self, since: datetime, *, name: str | None = None,
                       peer: str | None = None) -> int:
        """Failed logins at or after ``since`` for a user name or a peer address."""
        a = login_attempts.c
        where: list[ColumnElement[bool]] = [a.at >= since, a.ok.is_(False)]
        if name is not None:
            where.append(a.name == name[:64])
        if peer is not None:
            where.append(a.peer == peer[:64])
        with self._db.read() as conn:
            return int(conn.scalar(
                select(func.count()).select_from(login_attempts).where(*where)) or 0)

    def prune(self, before: datetime) -> int:
        with self._db.write() as conn:
            return int(conn.execute(
                delete(login_attempts).where(login_attempts.c.at < before)).rowcount)
