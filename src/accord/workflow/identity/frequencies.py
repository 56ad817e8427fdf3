"""Term frequencies: how many stored patients hold a value, and what that does to a weight.

Rule: pure, no I/O. The store keeps a count per *term* (a family name, a given name, a
birth date, a phone, a postal code, a city) and per blocking key, updated in the
transaction of every patient write (:func:`count_changes` says what changes), so the
counts are always those of the live patients. Two uses:

- Term-frequency adjustment (Fellegi and Sunter 1969 §4; Winkler 1989; splink's
  ``term_frequency_adjustments``): an exact agreement on a value that a share ``s`` of
  the population holds has u = s for that value, not the field's average u, so agreeing
  on KOWALCZYK counts for more than agreeing on SMITH. The share is smoothed towards
  the field's u by ``PSEUDO_COUNT`` pseudo-patients, so a small store (few counts) keeps
  the average weights, and the boost is capped (``MAX_BOOST``): a rare name is still
  only a name.
- A phone held by more patients than a household (``SHARED_PHONE``) is nobody's own (a
  default or the facility's number that was not configured): it is read as missing.

The counts also bound blocking (:func:`.index.lookup_plan`): a key whose posting list
is long is not used to fetch candidates.

And they estimate the prior and the m probabilities online, as EM does in batch
(Dempster, Laird and Rubin 1977; splink's unsupervised training), ``u`` held fixed:
each new registration adds one to ``REGISTRATIONS`` and the sum of its candidates'
match probabilities (the E step: how many stored patients it is expected to be) to
``EXPECTED``, and each candidate's probability to the count of every comparison level
the pair shows (``m_key``; pairs a household relation capped are left out: they are
probably two people). The next registration is scored with their ratios (the M step):
the duplicate rate smoothed towards the model's by ``RATE_PSEUDO_COUNT`` registrations,
each comparison's m towards the model's by ``M_PSEUDO_COUNT`` matches. A registry with
many duplicates (a merged legacy system, a walk-in clinic) then believes a close pair
sooner than one with few, and one whose clerks often leave a field out or mistype it
learns that too, without a setting.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from accord.workflow.identity.compare import (
    COMPARISON_NAMES,
    COMPARISONS,
    Features,
    compare_family,
    compare_given,
    phonetic,
)
from accord.workflow.identity.fellegi_sunter import Weights
from accord.workflow.identity.index import home_key, stored_keys

POPULATION = "*"  # the key counting live patients
REGISTRATIONS = "~registrations"  # new patients matched so far
EXPECTED = "~expected"  # their expected matches, in thousandths (counts are integers)
SPARSE_CLASSES = 3  # registrations missing none, one, two or more core fields (``sparseness``)
RATE_PSEUDO_COUNT = 100  # registrations' worth of prior belief in the model's rate
MAX_RATE = 10.0  # the largest duplicate rate ``Weights`` accepts
M_PSEUDO_COUNT = 50  # matches' worth of prior belief in the model's m


def m_key(name: str, level: str) -> str:
    """The count of a comparison level among the matches seen (in thousandths)."""
    return f"~m:{name}:{level}"


def registrations_key(sparse: int) -> str:
    """The count of new patients matched so far with ``sparse`` core fields missing."""
    return f"{REGISTRATIONS}:{sparse}"


def expected_key(sparse: int) -> str:
    """Their expected matches, in thousandths (as ``EXPECTED``)."""
    return f"{EXPECTED}:{sparse}"


# ``m_key`` of each comparison's levels, in ``COMPARISONS`` order
M_KEYS: tuple[tuple[str, ...], ...] = tuple(
    tuple(m_key(name, level) for level in levels) for name, levels in COMPARISONS)
_SPARSE_KEYS: tuple[str, ...] = tuple(
    key for n in range(SPARSE_CLASSES) for key in (registrations_key(n), expected_key(n)))
LEARNED_KEYS: tuple[str, ...] = (REGISTRATIONS, EXPECTED, *_SPARSE_KEYS,
                                 *(k for keys in M_KEYS for k in keys))
PSEUDO_COUNT = 1000  # patients' worth of prior belief in the field's average u
MAX_BOOST = 5.0  # bits a rare value may add over the field's average agreement weight
SHARED_PHONE = 6  # patients sharing one phone beyond which it is no one's own
_FAMILY = COMPARISON_NAMES.index("family_name")
_GIVEN = COMPARISON_NAMES.index("given_name")
_BIRTH = COMPARISON_NAMES.index("birth_date")
_CONTACT = COMPARISON_NAMES.index("contact")
_ADDRESS_AND_PHONE, _ADDRESS, _PHONE = 0, 1, 2  # contact levels: the address agrees...
_SAME_AREA = 3  # contact level: same postal code or city only
_DIFFERENT_AREA = 4  # contact level: different


def sparseness(f: Features) -> int:
    """How many of a registration's core demographics (family and given name, birth
    date, address, sex) are missing, ``SPARSE_CLASSES - 1`` at most. A registration
    with fields left out is often a hurried one (an emergency, an unknown patient
    named later, a walk-in registered again): how often such registrations are
    duplicates is learned per class, as the duplicate rate is (module doc)."""
    address = f.street or f.postal or f.city
    missing = sum(1 for value in (f.family, f.given, f.birth, address, f.sex) if not value)
    return min(missing, SPARSE_CLASSES - 1)


def term_keys(f: Features) -> tuple[str, ...]:
    """The counted terms of one patient (its values whose frequency adjusts weights)."""
    terms = (("family", f.family), ("given", f.given), ("birth", f.birth),
             ("phone", f.phone), ("postal", f.postal), ("city", f.city))
    return tuple(f"{name}:{value}" for name, value in terms if value)


def role_keys(f: Features) -> tuple[str, ...]:
    """The counts that say whether a registration's names are given or family names
    when read in the other field (``crossed_by_role``): its given name counted as a
    family name, its family name as a given name. Asked, never counted."""
    return tuple(key for key, value in (("family", f.given), ("given", f.family)) if value
                 for key in (f"{key}:{value}",))


def crossed_by_role(query: Features, stored: Features, freqs: Frequencies
                    ) -> tuple[int, int] | None:
    """Family and given levels of a pair whose names both disagree as written, read
    crossed over when one name is shared across the fields and the store counts it
    more often as a given name than as a family name: the given name typed in the
    family field with a married name beside it (``BROWN ELIZABETH`` / ``ELIZABETH
    JOHNSON``). A shared family name is left alone: twins registered crossed over
    share that (``ROGERS ALEXA`` / ``TRACY ROGERS``). None: no such reading."""
    for shared_q, shared_s, other_q, other_s in (
            (query.given, stored.family, query.family, stored.given),
            (query.family, stored.given, query.given, stored.family)):
        if not shared_q or not shared_s or not other_q or not other_s:
            continue
        given = compare_given(shared_q, shared_s, phonetic(shared_q), phonetic(shared_s))
        if given > 2:
            continue
        if freqs.count(f"given:{shared_q}") <= freqs.count(f"family:{shared_q}"):
            return None
        return compare_family(other_q, other_s, phonetic(other_q), phonetic(other_s)), given
    return None


def count_keys(f: Features) -> tuple[str, ...]:
    """Every key counted for one live patient: its terms and its stored blocking keys."""
    return term_keys(f) + stored_keys(f)


@dataclass(frozen=True, slots=True)
class Frequencies:
    """Counts of the terms (and blocking keys) a lookup asked about, and the number of
    live patients. A key not in ``counts`` has count 0."""

    population: int = 0
    counts: Mapping[str, int] = field(default_factory=dict)

    def count(self, key: str) -> int:
        return max(0, self.counts.get(key, 0))

    def share(self, key: str, average: float) -> float:
        """The smoothed share of patients holding ``key``, counting the registration."""
        held = self.count(key) + 1
        return (held + PSEUDO_COUNT * average) / (self.population + 1 + PSEUDO_COUNT)

    def duplicate_rate(self, prior: float, sparse: int | None = None) -> float:
        """The duplicate rate learned from the registrations matched so far (module
        doc), ``prior`` weighing ``RATE_PSEUDO_COUNT`` registrations. With ``sparse``,
        the rate of the registrations missing that many core fields (``sparseness``),
        the rate of all weighing ``RATE_PSEUDO_COUNT`` of them."""
        rate = self._rate(REGISTRATIONS, EXPECTED, prior)
        if sparse is not None:
            rate = self._rate(registrations_key(sparse), expected_key(sparse), rate)
        return rate

    def _rate(self, registrations: str, expected: str, prior: float) -> float:
        seen = self.count(registrations)
        matches = self.count(expected) / 1000
        rate = (matches + RATE_PSEUDO_COUNT * prior) / (seen + RATE_PSEUDO_COUNT)
        return min(MAX_RATE, max(rate, 1e-6))

    def shared_phone(self, phone: str) -> bool:
        """More patients hold this phone than a household could."""
        return bool(phone) and self.count(f"phone:{phone}") >= SHARED_PHONE


NO_FREQUENCIES = Frequencies()


def count_changes(before: Iterable[str], after: Iterable[str]) -> dict[str, int]:
    """How the counts change when a patient's counted keys go from ``before`` to
    ``after`` (each empty for a patient that did not / no longer counts: new, merged
    away). The population key is included; zero changes are left out."""
    old, new = list(before), list(after)
    delta: Counter[str] = Counter(new)
    delta.subtract(old)
    if bool(old) != bool(new):
        delta[POPULATION] += 1 if new else -1
    return {k: v for k, v in sorted(delta.items()) if v}


def rate_changes(expected: float, levels: Mapping[str, float] | None = None,
                 sparse: int | None = None) -> dict[str, int]:
    """The count changes of one new registration whose candidates add up to ``expected``
    matches (their match probabilities summed) and, per ``m_key``, to ``levels``;
    with ``sparse``, its class's counts too (``sparseness``)."""
    changes = {key: round(p * 1000) for key, p in (levels or {}).items()}
    changes.update({EXPECTED: round(expected * 1000), REGISTRATIONS: 1})
    if sparse is not None:
        changes.update({expected_key(sparse): round(expected * 1000),
                        registrations_key(sparse): 1})
    return {key: n for key, n in changes.items() if n or key.startswith(REGISTRATIONS)}


def learned_m(weights: Weights, freqs: Frequencies) -> tuple[tuple[float, ...], ...]:
    """Per comparison, m learned from the matches seen (module doc), level by level."""
    counts = freqs.counts
    out = []
    for c, keys in zip(weights.comparisons, M_KEYS, strict=True):
        seen = [max(0, counts.get(key, 0)) / 1000 for key in keys]
        total = sum(seen) + M_PSEUDO_COUNT
        out.append(tuple(max((n + M_PSEUDO_COUNT * m) / total, 1e-6)
                         for n, m in zip(seen, c.m, strict=True)))
    return tuple(out)


def _adjust(weight: float, change: float) -> float:
    """``change`` to an agreement's weight, at most ``MAX_BOOST``, and never turning an
    agreement into evidence against."""
    return max(-weight, min(change, MAX_BOOST)) if weight > 0 else min(change, MAX_BOOST)


def _phone_change(query: Features, stored: Features, levels: Sequence[int], weights: Weights,
                  freqs: Frequencies, population: int) -> float:
    """The term-frequency change of a phone agreeing without the address (a move, the
    number kept): like a home (``_home_change``), a number is held by a household, so
    its count gives its share of the registry; never below the model's weight."""
    if not query.phone or query.phone != stored.phone:
        return 0.0
    contact = weights.comparisons[_CONTACT]
    u = contact.u[_PHONE]
    average = contact.u[_ADDRESS_AND_PHONE] + u
    housemates = weights.housemates(levels, population)
    ratio = freqs.share(f"phone:{query.phone}", average) / average
    return max(0.0, math.log2((u + housemates) / (u * ratio + housemates)))


def _home_change(query: Features, stored: Features, levels: Sequence[int], weights: Weights,
                 freqs: Frequencies, population: int) -> float:
    """The term-frequency change of an address agreement (with the phone or without) on
    one home (the same house number and street). Unlike a name or a birth date, a home
    is held by a household, however large the registry: the chance that a stranger
    shares it is the few people living there over N, not a constant, and the model's u
    (an average for some registry size) understates the agreement in a large registry.
    The home's count gives its share; the address-and-phone level keeps its ratio to
    the address-only one (the phone's agreement among strangers at one home). The
    household correction (same family name) is added to both u's: housemates stay as
    likely as before. A home counted more often than the average only keeps the
    model's weight: its count cannot tell many people living there (a care home) from
    one person registered many times (a registry with many duplicates)."""
    key = home_key(query)
    if not key or key != home_key(stored):
        return 0.0
    contact = weights.comparisons[_CONTACT]
    level = levels[_CONTACT]
    average = contact.u[_ADDRESS_AND_PHONE] + contact.u[_ADDRESS]
    u = contact.u[level]
    housemates = weights.housemates(levels, population)
    ratio = freqs.share(key, average) / average
    return max(0.0, math.log2((u + housemates) / (u * ratio + housemates)))


def adjustments(
    query: Features, stored: Features, levels: Sequence[int], weights: Weights,
    freqs: Frequencies, population: int, transposed: bool = False,
) -> tuple[float, ...]:
    """Per comparison, the term-frequency change to its weight (0 where none applies):
    exact agreement on the family name, the given name or the birth date, an address
    agreeing on one home, and a shared postal code or city as the only contact. An
    agreement never turns into evidence against (it falls to 0 at most). A pair read
    with its names crossed over (``transposed``) has each agreeing name counted as
    the commoner of a family and a given name (``_crossed_change``)."""
    if not freqs.population:
        return tuple(0.0 for _ in levels)
    out = [0.0 for _ in levels]
    crossed = _crossed_values(query, stored) if transposed else []
    for i, value, key in ((_FAMILY, query.family, "family"), (_GIVEN, query.given, "given"),
                          (_BIRTH, query.birth, "birth")):
        if levels[i] != 0:
            continue
        if i != _BIRTH and transposed:
            if crossed:
                out[i] = _adjust(weights.factor(i, levels, population),
                                 _crossed_change(crossed.pop(0), weights, freqs))
        elif value:
            u = weights.comparisons[i].u[0]
            out[i] = _adjust(weights.factor(i, levels, population),
                             math.log2(u / freqs.share(f"{key}:{value}", u)))
    contact = levels[_CONTACT]
    if contact in (_ADDRESS_AND_PHONE, _ADDRESS):
        out[_CONTACT] = _adjust(weights.factor(_CONTACT, levels, population),
                                _home_change(query, stored, levels, weights, freqs,
                                             population))
    elif contact == _PHONE:
        out[_CONTACT] = _adjust(weights.factor(_CONTACT, levels, population),
                                _phone_change(query, stored, levels, weights, freqs,
                                              population))
    elif contact == _SAME_AREA and (area := _area_key(query, stored)):
        out[_CONTACT] = _area_change(area, levels, weights, freqs, population)
    return tuple(out)


def _crossed_values(query: Features, stored: Features) -> list[str]:
    """The registration's names that the stored record holds too, in either field: the
    values a pair read crossed over agrees on exactly."""
    held = (stored.family, stored.given)
    return list(dict.fromkeys(v for v in (query.family, query.given) if v and v in held))


def _crossed_change(value: str, weights: Weights, freqs: Frequencies) -> float:
    """The term-frequency change of an exact agreement on ``value`` in a pair read crossed
    over: either record may hold it in the wrong field, so it is not known whether it is
    a family or a given name, and it counts as the commoner of the two (a common given
    name typed in the family field is not a rare family name: ``ROBERT RODRIGUEZ`` /
    ``RODRIGUEZ ROBERT`` is no stronger than ``RODRIGUEZ ROBERT`` twice)."""
    return min(math.log2(u / freqs.share(f"{key}:{value}", u))
               for i, key in ((_FAMILY, "family"), (_GIVEN, "given"))
               for u in (weights.comparisons[i].u[0],))


def _area_change(area: str, levels: Sequence[int], weights: Weights, freqs: Frequencies,
                 population: int) -> float:
    """The term-frequency change of a same-area agreement (another home, the same postal
    code or city). Unlike an agreement on a value, it may turn the level into evidence
    against: a duplicate's home differs only when the person moved, so m is small, and
    an area holding much of the registry (a town and its suburbs) is shared by about as
    many strangers as a different area is; it never counts for less than a different
    area does."""
    u = weights.comparisons[_CONTACT].u[_SAME_AREA]
    weight = weights.factor(_CONTACT, levels, population)
    different = weights.table[_CONTACT][_DIFFERENT_AREA]
    return max(different - weight, min(math.log2(u / freqs.share(area, u)), MAX_BOOST))


def _area_key(query: Features, stored: Features) -> str:
    """The counted term a same-area agreement is on: the postal code when the two share
    it, else the city (``compare_locality``'s order). A city may hold a large part of
    a registry's catchment (a town and its suburbs), a postal code a small one: the
    same level says much less on a large city, and its count says how much."""
    if query.postal and query.postal == stored.postal:
        return f"postal:{query.postal}"
    if query.city and query.city == stored.city:
        return f"city:{query.city}"
    return ""


def without_shared(f: Features, freqs: Frequencies, own_phones: Iterable[str] = ()) -> Features:
    """``f`` with its phone read as missing when it is shared beyond a household or is one
    of the facility's own numbers (``own_phones``: last seven digits)."""
    if f.phone and (f.phone in set(own_phones) or freqs.shared_phone(f.phone)):
        return f._replace(phone="")
    return f

