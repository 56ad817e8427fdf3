"""Identity matching on the store: counts kept with the patients, bounded candidate
fetches, reviewers' decisions remembered, clusters proposed pair by pair (SQLite and
PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from itertools import combinations

from sqlalchemy import select

from accord.store.gateway.store import SqlStore
from accord.store.schema import wf_identity_counts
from accord.store.views.findings import FindingViews
from accord.store.workflow.bulk import bulk_load
from accord.store.workflow.repository import repository_for
from accord.workflow.commands import PatientData, RegisterPatient, UpdatePatient
from accord.workflow.engine import Request, apply_commands
from accord.workflow.findings import FindingKind, Resolution
from accord.workflow.identity import Matcher
from accord.workflow.identity.frequencies import EXPECTED, POPULATION, REGISTRATIONS
from accord.workflow.identity.index import MAX_CANDIDATES
from accord.workflow.memory import SequentialIds
from accord.workflow.model import Address, Demographics, Identifier, Patient, PersonName

from ..conftest import T0

HOME = Address(street="8 Harbour View", city="Quincy", postal_code="02169")
DOLORES = Demographics(PersonName("Abernathy", "Dolores"), date(1979, 8, 14), "F", HOME,
                       phone="617-555-0199")
SWITCHBOARD = "617-555-1000"


def _counts(store: SqlStore) -> dict[str, int]:
    with store.database.read() as conn:
        c = wf_identity_counts.c
        return {str(k): int(n) for k, n in conn.execute(select(c.key, c.count))}


def _apply(store: SqlStore, ids: SequentialIds, n: int, *commands: object,
           matcher: Matcher | None = None) -> None:
    with store.transaction() as tx:
        repo = repository_for(tx, T0)
        request = Request(source="ADT", message_ref=f"ADT/{n}", message_type="ADT^A04",
                          at=T0 + timedelta(minutes=n), commands=commands)  # type: ignore[arg-type]
        apply_commands(repo, request, ids=ids, matcher=matcher or Matcher())
        repo.flush()


def _register(mrn: str, d: Demographics) -> RegisterPatient:
    return RegisterPatient(PatientData((Identifier(mrn, "HOSP", "MR"),), d), "A04")


def _update(mrn: str, d: Demographics) -> UpdatePatient:
    return UpdatePatient(PatientData((Identifier(mrn, "HOSP", "MR"),), d), "A08")


def test_counts_follow_every_patient_write(store: SqlStore) -> None:
    ids = SequentialIds()
    _apply(store, ids, 1, _register("M1", DOLORES))
    _apply(store, ids, 2, _register("M2", replace(DOLORES, name=PersonName("Ford", "Robert"),
                                                    birth_date=date(1950, 1, 2), sex="M")))
    counts = _counts(store)
    assert counts[POPULATION] == 2 and counts["family:ABERNATHY"] == 1
    assert counts["phone:5550199"] == 2 and counts["postal:02169"] == 2
    _apply(store, ids, 3, _update("M1", replace(DOLORES, name=PersonName("Wyatt", "Dolores"))))
    counts = _counts(store)
    assert counts[POPULATION] == 2 and counts["family:ABERNATHY"] == 0
    assert counts["family:WYATT"] == 1


def test_new_registrations_are_counted_with_their_expected_matches(store: SqlStore) -> None:
    ids = SequentialIds()
    _apply(store, ids, 1, _register("M1", DOLORES))
    assert _counts(store)[REGISTRATIONS] == 1 and _counts(store).get(EXPECTED, 0) == 0
    _apply(store, ids, 2, _register("M2", DOLORES))  # the same person again
    counts = _counts(store)
    assert counts[REGISTRATIONS] == 2 and 500 < counts[EXPECTED] <= 1000
    _apply(store, ids, 3, _update("M1", replace(DOLORES, phone="617-555-0100")))
    assert _counts(store)[REGISTRATIONS] == 2  # an update is no new registration


def test_a_phone_shared_by_a_thousand_patients_finds_and_proposes_nobody(
        store: SqlStore) -> None:
    crowd = [Patient(f"P{n}", (Identifier(f"C{n}", "HOSP", "MR"),), Demographics(
        PersonName(f"Family{n:04d}".replace("0", "X"), "Alex"), date(1940, 1, 1)
        + timedelta(days=17 * n), "M", Address(postal_code=f"{n:05d}"), phone=SWITCHBOARD))
        for n in range(1000)]
    with bulk_load(store.database) as load:
        load.patients(crowd)
    assert _counts(store)["phone:5551000"] == 1000
    stranger = Demographics(PersonName("Quimby", "Teodora"), date(1988, 3, 9), "F",
                            Address(postal_code="99999"), phone=SWITCHBOARD)
    with store.transaction() as tx:
        found = repository_for(tx, T0).identity_candidates(stranger)
    assert found.found == () and found.frequencies.population == 1000
    assert Matcher().propose(stranger, found) == []
    # the same name and birth date as one of them: still found by its other keys
    twin = replace(crowd[7].demographics, sex="M")
    with store.transaction() as tx:
        found = repository_for(tx, T0).identity_candidates(twin)
    assert 0 < len(found.found) <= MAX_CANDIDATES
    (match,) = Matcher().propose(twin, found)
    assert match.patient_id == "P7"
    (contact,) = [t for t in match.fields if t.name == "contact"]
    assert contact.level != "address_and_phone"  # the phone weighs nothing


def test_the_facilitys_own_phone_weighs_nothing(store: SqlStore) -> None:
    ids = SequentialIds()
    _apply(store, ids, 1, _register("M1", replace(DOLORES, phone=SWITCHBOARD)))
    again = replace(DOLORES, phone=SWITCHBOARD, name=PersonName("Abernathy", "Dolores"))
    with store.transaction() as tx:
        found = repository_for(tx, T0).identity_candidates(again)
    plain = Matcher().propose(again, found)[0]
    own = Matcher(own_phones=(SWITCHBOARD,)).propose(again, found)[0]
    assert own.score < plain.score


def test_a_rejected_pair_stays_rejected_after_an_a08(store: SqlStore) -> None:
    ids = SequentialIds()
    _apply(store, ids, 1, _register("M1", DOLORES))
    _apply(store, ids, 2, _register("M2", replace(DOLORES, name=PersonName("Abernathy",
                                                                           "Dolors"))))
    views = FindingViews(store.database)
    (pair,) = views.duplicates().items
    assert pair.finding.finding.explanation  # the terms of the score were kept
    _apply(store, ids, 3, _update("M2", replace(DOLORES, phone="617-555-0100")))
    (again,) = views.duplicates().items
    assert again.finding.id == pair.finding.id and again.finding.finding.count == 2
    views.resolve(pair.finding.id, Resolution.IGNORED, "not a duplicate", T0)
    _apply(store, ids, 4, _update("M2", replace(DOLORES, phone="617-555-0111")))
    _apply(store, ids, 5, _update("M1", replace(DOLORES, phone="617-555-0122")))
    assert views.duplicates().items == ()
    done = views.get(pair.finding.id)
    assert done is not None and done.finding.resolution is Resolution.IGNORED
    assert done.finding.count == 2


def test_a_cluster_of_four_is_proposed_as_six_pairs(store: SqlStore) -> None:
    ids = SequentialIds()
    spellings = ("Dolores", "Dolors", "Delores", "Dolores")
    phones = ("617-555-0199", "", "617-555-0199", "617-555-0198")
    for n, (given, phone) in enumerate(zip(spellings, phones, strict=True)):
        _apply(store, ids, n, _register(f"M{n}", replace(
            DOLORES, name=PersonName("Abernathy", given), phone=phone)))
    pairs = FindingViews(store.database).duplicates().items
    found = {frozenset((p.finding.finding.patient_id, p.finding.finding.subject)) for p in pairs}
    people = {p.id for pair in pairs for p in (pair.a, pair.b) if p is not None}
    assert len(people) == 4
    assert found == {frozenset(c) for c in combinations(sorted(people), 2)}
    assert all(p.finding.finding.kind is FindingKind.POTENTIAL_DUPLICATE_PATIENT for p in pairs)
