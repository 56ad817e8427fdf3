"""Estimate Fellegi–Sunter weights from the data itself, as Splink does.

Rule: pure, deterministic for a given seed (``random.Random(seed)``), no I/O, no clock.

1. ``u``: comparison levels among random pairs of records — almost all non-matches.
2. ``m``: expectation–maximisation (Dempster, Laird and Rubin 1977; Winkler 1988 for
   record linkage) over pairs sharing a blocking key, ``u`` held fixed. A blocked pair
   agrees on its blocking field by construction, which says nothing about matching, so
   each session leaves those comparisons out, and sessions on different rules (national
   ID; birth date; given name + postal code) together estimate every comparison.
3. The duplicate rate: the matches found in the birth-date session divided by the share
   of matches whose birth dates agree exactly (m of that level, from the other
   sessions), i.e. all matching pairs, per record.
4. ``household``: how often people with the same family name share address and phone
   (see ``Weights``), from same-surname pairs that are plainly different people.

Too little data (few records, a session with few pairs or few matches, or an EM result
that is not about people, see ``_plausible``) keeps the default values for what could
not be estimated.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from accord.workflow.identity.compare import (
    COMPARISON_NAMES,
    NULL,
    Features,
    compare,
    distinct_people,
    features,
)
from accord.workflow.identity.fellegi_sunter import DEFAULT_WEIGHTS, ComparisonWeights, Weights
from accord.workflow.identity.index import BLOCKING_RULES, blocking_keys
from accord.workflow.model import Demographics, Patient

MIN_RECORDS = 50
MIN_PAIRS = 100
MIN_MATCHES = 20
_FLOOR = 1e-6  # no level is impossible: keeps log2(m/u) finite
# A duplicate shows any level at least this often, seen in the sample or not (a sex
# typed wrong, say): one unseen error must not outweigh every other field.
_M_FLOOR = 1e-3
_BIRTH = COMPARISON_NAMES.index("birth_date")
_FAMILY = COMPARISON_NAMES.index("family_name")
_GIVEN = COMPARISON_NAMES.index("given_name")
_CONTACT = COMPARISON_NAMES.index("contact")
_NATIONAL_ID = COMPARISON_NAMES.index("national_id")
Vectors = Counter[tuple[int, ...]]


def _rule(name: str) -> Callable[[Features], str]:
    position = BLOCKING_RULES.index(name)
    return lambda f: blocking_keys(f)[position]


# (blocking rule, comparisons it conditions on). Rules whose non-matches look like random
# pairs on the other fields: household members share family name, address and phone, so
# blocks on those would fill the match class with spouses and children; a birth-date
# block holds only the rare twins, a given-name-and-postal-code block the rare namesake
# son, a national-ID block none. ``contact`` is conditioned on by the postal code.
# Even so, a twin or a namesake son agrees on every household field: those fields
# (``_HOUSEHOLD``) never vote in the posterior, their m is read off it.
_HOUSEHOLD = frozenset({_FAMILY, _CONTACT})
# Sessions run cleanest first, and a comparison takes its m from the first session that
# could estimate it.
_SESSIONS: tuple[tuple[str, frozenset[int]], ...] = (
    ("national_id", frozenset({_NATIONAL_ID})),
    ("birth_date", frozenset({_BIRTH})),
    ("given_postal", frozenset({_GIVEN, _CONTACT})),
)


def train(
    records: Iterable[Patient | Demographics],
    *,
    seed: int = 0,
    u_pairs: int = 200_000,
    max_pairs: int = 200_000,
    iterations: int = 50,
    tolerance: float = 1e-5,
) -> Weights:
    """Estimate ``Weights`` from a sample of stored patients (tombstones are skipped)."""
    feats = [
        features(r.demographics if isinstance(r, Patient) else r)
        for r in records
        if not (isinstance(r, Patient) and r.merged_into is not None)
    ]
    if len(feats) < MIN_RECORDS:
        return DEFAULT_WEIGHTS
    rng = random.Random(seed)
    u = estimate_u(feats, rng, u_pairs)
    m_final, rate = _sessions(feats, u, rng, max_pairs, iterations, tolerance)
    m_out = [
        tuple(_normalise([max(p, _M_FLOOR) for p in levels]))
        if levels
        else DEFAULT_WEIGHTS.comparisons[i].m
        for i, levels in enumerate(m_final)
    ]
    comparisons = tuple(
        ComparisonWeights(c.name, c.levels, m_out[i], tuple(u[i]))
        for i, c in enumerate(DEFAULT_WEIGHTS.comparisons)
    )
    household = estimate_household(feats, u, rng, max_pairs)
    return Weights(comparisons, rate, household, trained_on=len(feats))


def estimate_household(
    feats: Sequence[Features], u: Sequence[Sequence[float]], rng: random.Random, max_pairs: int
) -> tuple[float, ...]:
    """``Weights.household`` from pairs with the same family name whose given names and
    birth dates both differ (other people: housemates and strangers). Their share at each
    contact level, less the u of a random pair, is the housemates' excess; scaled by the
    sample's same-surname pairs per record it no longer depends on the sample's size."""
    vectors = blocked_vectors(feats, _family, rng, max_pairs)
    others: Counter[int] = Counter()
    for vector, count in vectors.items():
        if distinct_people(vector) and vector[_CONTACT] != NULL:
            others[vector[_CONTACT]] += count
    total = sum(others.values())
    if total < MIN_PAIRS:
        return DEFAULT_WEIGHTS.household
    same_surname = len(feats) * (u[_FAMILY][0] + u[_FAMILY][1])
    agreeing = len(u[_CONTACT]) - 2  # every level but "same_area" and "different"
    return tuple(
        max(0.0, others[level] / total - u[_CONTACT][level]) * same_surname
        if level < agreeing else 0.0
        for level in range(len(u[_CONTACT]))
    )


def _family(f: Features) -> str:
    return f.family


def _sessions(
    feats: Sequence[Features],
    u: Sequence[Sequence[float]],
    rng: random.Random,
    max_pairs: int,
    iterations: int,
    tolerance: float,
) -> tuple[list[list[float] | None], float]:
    """m per comparison (None: not estimated) and the duplicate rate, from the sessions."""
    m_final: list[list[float] | None] = [None for _ in COMPARISON_NAMES]
    rate = DEFAULT_WEIGHTS.duplicate_rate
    found_by_birth = 0.0
    for rule, excluded in _SESSIONS:
        vectors = blocked_vectors(feats, _rule(rule), rng, max_pairs)
        pairs = sum(vectors.values())
        if pairs < MIN_PAIRS:
            continue
        m, lam = expectation_maximisation(
            vectors, u, excluded, _HOUSEHOLD, iterations=iterations, tolerance=tolerance
        )
        if lam * pairs < MIN_MATCHES or not _plausible(m, u, excluded):
            continue  # no duplicates to learn from here: keep what we have
        for i, levels in enumerate(m):
            if i not in excluded and m_final[i] is None:
                m_final[i] = levels
        if excluded == {_BIRTH}:
            found_by_birth = lam * pairs
    birth = m_final[_BIRTH]
    if found_by_birth and birth is not None:
        # matches seen in birth-date blocks / share of matches agreeing on birth date
        # = all matching pairs; each is one duplicate for one of its two records
        rate = min(1.0, max(1e-4, 2 * found_by_birth / birth[0] / len(feats)))
    return m_final, rate


def _plausible(
    m: Sequence[Sequence[float]], u: Sequence[Sequence[float]], excluded: frozenset[int]
) -> bool:
    """Did EM find people, not households? Among matches, exact agreement must be likelier
    than among non-matches and than plain disagreement, on every comparison it estimated.
    A sample without duplicates fails this: its "match" class is spouses and siblings."""
    return all(
        m[i][0] > u[i][0] and m[i][0] > m[i][-1] for i in range(len(m)) if i not in excluded
    )


def estimate_u(feats: Sequence[Features], rng: random.Random, pairs: int) -> list[list[float]]:
    """Level frequencies among random pairs; unseen levels fall back to the default u."""
    counts = [[0] * len(c.u) for c in DEFAULT_WEIGHTS.comparisons]
    n = len(feats)
    for _ in range(pairs):
        i = rng.randrange(n)
        j = rng.randrange(n - 1)
        j += j >= i  # a different record, uniformly
        levels, _ = compare(feats[i], feats[j])
        for k, level in enumerate(levels):
            if level != NULL:
                counts[k][level] += 1
    u: list[list[float]] = []
    for k, row in enumerate(counts):
        total = sum(row)
        default = DEFAULT_WEIGHTS.comparisons[k].u
        if total < MIN_PAIRS:
            u.append(list(default))
            continue
        seen = [c / total if c else min(default[level], 0.5 / total) for level, c in enumerate(row)]
        u.append(_normalise(seen))
    return u


def blocked_vectors(
    feats: Sequence[Features],
    key: Callable[[Features], str],
    rng: random.Random,
    max_pairs: int,
    max_block: int = 200,
) -> Vectors:
    """Comparison vectors (with counts) of the pairs that share ``key``."""
    blocks: dict[str, list[int]] = {}
    for index, f in enumerate(feats):
        k = key(f)
        if k:
            blocks.setdefault(k, []).append(index)
    keys = sorted(k for k, members in blocks.items() if 1 < len(members) <= max_block)
    rng.shuffle(keys)
    vectors: Vectors = Counter()
    budget = max_pairs
    for k in keys:
        members = blocks[k]
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                vectors[compare(feats[members[a]], feats[members[b]])[0]] += 1
        budget -= len(members) * (len(members) - 1) // 2
        if budget <= 0:
            break
    return vectors


def expectation_maximisation(
    vectors: Vectors,
    u: Sequence[Sequence[float]],
    excluded: frozenset[int],
    held_out: frozenset[int] = frozenset(),
    *,
    iterations: int = 50,
    tolerance: float = 1e-5,
) -> tuple[list[list[float]], float]:
    """m per level and λ for these pairs, ``u`` fixed, ``excluded`` comparisons ignored;
    ``held_out`` ones get their m from the posteriors without shaping them."""
    m = [list(c.m) for c in DEFAULT_WEIGHTS.comparisons]
    lam = 0.2
    total = sum(vectors.values())
    voting = [i for i in range(len(m)) if i not in excluded and i not in held_out]
    used = [i for i in range(len(m)) if i not in excluded]
    for _ in range(iterations):
        sums = [[0.0] * len(row) for row in m]
        matched = 0.0
        for vector, count in vectors.items():
            weight = count * _posterior(vector, m, u, voting, lam)
            matched += weight
            for i in used:
                if vector[i] != NULL:
                    sums[i][vector[i]] += weight
        new_m = [_normalise([max(s, _FLOOR) for s in row]) if sum(row) > 0 else m[i]
                 for i, row in enumerate(sums)]
        change = max(abs(a - b) for i in used for a, b in zip(new_m[i], m[i], strict=True))
        m, lam = new_m, min(max(matched / total, _FLOOR), 1 - _FLOOR)
        if change < tolerance:
            break
    return m, lam


def _posterior(
    vector: tuple[int, ...],
    m: Sequence[Sequence[float]],
    u: Sequence[Sequence[float]],
    used: Sequence[int],
    lam: float,
) -> float:
    log_odds = math.log(lam / (1 - lam))
    for i in used:
        level = vector[i]
        if level != NULL:
            log_odds += math.log(m[i][level] / u[i][level])
    if log_odds > 50:
        return 1.0
    return 1.0 / (1.0 + math.exp(-log_odds))


def _normalise(row: Sequence[float]) -> list[float]:
    total = sum(row)
    return [max(p / total, _FLOOR) for p in row]


# --- reviewers' decisions ---------------------------------------------------------------

DECISION_PSEUDO_PAIRS = 50  # the current m counts as this many merged pairs
MIN_DECISIONS = 20  # decisions before the prior is recalibrated from them
Decision = tuple[str, Sequence[Sequence[Any]]]  # ("same"/"distinct", [(field, level, w...)])


def learn_from_decisions(weights: Weights, decisions: Iterable[Decision]) -> Weights:
    """``weights`` corrected by what reviewers decided about proposed pairs.

    - A merge ("same") is a labelled match: its comparison levels update m, each level's
      probability being a Dirichlet mean with the current m worth
      ``DECISION_PSEUDO_PAIRS`` pairs (Bayesian updating of a multinomial).
    - Together, merges and rejections ("distinct") say how often a proposed pair really
      is one person; the model said so with the probabilities it gave them (their terms'
      sum). The prior's odds are scaled by the ratio of the observed odds to the
      predicted ones (clipped to 10× either way), so a queue full of rejected pairs
      raises the bar and one full of merges lowers it. Rejections do not touch u: they
      are the non-matches that looked most alike, not a sample of all non-matches.
    """
    same: list[Sequence[Sequence[Any]]] = []
    predicted = observed = 0.0
    n = 0
    for decision, terms in decisions:
        if decision not in ("same", "distinct"):
            continue
        n += 1
        total = sum(float(t[2]) for t in terms if len(t) > 2)
        predicted += 1.0 / (1.0 + math.exp2(-max(min(total, 60.0), -60.0)))
        if decision == "same":
            same.append(terms)
            observed += 1.0
    comparisons = tuple(_updated_m(c, same) for c in weights.comparisons)
    rate = weights.duplicate_rate
    if n >= MIN_DECISIONS and 0 < predicted < n:
        ratio = ((observed + 0.5) / (n - observed + 0.5)) / (predicted / (n - predicted))
        rate = min(10.0, max(1e-6, rate * min(10.0, max(0.1, ratio))))
    return Weights(comparisons, rate, weights.household, weights.trained_on)


def _updated_m(c: ComparisonWeights, same: Sequence[Sequence[Sequence[Any]]]
               ) -> ComparisonWeights:
    seen = Counter(str(t[1]) for terms in same for t in terms
                   if t and t[0] == c.name and str(t[1]) in c.levels)
    total = sum(seen.values())
    if not total:
        return c
    m = [(p * DECISION_PSEUDO_PAIRS + seen[level]) / (DECISION_PSEUDO_PAIRS + total)
         for p, level in zip(c.m, c.levels, strict=True)]
    return ComparisonWeights(c.name, c.levels, tuple(_normalise(m)), c.u)
