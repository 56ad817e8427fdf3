"""Demographic matching: candidates scored and proposed for review, never merged."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from accord.workflow.identity import Matcher, PatientIndex
from accord.workflow.identity.matcher import compare_patients, match_candidates
from accord.workflow.model import Address, Demographics, Identifier, Patient, PersonName

MRN = Identifier("12345", "HOSP", "MR")
LAB = Identifier("L-77", "LAB", "PI")
SAME_VALUE_OTHER_AUTHORITY = Identifier("12345", "CLINIC", "MR")

ANNA = Demographics(
    name=PersonName(family="Schneider", given="Anna"),
    birth_date=date(1975, 11, 2),
    sex="F",
    address=Address(street="Hauptstraße 5", city="Köln", postal_code="50667"),
    phone="0221 1234567",
)


def test_matcher_proposes_the_duplicate_and_skips_tombstones() -> None:
    stored = [
        Patient("anna", (MRN,), ANNA),
        Patient("other", (LAB,), replace(ANNA, name=PersonName("Weber", "Jonas"),
                                           birth_date=date(1990, 1, 1), sex="M", phone="")),
        Patient("gone", (SAME_VALUE_OTHER_AUTHORITY,), ANNA, merged_into="anna"),
    ]
    registration = replace(ANNA, name=PersonName("Schnieder", "Anna"), phone="")
    results = Matcher(threshold=0.5)(registration, stored)
    assert [r.patient_id for r in results] == ["anna"]
    assert results[0].agreeing and "family_name" in results[0].agreeing
    assert match_candidates(registration, stored, threshold=0.5) == results


def test_population_sets_the_prior() -> None:
    stored = Patient("anna", (MRN,), ANNA)
    weak = Demographics(name=PersonName("Schneider", "Anna"))
    small = compare_patients(weak, stored, population=100)
    large = compare_patients(weak, stored, population=10_000_000)
    assert large.probability < small.probability
    assert large.agreeing == small.agreeing == ("family_name", "given_name")


def test_never_merges_on_demographics_alone() -> None:
    index = PatientIndex()
    index.add(Patient("anna", (MRN,), ANNA))
    before = len(index)
    results = index.match(ANNA)
    assert results[0].patient_id == "anna" and results[0].probability > 0.99
    assert len(index) == before  # a proposal, not a merge: nothing was changed


def test_the_explanations_weights_add_up_to_the_score() -> None:
    from accord.workflow.identity.compare import features
    from accord.workflow.identity.frequencies import POPULATION, Frequencies
    from accord.workflow.identity.matcher import Candidates

    registration = replace(ANNA, name=PersonName("Schnieder", "Anna"), phone="")
    freqs = Frequencies(50_000, {POPULATION: 50_000, "given:ANNA": 900})
    (result,) = Matcher().propose(
        registration, Candidates((("anna", features(ANNA)),), freqs))
    assert abs(sum(t.weight for t in result.fields) - result.score) < 1e-6
    names = [t.name for t in result.fields]
    assert names[0] == "prior" and "given_name" in names
    (given,) = [t for t in result.fields if t.name == "given_name"]
    assert given.level == "exact" and given.tf < 0  # ANNA is common here
    (maiden,) = [t for t in result.fields if t.name == "mothers_maiden_name"]
    assert (maiden.level, maiden.weight) == ("missing", 0.0)
