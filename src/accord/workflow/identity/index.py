"""Blocking index of patient demographics: find and score the few plausible duplicates.

Rule: pure, in memory, no I/O. Comparing a registration with every stored patient is
quadratic, so patients are filed under *blocking keys* (soundex of the family name with
the birth year and with the birth month and day, family with given name, the birth
date, given name with postal code, phone, national ID, house number with street), and
a new registration is compared only with the patients sharing at least one key (and
soundex of the family name with the postal code). Keys are widened
on the query side for the errors blocking would
otherwise miss: the day/month-swapped birth date and the crossed-over given/family name.
Nicknames share a key through their table group (Bill and William block together).

Memory, for millions of patients (about 600 MB per million, measured in bench/identity.py):
one packed string per patient (its normalised features joined by a separator) instead of
a dozen string objects, slots as small ints, each key string held once by its rule's
dict, and posting lists that are a plain int for the (common) single patient and an
``array('i')`` (4 bytes a patient) otherwise. Removed slots are reused.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping

from accord.workflow.identity.compare import (
    Features,
    compare,
    distinct_people,
    features,
    soundex,
)
from accord.workflow.identity.fellegi_sunter import DEFAULT_WEIGHTS, MatchResult, Weights, explain
from accord.workflow.identity.nicknames import canonical_given
from accord.workflow.model import Demographics, Patient

BLOCKING_RULES: tuple[str, ...] = (
    "family_year",  # soundex(family) + birth year
    "family_given",  # soundex(family) + soundex(given, nickname group)
    "birth_date",
    "given_postal",  # soundex(given, nickname group) + postal code
    "phone",
    "national_id",
    "family_postal",  # soundex(family) + postal code: given name and birth date both wrong
    "street",  # house number and street: both names and the birth date mistyped or left out
    "family_birthday",  # soundex(family) + birth month and day: the birth year mistyped
)
# A street key longer than this is cut (the store holds keys of up to 255 characters,
# and a key must read the same when filed and when looked up).
_STREET_KEY_LENGTH = 60
_SEP = "\x1f"  # unit separator: cannot occur in normalised features


def _given_key(given: str) -> str:
    return soundex(canonical_given(given)) if given else ""


def _street_key(street: str) -> str:
    """A home's key: the normalised street with its house number. Without a number it
    names a whole street (hundreds of people), so there is no key."""
    if not any(c.isdigit() for c in street) or not any(c.isalpha() for c in street):
        return ""
    return street[:_STREET_KEY_LENGTH]


def blocking_keys(f: Features) -> tuple[str, ...]:
    """The key of ``f`` under each rule of ``BLOCKING_RULES`` ("" when a part is missing)."""
    family = soundex(f.family)
    given = _given_key(f.given)
    year = f.birth[:4]
    return (
        f"{family}{year}" if family and year else "",
        f"{family}{given}" if family and given else "",
        f.birth,
        f"{given}{f.postal}" if given and f.postal else "",
        f.phone,
        f.national_id,
        f"{family}{f.postal}" if family and f.postal else "",
        _street_key(f.street),
        f"{family}{f.birth[4:]}" if family and f.birth else "",
    )


def query_keys(f: Features) -> tuple[tuple[str, ...], ...]:
    """Keys to look up for a registration: its own plus the widened ones per rule."""
    own = blocking_keys(f)
    keys: list[tuple[str, ...]] = [(key,) if key else () for key in own]
    if f.birth:
        swapped = f.birth[:4] + f.birth[6:8] + f.birth[4:6]
        if swapped != f.birth:
            keys[2] = (*keys[2], swapped)
            if f.family:
                keys[8] = (*keys[8], f"{soundex(f.family)}{swapped[4:]}")
    if f.family and f.given:  # the crossed-over reading of PID-5
        crossed_family = soundex(f.given)
        crossed_given = _given_key(f.family)
        if f.birth:
            keys[0] = (*keys[0], f"{crossed_family}{f.birth[:4]}")
            keys[8] = (*keys[8], f"{crossed_family}{f.birth[4:]}")
        keys[1] = (*keys[1], f"{crossed_family}{crossed_given}")
        if f.postal:
            keys[3] = (*keys[3], f"{crossed_given}{f.postal}")
            keys[6] = (*keys[6], f"{crossed_family}{f.postal}")
    return tuple(keys)


def stored_keys(f: Features) -> tuple[str, ...]:
    """A patient's blocking keys as a store files them: ``"<rule number>:<key>"``."""
    return tuple(f"{n}:{k}" for n, k in enumerate(blocking_keys(f)) if k)


_STREET_RULE = BLOCKING_RULES.index("street")


def home_key(f: Features) -> str:
    """The stored-form key of a patient's home (house number and street), whose count
    is how many stored patients live there; "" without a house number."""
    key = _street_key(f.street)
    return f"{_STREET_RULE}:{key}" if key else ""


def lookup_keys(f: Features) -> tuple[str, ...]:
    """The stored-form keys to look up for a registration (its own and the widened)."""
    return tuple(sorted({f"{n}:{k}" for n, keys in enumerate(query_keys(f)) for k in keys if k}))


MAX_BLOCK = 100  # a posting list longer than this is not used to fetch candidates
MAX_CANDIDATES = 100  # patients fetched per lookup, at most


def lookup_plan(
    keys: Iterable[str], counts: Mapping[str, int], *, max_block: int = MAX_BLOCK,
    limit: int = MAX_CANDIDATES,
) -> tuple[str, ...]:
    """The keys worth fetching candidates by, rarest first, within ``limit``: a key no
    patient holds is skipped; a key held by more than ``max_block`` patients (a common
    surname and birth year, a default phone) is skipped, because it finds thousands and
    the other keys find the duplicate anyway; then keys are taken while their posting
    lists fit the budget (their sum, an upper bound of the distinct patients)."""
    held = sorted((counts.get(k, 0), k) for k in keys)
    chosen: list[str] = []
    budget = limit
    for count, key in held:
        if count <= 0 or count > max_block:
            continue
        if count > budget:
            break
        chosen.append(key)
        budget -= count
    return tuple(chosen)


def pack(f: Features) -> str:
    """One string per stored patient: cheaper than a tuple of a dozen strings."""
    return _SEP.join(f)


def unpack(packed: str) -> Features:
    """Inverse of ``pack``."""
    return Features(*packed.split(_SEP))


class PatientIndex:
    """Stored patients' demographics under blocking keys, for candidate search and scoring.

    ``max_block`` skips posting lists larger than it at query time (a key as common as a
    popular surname with a popular given name says little and costs much); the other
    rules still find the duplicate. Tombstones (merged patients) are not indexed.
    """

    def __init__(self, weights: Weights = DEFAULT_WEIGHTS, *, max_block: int = 2000) -> None:
        self.weights = weights
        self.max_block = max_block
        self._ids: list[str | None] = []
        self._packed: list[str] = []
        self._slot: dict[str, int] = {}
        self._free: list[int] = []
        self._blocks: tuple[dict[str, int | array[int]], ...] = tuple(
            {} for _ in BLOCKING_RULES
        )

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, patient_id: object) -> bool:
        return patient_id in self._slot

    def add(self, patient: Patient) -> None:
        """File a patient (replacing its earlier demographics); tombstones are dropped."""
        if patient.id in self._slot:
            self.remove(patient.id)
        if patient.merged_into is not None:
            return
        f = features(patient.demographics)
        slot = self._free.pop() if self._free else len(self._ids)
        packed = pack(f)
        if slot == len(self._ids):
            self._ids.append(patient.id)
            self._packed.append(packed)
        else:
            self._ids[slot] = patient.id
            self._packed[slot] = packed
        self._slot[patient.id] = slot
        for block, key in zip(self._blocks, blocking_keys(f), strict=True):
            if key:
                _post(block, key, slot)

    def remove(self, patient_id: str) -> bool:
        """Forget a patient; False when it was not indexed."""
        slot = self._slot.pop(patient_id, None)
        if slot is None:
            return False
        f = unpack(self._packed[slot])
        for block, key in zip(self._blocks, blocking_keys(f), strict=True):
            if key:
                _unpost(block, key, slot)
        self._ids[slot] = None
        self._packed[slot] = ""
        self._free.append(slot)
        return True

    def _slots(self, f: Features) -> set[int]:
        found: set[int] = set()
        for block, keys in zip(self._blocks, query_keys(f), strict=True):
            for key in keys:
                posting = block.get(key)
                if posting is None:
                    continue
                if isinstance(posting, int):
                    found.add(posting)
                elif len(posting) <= self.max_block:
                    found.update(posting)
        return found

    def candidates(self, demographics: Demographics) -> tuple[str, ...]:
        """Ids of the patients sharing a blocking key with ``demographics`` (sorted)."""
        ids = self._ids
        return tuple(sorted(i for s in self._slots(features(demographics)) if (i := ids[s])))

    def scored(self, demographics: Demographics) -> Iterator[tuple[str, tuple[int, ...], bool]]:
        """Each candidate's id, comparison vector and ``transposed`` flag."""
        query = features(demographics)
        ids, packed = self._ids, self._packed
        for slot in self._slots(query):
            patient_id = ids[slot]
            if patient_id is not None:
                levels, transposed = compare(query, unpack(packed[slot]))
                yield patient_id, levels, transposed

    def match(
        self, demographics: Demographics, threshold: float = 0.5, *, exclude: str = ""
    ) -> list[MatchResult]:
        """Candidates whose match probability is at least ``threshold``, best first.

        ``exclude`` leaves one patient out (the registration itself, when re-checking a
        stored patient). The prior is taken for this index's size (``Weights.prior``).
        These are pairs for review, never merges.
        """
        weights = self.weights
        population = len(self._slot)
        results: list[MatchResult] = []
        for patient_id, levels, transposed in self.scored(demographics):
            if patient_id == exclude or distinct_people(levels):
                continue
            if weights.posterior(levels, population) >= threshold:
                results.append(explain(patient_id, levels, transposed, weights, population))
        results.sort(key=lambda r: (-r.score, r.patient_id))
        return results

    def add_all(self, patients: Iterable[Patient]) -> None:
        """``add`` each patient."""
        for patient in patients:
            self.add(patient)


def _post(block: dict[str, int | array[int]], key: str, slot: int) -> None:
    posting = block.get(key)
    if posting is None:
        block[key] = slot
    elif isinstance(posting, int):
        block[key] = array("i", (posting, slot))
    else:
        posting.append(slot)


def _unpost(block: dict[str, int | array[int]], key: str, slot: int) -> None:
    posting = block.get(key)
    if posting is None:
        return
    if isinstance(posting, int):
        if posting == slot:
            del block[key]
        return
    if slot in posting:
        posting.remove(slot)
    if len(posting) == 1:
        block[key] = posting[0]
