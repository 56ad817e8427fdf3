"""Demographic matching: score stored patients against a registration, best first.

Rule: pure, no I/O, no clock. Matching only ever proposes pairs for review (a
``potential_duplicate`` finding); nothing is merged on demographics alone. The scores
are Fellegi–Sunter match probabilities (:mod:`.fellegi_sunter`) over the field
comparisons of :mod:`.compare`; the prior depends on how many patients are stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from accord.workflow.identity.compare import compare, distinct_people, features
from accord.workflow.identity.fellegi_sunter import DEFAULT_WEIGHTS, MatchResult, Weights, explain
from accord.workflow.model import Demographics, Patient

DEFAULT_POPULATION = 100_000  # stored patients assumed when the caller does not say


def compare_patients(
    registration: Demographics,
    stored: Patient,
    weights: Weights = DEFAULT_WEIGHTS,
    *,
    population: int = DEFAULT_POPULATION,
) -> MatchResult:
    """Score one pair side by side (for the console's review of a duplicate pair)."""
    levels, transposed = compare(features(registration), features(stored.demographics))
    return explain(stored.id, levels, transposed, weights, population)


def match_candidates(
    demographics: Demographics,
    candidates: Iterable[Patient],
    *,
    weights: Weights = DEFAULT_WEIGHTS,
    threshold: float = 0.5,
    population: int = DEFAULT_POPULATION,
) -> list[MatchResult]:
    """Score ``candidates`` against a registration; those at or above ``threshold``
    (probability), best first. ``population`` is the number of stored patients the
    candidates were drawn from (it sets the prior). Tombstones are skipped. Pairs for
    review, never merges."""
    query = features(demographics)
    results: list[MatchResult] = []
    for patient in candidates:
        if patient.merged_into is not None:
            continue
        levels, transposed = compare(query, features(patient.demographics))
        if distinct_people(levels):
            continue
        if weights.posterior(levels, population) >= threshold:
            results.append(explain(patient.id, levels, transposed, weights, population))
    results.sort(key=lambda r: (-r.score, r.patient_id))
    return results


@dataclass(frozen=True, slots=True)
class Matcher:
    """``match_candidates`` with its weights and threshold bound: the callable the
    workflow takes, ``(Demographics, Iterable[Patient]) -> list[MatchResult]``."""

    weights: Weights = DEFAULT_WEIGHTS
    threshold: float = 0.5
    population: int = DEFAULT_POPULATION

    def __call__(
        self, demographics: Demographics, candidates: Iterable[Patient]
    ) -> list[MatchResult]:
        return match_candidates(
            demographics,
            candidates,
            weights=self.weights,
            threshold=self.threshold,
            population=self.population,
        )
