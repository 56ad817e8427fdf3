"""Who may do what: the role × action table, as data.

Rules:
- Roles: ``viewer`` reads worklists, orders, patients and statuses; ``operator`` adds
  raw messages (in and out, and the DICOM log), the error queue and reprocess, findings
  resolution, duplicates and merges; ``admin`` adds users and configuration;
  ``auditor`` reads and exports the audit log — and nothing else (separation of duties:
  the people who act are not the people who read the record of their acts). The audit
  log names the patients a record is about (name and MRN, to know whose record was
  seen); an auditor opens no patient, order or message.
- One deployment may let admins read the audit log too (``audit.admin_can_read``, off
  by default): :func:`table` is the table a deployment runs with.
- Every check happens on the server: routes declare their action (``require(action)``
  in ``accord.web.auth``); per-object rules (a user's own tokens, the last admin) are
  in :func:`allowed_on`.
- Deny by default: an action not in the table is allowed to nobody.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"
    AUDITOR = "auditor"


class Action(StrEnum):
    STATS_READ = "stats.read"
    METRICS_READ = "metrics.read"
    WORKLIST_READ = "worklist.read"
    ORDERS_READ = "orders.read"
    PATIENTS_READ = "patients.read"
    FINDINGS_READ = "findings.read"
    MESSAGES_READ = "messages.read"  # raw HL7 and ACKs
    ERRORS_READ = "errors.read"
    ERRORS_REPROCESS = "errors.reprocess"
    FINDINGS_RESOLVE = "findings.resolve"
    DUPLICATES_READ = "duplicates.read"
    PATIENTS_MERGE = "patients.merge"
    USERS_READ = "users.read"
    USERS_WRITE = "users.write"
    CONFIG_READ = "config.read"
    CONFIG_WRITE = "config.write"  # mappings, procedure codes, alert rules
    AUDIT_READ = "audit.read"
    AUDIT_EXPORT = "audit.export"
    TOKENS_OWN = "tokens.own"  # create and revoke one's own API tokens


_VIEWER = frozenset({
    Action.STATS_READ, Action.METRICS_READ, Action.WORKLIST_READ, Action.ORDERS_READ,
    Action.PATIENTS_READ, Action.FINDINGS_READ, Action.TOKENS_OWN,
})
_OPERATOR = _VIEWER | {
    Action.MESSAGES_READ, Action.ERRORS_READ, Action.ERRORS_REPROCESS,
    Action.FINDINGS_RESOLVE, Action.DUPLICATES_READ, Action.PATIENTS_MERGE,
}
_ADMIN = _OPERATOR | {
    Action.USERS_READ, Action.USERS_WRITE, Action.CONFIG_READ, Action.CONFIG_WRITE,
}
_AUDITOR = frozenset({Action.AUDIT_READ, Action.AUDIT_EXPORT, Action.TOKENS_OWN})

PERMISSIONS: Mapping[Role, frozenset[Action]] = {
    Role.VIEWER: _VIEWER,
    Role.OPERATOR: frozenset(_OPERATOR),
    Role.ADMIN: frozenset(_ADMIN),
    Role.AUDITOR: _AUDITOR,
}
"""The table: each role and every action it may take."""

ROLES: tuple[str, ...] = tuple(r.value for r in Role)


Table = Mapping[Role, frozenset[Action]]


def table(*, admin_reads_audit: bool = False) -> Table:
    """The table a deployment runs with: :data:`PERMISSIONS`, and the audit log for
    admins too when ``audit.admin_can_read`` is on (reading only: exporting it stays
    the auditor's)."""
    if not admin_reads_audit:
        return PERMISSIONS
    return {**PERMISSIONS, Role.ADMIN: PERMISSIONS[Role.ADMIN] | {Action.AUDIT_READ}}


def allowed(role: str, action: Action, permissions: Table = PERMISSIONS) -> bool:
    """True when ``role`` may take ``action`` (unknown roles may do nothing)."""
    try:
        return action in permissions[Role(role)]
    except ValueError:
        return False


def allowed_on(actor_id: int | None, role: str, action: Action, owner_id: int | None) -> bool:
    """Per-object rule: ``action`` on an object owned by ``owner_id`` (an API token, a
    user record). Owners manage their own tokens; admins may manage anyone's."""
    if not allowed(role, action):
        return False
    if action is Action.TOKENS_OWN:
        return owner_id is not None and (owner_id == actor_id or allowed(role,
                                                                         Action.USERS_WRITE))
    return True
