"""Blocking index and scoring (``accord.workflow.identity.index``)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta

import pytest

from accord.workflow.identity.compare import features
from accord.workflow.identity.index import (
    BLOCKING_RULES,
    PatientIndex,
    blocking_keys,
    lookup_keys,
    pack,
    query_keys,
    unpack,
)
from accord.workflow.model import Address, Demographics, Identifier, Patient, PersonName

FAMILIES = ("Smith", "Johnson", "Garcia", "Miller", "Davis", "Martinez", "Wilson", "Anderson",
            "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White",
            "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King")
GIVENS = ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
          "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
          "Thomas", "Sarah", "Charles", "Karen", "Daniel", "Nancy", "Matthew", "Lisa")


def patient(pid: str, demographics: Demographics) -> Patient:
    return Patient(pid, (Identifier(pid, "HOSP", "MR"),), demographics)


def population(n: int, seed: int = 7) -> list[Patient]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(patient(f"P{i}", Demographics(
            name=PersonName(family=rng.choice(FAMILIES), given=rng.choice(GIVENS)),
            birth_date=date(1930, 1, 1) + timedelta(days=rng.randrange(30000)),
            sex=rng.choice("MF"),
            address=Address(street=f"{rng.randrange(1, 999)} Oak Street",
                            postal_code=f"{rng.randrange(10000, 99999)}"),
            phone=f"555{rng.randrange(10**6, 10**7)}",
        )))
    return out


WILLIAM = Demographics(
    name=PersonName(family="Kowalczyk", given="William"),
    birth_date=date(1980, 3, 4),
    sex="M",
    address=Address(street="12 Main Street", city="Springfield", postal_code="62701"),
    phone="217-555-0142",
    national_id="219-45-6781",
)


@pytest.fixture
def index() -> PatientIndex:
    idx = PatientIndex()
    idx.add_all(population(2000))
    idx.add(patient("W", WILLIAM))
    return idx


@pytest.mark.parametrize(
    "dirty",
    [
        replace(WILLIAM, name=PersonName(family="Kowalcyzk", given="Bill")),  # typo, nickname
        replace(WILLIAM, name=PersonName(family="William", given="Kowalczyk")),  # transposed
        replace(WILLIAM, birth_date=date(1980, 4, 3), phone="", national_id=""),  # swap
        replace(WILLIAM, name=PersonName(family="Cowalczyk", given="William"), phone=""),
        replace(WILLIAM, birth_date=None, address=Address(), national_id="123-45-6798"),
        replace(WILLIAM, name=PersonName(family="", given="William"), birth_date=None),
    ],
)
def test_blocking_finds_the_true_duplicate_under_errors(
    index: PatientIndex, dirty: Demographics
) -> None:
    assert "W" in index.candidates(dirty)
    best = index.match(dirty, threshold=0.5)
    assert best and best[0].patient_id == "W"


def test_candidate_set_is_small(index: PatientIndex) -> None:
    dirty = replace(WILLIAM, name=PersonName(family="Kowalcyzk", given="Bill"))
    assert len(index.candidates(dirty)) < 100  # of 2,001


def test_match_result_says_what_agreed(index: PatientIndex) -> None:
    dirty = replace(WILLIAM, name=PersonName(family="Kowalczyk", given="Bill"), sex="F")
    result = index.match(dirty, threshold=0.5)[0]
    assert result.patient_id == "W"
    assert "given_name" in result.agreeing  # the nickname level still agrees
    assert "sex" in result.disagreeing
    assert ("given_name", "nickname") in result.levels
    assert 0.5 <= result.probability <= 1.0


def test_transposed_flag_is_reported(index: PatientIndex) -> None:
    dirty = replace(WILLIAM, name=PersonName(family="William", given="Kowalczyk"))
    assert index.match(dirty)[0].transposed


def test_threshold_filters(index: PatientIndex) -> None:
    stranger = Demographics(name=PersonName(family="Smith", given="James"),
                            birth_date=date(1999, 12, 31))
    everything = index.match(stranger, threshold=0.0)
    strict = index.match(stranger, threshold=0.99)
    assert len(strict) < len(everything)
    assert all(r.probability >= 0.99 for r in strict)
    assert [r.score for r in everything] == sorted((r.score for r in everything), reverse=True)


def test_remove_forgets_the_patient(index: PatientIndex) -> None:
    assert index.remove("W")
    assert "W" not in index
    assert "W" not in index.candidates(WILLIAM)
    assert not index.remove("W")
    index.add(patient("W2", WILLIAM))  # the freed slot is reused
    assert index.candidates(WILLIAM) == ("W2",)


def test_add_again_replaces_demographics() -> None:
    idx = PatientIndex()
    idx.add(patient("W", WILLIAM))
    moved = replace(WILLIAM, name=PersonName(family="Garcia", given="Maria"),
                    birth_date=date(1990, 1, 1), phone="", national_id="",
                    address=Address(street="7 Elm Road", postal_code="62702"))
    idx.add(patient("W", moved))
    assert len(idx) == 1
    assert idx.candidates(WILLIAM) == ()
    assert idx.candidates(moved) == ("W",)


def test_tombstones_are_not_indexed() -> None:
    idx = PatientIndex()
    idx.add(replace(patient("W", WILLIAM), merged_into="X"))
    assert len(idx) == 0
    assert idx.match(WILLIAM, threshold=0.0) == []


def test_exclude_leaves_the_registration_itself_out(index: PatientIndex) -> None:
    assert index.match(WILLIAM)[0].patient_id == "W"
    assert all(r.patient_id != "W" for r in index.match(WILLIAM, exclude="W"))


def test_household_members_are_not_proposed() -> None:
    idx = PatientIndex()
    idx.add(patient("W", WILLIAM))
    wife = replace(WILLIAM, name=PersonName(family="Kowalczyk", given="Heather"),
                   birth_date=date(1982, 9, 17), sex="F", national_id="")
    assert "W" in idx.candidates(wife)
    assert idx.match(wife, threshold=0.01) == []


def test_oversized_blocks_are_skipped() -> None:
    idx = PatientIndex(max_block=3)
    same_day = [
        patient(f"P{i}", Demographics(name=PersonName(family=f, given="Zed"),
                                      birth_date=date(1970, 1, 1)))
        for i, f in enumerate(("Adams", "Brown", "Clark", "Evans", "Flynn"))
    ]
    idx.add_all(same_day)
    query = Demographics(name=PersonName(family="Young", given="Amy"),
                         birth_date=date(1970, 1, 1))
    assert idx.candidates(query) == ()  # the birth-date block has 5 > 3 members


def test_keys_and_packing() -> None:
    f = features(WILLIAM)
    assert unpack(pack(f)) == f
    keys = blocking_keys(f)
    assert len(keys) == len(BLOCKING_RULES)
    assert keys[BLOCKING_RULES.index("birth_date")] == "19800304"
    widened = query_keys(f)[BLOCKING_RULES.index("birth_date")]
    assert widened == ("19800304", "19800403")
    bill = features(replace(WILLIAM, name=PersonName(family="Kowalczyk", given="Bill")))
    rule = BLOCKING_RULES.index("family_given")
    assert blocking_keys(bill)[rule] == keys[rule]  # nicknames share a key


def test_a_home_finds_a_registration_whose_names_and_birth_date_are_wrong() -> None:
    idx = PatientIndex()
    idx.add(patient("W", WILLIAM))
    garbled = Demographics(name=PersonName(family="K"), birth_date=date(1908, 3, 4),
                           address=Address(street="12 Main St"))
    assert idx.candidates(garbled) == ("W",)  # "St" reads as "Street"
    rule = BLOCKING_RULES.index("street")
    assert blocking_keys(features(garbled))[rule] == "12 MAIN STREET"


def test_a_street_without_a_house_number_is_no_key() -> None:
    rule = BLOCKING_RULES.index("street")
    whole_street = replace(WILLIAM, address=Address(street="Main Street", postal_code="62701"))
    assert blocking_keys(features(whole_street))[rule] == ""
    long = replace(WILLIAM, address=Address(street="1 " + "Long " * 40 + "Road"))
    key = blocking_keys(features(long))[rule]
    assert 0 < len(key) <= 60
    assert f"{rule}:{key}" in lookup_keys(features(long))  # filed and looked up alike


def test_family_and_birthday_find_a_mistyped_birth_year() -> None:
    idx = PatientIndex()
    idx.add(patient("W", WILLIAM))
    year_off = Demographics(name=PersonName(family="Kowalczyk"), birth_date=date(1981, 3, 4))
    assert idx.candidates(year_off) == ("W",)
    rule = BLOCKING_RULES.index("family_birthday")
    assert blocking_keys(features(year_off))[rule] == blocking_keys(features(WILLIAM))[rule]


def test_family_and_birthday_are_widened_like_the_birth_date() -> None:
    rule = BLOCKING_RULES.index("family_birthday")
    assert query_keys(features(WILLIAM))[rule] == ("K422" + "0304", "K422" + "0403",
                                                    "W450" + "0304")  # swapped, crossed


def test_lookup_plan_skips_frequent_keys_and_keeps_the_budget() -> None:
    from accord.workflow.identity.index import lookup_plan

    counts = {"a": 1, "b": 40, "c": 5_000, "d": 70, "e": 0}
    assert lookup_plan(counts, counts, max_block=100, limit=100) == ("a", "b")
    assert lookup_plan(counts, counts, max_block=100, limit=200) == ("a", "b", "d")
