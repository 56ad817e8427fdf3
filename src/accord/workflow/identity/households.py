"""Households: relatives who look like duplicates, told apart from them.

Rule: pure, no I/O. Fellegi–Sunter adds up agreements as if fields were independent,
but relatives share the fields a household shares (family name, address, phone) and
some share more: twins a birth date, a namesake son the given name too. Read from the
comparison levels and the two sides' features:

- ``twin``: the same birth date and family name, different given names (the address
  agreeing or not). Not a duplicate unless the registrar typed a wholly different given
  name: its score is capped below the default review threshold (``TWIN_CAP``: a site
  that lowers the threshold reviews them last), and it is not proposed at all when the
  identifiers say two people (sex or national ID plainly different). The family name
  left out on one side counts as agreeing when the two share a home. Given names that
  are alike but not the same (FRANCIS/FRANCES) with the sex plainly different are a
  boy and a girl born together: capped as twins.
- ``sibling``: the same family name and home (the address agreeing), given names that
  plainly differ, birth dates near but not equal (a digit off, a year off, day and
  month swapped): a brother or sister, whose birth dates run close, far likelier than
  one person with both the given name and the birth date mistyped. Capped as a twin
  (``SIBLING_CAP``).
- ``namesake``: generational suffixes that differ (PID-5.4: JR and SR, or one side
  only) with birth dates that plainly differ, or whose years are ``GENERATION`` apart:
  father and son, never one person. A birth date a keystroke off within a few years
  (1948/1944) with the suffix left out on one side is one man's record typed twice.
  Both suffixes given and different (JR and SR) with the birth date left out: two men.
- ``parent_child``: birth dates that plainly differ, their years ``GENERATION`` or more
  apart (a mother and her newborn, a namesake father and son without suffixes): not
  proposed. A birth date that differs in one digit (1960/1980) is a typo, not a
  generation: a parent and child born on the same day and month a decade-digit apart
  are far rarer than a mistyped year. So is a year no one registered can be born in
  (``PLAUSIBLE_YEARS``: 1799, 6000, 9189): it is counted as no years apart.

A national ID (PID-19) that agrees, or is one typo away, outweighs all of these: the
identifier says one person, whatever the birth dates and given names say (a record
whose birth date was replaced is still that person's record).

A relation returns a cap on the score (log2 odds) or ``DISTINCT`` (not proposed).
"""

from __future__ import annotations

from collections.abc import Sequence

from accord.workflow.identity.compare import COMPARISON_NAMES, NULL, Features

GENERATION = 15  # years between birth dates that make a parent and a child
PLAUSIBLE_YEARS = range(1850, 2150)  # birth years a living patient may have
TWIN_CAP = -1.0  # probability 0.33: under the default threshold, above a lowered one
SIBLING_CAP = TWIN_CAP
DISTINCT = float("-inf")
_FAMILY = COMPARISON_NAMES.index("family_name")
_GIVEN = COMPARISON_NAMES.index("given_name")
_BIRTH = COMPARISON_NAMES.index("birth_date")
_NATIONAL_ID = COMPARISON_NAMES.index("national_id")
_SEX = COMPARISON_NAMES.index("sex")
_CONTACT = COMPARISON_NAMES.index("contact")
_ID_DIFFERENT = 2
_BIRTH_NEAR = (1, 2, 3)  # day and month swapped, one digit, the year off by one
_SAME_HOME = (0, 1)  # contact levels: the address agrees (with the phone or without)
_GIVEN_DIFFERENT = 5
_BIRTH_DIFFERENT = 4


def relation(a: Features, b: Features, levels: Sequence[int]) -> tuple[str, float | None]:
    """The household relation of a pair, and the cap on its score (``DISTINCT``: not a
    duplicate at all; None: no relation, no cap)."""
    if levels[_NATIONAL_ID] in (0, 1):
        return "", None
    birth = levels[_BIRTH]
    if a.suffix != b.suffix and birth not in (0, -1) and (
            birth == _BIRTH_DIFFERENT or _years_apart(a.birth, b.birth) >= GENERATION):
        return "namesake", DISTINCT
    if birth == NULL and a.suffix and b.suffix and a.suffix != b.suffix:
        return "namesake", DISTINCT  # JR and SR, no birth date to say otherwise: two men
    if birth == _BIRTH_DIFFERENT and _years_apart(a.birth, b.birth) >= GENERATION:
        return "parent_child", DISTINCT
    # the family name left out on one side, a shared home says the household's
    family = levels[_FAMILY] in (0, 1) or (
        levels[_FAMILY] == NULL and levels[_CONTACT] in _SAME_HOME)
    if birth == 0 and family and levels[_GIVEN] == _GIVEN_DIFFERENT:
        two = levels[_SEX] == 1 or levels[_NATIONAL_ID] == _ID_DIFFERENT
        return "twin", DISTINCT if two else TWIN_CAP
    if birth == 0 and levels[_FAMILY] in (0, 1) and levels[_GIVEN] > 0 and levels[_SEX] == 1:
        return "twin", TWIN_CAP  # a boy and a girl with alike names (FRANCIS/FRANCES)
    if (birth in _BIRTH_NEAR and levels[_FAMILY] in (0, 1)
            and levels[_GIVEN] == _GIVEN_DIFFERENT and levels[_CONTACT] in _SAME_HOME):
        return "sibling", SIBLING_CAP
    return "", None


def _years_apart(a: str, b: str) -> int:
    """Years between two birth dates; 0 when either year is not a plausible birth year."""
    if len(a) < 4 or len(b) < 4 or not (a[:4].isdigit() and b[:4].isdigit()):
        return 0
    first, second = int(a[:4]), int(b[:4])
    if first not in PLAUSIBLE_YEARS or second not in PLAUSIBLE_YEARS:
        return 0
    return abs(first - second)
