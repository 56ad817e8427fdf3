"""Accounts of the console and the JSON API: users (``users.py``), how they are
recognised (``sessions.py``: sessions, API tokens, login attempts) and the audit log
(``audit.py``). Each part is built on the store's :class:`~accord.store.db.Database`;
:class:`Accounts` holds them all."""

from __future__ import annotations

from dataclasses import dataclass

from accord.store.accounts.audit import AuditEntry, AuditLog
from accord.store.accounts.sessions import (
    LoginAttempts,
    SessionRecord,
    Sessions,
    TokenRecord,
    Tokens,
)
from accord.store.accounts.users import SetupTokens, UserExistsError, UserRecord, Users
from accord.store.db import Database

__all__ = [
    "Accounts",
    "AuditEntry",
    "AuditLog",
    "LoginAttempts",
    "SessionRecord",
    "Sessions",
    "SetupTokens",
    "TokenRecord",
    "Tokens",
    "UserExistsError",
    "UserRecord",
    "Users",
]


@dataclass(frozen=True, slots=True)
class Accounts:
    """Every account table of one database, one object per concept."""

    users: Users
    setup: SetupTokens
    sessions: Sessions
    tokens: Tokens
    attempts: LoginAttempts
    audit: AuditLog

    @classmethod
    def over(cls, database: Database) -> Accounts:
        return cls(Users(database), SetupTokens(database), Sessions(database),
                   Tokens(database), LoginAttempts(database), AuditLog(database))
