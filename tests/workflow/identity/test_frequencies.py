"""Term frequencies: rare agreements count more, common ones less, shared phones nothing."""

from __future__ import annotations

from datetime import date

import pytest

from accord.workflow.identity.compare import features
from accord.workflow.identity.fellegi_sunter import DEFAULT_WEIGHTS
from accord.workflow.identity.frequencies import (
    EXPECTED,
    MAX_BOOST,
    POPULATION,
    REGISTRATIONS,
    SHARED_PHONE,
    Frequencies,
    count_changes,
    count_keys,
    crossed_by_role,
    expected_key,
    learned_m,
    m_key,
    rate_changes,
    registrations_key,
    role_keys,
    sparseness,
    term_keys,
    without_shared,
)
from accord.workflow.identity.index import home_key
from accord.workflow.identity.matcher import Candidates, assess, propose, weights_for
from accord.workflow.model import Address, Demographics, PersonName


def _person(family: str, given: str = "John", phone: str = "") -> Demographics:
    return Demographics(PersonName(family, given), date(1970, 5, 17), "M",
                        Address(street="3 Elm Road", postal_code="02134"), phone=phone)


def _freqs(**families: int) -> Frequencies:
    counts = {f"family:{name}": n for name, n in families.items()}
    counts[POPULATION] = 200_000
    return Frequencies(200_000, counts)


def _score(family: str, freqs: Frequencies) -> tuple[float, float]:
    d = _person(family)
    (result,) = propose(d, Candidates((("p", features(d)),), freqs), threshold=0.0)
    (term,) = [t for t in result.fields if t.name == "family_name"]
    return term.weight, term.tf


def test_a_rare_family_name_counts_more_than_a_common_one() -> None:
    freqs = _freqs(KOWALCZYK=1, SMITH=4_000)
    rare, rare_tf = _score("Kowalczyk", freqs)
    common, common_tf = _score("Smith", freqs)
    assert rare > common and rare_tf > 0 > common_tf
    assert 0 < rare_tf <= MAX_BOOST and common >= 0  # an agreement never counts against


def test_no_counts_no_adjustment() -> None:
    assert _score("Smith", Frequencies()) [1] == 0.0


def test_a_phone_shared_beyond_a_household_is_read_as_missing() -> None:
    f = features(_person("Smith", phone="617-555-0199"))
    shared = Frequencies(1000, {f"phone:{f.phone}": SHARED_PHONE})
    assert without_shared(f, shared).phone == ""
    assert without_shared(f, Frequencies(1000, {f"phone:{f.phone}": 2})).phone == f.phone
    assert without_shared(f, Frequencies(), own_phones=("5550199",)).phone == ""


def test_count_changes_follow_a_patients_keys() -> None:
    old = count_keys(features(_person("Smith")))
    new = count_keys(features(_person("Smyth")))
    assert count_changes((), old)[POPULATION] == 1
    assert count_changes(old, ())[POPULATION] == -1
    moved = count_changes(old, new)
    assert POPULATION not in moved and moved["family:SMITH"] == -1 and moved["family:SMYTH"] == 1
    assert "family:SMITH" in term_keys(features(_person("Smith")))


@pytest.mark.parametrize("count", [0, 1, 50])
def test_share_is_smoothed_towards_the_average(count: int) -> None:
    freqs = Frequencies(10, {"family:X": count})
    assert 0 < freqs.share("family:X", 0.002) < 1


def test_the_duplicate_rate_is_the_prior_until_registrations_are_counted() -> None:
    assert Frequencies(1000, {}).duplicate_rate(0.05) == pytest.approx(0.05)
    counted = count_changes((), ())
    counted.update(rate_changes(0.9))
    assert counted == {EXPECTED: 900, REGISTRATIONS: 1}


@pytest.mark.parametrize("expected, seen", [(30.0, 100), (3000.0, 10_000), (0.0, 10_000)])
def test_the_duplicate_rate_moves_from_the_prior_to_the_registrations(
        expected: float, seen: int) -> None:
    freqs = Frequencies(seen, {EXPECTED: round(expected * 1000), REGISTRATIONS: seen})
    rate = freqs.duplicate_rate(0.05)
    observed = expected / seen
    assert min(0.05, observed) <= rate <= max(0.05, observed)
    assert abs(rate - observed) < abs(0.05 - observed) or observed == 0.05


def test_a_registry_with_many_duplicates_believes_a_close_pair_sooner() -> None:
    d = _person("Smith")
    stored = features(Demographics(PersonName("Smith", "Jon"), None, "",
                                   Address(postal_code="02134")))
    few = Frequencies(10_000, {POPULATION: 10_000, REGISTRATIONS: 10_000, EXPECTED: 100_000})
    many = Frequencies(10_000, {POPULATION: 10_000, REGISTRATIONS: 10_000,
                                EXPECTED: 10_000_000})
    low = assess(d, Candidates((("p", stored),), few), threshold=0.0)
    high = assess(d, Candidates((("p", stored),), many), threshold=0.0)
    assert high.proposed[0].score > low.proposed[0].score
    assert high.expected == pytest.approx(high.proposed[0].probability)
    assert sum(t.weight for t in high.proposed[0].fields) == pytest.approx(
        high.proposed[0].score, abs=1e-3)


def test_m_is_learned_from_the_matches_seen() -> None:
    weights = DEFAULT_WEIGHTS
    sex = weights.comparisons[3]
    assert learned_m(weights, Frequencies()) == tuple(c.m for c in weights.comparisons)
    # 950 matches seen, of which 600 with the sex "different" (clerks type U for it)
    seen = Frequencies(10_000, {REGISTRATIONS: 10_000, m_key("sex", "exact"): 350_000,
                                m_key("sex", "different"): 600_000})
    learned = learned_m(weights, seen)[3]
    assert learned[1] > 0.5 > sex.m[1] and sum(learned) == pytest.approx(1.0)
    assert weights_for(weights, seen).comparisons[3].m == pytest.approx(learned, rel=1e-2)


def test_an_assessment_counts_the_levels_of_its_candidates() -> None:
    d = _person("Smith")
    assessed = assess(d, Candidates((("p", features(d)),), Frequencies()), threshold=0.0)
    changes = assessed.changes()
    assert changes[REGISTRATIONS] == 1
    assert changes[m_key("family_name", "exact")] == changes[EXPECTED] > 900


def test_a_shared_given_name_is_read_crossed_over_a_shared_family_name_is_not() -> None:
    stored = features(_person("Brown", "Elizabeth"))
    query = features(_person("Elizabeth", "Johnson"))  # crossed over, and married since
    counts = Frequencies(10_000, {"given:ELIZABETH": 60, "family:ELIZABETH": 1,
                                  "given:JOHNSON": 2, "family:JOHNSON": 90})
    assert crossed_by_role(query, stored, counts) == (4, 0)  # family differs, given exact
    assert crossed_by_role(query, stored, Frequencies()) is None  # nothing counted yet
    twin = features(_person("Rogers", "Alexa"))
    sister = features(_person("Tracy", "Rogers"))  # the twin sister, crossed over
    counts = Frequencies(10_000, {"family:ROGERS": 40, "given:TRACY": 25})
    assert crossed_by_role(sister, twin, counts) is None
    assert set(role_keys(query)) == {"family:JOHNSON", "given:ELIZABETH"}


def _contact(query: Demographics, stored: Demographics, freqs: Frequencies) -> tuple[float, float]:
    """The contact term (weight, tf) of a pair, and a check that the terms add up."""
    (result,) = propose(query, Candidates((("p", features(stored)),), freqs), threshold=0.0)
    assert sum(t.weight for t in result.fields) == pytest.approx(result.score, abs=1e-3)
    (term,) = [t for t in result.fields if t.name == "contact"]
    return term.weight, term.tf


def _at(family: str, given: str, born: date, street: str) -> Demographics:
    return Demographics(PersonName(family, given), born, "M",
                        Address(street=street, postal_code="02134"))


def test_a_home_counts_for_more_in_a_large_registry_never_less_when_crowded() -> None:
    query = _at("Smith", "John", date(1970, 5, 17), "3 Elm Road")
    moved = _at("Jones", "John", date(1970, 5, 17), "3 Elm Road")  # a married name
    home = home_key(features(query))
    assert home == "7:3 ELM ROAD"
    small = Frequencies(20_000, {home: 2})
    large = Frequencies(500_000, {home: 2})
    crowded = Frequencies(20_000, {home: 400})  # a care home, or one person many times
    w_small, tf_small = _contact(query, moved, small)
    w_large, tf_large = _contact(query, moved, large)
    w_crowded, tf_crowded = _contact(query, moved, crowded)
    assert w_large > w_small > w_crowded > 0
    assert tf_large > tf_small > 0 == tf_crowded and tf_large <= MAX_BOOST
    assert _contact(query, moved, Frequencies())[1] == 0.0  # nothing counted


def test_a_home_adjusts_only_an_address_on_the_same_home() -> None:
    query = _at("Smith", "John", date(1970, 5, 17), "3 Elm Road")
    typo = _at("Jones", "John", date(1970, 5, 17), "3 Elm Raod")  # address level, another key
    freqs = Frequencies(500_000, {home_key(features(query)): 2})
    assert _contact(query, typo, freqs)[1] == 0.0


def test_housemates_of_one_family_gain_less_from_a_rare_home() -> None:
    """The household correction stays: sharing a home with a same-surname person is what
    housemates do, whatever the home's count."""
    query = _at("Smith", "John", date(1970, 5, 17), "3 Elm Road")
    kin = _at("Smith", "John", date(1971, 5, 17), "3 Elm Road")
    other = _at("Jones", "John", date(1971, 5, 17), "3 Elm Road")
    freqs = Frequencies(500_000, {home_key(features(query)): 2})
    kin_weight, kin_tf = _contact(query, kin, freqs)
    other_weight, other_tf = _contact(query, other, freqs)
    assert 0 < kin_tf < other_tf and kin_weight < other_weight


def test_a_kept_phone_counts_for_more_in_a_large_registry() -> None:
    query = Demographics(PersonName("Smith", "John"), date(1970, 5, 17), "M",
                         Address(street="3 Elm Road", postal_code="02134"), phone="6175550199")
    moved = Demographics(PersonName("Jones", "John"), date(1970, 5, 17), "M",
                         Address(street="9 Oak Road", postal_code="60601"), phone="6175550199")
    phone = f"phone:{features(query).phone}"
    w_small, tf_small = _contact(query, moved, Frequencies(20_000, {phone: 1}))
    w_large, tf_large = _contact(query, moved, Frequencies(500_000, {phone: 1}))
    assert w_large > w_small > 0 and tf_large > tf_small >= 0
    assert _contact(query, moved, Frequencies(20_000, {phone: 5}))[1] == 0.0  # never less


def _in(city: str, postal: str, street: str, given: str = "John") -> Demographics:
    return Demographics(PersonName("Smith", given), date(1970, 5, 17), "M",
                        Address(street=street, city=city, postal_code=postal))


def test_a_shared_city_says_less_the_more_of_the_registry_lives_there() -> None:
    query = _in("Springfield", "62701", "3 Elm Road")
    moved = _in("Springfield", "62704", "9 Oak Road")  # same city, another postal code
    assert "city:SPRINGFIELD" in term_keys(features(query))
    small = Frequencies(200_000, {"city:SPRINGFIELD": 20, "postal:62701": 90_000})
    large = Frequencies(200_000, {"city:SPRINGFIELD": 90_000, "postal:62701": 20})
    w_small, tf_small = _contact(query, moved, small)
    w_large, tf_large = _contact(query, moved, large)
    assert tf_small > 0 > tf_large and w_small > 0  # the postal count is not asked
    # another home in a town where most live says about as little as another town
    w_far, _ = _contact(query, _in("Athens", "62601", "9 Oak Road"), large)
    assert 0 > w_large >= w_far


def test_a_shared_postal_code_is_weighed_by_its_own_count() -> None:
    query = _in("Springfield", "62701", "3 Elm Road")
    neighbour = _in("Springfield", "62701", "9 Oak Road")
    freqs = Frequencies(200_000, {"city:SPRINGFIELD": 90_000, "postal:62701": 20})
    assert _contact(query, neighbour, freqs)[1] > 0


def test_sparseness_counts_the_core_fields_left_out() -> None:
    full = _person("Smith")
    assert sparseness(features(full)) == 0
    no_birth = Demographics(full.name, None, "M", full.address)
    assert sparseness(features(no_birth)) == 1
    assert sparseness(features(Demographics(PersonName("Smith", ""), None, "U"))) == 2
    assert sparseness(features(Demographics())) == 2  # two or more: one class


def test_a_sparse_class_learns_its_own_duplicate_rate_from_the_rate_of_all() -> None:
    counts = {REGISTRATIONS: 10_000, EXPECTED: 1_000_000,  # 0.1 of all registrations
              registrations_key(2): 500, expected_key(2): 450_000}  # 0.9 of the sparse
    freqs = Frequencies(10_000, counts)
    overall = freqs.duplicate_rate(0.05)
    assert freqs.duplicate_rate(0.05, 0) == pytest.approx(overall)  # none counted: all's
    sparse = freqs.duplicate_rate(0.05, 2)
    assert overall < sparse < 0.9 and 0.9 - sparse < sparse - overall


def test_a_sparse_registration_is_counted_in_its_class_and_believed_sooner() -> None:
    stored = features(_person("Smith"))
    sparse = Demographics(PersonName("Smith", "John"), None, "",
                          Address(street="3 Elm Road", postal_code="02134"))
    assessed = assess(sparse, Candidates((("p", stored),), Frequencies()), threshold=0.0)
    changes = assessed.changes()
    assert changes[registrations_key(2)] == changes[REGISTRATIONS] == 1
    assert changes[expected_key(2)] == changes[EXPECTED]
    counts = {POPULATION: 10_000, REGISTRATIONS: 10_000, EXPECTED: 1_000_000}
    often = {**counts, registrations_key(2): 500, expected_key(2): 450_000}
    rare = {**counts, registrations_key(2): 500, expected_key(2): 5_000}
    high = assess(sparse, Candidates((("p", stored),), Frequencies(10_000, often)),
                  threshold=0.0).proposed[0]
    low = assess(sparse, Candidates((("p", stored),), Frequencies(10_000, rare)),
                 threshold=0.0).proposed[0]
    assert high.score > low.score
    assert sum(t.weight for t in high.fields) == pytest.approx(high.score, abs=1e-3)


def test_names_read_crossed_over_count_as_common_as_they_are_in_their_own_fields() -> None:
    """ROBERT typed as the family name is not a rare family name: a common name read
    crossed over counts as common, not as the rarity it is in the field it was typed in."""
    counts = {POPULATION: 200_000, "family:RODRIGUEZ": 4_000, "given:ROBERT": 4_000}
    freqs = Frequencies(200_000, counts)
    stored = features(_person("Rodriguez", "Robert"))

    def name_tf(d: Demographics) -> float:
        (result,) = propose(d, Candidates((("p", stored),), freqs), threshold=0.0)
        return sum(t.tf for t in result.fields if t.name in ("family_name", "given_name"))

    crossed = name_tf(_person("Robert", "Rodriguez"))
    straight = name_tf(_person("Rodriguez", "Robert"))
    assert crossed < 0 and abs(crossed - straight) < 1e-3
