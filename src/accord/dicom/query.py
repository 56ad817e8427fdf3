"""C-FIND identifier matching for the worklist (DICOM PS3.4 C.2.2.2).

Rules: pure; a query is compiled once per C-FIND and then run against many items.
- Universal matching (C.2.2.2.3): a zero-length key, or a lone ``*``, matches everything.
- Single value matching (C.2.2.2.1): exact and case-sensitive, except PN.
- Wildcard matching (C.2.2.2.4): ``*`` any run, ``?`` one character, for text VRs.
- Range matching (C.2.2.2.5): ``A-B``, ``-B``, ``A-`` for DA, TM, DT; a date key and a time
  key of the same step are combined into one date-time range (C.2.2.2.5.1).
- UID list matching (C.2.2.2.2): backslash-separated UIDs, any may match.
- Sequence matching (C.2.2.2.6): the query item's keys must all match one candidate item;
  the Scheduled Procedure Step Sequence is matched this way.
- PN as modalities use it: case-insensitive, either on the whole value or component by
  component (family ^ given ...), any component group (alphabetic, ideographic, phonetic)
  when the query has one; trailing components the query leaves out are not compared.
- The response holds only the requested keys (C.4.1.1.3.2), plus Specific Character Set.
Bad input (a malformed range) is an outcome: :class:`QueryRejected`, answered 0xA900.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from accord.dicom.received import unreadable

Filter = Callable[[Dataset], bool]

SPS_SEQUENCE = 0x00400100
STATION_AE = 0x00400001
SPS_START_DATE = 0x00400002
SPS_START_TIME = 0x00400003
MODALITY = 0x00080060
PATIENT_ID = 0x00100020
PATIENT_NAME = 0x00100010
ACCESSION = 0x00080050
_CHARSET = 0x00080005
_WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})


@dataclass(frozen=True, slots=True)
class Hints:
    """Exact keys the index can use to narrow candidates before full matching."""

    station: str | None = None
    modality: str | None = None
    accession: str | None = None
    patient_id: str | None = None
    date_from: str | None = None  # YYYYMMDD inclusive; None with date_to None = no date key
    date_to: str | None = None
    name_prefix: str | None = None  # casefolded literal start of a family name


@dataclass(frozen=True, slots=True)
class Query:
    """A compiled C-FIND identifier: filters over items and hints for the index."""

    identifier: Dataset
    filters: tuple[Filter, ...]
    hints: Hints = field(default_factory=Hints)
    subqueries: tuple[tuple[int, Query], ...] = ()  # compiled sequence keys, by tag

    def matches(self, candidate: Dataset) -> bool:
        """True when every key of the identifier matches ``candidate``."""
        return all(f(candidate) for f in self.filters)


@dataclass(frozen=True, slots=True)
class QueryRejected:
    """The identifier cannot be matched (PS3.4 C.4.1.1.4 status A900)."""

    reason: str
    status: int = 0xA900


def _values(elem: DataElement | None) -> list[str]:
    if elem is None or elem.value is None:
        return []
    value = elem.value
    if isinstance(value, MultiValue | list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip()
    return [text] if text else []


def _wildcard(pattern: str, flags: int = 0) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), flags | re.DOTALL)


def _text_filter(tag: int, patterns: list[str], wildcards: bool) -> Filter:
    if wildcards and any(c in p for p in patterns for c in "*?"):
        regexes = [_wildcard(p) for p in patterns]
        return lambda ds: any(r.fullmatch(v) for v in _values(ds.get(tag)) for r in regexes)
    wanted = frozenset(patterns)
    return lambda ds: any(v in wanted for v in _values(ds.get(tag)))


def _pn_group_matcher(group: str) -> Callable[[str], bool]:
    whole = _wildcard(group.casefold())
    comps = [_wildcard(c.casefold()) if c.strip("*") else None for c in group.split("^")]

    def match(candidate: str) -> bool:
        cand = candidate.casefold()
        if whole.fullmatch(cand):
            return True
        parts = [*cand.split("^"), *[""] * len(comps)]  # as many as the pattern has
        return all(r is None or r.fullmatch(parts[i]) for i, r in enumerate(comps))

    return match


def _pn_filter(tag: int, pattern: str) -> Filter:
    groups = pattern.split("=")
    matchers = [_pn_group_matcher(g) if g.strip("*") else None for g in groups]

    def match_value(value: str) -> bool:
        cand = value.split("=")
        if len(groups) == 1:
            m = matchers[0]
            return m is None or any(m(g) for g in cand if g)
        cand = [*cand, *[""] * len(matchers)]  # a pattern may hold more than 3 groups
        return all(m is None or m(cand[i]) for i, m in enumerate(matchers))

    return lambda ds: any(match_value(v) for v in _values(ds.get(tag)))


def _pad_time(value: str, high: bool) -> str:
    digits, _, frac = value.replace(":", "").partition(".")
    if high:
        return (digits + "235959"[len(digits):] if len(digits) < 2 else
                digits + "5959"[len(digits) - 2:]) + "." + (frac + "999999")[:6]
    return digits.ljust(6, "0") + "." + frac.ljust(6, "0")


def _range(value: str, vr: str) -> tuple[str, str] | None:
    """(low, high) inclusive, normalised for string comparison; None when malformed."""
    low, sep, high = value.partition("-") if vr != "DT" else _dt_split(value)
    if not sep:
        high = low
    for part in (low, high):
        if part and not re.fullmatch(r"[0-9:.+\-]+", part):
            return None
    if vr == "TM":
        return (_pad_time(low, False) if low else "", _pad_time(high, True) if high else "~")
    if vr == "DA" and any(p and len(p) != 8 for p in (low, high)):
        return None
    return (low, high or "~")


def _dt_split(value: str) -> tuple[str, str, str]:
    # A DT may carry a "-hhmm" offset; the range dash is the one not followed by 4 digits
    # at the end of a part, which for Accord's purposes is the first dash after 8+ digits.
    m = re.fullmatch(r"([0-9.+]*(?:[-+][0-9]{4})?)-([0-9.+\-]*)", value)
    return (m.group(1), "-", m.group(2)) if m else (value, "", "")


def _range_filter(tag: int, bounds: tuple[str, str], vr: str) -> Filter:
    low, high = bounds

    def match(ds: Dataset) -> bool:
        for v in _values(ds.get(tag)):
            key = _pad_time(v, False) if vr == "TM" else v
            if low <= key <= high:
                return True
        return False

    return match


def _datetime_filter(date: tuple[str, str], time: tuple[str, str]) -> Filter:
    # C.2.2.2.5.1: date and time combined, "A-B" on both spans from A's date+time to B's.
    low = (date[0] + time[0]) if date[0] else ""
    high = (date[1] + time[1]) if date[1] != "~" else "~"

    def match(ds: Dataset) -> bool:
        d = _values(ds.get(SPS_START_DATE))
        t = _values(ds.get(SPS_START_TIME))
        if not d:
            return False
        key = d[0] + _pad_time(t[0] if t else "000000", False)
        return low <= key <= high

    return match


def _key_filter(elem: DataElement) -> Filter | QueryRejected | None:
    """The filter for one non-sequence key; None for universal matching."""
    vr = str(elem.VR)
    values = _values(elem)
    if not values or values == ["*"]:
        return None
    if vr in ("DA", "TM", "DT"):
        bounds = _range(values[0], vr)
        if bounds is None:
            return QueryRejected(f"malformed {vr} range in {elem.keyword or elem.tag}")
        return _range_filter(elem.tag, bounds, vr)
    if vr == "PN":
        return _pn_filter(elem.tag, values[0])
    return _text_filter(elem.tag, values, vr in _WILDCARD_VRS)


def _sequence_filter(tag: int, sub: Query) -> Filter:
    return lambda ds: any(sub.matches(item) for item in (ds.get(tag).value if tag in ds else ()))


def _without(item: Dataset, tags: tuple[int, ...]) -> Dataset:
    copy = Dataset()
    for elem in item:
        if elem.tag not in tags:
            copy.add(elem)
    return copy


def _compile_sequence(elem: DataElement) -> Query | QueryRejected | None:
    """The sub-query of a sequence key (C.2.2.2.6); None when it is universal."""
    items = elem.value or []
    if not items:
        return None
    item: Dataset = items[0]
    combined = _combine_start(item) if elem.tag == SPS_SEQUENCE else None
    keys = _without(item, (SPS_START_DATE, SPS_START_TIME)) if combined else item
    sub = _compile(keys)
    if isinstance(sub, QueryRejected):
        return sub
    extra = (combined,) if combined is not None else ()
    return Query(item, sub.filters + extra, subqueries=sub.subqueries)


def compile_query(identifier: Dataset) -> Query | QueryRejected:
    """Compile a C-FIND identifier (PS3.4 C.2.2.2) into a :class:`Query`; an identifier
    that cannot be read is refused as "unable to process" (C.4.1.1.4, status C000)."""
    if (why := unreadable(identifier)) is not None:
        return QueryRejected(why, 0xC000)
    return _compile(identifier)


def _compile(identifier: Dataset) -> Query | QueryRejected:
    filters: list[Filter] = []
    subqueries: list[tuple[int, Query]] = []
    for elem in identifier:
        if elem.tag.element == 0 or elem.tag == _CHARSET:
            continue
        if elem.VR == "SQ":
            sub = _compile_sequence(elem)
            if isinstance(sub, QueryRejected):
                return sub
            if sub is not None:
                subqueries.append((int(elem.tag), sub))
                if sub.filters:
                    filters.append(_sequence_filter(elem.tag, sub))
            continue
        f = _key_filter(elem)
        if isinstance(f, QueryRejected):
            return f
        if f is not None:
            filters.append(f)
    return Query(identifier, tuple(filters), _hints(identifier), tuple(subqueries))


def _sps_item(identifier: Dataset) -> Dataset | None:
    seq = identifier.get(SPS_SEQUENCE)
    if seq is None or seq.VR != "SQ" or not seq.value:
        return None
    item: Dataset = seq.value[0]
    return item


def _combine_start(item: Dataset) -> Filter | None:
    """The combined date-time filter when both SPS start date and time are keys."""
    d, t = _values(item.get(SPS_START_DATE)), _values(item.get(SPS_START_TIME))
    if not d or not t or "*" in (d[0], t[0]):
        return None
    date, time = _range(d[0], "DA"), _range(t[0], "TM")
    if date is None or time is None:
        return None
    return _datetime_filter(date, time)


def _exact(elem: DataElement | None, wildcards: bool = True) -> str | None:
    values = _values(elem)
    if len(values) != 1 or (wildcards and any(c in values[0] for c in "*?")):
        return None
    return values[0]


def _hints(identifier: Dataset) -> Hints:
    item = _sps_item(identifier) or Dataset()
    date_from = date_to = None
    dates = _values(item.get(SPS_START_DATE))
    if dates and dates[0] != "*":
        bounds = _range(dates[0], "DA")
        if bounds is not None:
            date_from, date_to = bounds[0] or "", bounds[1]
    names = _values(identifier.get(PATIENT_NAME))
    prefix = re.split(r"[*?^=]", names[0], maxsplit=1)[0].strip().casefold() if names else ""
    return Hints(
        station=_exact(item.get(STATION_AE)),
        modality=_exact(item.get(MODALITY)),
        accession=_exact(identifier.get(ACCESSION)),
        patient_id=_exact(identifier.get(PATIENT_ID)),
        date_from=date_from,
        date_to=date_to,
        name_prefix=prefix or None,
    )


def worklist_keys(*, station: str = "", modality: str = "", date: str = "",
                  patient_id: str = "", accession: str = "", patient_name: str = "") -> Dataset:
    """An MWL identifier with the usual return keys (IHE RAD-5) and these match keys
    (empty = universal); ``date`` may be a range. For callers that are not modalities,
    e.g. ``GET /api/worklist?station=&modality=&date=``."""
    top = {"PatientName": patient_name, "PatientID": patient_id, "PatientBirthDate": "",
           "PatientSex": "", "AccessionNumber": accession, "StudyInstanceUID": "",
           "RequestedProcedureID": "", "RequestedProcedureDescription": ""}
    step = {"ScheduledStationAETitle": station, "Modality": modality,
            "ScheduledProcedureStepStartDate": date, "ScheduledProcedureStepStartTime": "",
            "ScheduledProcedureStepID": "", "ScheduledProcedureStepDescription": "",
            "ScheduledProcedureStepStatus": ""}
    ds, sps = Dataset(), Dataset()
    for keyword, value in top.items():
        setattr(ds, keyword, value)
    for keyword, value in step.items():
        setattr(sps, keyword, value)
    ds.ScheduledProcedureStepSequence = Sequence([sps])
    return ds


def response(query: Query, candidate: Dataset) -> Dataset:
    """The C-FIND pending response: the requested keys only, with the candidate's values
    (zero length where it has none), and the candidate's Specific Character Set."""
    out = Dataset()
    if _CHARSET in candidate:
        out.SpecificCharacterSet = candidate.SpecificCharacterSet
    subs = dict(query.subqueries)
    for elem in query.identifier:
        if elem.tag.element == 0 or elem.tag == _CHARSET:
            continue
        have = candidate.get(elem.tag)
        if elem.VR == "SQ":
            out.add_new(elem.tag, "SQ", _sequence_response(subs.get(int(elem.tag)), have))
        elif have is not None:
            out.add_new(elem.tag, have.VR, have.value)
        else:
            out.add_new(elem.tag, elem.VR, None)
    return out


def _sequence_response(sub: Query | None, have: DataElement | None) -> Sequence:
    # No item in the request, or an empty item: the whole sequence is returned.
    if have is None or have.VR != "SQ":
        return Sequence()
    if sub is None or len(sub.identifier) == 0:
        return Sequence(list(have.value))
    return Sequence([response(sub, i) for i in have.value if sub.matches(i)])
