"""Twins, namesake fathers and sons, mothers and newborns are told apart from duplicates."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from accord.workflow.identity import Matcher
from accord.workflow.identity.compare import compare, features
from accord.workflow.identity.households import DISTINCT, SIBLING_CAP, TWIN_CAP, relation
from accord.workflow.identity.matcher import compare_patients
from accord.workflow.model import Address, Demographics, Identifier, Patient, PersonName

HOME = Address(street="14 Birch Lane", city="Springfield", postal_code="62701")
FATHER = Demographics(PersonName("Kowalczyk", "Robert"), date(1961, 4, 12), "M", HOME,
                      phone="217-555-0142")


def _patient(pid: str, d: Demographics) -> Patient:
    return Patient(pid, (Identifier(pid, "HOSP", "MR"),), d)


def _relation(a: Demographics, b: Demographics) -> tuple[str, float | None]:
    fa, fb = features(a), features(b)
    return relation(fa, fb, compare(fa, fb)[0])


def test_twins_are_capped_low_or_not_proposed() -> None:
    anna = Demographics(PersonName("Kowalczyk", "Anna"), date(2001, 6, 3), "F", HOME,
                        phone="217-555-0142")
    emma = replace(anna, name=PersonName("Kowalczyk", "Emma"))
    assert _relation(anna, emma) == ("twin", TWIN_CAP)
    assert Matcher()(emma, [_patient("anna", anna)]) == []  # under the default threshold
    (low,) = Matcher(threshold=0.2)(emma, [_patient("anna", anna)])
    assert low.relation == "twin" and low.score == TWIN_CAP  # reviewed last
    assert abs(sum(t.weight for t in low.fields) - low.score) < 1e-6
    # the identifiers say two people: a brother, or a national ID of her own
    adam = replace(anna, name=PersonName("Kowalczyk", "Adam"), sex="M")
    assert _relation(adam, anna) == ("twin", DISTINCT)
    assert Matcher()(adam, [_patient("anna", anna)]) == []
    own_ids = [replace(d, national_id=n) for d, n in ((anna, "219-45-6781"),
                                                      (emma, "448-12-9035"))]
    assert Matcher()(own_ids[1], [_patient("anna", own_ids[0])]) == []
    shown = compare_patients(adam, _patient("anna", anna))
    assert shown.relation == "twin"  # the console names the relation


def test_a_boy_and_a_girl_with_alike_names_born_together_are_twins() -> None:
    francis = Demographics(PersonName("Kowalczyk", "Francis"), date(2001, 6, 3), "M", HOME,
                           phone="217-555-0142")
    frances = replace(francis, name=PersonName("Kowalczyk", "Frances"), sex="F")
    assert _relation(frances, francis) == ("twin", TWIN_CAP)
    assert Matcher()(frances, [_patient("francis", francis)]) == []
    # the sex left out, or the given name the same: no relation
    assert _relation(replace(frances, sex=""), francis) == ("", None)
    assert _relation(replace(frances, name=francis.name), francis) == ("", None)


def test_twins_one_registered_without_the_family_name_at_their_home() -> None:
    anna = Demographics(PersonName("Kowalczyk", "Anna"), date(2001, 6, 3), "F", HOME,
                        phone="217-555-0142")
    emma = replace(anna, name=PersonName("", "Emma"))
    assert _relation(emma, anna) == ("twin", TWIN_CAP)
    assert Matcher()(emma, [_patient("anna", anna)]) == []
    elsewhere = replace(emma, address=Address(street="3 Elm Road", postal_code="60601"))
    assert _relation(elsewhere, anna) == ("", None)


def test_siblings_born_near_in_one_home_are_capped_low() -> None:
    """Another given name, a birth date a keystroke off, the same family and home: a
    brother or sister (whose birth dates run close), far likelier than a duplicate
    with both its given name and its birth date mistyped."""
    kate = Demographics(PersonName("Jennings", "Katie"), date(1999, 8, 28), "F", HOME,
                        phone="217-555-0142")
    stacey = replace(kate, name=PersonName("Jennings", "Stacey"), birth_date=date(2000, 8, 28))
    assert _relation(stacey, kate) == ("sibling", SIBLING_CAP)
    assert Matcher()(stacey, [_patient("kate", kate)]) == []
    (low,) = Matcher(threshold=0.2)(stacey, [_patient("kate", kate)])
    assert low.relation == "sibling" and low.score == SIBLING_CAP
    assert abs(sum(t.weight for t in low.fields) - low.score) < 1e-6
    # elsewhere, or with the given name agreeing, no relation: a typo is the likelier
    away = replace(stacey, address=Address(street="3 Elm Road", postal_code="60601"))
    assert _relation(away, kate) == ("", None)
    katie = replace(stacey, name=kate.name)
    assert _relation(katie, kate) == ("", None)


def test_namesake_son_is_not_proposed() -> None:
    son = replace(FATHER, name=PersonName("Kowalczyk", "Robert", suffix="Jr"),
                  birth_date=date(1988, 9, 30))
    assert _relation(son, FATHER) == ("namesake", DISTINCT)
    assert Matcher()(son, [_patient("father", FATHER)]) == []


def test_namesake_son_with_the_birth_date_left_out_is_told_by_the_suffixes() -> None:
    senior = replace(FATHER, name=PersonName("Kowalczyk", "Robert", suffix="Sr"))
    junior = replace(FATHER, name=PersonName("Kowalczyk", "Robert", suffix="Jr"),
                     birth_date=None)
    assert _relation(junior, senior) == ("namesake", DISTINCT)
    assert Matcher()(junior, [_patient("father", senior)]) == []
    # one suffix left out says nothing: a clerk drops it as often as not
    plain = replace(junior, name=PersonName("Kowalczyk", "Robert"))
    assert _relation(plain, senior) == ("", None)


def test_namesake_son_without_a_suffix_is_a_generation_apart() -> None:
    son = replace(FATHER, birth_date=date(1990, 2, 7))
    assert _relation(son, FATHER) == ("parent_child", DISTINCT)
    assert Matcher()(son, [_patient("father", FATHER)]) == []


def test_a_birth_year_typo_is_not_a_generation() -> None:
    typo = replace(FATHER, birth_date=date(1981, 4, 12))  # 1961 typed 1981: one digit
    assert _relation(typo, FATHER) == ("", None)
    (found,) = Matcher()(typo, [_patient("father", FATHER)])
    assert found.relation == "" and found.probability > 0.5


def test_a_suffix_left_out_with_a_birth_date_a_keystroke_off_is_one_man() -> None:
    senior = replace(FATHER, name=PersonName("Kowalczyk", "Robert", suffix="Sr"))
    typed = replace(FATHER, birth_date=date(1967, 4, 12))  # 1961 typed 1967, no suffix
    assert _relation(typed, senior) == ("", None)
    son = replace(FATHER, name=PersonName("Kowalczyk", "Robert", suffix="Jr"),
                  birth_date=date(1981, 4, 12))  # one digit off, but a generation apart
    assert _relation(son, senior) == ("namesake", DISTINCT)


def test_a_year_no_patient_is_born_in_is_a_typo_not_a_generation() -> None:
    for year in (1799, 6000, 9161):
        typo = replace(FATHER, birth_date=date(year, 5, 21))
        assert _relation(typo, FATHER) == ("", None)
    assert _relation(replace(FATHER, birth_date=date(1921, 5, 21)), FATHER) == (
        "parent_child", DISTINCT)


def test_mother_and_newborn_sharing_phone_and_address() -> None:
    mother = Demographics(PersonName("Kowalczyk", "Maria"), date(1994, 1, 20), "F", HOME,
                          phone="217-555-0142")
    newborn = Demographics(PersonName("Kowalczyk", "Baby Girl"), date(2026, 12, 6), "F", HOME,
                           phone="217-555-0142")
    assert _relation(newborn, mother) == ("parent_child", DISTINCT)
    assert Matcher()(newborn, [_patient("mother", mother)]) == []


def test_the_same_person_is_no_relation() -> None:
    again = replace(FATHER, name=PersonName("Kowalcyzk", "Rob"))
    assert _relation(again, FATHER) == ("", None)
    (found,) = Matcher()(again, [_patient("father", FATHER)])
    assert found.probability > 0.9
