"""Account tables of the console and the JSON API: users, sessions, API tokens, login
attempts, one-time setup tokens, and the audit log.

Rules:
- No secret is stored in the clear: passwords as Argon2id hashes; session ids, API
  tokens and setup tokens (all 256-bit random) as SHA-256 hex digests, so a copy of the
  database opens no session.
- The audit log is append-only (nothing here updates or deletes it) and keyset-listed by
  ``id``; its filters (actor, patient, action) are indexed. The patients a record is
  about are rows of ``audit_patients`` (one record per view, however many patients).
- API tokens may expire (``expires_at``); an expired token is refused like a revoked one.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, text

from accord.store.schema.base import Id, Json, UtcDateTime, metadata

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("disabled", Boolean(), nullable=False, server_default=text("false")),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("password_changed_at", UtcDateTime(), nullable=False),
    Index("uq_users_name", "name", unique=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Id, nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
    Column("peer", String(64), nullable=False, server_default=""),
    Index("ix_sessions_user", "user_id"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, nullable=False),
    Column("name", String(64), nullable=False, server_default=""),
    Column("token_hash", String(64), nullable=False),
    Column("prefix", String(12), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_used_at", UtcDateTime(), nullable=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("expires_at", UtcDateTime(), nullable=True),  # None: until revoked
    Index("uq_api_tokens_hash", "token_hash", unique=True),
    Index("ix_api_tokens_user", "user_id"),
)

login_attempts = Table(
    "login_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("name", String(64), nullable=False),
    Column("peer", String(64), nullable=False),
    Column("ok", Boolean(), nullable=False),
    Index("ix_login_attempts_name", "name", "at"),
    Index("ix_login_attempts_peer", "peer", "at"),
)

setup_tokens = Table(
    "setup_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("used_at", UtcDateTime(), nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("role", String(16), nullable=False, server_default=""),
    Column("peer", String(64), nullable=False, server_default=""),
    Column("action", String(48), nullable=False),
    Column("object_type", String(32), nullable=False, server_default=""),
    Column("object_id", String(255), nullable=False, server_default=""),
    Column("patient_id", String(64), nullable=False, server_default=""),
    Column("outcome", String(16), nullable=False),
    Column("detail", Json, nullable=False),
    Column("count", Integer(), nullable=False, server_default="0"),
    Index("ix_audit_log_actor", "actor", "id"),
    Index("ix_audit_log_patient", "patient_id", "id"),
    Index("ix_audit_log_action", "action", "id"),
)

# The patients one audit record is about: a search or a list is ONE record, and "who saw
# patient X" stays one indexed lookup here, however many patients a page showed.
audit_patients = Table(
    "audit_patients",
    metadata,
    Column("audit_id", Id, primary_key=True),
    Column("patient_id", String(64), primary_key=True),
    Index("ix_audit_patients_patient", "patient_id", "audit_id"),
)
