"""The engine's identity path on its own store, in process: registrations applied in
arrival order by the workflow (``apply_commands`` with ``RegisterPatient``, the command an
ADT^A04 becomes) on a SQLite store through ``SqlRepository``, exactly what ``accord
serve`` runs per message minus MLLP and HL7 parsing. Used by ``bench/identity.py`` where
the engine over MLLP is too slow to feed a large population on a loaded machine.

Measured per registration: the candidates the store fetched (``identity_candidates``),
whether each earlier registration of the same person was among them (blocking recall),
and the time of the lookup plus scoring. Then one registration against a large store:
the population bulk-loaded (``accord.store.workflow.bulk``), and registrations looked up
and scored one at a time on the same SQL path.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import population
from sqlalchemy import Connection, func, select

from accord.store import open_store, sqlite_url
from accord.store.gateway.store import SqlStore, connection_of
from accord.store.schema import wf_identity_features
from accord.store.views.findings import FindingViews
from accord.store.workflow.bulk import bulk_load
from accord.store.workflow.identity import COUNTS
from accord.store.workflow.repository import SqlRepository, repository_for
from accord.workflow.commands import PatientData, RegisterPatient
from accord.workflow.engine import Request, apply_commands
from accord.workflow.events import PatientChanged
from accord.workflow.identity import Matcher
from accord.workflow.identity.frequencies import POPULATION
from accord.workflow.identity.matcher import Candidates
from accord.workflow.memory import SequentialIds
from accord.workflow.model import Address, Demographics, Identifier, Patient, PersonName

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
MATCHER = Matcher(own_phones=(population.SWITCHBOARD,))


def demographics(r: population.Registration) -> Demographics:
    """PID-5, -7, -8, -11, -13, -19 of a registration, as the engine reads them."""
    born = None
    if len(r.birth) == 8 and r.birth.isdigit():
        try:
            born = date(int(r.birth[:4]), int(r.birth[4:6]), int(r.birth[6:]))
        except ValueError:
            born = None
    return Demographics(
        PersonName(r.family, r.given, suffix=r.suffix), born, r.sex,
        Address(" ".join(p for p in (r.house_number, r.street) if p), r.other, r.city,
                r.state, r.postcode), phone=r.phone, national_id=r.national_id)


@dataclass(frozen=True, slots=True)
class StoreRun:
    pairs: frozenset[frozenset[str]]
    candidates: tuple[int, ...]  # per lookup
    apply_ms: tuple[float, ...]  # the workflow applying each registration (match + save)
    blocked: int  # true pairs whose earlier record the later one's lookup found
    seconds: float
    lookups: tuple[Candidates, ...] = ()  # per registration, what its lookup returned (keep)
    patient_ids: tuple[str, ...] = ()  # per registration, the patient it created


class _Counting(SqlRepository):
    """The repository, noting what each lookup found."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        super().__init__(conn, now)
        self.found: list[tuple[str, ...]] = []
        self.got: list[Candidates] = []

    def identity_candidates(self, demographics: Demographics, *, exclude: str = "",
                            limit: int = 100) -> Candidates:
        got = super().identity_candidates(demographics, exclude=exclude, limit=limit)
        self.found.append(tuple(pid for pid, _ in got.found))
        self.got.append(got)
        return got


def run_online(pop: population.Population, data: Path, keep: bool = False) -> StoreRun:
    """Every registration applied in arrival order; pairs from the duplicate findings.
    ``keep``: also return each lookup's candidates and each registration's patient id."""
    store = open_store(sqlite_url(data))
    assert isinstance(store, SqlStore)
    ids = SequentialIds()
    person_of = dict(zip((r.mrn for r in pop.records), pop.persons, strict=True))
    earlier: dict[str, list[str]] = {}  # person -> patient ids registered so far
    patient_of: dict[str, str] = {}  # patient id -> MRN
    candidates: list[int] = []
    apply_ms: list[float] = []
    blocked = 0
    kept: list[Candidates] = []
    pids: list[str] = []
    t0 = time.perf_counter()
    try:
        for n, r in enumerate(pop.records):
            with store.transaction() as tx:
                repo = _Counting(connection_of(tx), T0)
                command = RegisterPatient(PatientData(
                    (Identifier(r.mrn, r.authority, "MR"),), demographics(r)), "A04")
                request = Request(source="REG", message_ref=f"REG/{n}",
                                  message_type="ADT^A04", at=T0 + timedelta(seconds=n),
                                  commands=(command,))
                started = time.perf_counter()
                outcome = apply_commands(repo, request, ids=ids, matcher=MATCHER)
                apply_ms.append((time.perf_counter() - started) * 1000)
                repo.flush()
            found = set(repo.found[0]) if repo.found else set()
            if keep:
                kept.append(repo.got[0] if repo.got else Candidates())
            candidates.append(len(found))
            person = person_of[r.mrn]
            blocked += sum(1 for pid in earlier.get(person, ()) if pid in found)
            created = [e for e in outcome.outbound_events if isinstance(e, PatientChanged)]
            pid = created[0].patient.id if created else ""
            earlier.setdefault(person, []).append(pid)
            pids.append(pid)
            patient_of[pid] = r.mrn
        views = FindingViews(store.database)
        pairs: set[frozenset[str]] = set()
        cursor = None
        while True:
            page = views.duplicates(cursor=cursor, limit=1000)
            for p in page.items:
                f = p.finding.finding
                pairs.add(frozenset((patient_of[f.patient_id], patient_of[f.subject])))
            if not page.next_cursor:
                break
            cursor = page.next_cursor
    finally:
        store.close()
    return StoreRun(frozenset(pairs), tuple(candidates), tuple(apply_ms), blocked,
                    time.perf_counter() - t0, tuple(kept), tuple(pids) if keep else ())


@dataclass(frozen=True, slots=True)
class LargeStore:
    stored: int
    load_seconds: float
    lookups: int
    p50_ms: float
    p99_ms: float
    candidates_mean: float
    candidates_p99: int
    candidates_max: int


def large_store(pop: population.Population, queries: population.Population,
                data: Path) -> LargeStore:
    """``pop`` bulk-loaded; each record of ``queries`` looked up and scored against it."""
    t0 = time.perf_counter()
    load_store(pop, data)
    loaded = time.perf_counter() - t0
    return time_lookups(data, queries.records, loaded)


def load_store(pop: population.Population, data: Path) -> None:
    """``pop`` bulk-loaded into a new store at ``data``, one patient per registration."""
    store = open_store(sqlite_url(data))
    assert isinstance(store, SqlStore)
    try:
        with bulk_load(store.database) as load:
            batch: list[Patient] = []
            for n, r in enumerate(pop.records):
                batch.append(Patient(f"P{n:08d}", (Identifier(r.mrn, r.authority, "MR"),),
                                     demographics(r)))
                if len(batch) == 20_000:
                    load.patients(batch)
                    load.commit()
                    batch = []
            load.patients(batch)
    finally:
        store.close()


def time_lookups(data: Path, queries: Sequence[population.Registration],
                 load_seconds: float = 0.0) -> LargeStore:
    """Each of ``queries`` looked up (``identity_candidates``: the SQL the engine runs per
    registration) and scored against the store already at ``data``, one at a time; the
    store is only read."""
    store = open_store(sqlite_url(data))
    assert isinstance(store, SqlStore)
    times: list[float] = []
    sizes: list[int] = []
    try:
        stored = stored_patients_of(store)
        with store.database.read() as conn:
            packed = conn.execute(select(func.count()).select_from(
                wf_identity_features)).scalar_one()
        if packed < stored:
            raise RuntimeError(f"{data}: {stored:,} patients counted but {packed:,} rows of "
                               "identity features: not a store the identity lookup can use")
        for r in queries:
            d = demographics(r)
            with store.transaction() as tx:
                repo = repository_for(tx, T0)
                started = time.perf_counter()
                found = repo.identity_candidates(d)
                MATCHER.propose(d, found)
                times.append((time.perf_counter() - started) * 1000)
                sizes.append(len(found.found))
    finally:
        store.close()
    return LargeStore(stored, load_seconds, len(times), percentile(times, 0.5),
                      percentile(times, 0.99), statistics.fmean(sizes),
                      int(percentile(sizes, 0.99)), max(sizes))


def stored_patients(data: Path) -> int:
    """The live patients of the store at ``data``."""
    store = open_store(sqlite_url(data))
    try:
        return stored_patients_of(store)
    finally:
        store.close()


def stored_patients_of(store: SqlStore) -> int:
    """The live patients of an open store (the identity counts' population key)."""
    with store.database.read() as conn:
        rows = conn.execute(COUNTS, {"keys": [POPULATION]}).all()
    return int(rows[0][1]) if rows else 0


def percentile(values: Sequence[float], q: float) -> float:
    """The value at quantile ``q`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * q) - 1)] if ordered else 0.0


MEMORY = Path("/dev/shm")  # tmpfs on Linux: a commit's fsync costs nothing there


def scratch(memory: bool = False) -> tempfile.TemporaryDirectory[str]:
    """A directory for a throwaway store. ``memory``: on tmpfs when there is one, for runs
    that measure what the matcher finds, not how fast: every registration is its own
    transaction, committed with ``synchronous=FULL``, and on a disk shared with other
    work that commit's fsync, not the engine, sets the pace (most of the run's time)."""
    where = MEMORY if memory and MEMORY.is_dir() and os.access(MEMORY, os.W_OK) else None
    return tempfile.TemporaryDirectory(prefix="accord-identity-", dir=where)
