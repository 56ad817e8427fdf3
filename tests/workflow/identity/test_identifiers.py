"""Patient identifiers: resolution by authority and value, merge plans."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from accord.errors import ApplyError
from accord.workflow.identity.identifiers import (
    IdentifierIndex,
    identifier_key,
    plan_merge,
    resolve,
)
from accord.workflow.model import Address, Demographics, Identifier, Patient, PersonName

MRN = Identifier("12345", "HOSP", "MR")
LAB = Identifier("L-77", "LAB", "PI")
SAME_VALUE_OTHER_AUTHORITY = Identifier("12345", "CLINIC", "MR")

ANNA = Demographics(
    name=PersonName(family="Schneider", given="Anna"),
    birth_date=date(1975, 11, 2),
    sex="F",
    address=Address(street="Hauptstraße 5", city="Köln", postal_code="50667"),
    phone="0221 1234567",
)


def test_identifier_key_is_authority_and_value() -> None:
    assert identifier_key(Identifier(" 12345 ", "HOSP ", "MR")) == ("HOSP", "12345")


def test_same_value_under_another_authority_is_another_identifier() -> None:
    index = {identifier_key(MRN): "p1"}
    assert resolve([MRN], index).patient_id == "p1"
    unknown = resolve([SAME_VALUE_OTHER_AUTHORITY], index)
    assert unknown.patient_id is None
    assert unknown.unknown == (SAME_VALUE_OTHER_AUTHORITY,)


def test_authoritative_identifier_wins_over_cross_reference() -> None:
    index = {identifier_key(MRN): "p1", identifier_key(LAB): "p2"}
    found = resolve([LAB, MRN], index, authoritative="HOSP")
    assert found.patient_id == "p1"
    assert found.authoritative
    assert found.matched == MRN
    assert found.conflicts == ("p2",)


def test_cross_reference_resolves_when_authoritative_is_unknown() -> None:
    index = {identifier_key(LAB): "p2"}
    found = resolve([MRN, LAB], index, authoritative="HOSP")
    assert found.patient_id == "p2"
    assert not found.authoritative
    assert found.unknown == (MRN,)
    assert found.conflicts == ()


def test_merged_identifier_resolves_to_the_survivor_and_says_so() -> None:
    index = {identifier_key(MRN): "old"}
    found = resolve([MRN], index, merged_into={"old": "mid", "mid": "new"})
    assert found.patient_id == "new"
    assert found.merged_from == ("old", "mid")


def test_redirect_cycle_does_not_loop() -> None:
    found = resolve([MRN], {identifier_key(MRN): "a"}, merged_into={"a": "b", "b": "a"})
    assert found.patient_id in ("a", "b")


def test_nothing_known() -> None:
    found = resolve([MRN], {})
    assert found.patient_id is None and found.matched is None and not found.authoritative


def test_identifier_index_never_steals_an_identifier() -> None:
    ids = IdentifierIndex(authoritative="HOSP")
    assert ids.add(Patient("p1", (MRN, LAB))) == ()
    assert ids.add(Patient("p2", (MRN,))) == (MRN,)
    assert ids.owner(MRN) == "p1"
    assert ids.resolve([MRN]).patient_id == "p1"
    ids.remove("p1")
    assert ids.owner(MRN) is None


def test_merge_plan_keeps_retired_identifiers_on_the_tombstone() -> None:
    survivor = Patient("s", (Identifier("1", "HOSP", "MR"),), ANNA)
    merged = Patient("m", (Identifier("2", "HOSP", "MR"), LAB), replace(ANNA, phone=""))
    plan = plan_merge(survivor, merged, authoritative="HOSP")
    assert plan.moved == (LAB,)
    assert plan.survivor.identifiers == (Identifier("1", "HOSP", "MR"), LAB)
    assert plan.tombstone.merged_into == "s"
    assert plan.tombstone.identifiers == (Identifier("2", "HOSP", "MR"),)
    ids = IdentifierIndex(authoritative="HOSP")
    ids.add(survivor)
    ids.add(merged)
    ids.apply(plan)
    retired = ids.resolve([Identifier("2", "HOSP", "MR")])
    assert retired.patient_id == "s" and retired.merged_from == ("m",)
    assert ids.resolve([LAB]).patient_id == "s"
    assert ids.resolve([LAB]).merged_from == ()


def test_merge_plan_does_not_move_a_second_identifier_of_the_same_kind() -> None:
    survivor = Patient("s", (Identifier("1", "HOSP", "MR"), Identifier("L-1", "LAB", "PI")))
    merged = Patient("m", (Identifier("2", "HOSP", "MR"), LAB))
    plan = plan_merge(survivor, merged, authoritative="HOSP")
    assert plan.moved == ()
    assert plan.tombstone.identifiers == merged.identifiers


def test_merge_plan_fills_missing_demographics_only_when_asked() -> None:
    survivor = Patient("s", (MRN,), replace(ANNA, phone="", birth_date=None))
    merged = Patient("m", (LAB,), ANNA)
    assert plan_merge(survivor, merged).survivor.demographics.phone == ""
    plan = plan_merge(survivor, merged, fill_missing=True)
    assert plan.filled == ("birth_date", "phone")
    assert plan.survivor.demographics.birth_date == ANNA.birth_date
    assert plan.survivor.demographics.name == ANNA.name


def test_resent_merge_changes_nothing() -> None:
    survivor = Patient("s", (MRN,))
    tombstone = Patient("m", (LAB,), merged_into="s")
    plan = plan_merge(survivor, tombstone)
    assert plan.already_merged and plan.moved == () and plan.tombstone == tombstone


@pytest.mark.parametrize(
    ("survivor", "merged", "location"),
    [
        (Patient("s", (MRN,)), Patient("s", (MRN,)), "MRG-1"),
        (Patient("s", (MRN,), merged_into="x"), Patient("m", (LAB,)), "PID-3"),
        (Patient("s", (MRN,)), Patient("m", (LAB,), merged_into="x"), "MRG-1"),
    ],
)
def test_impossible_merges_are_answered_ae(
    survivor: Patient, merged: Patient, location: str
) -> None:
    with pytest.raises(ApplyError) as caught:
        plan_merge(survivor, merged)
    assert caught.value.ack_code == "AE"
    assert caught.value.location == location
