"""Authentication: users and passwords, sessions, CSRF, login rate limits, API tokens.

Rules:
- No default credentials. The first admin comes from ``accord user add`` or from the
  one-time setup link printed at the first start (:meth:`Auth.setup_link`).
- Passwords are hashed with Argon2id (argon2-cffi's RFC 9106 defaults); a login for an
  unknown name still runs one verification, so timing does not tell names apart.
- Sessions are server-side rows keyed by the SHA-256 of a 256-bit random cookie value;
  the cookie is ``Secure; HttpOnly; SameSite=Strict; Path=/``. A session ends after
  15 minutes idle or 12 hours in all, at logout, or when its user changes (its last
  use is written at most once a minute, so "idle" is exact to that minute).
  ``Secure`` on plain http://127.0.0.1: Chromium and Firefox treat localhost as a
  secure context and keep Secure cookies there; over plain HTTP on any other host the
  browser drops the cookie, which is intended (put TLS in front of remote consoles).
- CSRF: synchronizer token. Every unsafe request (POST, PUT, PATCH, DELETE) that
  authenticates with the session cookie must carry the session's token in the
  ``X-CSRF-Token`` header or a ``csrf_token`` form field. Bearer requests carry no
  ambient credential and need none.
- Login rate limit: 5 failures per user name and 20 per client address within 15
  minutes refuse further attempts (HTTP 429) until the window passes; attempts are
  stored, so every node sharing the store enforces the same limit.
- Bearer tokens: ``ACCORD_API_TOKEN`` (environment) is an admin token; users create their
  own (stored as SHA-256, shown once), with an expiry or until revoked; an expired token
  is refused like a revoked one. Tokens are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from accord.clock import Clock
from accord.errors import AccordError
from accord.store.accounts import Accounts, TokenRecord, UserRecord
from accord.web.permissions import ROLES, Role

SESSION_COOKIE = "accord_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
TOKEN_PREFIX = "acc_"
MIN_PASSWORD = 12
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-@")


@dataclass(frozen=True, slots=True)
class Limits:
    """Session and login-rate settings (the defaults are the rules above)."""

    idle: timedelta = timedelta(minutes=15)
    absolute: timedelta = timedelta(hours=12)
    touch_every: timedelta = timedelta(seconds=60)  # last_seen is written at most this often
    window: timedelta = timedelta(minutes=15)
    max_user_failures: int = 5
    max_peer_failures: int = 20
    setup_valid: timedelta = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a user (by session or their token) or the ``ACCORD_API_TOKEN``."""

    name: str
    role: str
    kind: Literal["session", "token", "env"]
    peer: str = ""
    user_id: int | None = None
    csrf: str | None = None  # the session's CSRF token (sessions only)
    session_hash: str | None = None


class AuthError(AccordError):
    """Login or account operation refused; ``status`` is the HTTP answer."""

    status = 400

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just opened: the cookie value (shown once) and its CSRF token."""

    cookie: str
    csrf: str
    principal: Principal


def digest(secret: str) -> str:
    """SHA-256 hex of a high-entropy secret (session, token): enough to store it."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    """A user name: 1–64 of ``a-z 0-9 . _ - @`` (lowercase, so names cannot look alike)."""
    if not name or len(name) > 64 or not set(name) <= NAME_CHARS:
        raise AuthError("user name: 1-64 characters of a-z, 0-9, '.', '_', '-', '@'")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AuthError(f"role must be one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"password: at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise AuthError("password: at most 1024 characters")
    return password


class Auth:
    """Users, sessions and tokens on the store's accounts (see the module rules)."""

    def __init__(self, accounts: Accounts, clock: Clock, *, api_token: str | None = None,
                 hasher: PasswordHasher | None = None, limits: Limits | None = None) -> None:
        self.accounts = accounts
        self.clock = clock
        self.limits = limits or Limits()
        self._hasher = hasher or PasswordHasher()
        self._env_digest = digest(api_token) if api_token else None
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    # -- users ------------------------------------------------------------------------
    def add_user(self, name: str, role: str, password: str) -> UserRecord:
        """Create a user (name, role and password checked); raises AuthError/StoreError."""
        check_name(name)
        check_role(role)
        check_password(password)
        return self.accounts.users.add(name, role, self._hasher.hash(password),
                                      self.clock.now())

    def set_password(self, user_id: int, password: str) -> bool:
        check_password(password)
        return self.accounts.users.update(user_id, password_hash=self._hasher.hash(password),
                                         now=self.clock.now())

    def _verify(self, user: UserRecord | None, password: str) -> bool:
        stored = user.password_hash if user is not None else self._dummy
        ok: bool
        try:
            ok = self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            ok = False
        return ok and user is not None and not user.disabled

    # -- login ------------------------------------------------------------------------
    def login(self, name: str, password: str, peer: str) -> NewSession:
        """Check the rate limit, then the password; open a session. Raises AuthError
        (401 bad credentials, 429 too many failures)."""
        now = self.clock.now()
        since = now - self.limits.window
        name = name.strip().lower()[:64]
        attempts = self.accounts.attempts
        if (attempts.failures_since(since, name=name) >= self.limits.max_user_failures
                or attempts.failures_since(since, peer=peer) >= self.limits.max_peer_failures):
            raise AuthError("too many failed logins; try again later", 429)
        user = self.accounts.users.named(name)
        ok = self._verify(user, password)
        self.accounts.attempts.add(name, peer, ok, now)
        self._tidy(now)
        if not ok or user is None:
            raise AuthError("wrong user name or password", 401)
        return self.open_session(user, peer)

    def _tidy(self, now: datetime) -> None:
        """Forget ended sessions and attempts older than a day (at each login: the
        tables stay small without a background job)."""
        self.accounts.sessions.prune(now - self.limits.idle, now - self.limits.absolute)
        self.accounts.attempts.prune(now - max(self.limits.window, timedelta(days=1)))

    def open_session(self, user: UserRecord, peer: str) -> NewSession:
        cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self.accounts.sessions.add(digest(cookie), user.id, csrf, self.clock.now(), peer)
        return NewSession(cookie, csrf, Principal(user.name, user.role, "session", peer,
                                                  user.id, csrf, digest(cookie)))

    def logout(self, principal: Principal) -> None:
        if principal.session_hash is not None:
            self.accounts.sessions.delete(principal.session_hash)

    def session(self, cookie: str, peer: str) -> Principal | None:
        """The principal of a session cookie, or None (unknown, idle, too old, disabled)."""
        token_hash = digest(cookie)
        found = self.accounts.sessions.get(token_hash)
        if found is None:
            return None
        now = self.clock.now()
        expired = (now - found.last_seen_at > self.limits.idle
                   or now - found.created_at > self.limits.absolute)
        if expired or found.user.disabled:
            self.accounts.sessions.delete(token_hash)
            return None
        if now - found.last_seen_at >= self.limits.touch_every:
            self.accounts.sessions.touch(token_hash, now)
        return Principal(found.user.name, found.user.role, "session", peer, found.user.id,
                         found.csrf_token, token_hash)

    # -- bearer tokens ----------------------------------------------------------------
    def bearer(self, token: str, peer: str) -> Principal | None:
        """The principal of a bearer token: ``ACCORD_API_TOKEN`` or a user's token."""
        token_hash = digest(token)
        if self._env_digest is not None and hmac.compare_digest(token_hash, self._env_digest):
            return Principal("api-token", Role.ADMIN.value, "env", peer)
        if not token.startswith(TOKEN_PREFIX):
            return None
        found = self.accounts.tokens.with_user(token_hash)
        if found is None or found[1].disabled:
            return None
        record, user = found
        now = self.clock.now()
        if not record.live(now):
            return None
        if record.last_used_at is None or now - record.last_used_at >= self.limits.touch_every:
            self.accounts.tokens.touch(record.id, now)
        return Principal(user.name, user.role, "token", peer, user.id)

    def create_token(self, user_id: int, name: str,
                     expires_in: timedelta | None = None) -> tuple[str, TokenRecord]:
        """A new API token for ``user_id``: the secret (shown once) and its record;
        ``expires_in``: refused from then on (None: until revoked)."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock.now()
        token_id = self.accounts.tokens.add(user_id, name, digest(secret), secret[:12], now,
                                           now + expires_in if expires_in else None)
        record = self.accounts.tokens.get(token_id)
        assert record is not None
        return secret, record

    # -- first start ------------------------------------------------------------------
    def setup_link(self, base_url: str) -> str | None:
        """When no user exists: a new one-time link that creates the first admin (valid
        24 h). None once any user exists."""
        if self.accounts.users.count() > 0:
            return None
        secret = secrets.token_urlsafe(32)
        now = self.clock.now()
        self.accounts.setup.add(digest(secret), now, now + self.limits.setup_valid)
        return f"{base_url.rstrip('/')}/setup?token={secret}"

    def complete_setup(self, secret: str, name: str, password: str) -> UserRecord:
        """Use a setup token: create the first user, an admin. Raises AuthError 403 when
        the token is unknown, used, expired, or a user exists already."""
        check_name(name)
        check_password(password)
        if not self.accounts.setup.use(digest(secret), self.clock.now()):
            raise AuthError("this setup link is not valid (used, expired, or not needed)", 403)
        return self.add_user(name, Role.ADMIN.value, password)


def csrf_ok(principal: Principal, supplied: str | None) -> bool:
    """True when ``supplied`` is the session's CSRF token (constant-time compare)."""
    if principal.kind != "session":
        return True
    return bool(supplied and principal.csrf and hmac.compare_digest(supplied, principal.csrf))
