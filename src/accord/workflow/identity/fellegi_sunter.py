"""Fellegi–Sunter weights: m and u per comparison level, match weight and probability.

Rule: pure, no I/O. For each comparison level, ``m`` is the probability of that level
among pairs that are the same person and ``u`` among pairs that are not (Fellegi and
Sunter, "A Theory for Record Linkage", JASA 1969). A pair's match weight is the sum of
log2(m/u) over its non-missing levels; with the prior λ it becomes a probability. λ, the
chance that a registration and one given stored patient are the same person, is the
duplicate rate ``d`` (how many stored records a registration matches, on average) over
the number of stored patients: the same evidence is weaker in a larger population.
``Weights`` is a frozen value that round-trips through JSON so a trained model can be
stored and reloaded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from accord.workflow.identity.compare import COMPARISON_NAMES, COMPARISONS, NULL

_FAMILY = COMPARISON_NAMES.index("family_name")
_CONTACT = COMPARISON_NAMES.index("contact")


@dataclass(frozen=True, slots=True)
class ComparisonWeights:
    """m and u probabilities of each level of one comparison, in level order."""

    name: str
    levels: tuple[str, ...]
    m: tuple[float, ...]
    u: tuple[float, ...]

    def __post_init__(self) -> None:
        if not (len(self.levels) == len(self.m) == len(self.u)):
            raise ValueError(f"{self.name}: levels, m and u differ in length")
        for p in (*self.m, *self.u):
            if not 0.0 < p <= 1.0:
                raise ValueError(f"{self.name}: probability {p} outside (0, 1]")

    def log2_bayes_factors(self) -> tuple[float, ...]:
        """log2(m/u) per level: positive agrees, negative disagrees."""
        return tuple(math.log2(m / u) for m, u in zip(self.m, self.u, strict=True))


@dataclass(frozen=True, slots=True)
class Weights:
    """A trained (or default) model: one ``ComparisonWeights`` per comparison, and λ.

    ``duplicate_rate`` is the expected number of stored patients a new registration
    matches (the share of registrations that are duplicates); ``prior(population)`` turns
    it into λ for an index of that size. ``trained_on`` counts the records the model was
    estimated from (0 for the defaults).

    ``household`` corrects the one dependence Fellegi–Sunter's independence assumption
    gets badly wrong: people who share a family name often share an address and phone
    too (spouses, children). Per ``contact`` level, it is the expected number of other
    stored people with the same family name a person shares that contact level with.
    When the family names agree exactly, the contact level's u becomes
    u + household/(N · s), s the chance that two people share a family name: in a
    population of N, a housemate is one same-surname pair among N · s.
    """

    comparisons: tuple[ComparisonWeights, ...]
    duplicate_rate: float
    household: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)
    trained_on: int = 0
    table: tuple[tuple[float, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = tuple((c.name, c.levels) for c in self.comparisons)
        if names != COMPARISONS:
            raise ValueError("weights do not match the comparisons of this version")
        if not 0.0 < self.duplicate_rate <= 10.0:
            raise ValueError(f"duplicate rate {self.duplicate_rate} outside (0, 10]")
        if len(self.household) != len(self.comparisons[_CONTACT].levels) or min(
            self.household
        ) < 0:
            raise ValueError("household needs one non-negative value per contact level")
        object.__setattr__(
            self, "table", tuple(c.log2_bayes_factors() for c in self.comparisons)
        )

    def prior(self, population: int) -> float:
        """λ: the chance that a registration is one given patient among ``population``."""
        return min(0.5, self.duplicate_rate / max(population, 1))

    def prior_weight(self, population: int) -> float:
        """log2(λ / (1 − λ)): the match weight of a pair nothing is known about."""
        prior = self.prior(population)
        return math.log2(prior / (1.0 - prior))

    def factor(self, i: int, levels: Sequence[int], population: int) -> float:
        """log2(m/u) of comparison ``i`` at its level in ``levels`` (0 when missing),
        with the household correction on ``contact`` when the family names agree
        exactly."""
        level = levels[i]
        if level == NULL:
            return 0.0
        housemates = self.housemates(levels, population) if i == _CONTACT else 0.0
        if not housemates:
            return self.table[i][level]
        contact = self.comparisons[_CONTACT]
        return math.log2(contact.m[level] / min(contact.u[level] + housemates, 1.0))

    def housemates(self, levels: Sequence[int], population: int) -> float:
        """What the household correction adds to the ``contact`` level's u when the
        family names agree exactly: household/(N · s); 0 when it does not apply. A
        housemate shares the family name as written: one a typo away at the same home
        is a registration's slip, not a housemate's name."""
        level = levels[_CONTACT]
        if level == NULL or levels[_FAMILY] != 0 or not self.household[level]:
            return 0.0
        family = self.comparisons[_FAMILY]
        return self.household[level] / (max(population, 1) * (family.u[0] + family.u[1]))

    def match_weight(self, levels: Sequence[int], population: int) -> float:
        """Sum of log2(m/u) over the non-missing levels of a comparison vector."""
        table = self.table
        total = 0.0
        for i, level in enumerate(levels):
            if level != NULL:
                total += table[i][level]
        if levels[_FAMILY] in (0, 1) and levels[_CONTACT] != NULL:
            total += self.factor(_CONTACT, levels, population) - table[_CONTACT][levels[_CONTACT]]
        return total

    def probability(self, match_weight: float, population: int) -> float:
        """Posterior match probability of a pair with this match weight (without λ)."""
        total = match_weight + self.prior_weight(population)
        if total > 60:
            return 1.0
        return 1.0 / (1.0 + math.exp2(-total))

    def posterior(self, levels: Sequence[int], population: int) -> float:
        """Match probability of a comparison vector among ``population`` stored patients."""
        return self.probability(self.match_weight(levels, population), population)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``from_dict`` reads it back)."""
        return {
            "duplicate_rate": self.duplicate_rate,
            "household": list(self.household),
            "trained_on": self.trained_on,
            "comparisons": [
                {"name": c.name, "levels": list(c.levels), "m": list(c.m), "u": list(c.u)}
                for c in self.comparisons
            ],
        }

    def to_json(self) -> str:
        """Serialise to JSON text."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Weights:
        """Rebuild from ``to_dict`` output; ValueError when it does not fit this version."""
        comparisons = tuple(
            ComparisonWeights(
                name=str(c["name"]),
                levels=tuple(str(level) for level in c["levels"]),
                m=tuple(float(p) for p in c["m"]),
                u=tuple(float(p) for p in c["u"]),
            )
            for c in data["comparisons"]
        )
        return cls(
            comparisons,
            float(data["duplicate_rate"]),
            tuple(float(h) for h in data["household"]),
            int(data.get("trained_on", 0)),
        )

    @classmethod
    def from_json(cls, text: str) -> Weights:
        """Parse ``to_json`` output."""
        return cls.from_dict(json.loads(text))


# Sane starting values when there is little data to learn from: m is how often a true
# duplicate shows the level (registration typos are a few percent per field), u how
# often two different people do (two random people share a birth date ~1/25,000).
_DEFAULT_MU: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "family_name": ((0.86, 0.06, 0.02, 0.02, 0.04), (0.002, 0.002, 0.004, 0.03, 0.962)),
    "given_name": (
        (0.84, 0.04, 0.05, 0.02, 0.02, 0.03),
        (0.005, 0.001, 0.003, 0.006, 0.03, 0.955),
    ),
    "birth_date": ((0.90, 0.02, 0.04, 0.01, 0.03), (4e-5, 1e-5, 5e-4, 2e-5, 0.99943)),
    "sex": ((0.97, 0.03), (0.5, 0.5)),
    "contact": ((0.55, 0.2, 0.08, 0.05, 0.12), (5e-5, 5e-4, 2e-5, 0.01, 0.98943)),
    # A duplicate's national ID is wrong more often than a keying rate says: besides a
    # typo (one edit) it may be replaced whole (a relative's number, one from another
    # document); "different" is not rarer than a mistyped digit.
    "national_id": ((0.88, 0.06, 0.06), (1e-7, 1e-6, 0.9999989)),
    "mothers_maiden_name": ((0.85, 0.07, 0.08), (0.002, 0.005, 0.993)),
}

DEFAULT_DUPLICATE_RATE = 0.05  # registries commonly hold 5–10% duplicate records
# A person shares address and phone with ~0.3 same-surname others (spouse, children).
DEFAULT_HOUSEHOLD = (0.3, 0.15, 0.05, 0.0, 0.0)


def default_weights() -> Weights:
    """Hand-set weights for when there is too little data to estimate them."""
    comparisons = tuple(
        ComparisonWeights(name, levels, *_DEFAULT_MU[name]) for name, levels in COMPARISONS
    )
    return Weights(comparisons, DEFAULT_DUPLICATE_RATE, DEFAULT_HOUSEHOLD)


DEFAULT_WEIGHTS = default_weights()


@dataclass(frozen=True, slots=True)
class FieldWeight:
    """One term of a pair's match weight: a comparison at its level (``missing`` when a
    side is empty) and the log2 Bayes factor it added, of which ``tf`` is the
    term-frequency effect (a rare shared value counts more, a common one less). The
    terms ``prior`` (λ for the population), ``household`` (a relation's cap, see
    :mod:`.households`) and ``others`` (the registration's other candidates, see
    :mod:`.competing`) complete the sum: a pair's terms add up to its ``score``."""

    name: str
    level: str
    weight: float
    tf: float = 0.0


@dataclass(frozen=True, slots=True)
class MatchResult:
    """One candidate scored against a registration, for the duplicate review queue.

    ``score`` is the match weight: log2 of the posterior odds that the two are one person
    (the prior's weight plus each comparison's log2(m/u)); ``probability`` is the same as
    0..1. ``agreeing``/``disagreeing`` name the comparisons that pushed the score up or
    down; ``levels`` gives each comparison's level (``missing`` when a side is empty) for
    the console's side-by-side review; ``transposed`` when given and family names were
    found crossed over. ``fields`` are the terms of ``score`` (they add up to it);
    ``relation`` names a household relation that capped it (``twin``...).
    """

    patient_id: str
    score: float
    probability: float
    agreeing: tuple[str, ...]
    disagreeing: tuple[str, ...]
    levels: tuple[tuple[str, str], ...] = ()
    transposed: bool = False
    fields: tuple[FieldWeight, ...] = ()
    relation: str = ""


def _probability(total: float) -> float:
    if total > 60:
        return 1.0
    if total < -60:
        return 0.0
    return 1.0 / (1.0 + math.exp2(-total))


def _term_weights(
    levels: Sequence[int], weights: Weights, population: int, tf: Sequence[float]
) -> list[float]:
    """The rounded terms of a pair's score, prior first, then each comparison's factor
    with its term-frequency adjustment (0.0 when missing): what ``explain`` itemises and
    ``weigh`` adds up, so both reach the same total to the last bit."""
    terms = [round(weights.prior_weight(population), 4)]
    for i, level in enumerate(levels):
        if level == NULL:
            terms.append(0.0)
        else:
            terms.append(round(weights.factor(i, levels, population) + (tf[i] if tf else 0.0), 4))
    return terms


def _capped(terms: list[float], cap: float | None) -> tuple[float, float | None]:
    """The sum of ``terms`` and the household term that brings it down to ``cap`` (None
    when under the cap)."""
    total = sum(terms)
    if cap is None or total <= cap:
        return total, None
    household = round(cap - total, 4)
    return sum([*terms, household]), household


def weigh(
    levels: Sequence[int],
    weights: Weights,
    population: int,
    tf: Sequence[float] = (),
    cap: float | None = None,
) -> float:
    """The match weight ``explain`` gives these levels, without itemising it: most
    candidates of a lookup are scored only to be left out, and the explanation costs
    more than the score."""
    return _capped(_term_weights(levels, weights, population, tf), cap)[0]


def probability(total: float) -> float:
    """A match weight as a probability (``MatchResult.probability``)."""
    return _probability(total)


def explain(
    patient_id: str,
    levels: Sequence[int],
    transposed: bool,
    weights: Weights,
    population: int,
    tf: Sequence[float] = (),
    *,
    relation: str = "",
    cap: float | None = None,
) -> MatchResult:
    """Turn a comparison vector into a ``MatchResult`` under ``weights``, for a registration
    matched against ``population`` stored patients. ``tf`` adds each comparison's
    term-frequency adjustment; ``cap`` limits the score (a household ``relation``)."""
    agreeing: list[str] = []
    disagreeing: list[str] = []
    named: list[tuple[str, str]] = []
    weighed = _term_weights(levels, weights, population, tf)
    terms = [FieldWeight("prior", "", weighed[0])]
    for i, ((name, labels), level) in enumerate(zip(COMPARISONS, levels, strict=True)):
        if level == NULL:
            named.append((name, "missing"))
            terms.append(FieldWeight(name, "missing", 0.0))
            continue
        named.append((name, labels[level]))
        adjustment = tf[i] if tf else 0.0
        factor = weights.factor(i, levels, population) + adjustment
        terms.append(FieldWeight(name, labels[level], weighed[i + 1], round(adjustment, 4)))
        if factor > 0:
            agreeing.append(name)
        elif factor < 0:
            disagreeing.append(name)
    total, household = _capped(weighed, cap)
    if household is not None:
        terms.append(FieldWeight("household", relation, household))
    return MatchResult(
        patient_id=patient_id,
        score=round(total, 4),
        probability=_probability(total),
        agreeing=tuple(agreeing),
        disagreeing=tuple(disagreeing),
        levels=tuple(named),
        transposed=transposed,
        fields=tuple(terms),
        relation=relation,
    )
