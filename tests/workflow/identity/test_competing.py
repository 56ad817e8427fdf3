"""Competing candidates: a registration is one person; candidates who are not one person
share its probability, a person's several records do not compete."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date

import pytest

from accord.workflow.identity.compare import NULL, features
from accord.workflow.identity.competing import FLOOR, Rival, compete, less
from accord.workflow.identity.fellegi_sunter import FieldWeight, MatchResult
from accord.workflow.identity.matcher import Candidates, propose
from accord.workflow.model import Address, Demographics, PersonName

_F = features(Demographics(PersonName("Smith", "John")))


def _rival(patient_id: str, score: float) -> Rival:
    return Rival(patient_id, score, (0, 0, 0, 0, 0, NULL, NULL), _F)


def _adds_up(result: MatchResult) -> None:
    assert sum(t.weight for t in result.fields) == pytest.approx(result.score, abs=1e-3)


def test_a_weak_candidate_makes_room_for_a_far_stronger_other_person() -> None:
    taken = compete([_rival("a", 20.0), _rival("b", 2.0)], lambda a, b: 0.0)
    assert taken["b"][0] == pytest.approx(20.0, abs=0.01) and taken["b"][1] == "a"
    assert taken["a"] == (pytest.approx(math.log2(5.0), abs=1e-3), "b")
    fields = (FieldWeight("prior", "", -10.0), FieldWeight("family_name", "exact", 12.0))
    weak = less(MatchResult("b", 2.0, 0.8, (), (), fields=fields), *taken["b"])
    assert weak.score == pytest.approx(2.0 - 20.0, abs=0.01) and weak.probability < 1e-5
    assert weak.fields[-1] == FieldWeight("others", "a", round(weak.score - 2.0, 4))
    _adds_up(weak)


def test_records_of_one_person_do_not_compete() -> None:
    assert compete([_rival("a", 20.0), _rival("b", 15.0)], lambda a, b: 1.0) == {}


def test_a_disagreement_between_two_candidates_is_what_competes() -> None:
    """Half a fit: the weaker one keeps about half its odds, the both-reading the rest."""
    taken = compete([_rival("a", 20.0), _rival("b", 2.0)], lambda a, b: 0.5)
    assert taken["b"][0] == pytest.approx(1.0, abs=0.01)
    assert taken["a"][0] == pytest.approx(math.log2(5.0 / 3.0), abs=1e-3)


def test_candidates_under_the_floor_neither_compete_nor_are_weighed() -> None:
    asked: list[int] = []

    def same(a: Rival, b: Rival) -> float:
        asked.append(1)
        return 0.0

    assert compete([_rival("a", 20.0), _rival("b", FLOOR - 1)], same) == {} and not asked


def _person(born: date | None, street: str, phone: str = "") -> Demographics:
    return Demographics(PersonName("Smith", "John"), born, "M",
                        Address(street=street, postal_code="02134"), phone=phone)


def test_a_namesake_is_not_proposed_beside_the_registrations_own_record() -> None:
    registration = _person(None, "3 Elm Road", "6175550199")  # no birth date given
    own = features(_person(date(1970, 5, 17), "3 Elm Road", "6175550199"))
    namesake = features(_person(date(1985, 2, 9), "9 Oak Road"))
    alone = propose(registration, Candidates((("n", namesake),)), population=10_000)
    both = propose(registration, Candidates((("o", own), ("n", namesake))), population=10_000)
    assert [r.patient_id for r in alone] == ["n"]
    assert [r.patient_id for r in both] == ["o"]
    _adds_up(both[0])


def test_two_records_apart_only_where_the_registration_explains_them_do_not_compete() -> None:
    """One earlier record with the birth date mistyped, another with a married name:
    each differs from the registration on a field it holds, so the pair's own
    differences say nothing more than their odds do."""
    registration = _person(date(1970, 5, 17), "3 Elm Road", "6175550199")
    born = features(_person(date(1971, 8, 2), "3 Elm Road", "6175550199"))
    named = features(registration)._replace(family="KOWALCZYK", family_code="KWLSK")
    alone = [propose(registration, Candidates(((pid, f),)), population=10_000)
             for pid, f in (("b", born), ("g", named))]
    both = propose(registration, Candidates((("b", born), ("g", named))), population=10_000)
    assert [[r.patient_id for r in a] for a in alone] == [["b"], ["g"]]
    assert sorted(r.patient_id for r in both) == ["b", "g"]
    assert all(t.name != "others" for r in both for t in r.fields)


def test_two_records_ruled_out_as_twins_compete_only_where_the_registration_is_silent() -> None:
    """Each differs from the registration in one field it holds (a national ID, a given
    name): compared with each other they read as twins with different IDs, but the
    registration explains both; without its given name, they compete."""
    registration = replace(_person(date(1970, 5, 17), "3 Elm Road"), national_id="518274936")
    other_id = features(replace(registration, national_id="730915428"))
    other_name = features(registration)._replace(given="PETER", given_code="PTR")
    found = Candidates((("i", other_id), ("n", other_name)))
    both = propose(registration, found, population=10_000)
    assert sorted(r.patient_id for r in both) == ["i", "n"]
    no_given = replace(registration, name=PersonName("Smith", ""))
    silent = propose(no_given, found, population=10_000, threshold=0.0)
    assert any(t.name == "others" for r in silent for t in r.fields)
