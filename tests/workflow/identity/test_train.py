"""EM estimation of m/u (``identity.train``) and the Weights value it gives
(``identity.fellegi_sunter``)."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import date, timedelta

import pytest

from accord.workflow.identity.compare import COMPARISON_NAMES, compare, features
from accord.workflow.identity.fellegi_sunter import DEFAULT_WEIGHTS, ComparisonWeights, Weights
from accord.workflow.identity.train import train
from accord.workflow.model import Address, Demographics, Identifier, Patient, PersonName

FAMILIES = tuple(f"{a}{b}" for a in ("Mil", "Har", "Bak", "Ful", "Sch", "Dor", "Kan", "Wes")
                 for b in ("ler", "ton", "ford", "mann", "berg", "ski", "ez", "ard"))
GIVENS = ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
          "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
          "Thomas", "Sarah", "Charles", "Karen", "Daniel", "Nancy", "Matthew", "Lisa",
          "Anthony", "Betty", "Mark", "Sandra", "Donald", "Ashley", "Steven", "Dorothy")


def _typo(text: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(text) - 1)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def synthetic(seed: int = 11, people: int = 1500, duplicates: int = 500) -> list[Patient]:
    """People plus dirty second registrations of some of them (fixed seed); a duplicate
    ``D<j>`` of ``P<i>`` carries ``P<i>`` as a cross-reference identifier."""
    rng = random.Random(seed)
    base = []
    for i in range(people):
        base.append(Patient(f"P{i}", (Identifier(f"P{i}", "H"),), Demographics(
            name=PersonName(family=rng.choice(FAMILIES), given=rng.choice(GIVENS)),
            birth_date=date(1930, 1, 1) + timedelta(days=rng.randrange(30000)),
            sex=rng.choice("MF"),
            address=Address(street=f"{rng.randrange(1, 999)} {rng.choice(FAMILIES)} Road",
                            postal_code=f"{rng.randrange(10000, 99999)}"),
            phone=f"{rng.randrange(10**9, 10**10)}" if rng.random() < 0.8 else "",
            national_id=f"{rng.randrange(10**8, 10**9)}" if rng.random() < 0.5 else "",
        )))
    dupes = []
    for j, original in enumerate(rng.sample(base, duplicates)):
        d = original.demographics
        if rng.random() < 0.3:
            d = replace(d, name=replace(d.name, family=_typo(d.name.family, rng)))
        if rng.random() < 0.2 and d.birth_date is not None:
            d = replace(d, birth_date=d.birth_date + timedelta(days=1))
        if rng.random() < 0.3:
            d = replace(d, phone="", address=Address())
        dupes.append(Patient(f"D{j}", (Identifier(f"D{j}", "H"), original.identifiers[0]), d))
    return base + dupes


@pytest.fixture(scope="module")
def trained() -> Weights:
    return train(synthetic(), seed=3, u_pairs=50_000)


def test_em_gives_m_above_u_for_agreeing_levels(trained: Weights) -> None:
    for c in trained.comparisons:
        if c.name == "mothers_maiden_name":
            continue  # never filled in this set: defaults kept
        assert c.m[0] > c.u[0], c.name
        assert c.m[-1] < c.u[-1], c.name


def test_em_recovers_the_planted_error_rates(trained: Weights) -> None:
    by_name = {c.name: c for c in trained.comparisons}
    family = by_name["family_name"]
    assert 0.55 < family.m[0] < 0.85  # 30% of duplicates got a family-name typo
    birth = by_name["birth_date"]
    assert 0.7 < birth.m[0] < 0.9  # 20% moved by one day
    assert trained.trained_on == 2000


def test_em_duplicate_rate_is_plausible(trained: Weights) -> None:
    # 500 duplicate pairs among 2,000 records: 2 * 500 / 2000 = 0.5 per record
    assert 0.3 < trained.duplicate_rate < 0.8


def test_em_is_converged_and_deterministic(trained: Weights) -> None:
    again = train(synthetic(), seed=3, u_pairs=50_000)
    assert again == trained
    longer = train(synthetic(), seed=3, u_pairs=50_000, iterations=200, tolerance=1e-9)
    for a, b in zip(trained.comparisons, longer.comparisons, strict=True):
        assert max(abs(x - y) for x, y in zip(a.m, b.m, strict=True)) < 1e-3


def test_trained_weights_separate_duplicates_from_strangers(trained: Weights) -> None:
    records = synthetic()
    by_id = {p.id: p for p in records}
    dupe = by_id["D0"]
    original = by_id[dupe.identifiers[1].value]
    stranger = by_id["P1" if original.id != "P1" else "P2"]
    same, _ = compare(features(dupe.demographics), features(original.demographics))
    other, _ = compare(features(dupe.demographics), features(stranger.demographics))
    assert trained.match_weight(same, 2000) > 10 > trained.match_weight(other, 2000)


def test_without_national_ids_the_other_sessions_estimate_everything() -> None:
    records = [
        replace(p, demographics=replace(p.demographics, national_id="")) for p in synthetic()
    ]
    weights = train(records, seed=3, u_pairs=50_000)
    for c in weights.comparisons:
        if c.name not in ("national_id", "mothers_maiden_name"):
            assert c.m[0] > c.u[0], c.name
    assert 0.3 < weights.duplicate_rate < 0.8


def test_too_little_data_keeps_the_defaults() -> None:
    assert train(synthetic(people=20, duplicates=5)) is DEFAULT_WEIGHTS


def test_weights_round_trip_through_json(trained: Weights) -> None:
    text = trained.to_json()
    assert Weights.from_json(text) == trained
    assert json.loads(text)["comparisons"][0]["name"] == COMPARISON_NAMES[0]


def test_weights_reject_a_foreign_model() -> None:
    data = DEFAULT_WEIGHTS.to_dict()
    data["comparisons"] = data["comparisons"][:-1]
    with pytest.raises(ValueError, match="comparisons"):
        Weights.from_dict(data)
    with pytest.raises(ValueError, match="outside"):
        ComparisonWeights("sex", ("exact", "different"), (1.5, 0.1), (0.5, 0.5))


def test_prior_shrinks_with_the_population() -> None:
    assert DEFAULT_WEIGHTS.prior(1_000_000) < DEFAULT_WEIGHTS.prior(1_000)
    assert DEFAULT_WEIGHTS.prior(1) == 0.05
    weight = 20.0
    assert DEFAULT_WEIGHTS.probability(weight, 1_000_000) < DEFAULT_WEIGHTS.probability(
        weight, 1_000
    )


def test_default_weights_are_probabilities_that_sum_to_one() -> None:
    for c in DEFAULT_WEIGHTS.comparisons:
        assert sum(c.m) == pytest.approx(1.0)
        assert sum(c.u) == pytest.approx(1.0)
        assert c.log2_bayes_factors()[0] > 0 > c.log2_bayes_factors()[-1]


def test_a_sample_without_duplicates_keeps_the_default_m() -> None:
    clean = train(synthetic(people=1500, duplicates=0), seed=3, u_pairs=50_000)
    for ours, default in zip(clean.comparisons, DEFAULT_WEIGHTS.comparisons, strict=True):
        assert ours.m == default.m
    assert clean.duplicate_rate == DEFAULT_WEIGHTS.duplicate_rate
    assert clean.comparisons[0].u != DEFAULT_WEIGHTS.comparisons[0].u  # u is still learned


def _household_pair(weights: Weights, population: int) -> float:
    """Probability that a wife is her husband's duplicate: same family name, address and
    phone, given name different, her birth date not given."""
    levels = [-1] * len(COMPARISON_NAMES)
    levels[COMPARISON_NAMES.index("family_name")] = 0
    levels[COMPARISON_NAMES.index("given_name")] = 5
    levels[COMPARISON_NAMES.index("contact")] = 0
    return weights.posterior(levels, population)


def test_household_correction_discounts_a_shared_address_within_a_family() -> None:
    without = replace(DEFAULT_WEIGHTS, household=(0.0,) * 5)
    assert _household_pair(without, 1_000) > 0.5  # independence: a likely duplicate
    assert _household_pair(DEFAULT_WEIGHTS, 1_000) < 0.01
    # with the correction the answer hardly depends on the population's size
    small = _household_pair(DEFAULT_WEIGHTS, 1_000)
    large = _household_pair(DEFAULT_WEIGHTS, 1_000_000)
    assert abs(small - large) < 0.01


def test_a_family_name_a_typo_away_gets_no_household_correction() -> None:
    """A housemate shares the family name as written: one a typo away at the same home
    is a registration's slip, so the shared home keeps its full weight."""
    levels = [-1] * len(COMPARISON_NAMES)
    levels[COMPARISON_NAMES.index("contact")] = 0
    levels[COMPARISON_NAMES.index("family_name")] = 0
    assert DEFAULT_WEIGHTS.housemates(levels, 100_000) > 0
    levels[COMPARISON_NAMES.index("family_name")] = 1
    assert DEFAULT_WEIGHTS.housemates(levels, 100_000) == 0.0
    contact = COMPARISON_NAMES.index("contact")
    assert DEFAULT_WEIGHTS.factor(contact, levels, 100_000) == DEFAULT_WEIGHTS.table[contact][0]


def test_household_is_estimated_from_same_surname_housemates() -> None:
    records = synthetic()
    rng = random.Random(5)
    spouses = []
    for k, p in enumerate(records[:400]):
        d = p.demographics
        spouses.append(Patient(f"S{k}", (Identifier(f"S{k}", "H"),), replace(
            d,
            name=replace(d.name, given=rng.choice(("Zoe", "Yves", "Xena", "Wanda"))),
            birth_date=date(1925, 1, 1) + timedelta(days=rng.randrange(30000)),
        )))
    with_spouses = train(records + spouses, seed=3, u_pairs=50_000)
    alone = train(records, seed=3, u_pairs=50_000)
    assert with_spouses.household[0] > alone.household[0]
    assert with_spouses.household[0] > 0.05


def test_decisions_feed_back_into_the_weights() -> None:
    from accord.workflow.identity.fellegi_sunter import DEFAULT_WEIGHTS
    from accord.workflow.identity.train import learn_from_decisions

    sure = [("prior", "", -10.0, 0.0), ("family_name", "exact", 8.0, 0.0),
            ("birth_date", "day_month_swap", 6.0, 0.0)]
    merged = [("same", sure)] * 30
    rejected = [("distinct", sure)] * 30
    after_merges = learn_from_decisions(DEFAULT_WEIGHTS, merged)
    (birth,) = [c for c in after_merges.comparisons if c.name == "birth_date"]
    (before,) = [c for c in DEFAULT_WEIGHTS.comparisons if c.name == "birth_date"]
    assert birth.m[1] > before.m[1] and birth.u == before.u  # swaps seen among merges
    assert after_merges.duplicate_rate > DEFAULT_WEIGHTS.duplicate_rate
    after_rejections = learn_from_decisions(DEFAULT_WEIGHTS, rejected)
    assert after_rejections.comparisons == DEFAULT_WEIGHTS.comparisons
    assert after_rejections.duplicate_rate < DEFAULT_WEIGHTS.duplicate_rate
    assert learn_from_decisions(DEFAULT_WEIGHTS, []) == DEFAULT_WEIGHTS
