"""Field comparisons of demographic matching (``accord.workflow.identity.compare``)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accord.workflow.identity.compare import (
    COMPARISON_NAMES,
    COMPARISONS,
    NULL,
    compare,
    compare_birth_date,
    compare_contact,
    compare_family,
    compare_given,
    compare_names,
    compare_one_edit,
    distinct_people,
    features,
    jaro_winkler,
    normalise_name,
    one_edit,
    one_typo,
    phonetic,
)
from accord.workflow.identity.nicknames import are_nicknames, canonical_given
from accord.workflow.model import Address, Demographics, PersonName


def level(comparison: str, label: str) -> int:
    return dict(COMPARISONS)[comparison].index(label)


def person(
    family: str = "Smith",
    given: str = "William",
    birth: date | None = date(1980, 3, 4),
    sex: str = "M",
    street: str = "12 Main Street",
    postal: str = "62701",
    city: str = "Springfield",
    phone: str = "(217) 555-0142",
    national_id: str = "219-45-6781",
) -> Demographics:
    return Demographics(
        name=PersonName(family=family, given=given),
        birth_date=birth,
        sex=sex,
        address=Address(street=street, city=city, postal_code=postal),
        phone=phone,
        national_id=national_id,
    )


def vector(a: Demographics, b: Demographics) -> dict[str, str]:
    levels, _ = compare(features(a), features(b))
    return {
        name: "missing" if lv == NULL else labels[lv]
        for (name, labels), lv in zip(COMPARISONS, levels, strict=True)
    }


def test_normalise_name_folds_accents_hyphens_and_case() -> None:
    assert normalise_name("Müller-Lüdenscheidt") == "MULLER LUDENSCHEIDT"
    assert normalise_name("  o'Brien ") == "OBRIEN"
    assert normalise_name("Strauß") == "STRAUSS"


@pytest.mark.parametrize(
    ("a", "b"),
    [("BILL", "WILLIAM"), ("PEGGY", "MARGARET"), ("HANS", "JOHANNES"), ("PACO", "FRANCISCO"),
     ("BOB", "ROBERT"), ("LIESEL", "ELISABETH")],
)
def test_nicknames_are_equivalent_both_ways(a: str, b: str) -> None:
    assert are_nicknames(a, b)
    assert are_nicknames(b, a)
    assert compare_given(a, b, phonetic(a), phonetic(b)) == level("given_name", "nickname")


def test_unrelated_given_names_are_not_nicknames() -> None:
    assert not are_nicknames("WILLIAM", "MARGARET")
    assert not are_nicknames("WILLIAM", "WILLIAM")  # equal is "exact", not "nickname"
    assert canonical_given("BILL") == canonical_given("WILLIAM")


def test_given_name_levels() -> None:
    def given(a: str, b: str) -> str:
        labels = dict(COMPARISONS)["given_name"]
        return labels[compare_given(a, b, phonetic(a), phonetic(b))]

    assert given("WILLIAM", "WILLIAM") == "exact"
    assert given("MARGARET", "MARGRAET") == "close"  # neighbours swapped
    assert given("J", "JOHN") == "similar"  # an initial
    assert given("WILLIAM", "HEATHER") == "different"
    assert compare_given("", "JOHN", "", "JN") == NULL


def test_a_short_given_name_with_a_letter_dropped_or_swapped_is_similar() -> None:
    def given(a: str, b: str) -> str:
        labels = dict(COMPARISONS)["given_name"]
        return labels[compare_given(a, b, phonetic(a), phonetic(b))]

    # a slip Jaro–Winkler reads as different: twins, were it left so
    for a, b in (("AMY", "AY"), ("AMY", "MY"), ("IAN", "AIN"), ("MIA", "IMA")):
        assert given(a, b) == given(b, a) == "similar"
    assert given("TOM", "TIM") != "different"  # Jaro–Winkler's similar already
    assert given("ROY", "BOY") == "different"  # a letter replaced: often another name


def test_family_name_levels() -> None:
    def family(a: str, b: str) -> str:
        labels = dict(COMPARISONS)["family_name"]
        return labels[compare_family(a, b, phonetic(a), phonetic(b))]

    assert family("SMITH", "SMITH") == "exact"
    assert family("JOHNSON", "JONSON") == "close"
    assert family("MUELLER SCHMIDT", "SCHMIDT") == "close"  # one part of a double name
    assert family("SMITH", "SMYTHE") in ("close", "phonetic")
    assert family("SMITH", "GARCIA") == "different"


def test_one_typo_in_the_first_letters_is_close() -> None:
    labels = dict(COMPARISONS)
    # Jaro–Winkler puts these under 0.92: the slip is at the front of the name.
    assert labels["family_name"][compare_family("AENRY", "HENRY", "", "HNR")] == "close"
    assert labels["family_name"][compare_family("VEAA", "VEGA", "F", "FK")] == "close"
    assert labels["given_name"][compare_given("JENMA", "JENNA", "JNM", "JN")] == "close"
    assert one_typo("POWELL", "POWEL")  # a letter dropped
    assert not one_typo("ANN", "ANA")  # short names one keystroke apart are other names
    assert not one_typo("JANE", "JAKES")  # two edits


def test_birth_date_day_month_swap() -> None:
    assert compare_birth_date("19800304", "19800403") == level("birth_date", "day_month_swap")


def test_birth_date_single_digit_typo_and_transposition() -> None:
    assert compare_birth_date("19800304", "19800305") == level("birth_date", "one_digit")
    assert compare_birth_date("19800312", "19800321") == level("birth_date", "one_digit")
    assert compare_birth_date("19850304", "19580304") == level("birth_date", "one_digit")
    assert compare_birth_date("19850304", "19620304") == level("birth_date", "different")


def test_birth_date_year_off_by_one_across_a_decade() -> None:
    assert compare_birth_date("19790304", "19800304") == level("birth_date", "year_off_by_one")


def test_birth_date_exact_and_missing() -> None:
    assert compare_birth_date("19800304", "19800304") == 0
    assert compare_birth_date("", "19800304") == NULL


def test_one_edit() -> None:
    assert one_edit("5550142", "5550143")
    assert one_edit("5550142", "5551042")  # two neighbours swapped
    assert not one_edit("5550142", "5551024")
    assert not one_edit("5550142", "555014")
    assert not one_edit("5550142", "5550142")
    assert not one_edit("5550142", "5055142")  # two swapped that are not neighbours
    assert not one_edit("12", "33")  # two neighbours replaced, not swapped


def _swapped(a: str, i: int) -> str:
    return a[:i] + a[i + 1] + a[i] + a[i + 2:]


def _one_away(a: str) -> list[str]:
    """Every string one replacement or one swap of neighbours from ``a`` (``a`` itself
    when there is none)."""
    replaced = [a[:i] + c + a[i + 1:] for i in range(len(a)) for c in "0123"]
    return replaced + [_swapped(a, i) for i in range(len(a) - 1)] or [a]


@given(st.text("0123", max_size=8), st.data())
def test_one_edit_is_one_replacement_or_one_swap_of_neighbours(
        a: str, data: st.DataObject) -> None:
    """``one_edit`` against its definition, on strings close enough to meet it often."""
    same_length = st.text("0123", min_size=len(a), max_size=len(a))
    b = data.draw(same_length | st.just(a) | st.sampled_from(_one_away(a)))
    replaced = len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) == 1
    swapped = any(_swapped(a, i) == b != a for i in range(len(a) - 1))
    assert one_edit(a, b) == (replaced or swapped)


def test_phone_and_national_id_levels() -> None:
    assert compare_one_edit("123456789", "123456789") == 0
    assert compare_one_edit("123456789", "123456798") == 1
    assert compare_one_edit("123456789", "987654321") == 2
    assert compare_one_edit("", "987654321") == NULL


def test_transposed_given_and_family_names() -> None:
    a = features(person(family="Smith", given="William"))
    b = features(person(family="William", given="Smith"))
    family, given, transposed = compare_names(a, b)
    assert transposed
    assert (family, given) == (0, 0)


def test_one_name_only_in_the_other_field_is_read_crossed_over() -> None:
    a = features(person(family="Reed", given="James"))
    b = features(person(family="", given="Reed"))
    assert compare_names(a, b) == (0, NULL, True)
    # read as the family name whichever came first: a household shares it
    assert compare_names(b, a) == (0, NULL, True)
    initial = features(person(family="V", given="Lang"))
    assert compare_names(features(person(family="Lang", given="Vanessa")), initial) == (
        0, 4, True)


def test_neighbours_on_one_street_are_not_one_address() -> None:
    """Another house number is another home, however alike the street's name."""
    home = features(person(street="12 King Drive"))
    assert compare_contact(home, features(person(street="12 King Dr", phone=""))) == 1
    neighbour = features(person(street="66 King Drive", phone=""))
    assert compare_contact(home, neighbour) == 3  # same postal code only
    flat = features(person(street="12 King Drive Apt 4", phone=""))
    assert compare_contact(home, flat) == 1  # the flat's number is not the house's


def test_a_crossed_pair_reads_the_same_whichever_came_first() -> None:
    """The initial agrees only as a given name: read with either record's fields as
    labelled, so the later registration may be either of the two."""
    full = features(person(family="Lang", given="Vanessa"))
    initial = features(person(family="V", given="Lang"))
    assert compare_names(full, initial) == (0, 4, True)
    assert compare_names(initial, full) == (0, 4, True)
    gray = features(person(family="Gray", given="Paige"))
    typed = features(person(family="P", given="Gay"))
    assert compare_names(typed, gray)[2] is True
    assert compare_names(typed, gray)[:2] == compare_names(gray, typed)[:2]


def test_jaro_winkler_on_a_bound_is_at_that_level() -> None:
    """AMY/AXY is 0.8 exactly (a rounding error below it in floating point): similar."""
    assert jaro_winkler("AMY", "AXY") == 0.8
    assert compare_given("AMY", "AXY", phonetic("AMY"), phonetic("AXY")) == 4
    assert compare_family("AMY", "AXY", phonetic("AMY"), phonetic("AXY")) == 3


def test_one_name_shared_crossed_over_the_other_different_stays_as_written() -> None:
    """A married name crossed over looks like a twin crossed over: left as written."""
    a = features(person(family="Rogers", given="Alexa"))
    b = features(person(family="Tracy", given="Rogers"))
    assert compare_names(a, b)[2] is False
    assert compare_names(b, a)[2] is False


def test_a_single_name_matching_as_written_is_not_crossed() -> None:
    a = features(person(family="Palmer", given="Dawn"))
    b = features(person(family="", given="Dawn"))
    assert compare_names(a, b) == (NULL, 0, False)


def test_different_names_are_not_read_as_transposed() -> None:
    a = features(person(family="Smith", given="William"))
    b = features(person(family="Garcia", given="Maria"))
    assert compare_names(a, b)[2] is False


def test_missing_fields_are_neutral_not_disagreement() -> None:
    full = person()
    sparse = Demographics(name=PersonName(family="Smith", given="William"))
    levels = vector(full, sparse)
    assert levels["birth_date"] == "missing"
    assert levels["contact"] == "missing"
    assert levels["national_id"] == "missing"
    assert levels["sex"] == "missing"
    assert levels["family_name"] == "exact"


def test_unknown_sex_compares_as_missing() -> None:
    assert vector(person(sex="M"), person(sex="U"))["sex"] == "missing"
    assert vector(person(sex="M"), person(sex="F"))["sex"] == "different"


def test_contact_levels() -> None:
    same = features(person())
    moved_phone_kept = features(person(street="9 Elm Road", postal="10001", city="New York"))
    abbreviated = features(person(street="12 Main St", phone=""))
    other = features(person(street="9 Elm Road", postal="10001", city="New York", phone="1"))
    assert compare_contact(same, same) == level("contact", "address_and_phone")
    assert compare_contact(same, moved_phone_kept) == level("contact", "phone")
    assert compare_contact(same, abbreviated) == level("contact", "address")
    assert compare_contact(same, other) == level("contact", "different")


def test_a_new_phone_without_an_address_to_compare_is_not_a_different_home() -> None:
    same = features(person())
    no_address = features(Demographics(name=PersonName(family="Smith", given="William"),
                                       phone="217 555 0199"))
    kept = features(Demographics(name=PersonName(family="Smith", given="William"),
                                 phone=same.phone))
    assert compare_contact(same, no_address) == NULL
    assert compare_contact(no_address, same) == NULL
    assert compare_contact(same, kept) == level("contact", "phone")


def test_phone_uses_last_seven_digits() -> None:
    a = features(person(phone="+1 (217) 555-0142"))
    b = features(person(phone="555 0142"))
    assert a.phone == b.phone == "5550142"


def test_vector_has_one_level_per_comparison() -> None:
    levels, _ = compare(features(person()), features(person()))
    assert len(levels) == len(COMPARISON_NAMES)
    assert all(lv == 0 for lv in levels[:-1])  # mother's maiden name is missing
    assert levels[-1] == NULL


def test_distinct_people_rule_needs_both_given_and_birth_to_differ() -> None:
    father = features(person(given="William", birth=date(1950, 1, 1)))
    daughter = features(person(given="Heather", birth=date(1985, 6, 30)))
    typo = features(person(given="Wiliam", birth=date(1985, 6, 30)))
    assert distinct_people(compare(father, daughter)[0])
    assert not distinct_people(compare(father, typo)[0])
