"""Default and placeholder values: what a registrar types when the real value is unknown.

Rule: pure functions, no I/O. A placeholder (a phone of all zeros or nines, a national
ID of one repeated digit, "UNKNOWN" for a name, "BABY GIRL" for a newborn not yet named,
1900-01-01 for a birth date, the facility's own switchboard number) is shared by
hundreds of unrelated patients: agreeing on it says nothing about being one person, so
it is read as missing (weight 0), never as agreement. The values are compared after
normalisation (``compare.features``): upper-case letters for names, digits for phones.
"""

from __future__ import annotations

from collections.abc import Collection

# Names registrars type for a person whose name is not known (yet).
PLACEHOLDER_NAMES = frozenset({
    "UNKNOWN", "UNK", "UNKN", "NONE", "NULL", "NA", "N A", "NOT GIVEN", "NOTGIVEN",
    "NO NAME", "NONAME", "TEST", "TESTPATIENT", "TEST PATIENT", "PATIENT", "XXX", "XX",
    "JOHN DOE", "JANE DOE", "BABY", "BABY BOY", "BABY GIRL", "BABYBOY", "BABYGIRL",
    "INFANT", "NEWBORN", "NB", "BB", "BG", "TWIN A", "TWIN B", "TRAUMA", "ANONYMOUS",
})
# Birth dates (YYYYMMDD) that stand for "unknown" in registration systems.
PLACEHOLDER_BIRTH_DATES = frozenset({"19000101", "18000101", "18500101", "19010101"})
_SEQUENCES = "01234567890", "98765432109"


def placeholder_digits(digits: str) -> bool:
    """A phone or ID number of one repeated digit (``0000000``, ``9999999``) or a run
    (``1234567``): a default, not a number anyone has."""
    if not digits:
        return False
    if len(set(digits)) == 1:
        return True
    return len(digits) >= 5 and any(digits in run for run in _SEQUENCES)


def is_placeholder_name(name: str) -> bool:
    """A normalised name (upper-case letters, single spaces) that means "not known"."""
    return name in PLACEHOLDER_NAMES or (len(name) > 2 and len(set(name)) == 1)


def is_placeholder_phone(phone: str, own: Collection[str] = ()) -> bool:
    """A phone's digits (the last seven, as compared) that are a default, or one of the
    facility's own numbers (``own``, the same last seven digits)."""
    return placeholder_digits(phone) or phone in own


def is_placeholder_id(value: str) -> bool:
    """A national ID (letters and digits) that is a default: one repeated character or a
    digit run (``000000000``, ``123456789``), or a placeholder word."""
    if not value:
        return False
    return len(set(value)) == 1 or (value.isdigit() and placeholder_digits(value)) or (
        value in PLACEHOLDER_NAMES)


def is_placeholder_birth(birth: str) -> bool:
    """A YYYYMMDD birth date that stands for "unknown"."""
    return birth in PLACEHOLDER_BIRTH_DATES
