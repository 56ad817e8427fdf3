"""The read model of the console and the JSON API: one query object per concept, used by
both, so a page and its API route can never disagree.

- ``orders.py``: the order search, one order with its patient, its trace (and the order
  page's detail);
- ``patients.py``: patient search, lookups by identifier, the patient page;
- ``worklist.py``: scheduled procedure steps as the MWL serves them;
- ``findings.py``: findings, their resolution, potential duplicate pairs;
- ``dashboard.py``: the dashboard's figures and the workflow's counts;
- ``storage.py``: the store's size and its growth per day.

Messages, the outbox and the error queue are read through the gateway's port
(:class:`accord.store.Store`); audit records through ``store.accounts``.

Rules: every list cuts its pages through ``db/paging.py`` (1 to 1000 items, keyset
cursors); every query is driven by an index; values come back as the workflow's frozen
dataclasses, never SQLAlchemy rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from accord.store.db import Database
from accord.store.views.dashboard import DashboardView
from accord.store.views.findings import FindingViews
from accord.store.views.orders import OrderViews
from accord.store.views.patients import PatientViews
from accord.store.views.storage import StorageView
from accord.store.views.worklist import WorklistView

__all__ = ["DashboardView", "FindingViews", "OrderViews", "PatientViews", "StorageView",
           "Views", "WorklistView"]


@dataclass(frozen=True, slots=True)
class Views:
    """Every view of one database."""

    orders: OrderViews
    patients: PatientViews
    worklist: WorklistView
    findings: FindingViews
    dashboard: DashboardView
    storage: StorageView

    @classmethod
    def over(cls, database: Database) -> Views:
        return cls(OrderViews(database), PatientViews(database), WorklistView(database),
                   FindingViews(database), DashboardView(database), StorageView(database))
