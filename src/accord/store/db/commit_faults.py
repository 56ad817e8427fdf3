"""Commit faults: which parts of the engine cannot commit to the store right now.

Rules:
- Every write transaction of a :class:`~accord.store.db.Database` (and every pinned one)
  reports its end here: a storage failure (the driver's ``OperationalError`` or
  ``InterfaceError``: disk full, I/O error, the database locked past its timeout, the
  server gone) is remembered as the component's last failed commit; the component's
  next successful commit clears it. Errors of the statement itself (a constraint, a
  missing table: a bug) are not storage faults.
- The component is named by the code that commits (:func:`committing_as`, kept in a
  context variable: an asyncio task and the threads ``asyncio.to_thread`` runs for it
  share it); a commit made where none was named is ``other``.
- In memory, per process: what an operator's alert reads (``/api/health``, the alert
  rule ``storage_fault``) while the store itself may be what fails. A fault holds the
  time, the driver's error class and the first line of its text (the store's rule:
  never a statement's parameters, so no patient data).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

COMPONENTS = ("ingest", "apply", "delivery", "jobs", "mpps")
"""The components that name their commits (anything else is ``other``)."""

_COMPONENT: ContextVar[str] = ContextVar("accord_committing_component", default="other")


def committing_as(component: str) -> None:
    """The commits made from here on in this context (task, thread) are ``component``'s."""
    _COMPONENT.set(component)


@dataclass(frozen=True, slots=True)
class CommitFault:
    """A component's last failed commit: since when its commits fail (``since``), the
    last failure (``at``), how many failed since, and the driver's error class and text."""

    component: str
    since: datetime
    at: datetime
    failures: int
    error_class: str
    error: str


def storage_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (or the driver error a StoreError was raised from) says the
    storage failed, rather than the statement."""
    if not isinstance(exc, SQLAlchemyError) and isinstance(exc.__cause__, SQLAlchemyError):
        exc = exc.__cause__
    if isinstance(exc, OperationalError | InterfaceError):
        # SQLite raises OperationalError for a statement's own errors too (no such
        # table): those carry the generic code, a failing disk or lock a specific one.
        return getattr(exc.orig, "sqlite_errorname", "") != "SQLITE_ERROR"
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _describe(exc: BaseException) -> tuple[str, str]:
    if not isinstance(exc, SQLAlchemyError) and isinstance(exc.__cause__, SQLAlchemyError):
        exc = exc.__cause__
    orig = getattr(exc, "orig", None) or exc
    first_line = (str(orig).splitlines() or [""])[0]
    return type(orig).__name__, first_line[:160]


class CommitFaults:
    """The failing components of one store (module rules); thread-safe."""

    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._failing: dict[str, CommitFault] = {}

    @contextmanager
    def watch(self) -> Iterator[None]:
        """Around one write transaction, its commit included: its outcome is recorded."""
        try:
            yield
        except Exception as exc:
            if storage_failure(exc):
                self.failed(_COMPONENT.get(), exc)
            raise
        if self._failing:  # a dict read: no lock on the common path
            self.succeeded(_COMPONENT.get())

    def failed(self, component: str, exc: BaseException) -> None:
        error_class, text = _describe(exc)
        now = self._now()
        with self._lock:
            before = self._failing.get(component)
            self._failing[component] = CommitFault(
                component, before.since if before else now, now,
                (before.failures if before else 0) + 1, error_class, text)

    def succeeded(self, component: str) -> None:
        with self._lock:
            self._failing.pop(component, None)

    def failing(self) -> list[CommitFault]:
        """The components whose last commit failed, the longest failing first."""
        with self._lock:
            faults = list(self._failing.values())
        return sorted(faults, key=lambda f: (f.since, f.component))
