"""Field comparisons for demographic matching: PID-5, -7, -8, -11, -13, -19, -6 side by side.

Rule: pure functions, no I/O. Demographics are normalised once into ``Features`` (upper-case
ASCII names, YYYYMMDD birth date, last seven phone digits...), then each comparison puts
a pair of values into one of a few ordered *levels*, strongest agreement first and plain
disagreement last, as Splink's comparison levels do. A missing value on either side is
level ``NULL`` (-1): it weighs nothing, so an empty field is never taken as disagreement.

Given and family names may have been typed into each other's place (PID-5.1 vs PID-5.2):
when the names disagree as written but agree crossed over, the crossed levels are used
and the pair is marked ``transposed``. Address and phone are ONE comparison (``contact``)
because a household shares both; ``distinct_people`` names the pairs whose given name
and birth date both disagree (housemates, not duplicates).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache
from typing import NamedTuple

import jellyfish
from rapidfuzz import fuzz
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from accord.workflow.identity.nicknames import are_nicknames
from accord.workflow.identity.placeholders import (
    is_placeholder_birth,
    is_placeholder_id,
    is_placeholder_name,
    is_placeholder_phone,
)
from accord.workflow.model import Demographics

NULL = -1  # a value is missing on one side: neutral weight
# Entries of each memo below: the common names and streets of a catchment, about a MB
# each. A larger memo keeps filling for hours with rare values and grows the process.
_CACHED = 1 << 12

# Comparison name -> its level labels, strongest agreement first, disagreement last.
COMPARISONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("family_name", ("exact", "close", "phonetic", "similar", "different")),
    ("given_name", ("exact", "nickname", "close", "phonetic", "similar", "different")),
    ("birth_date", ("exact", "day_month_swap", "one_digit", "year_off_by_one", "different")),
    ("sex", ("exact", "different")),
    ("contact", ("address_and_phone", "address", "phone", "same_area", "different")),
    ("national_id", ("exact", "one_edit", "different")),
    ("mothers_maiden_name", ("exact", "similar", "different")),
)
COMPARISON_NAMES: tuple[str, ...] = tuple(name for name, _ in COMPARISONS)

_CLOSE = 0.92  # Jaro–Winkler at or above: a typo away (Splink's default 0.92 level)
_SIMILAR = 0.80
_TYPO_MIN_LENGTH = 4  # shorter names one keystroke apart are often other names (ANN/ANA)
_NOT_LETTER = re.compile(r"[^A-Z ]+")
_NOT_ALNUM = re.compile(r"[^A-Z0-9]+")
_NOT_DIGIT = re.compile(r"[^0-9]+")
_STREET_WORDS = {
    "ST": "STREET", "STR": "STRASSE", "AVE": "AVENUE", "AV": "AVENUE", "RD": "ROAD",
    "DR": "DRIVE", "LN": "LANE", "BLVD": "BOULEVARD", "CT": "COURT", "PL": "PLACE",
    "SQ": "SQUARE", "HWY": "HIGHWAY", "APT": "APARTMENT", "STE": "SUITE",
    "PKWY": "PARKWAY", "TER": "TERRACE", "CIR": "CIRCLE", "BD": "BOULEVARD",
}


class Features(NamedTuple):
    """One person's demographics, normalised for comparison and blocking."""

    family: str
    given: str
    family_code: str  # metaphone of family
    given_code: str  # metaphone of given
    birth: str  # YYYYMMDD, or ""
    sex: str  # "M", "F", "O", or ""
    street: str
    postal: str
    city: str
    phone: str  # last seven digits, or ""
    national_id: str
    mothers_maiden: str
    suffix: str  # generational suffix (PID-5.4, or typed after the given name): JR, SR, II...


@lru_cache(maxsize=_CACHED)
def normalise_name(text: str) -> str:
    """Upper-case ASCII letters and single spaces (``Müller-Lüdenscheidt`` -> ``MULLER
    LUDENSCHEIDT``), so spelling variants of accents and hyphens compare equal."""
    folded = unicodedata.normalize("NFKD", text.replace("ß", "ss").replace("-", " "))
    ascii_only = folded.encode("ascii", "ignore").decode("ascii").upper()
    return " ".join(_NOT_LETTER.sub("", ascii_only).split())


@lru_cache(maxsize=_CACHED)
def phonetic(name: str) -> str:
    """Metaphone code of a normalised name (jellyfish), for the ``phonetic`` levels."""
    return jellyfish.metaphone(name) if name else ""


@lru_cache(maxsize=_CACHED)
def soundex(name: str) -> str:
    """Soundex code of a normalised name, for blocking keys."""
    return jellyfish.soundex(name) if name else ""


def _street(text: str) -> str:
    words = _NOT_ALNUM.sub(" ", normalise_name_keep_digits(text)).split()
    return " ".join(_STREET_WORDS.get(word, word) for word in words)


@lru_cache(maxsize=_CACHED)
def normalise_name_keep_digits(text: str) -> str:
    """Like ``normalise_name`` but digits stay (house numbers, postal codes)."""
    folded = unicodedata.normalize("NFKD", text.replace("ß", "ss"))
    return folded.encode("ascii", "ignore").decode("ascii").upper()


def _sex(value: str) -> str:
    code = value.strip().upper()[:1]
    return code if code in ("M", "F", "O") else ""  # U, A, N, "": unknown, compare as missing


_SUFFIXES = {"JR": "JR", "JUNIOR": "JR", "SR": "SR", "SENIOR": "SR", "II": "II",
             "III": "III", "IV": "IV", "2ND": "II", "3RD": "III"}


def _name(text: str) -> str:
    name = normalise_name(text)
    return "" if is_placeholder_name(name) else name


def _given_and_suffix(given_all: str, suffix_field: str) -> tuple[str, str]:
    """The first given name, and the generational suffix from PID-5.4 or, when a
    registrar typed it there, from the end of the given names ("JOHN JR")."""
    words = given_all.split()
    suffix = _SUFFIXES.get(normalise_name_keep_digits(suffix_field).replace(".", "").strip(), "")
    if len(words) > 1 and words[-1] in _SUFFIXES:
        suffix = suffix or _SUFFIXES[words[-1]]
        words = words[:-1]
    given = words[0] if words else ""
    return ("" if is_placeholder_name(" ".join(words)) else given), suffix


def features(demographics: Demographics) -> Features:
    """Normalise demographics once; everything downstream compares ``Features``.
    Placeholder values (:mod:`.placeholders`) become missing: they weigh nothing."""
    name = demographics.name
    family = _name(name.family)
    given, suffix = _given_and_suffix(normalise_name(name.given), name.suffix)
    birth = _birth(demographics.birth_date)
    address = demographics.address
    phone = _NOT_DIGIT.sub("", demographics.phone)
    phone = phone[-7:] if len(phone) >= 7 else ""
    postal = _NOT_ALNUM.sub("", address.postal_code.upper())
    if len(postal) == 9 and postal.isdigit():
        postal = postal[:5]  # ZIP+4: the ZIP is what registrations agree on
    national_id = _NOT_ALNUM.sub("", demographics.national_id.upper())
    return Features(
        family=family,
        given=given,
        family_code=phonetic(family),
        given_code=phonetic(given),
        birth="" if is_placeholder_birth(birth) else birth,
        sex=_sex(demographics.sex),
        street=_street(" ".join(p for p in (address.street, address.other) if p)),
        postal=postal,
        city=normalise_name(address.city),
        phone="" if is_placeholder_phone(phone) else phone,
        national_id="" if is_placeholder_id(national_id) else national_id,
        mothers_maiden=_name(demographics.mothers_maiden_name),
        suffix=suffix,
    )


def _birth(value: date | None) -> str:
    return f"{value.year:04d}{value.month:02d}{value.day:02d}" if value is not None else ""


def one_edit(a: str, b: str) -> bool:
    """Same length and one character replaced, or two neighbours swapped (``1234``/``1243``)."""
    if len(a) != len(b) or a == b:
        return False
    # Counted in C first: most pairs (birth dates of a lookup's candidates) differ in
    # more than two places, and only a pair differing in exactly two needs the places.
    differing = sum(map(str.__ne__, a, b))
    if differing != 2:
        return differing == 1
    i = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
    return a[i + 1] != b[i + 1] and a[i] == b[i + 1] and a[i + 1] == b[i]


def one_typo(a: str, b: str) -> bool:
    """One keystroke apart (a letter replaced, added, dropped, or two neighbours swapped:
    Damerau–Levenshtein distance 1), both names at least four letters long. Jaro–Winkler
    weighs the first letters most, so a typo there (AENRY/HENRY 0.87) falls below its
    close level although it is the same single slip."""
    if min(len(a), len(b)) < _TYPO_MIN_LENGTH:
        return False
    return DamerauLevenshtein.distance(a, b, score_cutoff=1) == 1


def jaro_winkler(a: str, b: str) -> float:
    """Jaro–Winkler similarity, rounded to nine decimals: the formula's thirds and tenths
    come out a rounding error below a level's bound in floating point (AMY/AXY is 0.8
    exactly, computed as 0.7999999999999999), and a level must not hang on that."""
    return round(JaroWinkler.similarity(a, b), 9)


# The name and street comparisons are memoised: a lookup's candidates share the values
# they were blocked on (a surname's soundex, a street), and a skewed population's common
# names meet again lookup after lookup, so most pairs were compared before.
@lru_cache(maxsize=_CACHED)
def compare_family(a: str, b: str, code_a: str, code_b: str) -> int:
    """Family name (PID-5.1): exact, Jaro–Winkler ≥ 0.92, one typo or one name inside a
    double name, same metaphone, Jaro–Winkler ≥ 0.80, different."""
    if not a or not b:
        return NULL
    if a == b:
        return 0
    similarity = jaro_winkler(a, b)
    if similarity >= _CLOSE or one_typo(a, b) or _one_part_of_other(a, b):
        return 1
    if code_a == code_b:
        return 2
    return 3 if similarity >= _SIMILAR else 4


def _one_part_of_other(a: str, b: str) -> bool:
    if " " not in a and " " not in b:
        return False
    return set(a.split()) <= set(b.split()) or set(b.split()) <= set(a.split())


@lru_cache(maxsize=_CACHED)
def compare_given(a: str, b: str, code_a: str, code_b: str) -> int:
    """Given name (PID-5.2): exact, nickname (Bill/William), Jaro–Winkler ≥ 0.92 or one
    typo, same metaphone, Jaro–Winkler ≥ 0.80, an initial of the other or a short name's
    slip (``_short_slip``), different."""
    if not a or not b:
        return NULL
    if a == b:
        return 0
    if are_nicknames(a, b):
        return 1
    similarity = jaro_winkler(a, b)
    if similarity >= _CLOSE or one_typo(a, b):
        return 2
    if code_a == code_b:
        return 3
    initial = min(len(a), len(b)) == 1 and a[0] == b[0]
    if similarity >= _SIMILAR or initial or _short_slip(a, b):
        return 4
    return 5


def _short_slip(a: str, b: str) -> bool:
    """A name of under four letters with a letter dropped or two neighbours swapped
    (AMY/AY, IAN/AIN): a slip far more often than another name, yet Jaro–Winkler puts
    it under its similar level, and read as different it would make one person's
    records twins. A letter replaced is left out: short names one letter apart are
    often other names (TOM/TIM)."""
    if min(len(a), len(b)) < 2 or max(len(a), len(b)) >= _TYPO_MIN_LENGTH:
        return False
    if len(a) == len(b):
        return one_edit(a, b) and sorted(a) == sorted(b)
    return DamerauLevenshtein.distance(a, b, score_cutoff=1) == 1


def _names_agreeing(family: int, given: int) -> int:
    """How many of the two names agree at a typo's distance or closer."""
    return int(0 <= family <= 1) + int(0 <= given <= 2)


def compare_names(a: Features, b: Features) -> tuple[int, int, bool]:
    """Family and given levels, trying the crossed-over reading when the family names do
    not agree as written. The crossed reading is used when more names agree crossed
    over than as written and neither crossed name plainly disagrees: a registration
    with one name only, in the other field (``REED JAMES`` / ``- REED``), or with the
    other name cut to an initial (``LANG VANESSA`` / ``V LANG``); on a tie, when the
    crossed levels are closer in sum. One name shared crossed over with the other
    plainly different is left as written: a married name typed crossed over looks
    exactly like a twin registered crossed over (``ROGERS ALEXA`` / ``TRACY ROGERS``).

    Crossed over, either record may be the one whose fields are right, and the family
    and given comparisons differ (an initial agrees only as a given name): both
    readings are tried, so a pair reads the same whichever of the two came first."""
    family = compare_family(a.family, b.family, a.family_code, b.family_code)
    given = compare_given(a.given, b.given, a.given_code, b.given_code)
    if 0 <= family < 3 or (family == NULL and given == NULL):
        return family, given, False
    straight = _names_agreeing(family, given)
    best: tuple[int, int] | None = None
    # a's fields as labelled, then b's
    for crossed_family, crossed_given in (
            (compare_family(a.family, b.given, a.family_code, b.given_code),
             compare_given(a.given, b.family, a.given_code, b.family_code)),
            (compare_family(a.given, b.family, a.given_code, b.family_code),
             compare_given(a.family, b.given, a.family_code, b.given_code))):
        if not _crossed_reading(family, given, crossed_family, crossed_given, straight):
            continue
        if best is None or _closer((crossed_family, crossed_given), best):
            best = crossed_family, crossed_given
    if best is not None:
        return best[0], best[1], True
    return family, given, False


def _crossed_reading(family: int, given: int, crossed_family: int, crossed_given: int,
                     straight: int) -> bool:
    """Whether the crossed levels are the better reading (``compare_names``' rules)."""
    crossed = _names_agreeing(crossed_family, crossed_given)
    if crossed > straight and crossed_family != 4 and crossed_given != 5:
        return True
    return (crossed == straight and NULL not in (family, given, crossed_family, crossed_given)
            and crossed_family <= 1 and crossed_given <= 4
            and crossed_family + crossed_given < family + given)


def _closer(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """More names agreeing, then the smaller sum of the levels present, then the family
    names agreeing; a tie keeps the first reading. A registration with one name only,
    typed in the given field, that the other record holds as its family name (``-
    LAWSON`` / ``LAWSON AMANDA``) reads as the family name: a household shares it, and
    read as a given name it would escape the household's rules (a child registered
    under the family name alone would look like its sister's record)."""
    def rank(levels: tuple[int, int]) -> tuple[int, int, bool]:
        return (-_names_agreeing(*levels), sum(level for level in levels if level != NULL),
                not 0 <= levels[0] <= 1)
    return rank(a) < rank(b)


def compare_birth_date(a: str, b: str) -> int:
    """Birth date (PID-7) as YYYYMMDD: exact, day and month swapped (04/03 vs 03/04), one
    digit typed wrong or two neighbours swapped, year off by one, different."""
    if not a or not b:
        return NULL
    if a == b:
        return 0
    if a[:4] == b[:4] and a[4:6] == b[6:8] and a[6:8] == b[4:6]:
        return 1
    if one_edit(a, b):
        return 2
    if a[4:] == b[4:] and abs(int(a[:4]) - int(b[:4])) == 1:
        return 3
    return 4


def compare_exact(a: str, b: str) -> int:
    """Two levels: equal, different (PID-8 sex)."""
    if not a or not b:
        return NULL
    return 0 if a == b else 1


@lru_cache(maxsize=_CACHED)  # a lookup's candidates at one home compare the same streets
def _house_number(street: str) -> str:
    """The first word of a street holding a digit (the house number), or ""."""
    return next((word for word in street.split() if any(c.isdigit() for c in word)), "")


@lru_cache(maxsize=_CACHED)
def compare_street(a: str, b: str) -> int:
    """Street (PID-11.1/.2) by token-set similarity: ≥ 95 same, ≥ 80 similar. Two
    different house numbers are different homes however alike the rest (neighbours on
    one street: ``12 KING DRIVE`` / ``66 KING DRIVE`` is 87 by token set)."""
    if not a or not b:
        return NULL
    if a == b:
        return 0
    house_a, house_b = _house_number(a), _house_number(b)
    if house_a and house_b and house_a != house_b:
        return 2
    ratio = fuzz.token_set_ratio(a, b)
    if ratio >= 95:
        return 0
    return 1 if ratio >= 80 else 2


def compare_locality(a: Features, b: Features) -> int:
    """Postal code (PID-11.5), else city (PID-11.3), else the postal area (first 3)."""
    has_a = a.postal or a.city
    has_b = b.postal or b.city
    if not has_a or not has_b:
        return NULL
    if a.postal and a.postal == b.postal:
        return 0
    if a.city and a.city == b.city:
        return 1
    if len(a.postal) >= 3 and a.postal[:3] == b.postal[:3]:
        return 2
    return 3


def compare_one_edit(a: str, b: str) -> int:
    """Phone (PID-13, last 7 digits) or national ID (PID-19): exact, one edit, different."""
    if not a or not b:
        return NULL
    if a == b:
        return 0
    return 1 if one_edit(a, b) else 2


def compare_maiden(a: str, b: str) -> int:
    """Mother's maiden name (PID-6): exact, Jaro–Winkler ≥ 0.90, different."""
    if not a or not b:
        return NULL
    if a == b:
        return 0
    return 1 if jaro_winkler(a, b) >= 0.90 else 2


def compare_contact(a: Features, b: Features) -> int:
    """Address (PID-11) and phone (PID-13) as ONE comparison: a household shares both,
    so counting them as independent evidence would make a spouse look like a duplicate.
    Levels: address and phone agree, address agrees, phone agrees, same postal code or
    city only, different. "Different" is a different home: without an address on one
    side, a phone that differs is only a new number (a duplicate registered years
    later has one about as often as not) and compares as missing, not as a move."""
    street = compare_street(a.street, b.street)
    locality = compare_locality(a, b)
    phone = compare_one_edit(a.phone, b.phone)
    if street == NULL and locality == NULL and phone in (NULL, 2):
        return NULL
    address = (street == 0 and locality in (0, 1, NULL)) or (street == 1 and locality in (0, 1))
    if phone in (0, 1):
        return 0 if address else 2
    if address:
        return 1
    return 3 if locality in (0, 1) else 4


_GIVEN_DIFFERENT = 5
_BIRTH_DIFFERENT = 4


def distinct_people(levels: tuple[int, ...]) -> bool:
    """True when given name AND birth date both plainly disagree: a spouse, a child or a
    sibling, whatever the shared family name, address, phone and mother's maiden name
    say. Fellegi–Sunter treats those household fields as independent evidence and
    would add them up; this rule stops such pairs from reaching the review queue (a true
    duplicate with both fields wrong is rare: m(given) · m(birth) ≈ 0.0002 measured)."""
    return levels[1] == _GIVEN_DIFFERENT and levels[2] == _BIRTH_DIFFERENT


def compare(a: Features, b: Features) -> tuple[tuple[int, ...], bool]:
    """The comparison vector of a pair, in ``COMPARISONS`` order, and ``transposed``."""
    family, given, transposed = compare_names(a, b)
    return complete(a, b, family, given, compare_birth_date(a.birth, b.birth)), transposed


def complete(a: Features, b: Features, family: int, given: int, birth: int) -> tuple[int, ...]:
    """The comparison vector with the names and birth date already compared: a lookup
    compares those first, since with the national ID they alone can rule a pair out
    (``distinct_people``), as they do most of a lookup's candidates."""
    return (
        family,
        given,
        birth,
        compare_exact(a.sex, b.sex),
        compare_contact(a, b),
        compare_one_edit(a.national_id, b.national_id),
        compare_maiden(a.mothers_maiden, b.mothers_maiden),
    )
