"""Demographic matching: candidates scored and proposed for review, never merged."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from accord.workflow.identity import Matcher, PatientIndex
from accord.workflow.identity.compare import COMPARISONS
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


def test_a_lookup_weighs_every_candidate_as_its_explanation_does() -> None:
    """``assess`` scores candidates without explaining them and explains only those it
    proposes: the expected matches it adds up are the explained probabilities."""
    from accord.workflow.identity.compare import features
    from accord.workflow.identity.fellegi_sunter import DEFAULT_WEIGHTS, weigh
    from accord.workflow.identity.matcher import Candidates, assess, score_pair

    people = {
        "anna": ANNA,
        "typo": replace(ANNA, name=PersonName("Schnieder", "Anna"), phone=""),
        "twin": replace(ANNA, name=PersonName("Schneider", "Berta")),
        "mother": replace(ANNA, name=PersonName("Schneider", "Greta"),
                          birth_date=date(1950, 3, 4)),
        "crossed": replace(ANNA, name=PersonName("Anna", "Schneider")),
        "stranger": Demographics(name=PersonName("Weber", "Jonas"), birth_date=date(1990, 1, 1)),
    }
    candidates = Candidates(tuple((k, features(d)) for k, d in people.items()))
    registration = replace(ANNA, phone="")
    got = assess(registration, candidates, threshold=0.0, population=1000)
    explained = [score_pair(k, features(registration), f, population=1000)
                 for k, f in candidates.found]
    kept = [r for r in explained if r is not None]
    assert "mother" not in {r.patient_id for r in kept}  # a housemate: ruled out
    assert sorted(r.patient_id for r in got.proposed) == sorted(r.patient_id for r in kept)
    assert got.expected == sum(r.probability for r in kept)
    for r in kept:
        levels = [next(i for i, label in enumerate(labels) if label == level) if
                  level != "missing" else -1
                  for (_, labels), (_, level) in zip(COMPARISONS, r.levels, strict=True)]
        cap = next((t for t in r.fields if t.name == "household"), None)
        total = weigh(levels, DEFAULT_WEIGHTS, 1000,
                      [t.tf for t in r.fields[1:len(COMPARISONS) + 1]],
                      None if cap is None else r.score)
        assert round(total, 4) == r.score
