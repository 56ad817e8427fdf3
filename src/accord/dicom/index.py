"""The in-memory worklist index: every scheduled procedure step, indexed by the keys
modalities query on.

Rules: no I/O; the runtime keeps it in sync with the workflow (order placed, rescheduled,
cancelled, patient updated or merged) by calling :meth:`WorklistIndex.put_order`,
:meth:`remove`, :meth:`update_patient` and :meth:`merge_patient`, which keep the posting
lists current at once. Each item's MWL dataset is built at most once per change, when a
query first needs it (below), never per query. A query is narrowed by the most selective
of its exact keys (station AE, SPS start date or date range, modality, accession, patient
ID, family-name prefix) and then matched in full (:mod:`accord.dicom.query`), so the index
only ever narrows: it never decides a match. Thread-safe: SCP associations read while the
runtime writes.

Why lazy datasets: every order change re-renders its items, and building the pydicom
Dataset was most of the cost of keeping the worklist current while ingesting (py-spy:
~13% of `accord serve` under 8 senders of new orders). An entry keeps the plain item and
the values the posting lists need; its MWL dataset is built the first time a query
matches or answers it, then kept for the entry's life (a changed item is a new entry).
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Collection, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from pydicom.dataset import Dataset

from accord.dicom.charset import patient_pn
from accord.dicom.query import Hints, Query
from accord.dicom.worklist import (
    SERVABLE,
    WorklistItem,
    local_start,
    mwl_dataset,
    started_before,
)
from accord.workflow.model import Order, Patient
from accord.workflow.status import Status

Key = tuple[str, str]  # (order id, SPS ID)


class WorklistEntry:
    """An item and its MWL dataset, built on first use (module doc) and never mutated."""

    __slots__ = ("__weakref__", "_dataset", "_scheme", "_tz", "item", "postings", "responses",
                 "serial", "sort_key")

    def __init__(self, item: WorklistItem, sort_key: tuple[str, str, str] = ("", "", ""),
                 serial: int = 0, *, tz: tzinfo = UTC, coding_scheme: str = "99LOCAL") -> None:
        self.item = item
        self.sort_key = sort_key
        self.serial = serial  # unique per built entry (0: not cacheable); dicom/responses.py
        self._tz, self._scheme = tz, coding_scheme
        self._dataset: Dataset | None = None
        # C-FIND answers built from it, by query shape and syntax (dicom/responses.py).
        self.responses: dict[Hashable, Dataset] = {}
        # Worked out once: the entry is posted under them and later dropped from them.
        self.postings = _index_values(item, sort_key[0])

    @property
    def dataset(self) -> Dataset:
        """The item's MWL dataset (PS3.4 K.6.1.2.2). Two threads may both build it the
        first time; they build equal datasets and either one is kept."""
        ds = self._dataset
        if ds is None:
            ds = self._dataset = mwl_dataset(self.item, tz=self._tz,
                                             coding_scheme=self._scheme)
        return ds


@dataclass(slots=True)
class _Postings:
    """value -> keys; ``scanned`` lists also keep their values sorted, for range and
    prefix scans (only ``date`` and ``family`` are scanned: keeping every list sorted
    cost a sorted insert per new accession, ID and UID, a third of a worklist refresh)."""

    scanned: bool = False
    by_value: dict[str, set[Key]] = field(default_factory=dict)
    ordered: list[str] = field(default_factory=list)

    def add(self, value: str, key: Key) -> None:
        keys = self.by_value.get(value)
        if keys is None:
            keys = self.by_value[value] = set()
            if self.scanned:
                bisect.insort(self.ordered, value)
        keys.add(key)

    def discard(self, value: str, key: Key) -> None:
        keys = self.by_value.get(value)
        if keys is None:
            return
        keys.discard(key)
        if not keys:
            del self.by_value[value]
            if self.scanned:
                del self.ordered[bisect.bisect_left(self.ordered, value)]

    def exact(self, value: str) -> set[Key]:
        return set(self.by_value.get(value, ()))

    def between(self, low: str, high: str) -> set[Key]:
        assert self.scanned, "range scan on a posting list not kept sorted"
        lo = bisect.bisect_left(self.ordered, low)
        hi = bisect.bisect_right(self.ordered, high)
        out: set[Key] = set()
        for value in self.ordered[lo:hi]:
            out |= self.by_value[value]
        return out

    def prefix(self, start: str) -> set[Key]:
        return self.between(start, start + "\U0010ffff")


SCANNED = frozenset({"date", "family"})
"""Posting lists queried by range or prefix (the rest only by exact value)."""


def _index_values(item: WorklistItem, start: str) -> dict[str, list[str]]:
    """The values each posting list holds for one item: its dataset's Patient's Name and
    Patient ID as ``mwl_dataset`` writes them (backslash-free), without building it."""
    name = patient_pn(item.patient.demographics).replace("\\", " ")
    families = [g.split("^")[0].strip().casefold() for g in name.split("=")]
    primary = item.patient.identifiers[0].value.replace("\\", " ") \
        if item.patient.identifiers else ""
    return {
        "station": list(item.step.station_ae_titles),
        "date": [start] if start else [],
        "modality": [item.step.modality] if item.step.modality else [],
        "accession": [item.order.accession] if item.order.accession else [],
        "patient_id": [primary] if primary else [],
        "family": [f for f in families if f],
        "study_uid": [item.order.study_instance_uid] if item.order.study_instance_uid else [],
        "sps_id": [item.step.sps_id],
        "order": [item.order.id],
        "patient": [item.patient.id],
    }


class WorklistIndex:
    """Scheduled procedure steps, indexed for C-FIND (PS3.4 K.6) and MPPS lookups."""

    def __init__(self, *, tz: tzinfo = UTC, coding_scheme: str = "99LOCAL") -> None:
        self._tz = tz
        self._scheme = coding_scheme
        self._lock = threading.RLock()
        self._entries: dict[Key, WorklistEntry] = {}
        self._postings: dict[str, _Postings] = {}
        self._serials = itertools.count(1)

    def __len__(self) -> int:
        return len(self._entries)

    def _build(self, item: WorklistItem) -> WorklistEntry:
        start = local_start(item.step, self._tz)
        sort_key = (start.strftime("%Y%m%d") if start else "",
                    start.strftime("%H%M%S") if start else "", item.order.accession)
        return WorklistEntry(item, sort_key, next(self._serials), tz=self._tz,
                             coding_scheme=self._scheme)

    def _add(self, entry: WorklistEntry) -> None:
        key = entry.item.key
        self._drop(key)
        self._entries[key] = entry
        for name, values in entry.postings.items():
            postings = self._postings.get(name)
            if postings is None:
                postings = self._postings[name] = _Postings(scanned=name in SCANNED)
            for value in values:
                postings.add(value, key)

    def _drop(self, key: Key) -> bool:
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        for name, values in entry.postings.items():
            for value in values:
                self._postings[name].discard(value, key)
        return True

    def _keys(self, name: str, value: str) -> set[Key]:
        postings = self._postings.get(name)
        return postings.exact(value) if postings else set()

    def upsert(self, item: WorklistItem) -> None:
        """Add or replace one step (keyed by order id and SPS ID)."""
        entry = self._build(item)
        with self._lock:
            self._add(entry)

    def put_order(self, order: Order, patient: Patient) -> None:
        """Make the index hold exactly ``order``'s steps (new, rescheduled, steps dropped)."""
        entries = [self._build(WorklistItem(patient, order, step)) for step in order.steps]
        with self._lock:
            for key in self._keys("order", order.id) - {e.item.key for e in entries}:
                self._drop(key)
            for entry in entries:
                self._add(entry)

    def remove(self, order_id: str, sps_id: str | None = None) -> int:
        """Remove an order's steps (a cancel), or one step; returns how many went."""
        with self._lock:
            keys = self._keys("order", order_id)
            return sum(self._drop(k) for k in keys if sps_id is None or k[1] == sps_id)

    def expire(self, before: datetime) -> int:
        """Drop the steps whose scheduled start is before ``before``; returns how many.
        A step without a start never expires (it has no time to be late for)."""
        cutoff = before.astimezone(self._tz).strftime("%Y%m%d")
        with self._lock:
            dates = self._postings.get("date")
            keys = dates.between("", cutoff) if dates is not None else set()
            late = [k for k in keys if started_before(self._entries[k].item.step, before)]
            return sum(self._drop(k) for k in late)

    def update_patient(self, patient: Patient) -> int:
        """Re-render every item of ``patient`` (demographics or identifiers changed)."""
        return self.merge_patient(patient.id, patient)

    def merge_patient(self, old_patient_id: str, survivor: Patient) -> int:
        """Re-point the items of ``old_patient_id`` to ``survivor`` (ADT^A40 merge)."""
        with self._lock:
            items = [self._entries[k].item for k in self._keys("patient", old_patient_id)]
            for item in items:
                self._add(self._build(WorklistItem(survivor, item.order, item.step)))
            return len(items)

    def candidates(self, query: Query) -> list[WorklistEntry]:
        """Entries that may match ``query``, in start order; the caller matches in full."""
        with self._lock:
            keys = self._narrow(query.hints)
            entries = (list(self._entries.values()) if keys is None
                       else [self._entries[k] for k in keys])
        entries.sort(key=lambda e: e.sort_key)
        return entries

    def find(self, query: Query,
             statuses: Collection[Status] = SERVABLE) -> list[WorklistEntry]:
        """The entries a C-FIND with ``query`` answers, in start order (steps in
        ``statuses`` only; by default scheduled or arrived). For ``/api/worklist``."""
        return [e for e in self.candidates(query)
                if e.item.step.status in statuses and query.matches(e.dataset)]

    def _narrow(self, hints: Hints) -> set[Key] | None:
        sets: list[set[Key]] = []
        exact = {"station": hints.station, "modality": hints.modality,
                 "accession": hints.accession, "patient_id": hints.patient_id}
        for name, value in exact.items():
            if value is not None:
                sets.append(self._keys(name, value))
        postings = self._postings.get("date", _Postings(scanned=True))
        if hints.date_from is not None or hints.date_to is not None:
            sets.append(postings.between(hints.date_from or "", hints.date_to or "~"))
        if hints.name_prefix:
            family = self._postings.get("family", _Postings(scanned=True))
            sets.append(family.prefix(hints.name_prefix))
        if not sets:
            return None
        sets.sort(key=len)
        return sets[0].intersection(*sets[1:])

    def referenced(
        self, *, study_uids: Iterable[str] = (), accessions: Iterable[str] = (),
        sps_ids: Iterable[str] = (),
    ) -> list[WorklistItem]:
        """Items (any status) with one of these Study Instance UIDs, accessions or SPS IDs:
        the steps an MPPS may reference (PS3.4 F.7.2.1)."""
        with self._lock:
            keys: set[Key] = set()
            for name, values in (("study_uid", study_uids), ("accession", accessions),
                                 ("sps_id", sps_ids)):
                for value in values:
                    keys |= self._keys(name, value)
            return [self._entries[k].item for k in sorted(keys)]

    def patients(self, *, patient_id: str = "", family: str = "") -> list[Patient]:
        """Patients on the worklist with this ID, or whose family name starts the same."""
        with self._lock:
            keys = self._keys("patient_id", patient_id) if patient_id else set()
            if family.strip():
                keys |= self._postings.get("family", _Postings(scanned=True)).prefix(
                    family.strip().casefold()[:3])
            found = {self._entries[k].item.patient.id: self._entries[k].item.patient
                     for k in sorted(keys)}
        return list(found.values())

    def items(self) -> list[WorklistItem]:
        """Every item, in start order."""
        with self._lock:
            entries = list(self._entries.values())
        return [e.item for e in sorted(entries, key=lambda e: e.sort_key)]
