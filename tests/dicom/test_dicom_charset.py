"""MSH-18 -> Specific Character Set, XPN -> PN (PS3.5 §6.1, §6.2)."""

from __future__ import annotations

from accord.dicom.charset import pn_from_xcn, pn_from_xpn, specific_character_set
from accord.workflow.model import PersonName


def test_terms_from_msh18() -> None:
    assert specific_character_set("UNICODE UTF-8") == ("ISO_IR 192",)
    assert specific_character_set("8859/1") == ("ISO_IR 100",)
    assert specific_character_set("ISO IR87") == ("", "ISO 2022 IR 87")
    assert specific_character_set("") == ()
    assert specific_character_set("ASCII", ["Doe^John"]) == ()


def test_falls_back_to_utf8_when_the_declared_set_cannot_carry_the_values() -> None:
    assert specific_character_set("", ["Müller"]) == ("ISO_IR 192",)
    assert specific_character_set("8859/1", ["山田"]) == ("ISO_IR 192",)
    assert specific_character_set("no such charset") == ("ISO_IR 192",)


def test_xpn_to_pn_reorders_prefix_and_suffix_and_drops_trailing_empties() -> None:
    name = PersonName("Doe", "John", "Q", suffix="Jr", prefix="Dr")
    assert pn_from_xpn(name) == "Doe^John^Q^Dr^Jr"
    assert pn_from_xpn(PersonName("Doe")) == "Doe"
    assert pn_from_xpn(PersonName("A^B=C")) == "A B C"


def test_component_groups() -> None:
    alpha, ideo, phon = (PersonName("Yamada", "Tarou"), PersonName("山田", "太郎"),
                         PersonName("やまだ", "たろう"))
    assert pn_from_xpn(alpha, ideo, phon) == "Yamada^Tarou=山田^太郎=やまだ^たろう"
    assert pn_from_xpn(alpha, None, phon) == "Yamada^Tarou==やまだ^たろう"
    assert pn_from_xpn(alpha, ideo) == "Yamada^Tarou=山田^太郎"


def test_xcn_clinician_names() -> None:
    assert pn_from_xcn("1234^Smith^Anna^^^Dr") == "Smith^Anna^^Dr"
    assert pn_from_xcn("^Tech^Tina") == "Tech^Tina"
    assert pn_from_xcn("Smith^Anna") == "Smith^Anna"
    assert pn_from_xcn("") == ""
