"""bench/population.py: the generated population has the skew and the truth it claims."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import population

from accord.hl7 import parse

SIZE = 8_000


@pytest.fixture(scope="module")
def skewed() -> population.Population:
    return population.skewed(SIZE, seed=7)


def test_names_follow_their_frequencies(skewed: population.Population) -> None:
    families = Counter(r.family for r in skewed.records if r.family)
    top = [name for name, _ in families.most_common(5)]
    assert "SMITH" in top
    uniform = population.uniform(SIZE, seed=7)
    uniform_top = Counter(r.family for r in uniform.records if r.family).most_common(1)[0][1]
    assert families["SMITH"] > 4 * uniform_top


def test_default_and_missing_phones(skewed: population.Population) -> None:
    first = _first_registrations(skewed)
    defaults = sum(r.phone in population.DEFAULT_PHONES for r in first) / len(first)
    missing = sum(not r.phone for r in first) / len(first)
    assert 0.02 <= defaults <= 0.04
    assert 0.03 <= missing <= 0.08  # 5%, plus children of a parent without a phone


def test_catchment_has_forty_postcodes(skewed: population.Population) -> None:
    assert len({r.postcode for r in _first_registrations(skewed)}) == 40


def test_twins_share_birth_date_family_and_address(skewed: population.Population) -> None:
    first = _first_of_person(skewed)
    twins = [rel for rel in skewed.relations
             if rel.kind == "twin" and rel.a in first and rel.b in first]
    assert len(twins) >= 10
    for rel in twins:
        a, b = first[rel.a], first[rel.b]
        assert (a.birth, a.family, a.street, a.house_number) == \
            (b.birth, b.family, b.street, b.house_number)
        assert a.given != b.given


def test_namesakes_share_a_given_name_twenty_years_apart(
        skewed: population.Population) -> None:
    first = _first_of_person(skewed)
    pairs = [(first[r.a], first[r.b]) for r in skewed.relations
             if r.kind == "namesake" and r.a in first and r.b in first]
    assert pairs
    for father, son in pairs:
        assert father.given == son.given
        assert int(son.birth[:4]) - int(father.birth[:4]) >= 19


def test_truth_pairs_are_the_registrations_of_one_person(
        skewed: population.Population) -> None:
    mrns = [r.mrn for r in skewed.records]
    assert len(set(mrns)) == len(mrns) == SIZE
    person = dict(zip(mrns, skewed.persons, strict=True))
    truth = skewed.truth_pairs()
    clusters = Counter(skewed.persons)
    assert sum(n * (n - 1) // 2 for n in clusters.values()) == len(truth)
    assert max(clusters.values()) in (3, 4)
    for pair in truth:
        a, b = sorted(pair)
        assert person[a] == person[b]


def test_every_record_is_an_adt_message_the_parser_reads(
        skewed: population.Population) -> None:
    record = next(r for r in skewed.records if r.suffix)
    msg = parse(population.adt(record, "C1", trigger="A08"))
    assert msg.get("MSH-9.2") == "A08"
    assert msg.get("PID-3.1") == record.mrn
    assert msg.get("PID-3.4") == population.AUTHORITY
    assert (msg.get("PID-5.1"), msg.get("PID-5.2"), msg.get("PID-5.4")) == \
        (record.family, record.given, record.suffix)
    assert (msg.get("PID-7"), msg.get("PID-8"), msg.get("PID-11.5")) == \
        (record.birth, record.sex, record.postcode)
    assert "".join(c for c in msg.get("PID-13") if c.isdigit()) == record.phone
    odd = population.Registration("A|B^C", family="O'BRIEN&SON", given="X~Y\\Z")
    parsed = parse(population.adt(odd, "C2"))
    assert (parsed.get("PID-3.1"), parsed.get("PID-5.1"), parsed.get("PID-5.2")) == \
        ("A|B^C", "O'BRIEN&SON", "X~Y\\Z")


def _first_mrn(pop: population.Population) -> dict[str, str]:
    first: dict[str, str] = {}
    for r, p in zip(pop.records, pop.persons, strict=True):
        first.setdefault(p, r.mrn)
    return first


def _first_of_person(pop: population.Population) -> dict[str, population.Registration]:
    firsts = set(_first_mrn(pop).values())
    return {p: r for p, r in zip(pop.persons, pop.records, strict=True) if r.mrn in firsts}


def _first_registrations(pop: population.Population) -> list[population.Registration]:
    first = set(_first_mrn(pop).values())
    return [r for r in pop.records if r.mrn in first]
