"""Default and placeholder values are recognised, and read as missing when compared."""

from __future__ import annotations

from datetime import date

from accord.workflow.identity.compare import features
from accord.workflow.identity.placeholders import (
    is_placeholder_birth,
    is_placeholder_id,
    is_placeholder_name,
    is_placeholder_phone,
    placeholder_digits,
)
from accord.workflow.model import Demographics, PersonName


def test_default_digits_are_placeholders() -> None:
    assert all(placeholder_digits(d) for d in ("0000000", "9999999", "1111111", "1234567"))
    assert not any(placeholder_digits(d) for d in ("5550199", "6175550", ""))


def test_names_ids_births_and_the_facilitys_own_phone() -> None:
    assert is_placeholder_name("UNKNOWN") and is_placeholder_name("BABY GIRL")
    assert not is_placeholder_name("KOWALCZYK")
    assert is_placeholder_id("000000000") and is_placeholder_id("123456789")
    assert not is_placeholder_id("219456781")
    assert is_placeholder_birth("19000101") and not is_placeholder_birth("19600101")
    assert is_placeholder_phone("5551000", own=("5551000",))
    assert not is_placeholder_phone("5551000")


def test_features_read_placeholders_as_missing() -> None:
    f = features(Demographics(
        name=PersonName("Unknown", "Baby Girl", suffix="Jr."), birth_date=date(1900, 1, 1),
        phone="(000) 000-0000", national_id="999-99-9999"))
    assert (f.family, f.given, f.birth, f.phone, f.national_id) == ("", "", "", "", "")
    assert f.suffix == "JR"
    assert features(Demographics(name=PersonName("Smith", "John Jr"))).suffix == "JR"
