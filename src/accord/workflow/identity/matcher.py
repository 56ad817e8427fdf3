"""Demographic matching: score stored patients against a registration, best first.

Rule: pure, no I/O, no clock. Matching only ever proposes pairs for review (a
``potential_duplicate_patient`` finding); nothing is merged on demographics alone. The
scores are Fellegi–Sunter match weights (:mod:`.fellegi_sunter`) over the field
comparisons of :mod:`.compare`, adjusted for how common the agreeing values are
(:mod:`.frequencies`), capped for household relations (:mod:`.households`) and
weighed against the registration's other candidates (:mod:`.competing`); the prior
depends on how many patients are stored and on the fields the registration left out.
A pair a reviewer marked "not a duplicate" (``Candidates.rejected``) is never
proposed again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

from accord.workflow.identity.compare import (
    COMPARISON_NAMES,
    NULL,
    Features,
    compare,
    compare_birth_date,
    compare_family,
    compare_given,
    compare_names,
    compare_one_edit,
    complete,
    features,
)
from accord.workflow.identity.competing import Rival, Together, compete, less
from accord.workflow.identity.fellegi_sunter import (
    DEFAULT_WEIGHTS,
    ComparisonWeights,
    MatchResult,
    Weights,
    explain,
    probability,
    weigh,
)
from accord.workflow.identity.frequencies import (
    M_KEYS,
    NO_FREQUENCIES,
    REGISTRATIONS,
    Frequencies,
    adjustments,
    crossed_by_role,
    learned_m,
    rate_changes,
    sparseness,
    without_shared,
)
from accord.workflow.identity.households import DISTINCT, relation
from accord.workflow.model import Demographics, Patient

DEFAULT_POPULATION = 100_000  # stored patients assumed when the caller does not say
_NATIONAL_ID = COMPARISON_NAMES.index("national_id")
_FAMILY = COMPARISON_NAMES.index("family_name")
_GIVEN = COMPARISON_NAMES.index("given_name")
_FAMILY_DIFFERENT = 4
_GIVEN_DIFFERENT = 5
_BIRTH_DIFFERENT = 4


@dataclass(frozen=True, slots=True)
class Candidates:
    """What a store found for one registration: each candidate's id and features, the
    counts of the registration's terms, and the candidates a reviewer has already
    decided are other people."""

    found: tuple[tuple[str, Features], ...] = ()
    frequencies: Frequencies = NO_FREQUENCIES
    rejected: frozenset[str] = frozenset()

    @classmethod
    def of(cls, patients: Iterable[Patient]) -> Candidates:
        """Candidates from whole patients (tombstones left out), without counts."""
        return cls(tuple((p.id, features(p.demographics)) for p in patients
                         if p.merged_into is None))


@dataclass(frozen=True, slots=True)
class _Scored:
    """A pair's score before it is explained (``explain`` itemises it on demand)."""

    levels: tuple[int, ...]
    transposed: bool
    tf: tuple[float, ...]
    relation: str
    cap: float | None
    score: float


def _score(
    query: Features, stored: Features, weights: Weights, freqs: Frequencies, population: int
) -> _Scored | None:
    """``score_pair`` without the explanation; None for plainly different people. The
    names and birth date come first: given name and birth date both different rule most
    candidates out before the rest is compared."""
    birth = compare_birth_date(query.birth, stored.birth)
    other_id = compare_one_edit(query.national_id, stored.national_id) not in (0, 1)
    if birth == _BIRTH_DIFFERENT and other_id and _housemate(query, stored):
        return None
    family, given, transposed = compare_names(query, stored)
    if family == _FAMILY_DIFFERENT and given == _GIVEN_DIFFERENT:
        crossed = crossed_by_role(query, stored, freqs)
        if crossed is not None:
            (family, given), transposed = crossed, True
    if given == _GIVEN_DIFFERENT and birth == _BIRTH_DIFFERENT and other_id:
        return None
    levels = complete(query, stored, family, given, birth)
    kin, cap = relation(query, stored, levels)
    if cap == DISTINCT:
        return None
    tf = tuple(adjustments(query, stored, levels, weights, freqs, population, transposed))
    return _Scored(levels, transposed, tf, kin, cap, weigh(levels, weights, population, tf, cap))


def _housemate(query: Features, stored: Features) -> bool:
    """Family names agreeing (up to phonetically) and given names plainly different, as
    written: ``compare_names`` reads such a pair as written, so with the birth date
    different it is a housemate, ruled out without comparing the rest."""
    family = compare_family(query.family, stored.family, query.family_code, stored.family_code)
    return 0 <= family <= 2 and compare_given(
        query.given, stored.given, query.given_code, stored.given_code) == _GIVEN_DIFFERENT


def score_pair(
    patient_id: str,
    query: Features,
    stored: Features,
    weights: Weights = DEFAULT_WEIGHTS,
    freqs: Frequencies = NO_FREQUENCIES,
    population: int = DEFAULT_POPULATION,
) -> MatchResult | None:
    """One pair, explained; None when the two are plainly different people (given name
    and birth date both disagree, unless the national ID agrees; or a household relation
    that rules a duplicate out)."""
    scored = _score(query, stored, weights, freqs, population)
    return None if scored is None else _explained(patient_id, scored, weights, population)


def _explained(patient_id: str, scored: _Scored, weights: Weights, population: int
               ) -> MatchResult:
    return explain(patient_id, scored.levels, scored.transposed, weights, population,
                   scored.tf, relation=scored.relation, cap=scored.cap)


def compare_patients(
    registration: Demographics,
    stored: Patient,
    weights: Weights = DEFAULT_WEIGHTS,
    *,
    population: int = DEFAULT_POPULATION,
    freqs: Frequencies = NO_FREQUENCIES,
) -> MatchResult:
    """Score one pair side by side (for the console's review of a duplicate pair): the
    full explanation even where :func:`score_pair` would rule the pair out."""
    query, other = features(registration), features(stored.demographics)
    weights = weights_for(weights, freqs, sparseness(query))
    levels, transposed = compare(query, other)
    kin, cap = relation(query, other, levels)
    tf = adjustments(query, other, levels, weights, freqs, population, transposed)
    return explain(stored.id, levels, transposed, weights, population, tf, relation=kin,
                   cap=None if cap == DISTINCT else cap)


@dataclass(frozen=True, slots=True)
class Assessment:
    """A registration scored against its candidates: the pairs worth a reviewer's look,
    best first, and ``expected``, the number of stored patients it is expected to be
    (every scored candidate's match probability, summed: what the store adds up to
    learn the duplicate rate, see :mod:`.frequencies`)."""

    proposed: tuple[MatchResult, ...] = ()
    expected: float = 0.0
    levels: tuple[tuple[str, float], ...] = ()  # ``m_key`` -> summed probability
    sparse: int = 0  # the registration's core fields missing (``frequencies.sparseness``)

    def changes(self) -> dict[str, int]:
        """The counts this registration adds (``frequencies.rate_changes``)."""
        return rate_changes(self.expected, dict(self.levels), self.sparse)


def weights_for(weights: Weights, freqs: Frequencies, sparse: int | None = None) -> Weights:
    """``weights`` with the duplicate rate and the m the store learned from its
    registrations (:mod:`.frequencies`); as they are when it has not counted any.
    ``sparse``: the rate of registrations missing that many core fields."""
    if not freqs.count(REGISTRATIONS):
        return weights
    m = tuple(tuple(_three_digits(p) for p in row) for row in learned_m(weights, freqs))
    rate = freqs.duplicate_rate(weights.duplicate_rate, sparse)
    return _learned(weights, _three_digits(rate), m)


def _three_digits(x: float) -> float:
    return float(f"{x:.3g}")


@lru_cache(maxsize=256)
def _learned(weights: Weights, rate: float, m: tuple[tuple[float, ...], ...]) -> Weights:
    """``weights`` with learned values, rounded to three digits (a change of under 0.01
    bit) so that consecutive registrations share one ``Weights`` and its table."""
    comparisons = tuple(ComparisonWeights(c.name, c.levels, row, c.u)
                        for c, row in zip(weights.comparisons, m, strict=True))
    return replace(weights, comparisons=comparisons, duplicate_rate=rate)


def assess(
    demographics: Demographics,
    candidates: Candidates,
    *,
    weights: Weights = DEFAULT_WEIGHTS,
    threshold: float = 0.5,
    population: int = DEFAULT_POPULATION,
    own_phones: Sequence[str] = (),
) -> Assessment:
    """Score every candidate not rejected before; propose those with match probability at
    least ``threshold``. ``population`` is used when the candidates come without counts."""
    freqs = candidates.frequencies
    size = freqs.population or population
    query = without_shared(features(demographics), freqs, own_phones)
    sparse = sparseness(query)
    weights = weights_for(weights, freqs, sparse)
    results: list[MatchResult] = []
    expected = 0.0
    levels: dict[str, float] = {}
    scored: list[tuple[str, _Scored]] = []
    rivals: list[Rival] = []
    for patient_id, stored in candidates.found:
        if patient_id in candidates.rejected:
            continue
        other = without_shared(stored, freqs, own_phones)
        pair = _score(query, other, weights, freqs, size)
        if pair is not None:
            scored.append((patient_id, pair))
            rivals.append(Rival(patient_id, pair.score, pair.levels, other))
    taken = compete(rivals, _together(weights, size))
    for patient_id, pair in scored:
        penalty, taker = taken.get(patient_id, (0.0, ""))
        p = probability(pair.score - penalty)
        expected += p
        if not pair.relation:
            for keys, level in zip(M_KEYS, pair.levels, strict=True):
                if level != NULL:
                    levels[keys[level]] = levels.get(keys[level], 0.0) + p
        if p >= threshold:
            result = _explained(patient_id, pair, weights, size)
            results.append(less(result, penalty, taker) if penalty else result)
    results.sort(key=lambda r: (-r.score, r.patient_id))
    return Assessment(tuple(results), expected, tuple(sorted(levels.items())), sparse)


def _together(weights: Weights, population: int) -> Together:
    """How well two candidates fit one person (``competing``): the Bayes factors that
    count against it in their own comparison, multiplied, at most 1, on the fields
    the registration left out (or either of them did: nothing links their values
    there); at least their match probability (two records taken for one person's do
    not compete). A pair the household rules or the given name and birth date would
    rule out, or cap, is weighed the same way: the registration may explain what sets
    them apart (two records, each with another field mistyped), and where it does not,
    their comparison counts that field against them. Without term counts: those the
    store gave are the registration's."""
    def fit(a: Rival, b: Rival) -> float:
        pair = _score(a.features, b.features, weights, NO_FREQUENCIES, population)
        unlinked = [i for i, (x, y) in enumerate(zip(a.levels, b.levels, strict=True))
                    if NULL in (x, y)]
        levels, _ = compare(a.features, b.features)
        against = sum(min(0.0, weights.factor(i, levels, population)) for i in unlinked
                      if levels[i] != NULL)
        return max(0.0 if pair is None else probability(pair.score), math.exp2(against))
    return fit


def propose(
    demographics: Demographics,
    candidates: Candidates,
    *,
    weights: Weights = DEFAULT_WEIGHTS,
    threshold: float = 0.5,
    population: int = DEFAULT_POPULATION,
    own_phones: Sequence[str] = (),
) -> list[MatchResult]:
    """The candidates worth a reviewer's look, best first (:func:`assess`)."""
    return list(assess(demographics, candidates, weights=weights, threshold=threshold,
                       population=population, own_phones=own_phones).proposed)


def match_candidates(
    demographics: Demographics,
    candidates: Iterable[Patient],
    *,
    weights: Weights = DEFAULT_WEIGHTS,
    threshold: float = 0.5,
    population: int = DEFAULT_POPULATION,
) -> list[MatchResult]:
    """Score whole ``candidates`` against a registration (tombstones skipped); those at
    or above ``threshold`` (probability), best first. ``population`` is the number of
    stored patients the candidates were drawn from (it sets the prior). Pairs for
    review, never merges."""
    return propose(demographics, Candidates.of(candidates), weights=weights,
                   threshold=threshold, population=population)


@dataclass(frozen=True, slots=True)
class Matcher:
    """:func:`propose` with its weights, threshold and the facility's own phone numbers
    (``own_phones``, any format: read as placeholders) bound: what the workflow calls."""

    weights: Weights = DEFAULT_WEIGHTS
    threshold: float = 0.5
    population: int = DEFAULT_POPULATION
    own_phones: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        digits = tuple("".join(c for c in p if c.isdigit())[-7:] for p in self.own_phones)
        object.__setattr__(self, "own_phones", tuple(d for d in digits if len(d) == 7))

    def assess(self, demographics: Demographics, candidates: Candidates) -> Assessment:
        return assess(demographics, candidates, weights=self.weights,
                      threshold=self.threshold, population=self.population,
                      own_phones=self.own_phones)

    def propose(self, demographics: Demographics, candidates: Candidates) -> list[MatchResult]:
        return list(self.assess(demographics, candidates).proposed)

    def __call__(
        self, demographics: Demographics, candidates: Iterable[Patient]
    ) -> list[MatchResult]:
        return self.propose(demographics, Candidates.of(candidates))
