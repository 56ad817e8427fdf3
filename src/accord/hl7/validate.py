"""Field-level validation of a parsed message against a named profile.

Rules: pure; a problem is a value (``Problem``), never an exception; each carries the
HL7 table 0357 code an ACK would use (101 required field missing, 102 data type error,
103 table value not found, 100 segment problem, 202/203 unsupported processing/version
ID). Profiles are data (``accord.hl7.profiles``); every profile starts with ``basic``:

- MSH-3, 5, 7, 9, 10, 11, 12 valued (MSH-4 and MSH-6 only warned: many senders leave
  them empty), MSH-9 with a trigger event, a known MSH-12, MSH-11 in table 0103,
  MSH-15/16 in table 0155;
- segment IDs of three characters ``[A-Z][A-Z0-9]{2}``;
- TS/DTM, DT, TM, NM and SI values well formed, per the data types of ``spec``;
- fields the v2.5.1 definition marks required, valued (errors for v2.5 and v2.5.1,
  warnings for other versions, whose definitions differ);
- warnings the parser recorded (e.g. an MSH-18 that does not match the bytes).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Literal

from accord.hl7.dtm import parse_dtm
from accord.hl7.encoding import Encoding
from accord.hl7.message import HEADER_SEGMENTS, Message, Segment
from accord.hl7.profiles import (
    IHE_SWF,
    KNOWN_VERSIONS,
    TABLES,
    MessageRule,
    Need,
    ProfileSpec,
    TableCheck,
)
from accord.hl7.spec import PRIMITIVES, FieldSpec, known_segments, segment_fields

__all__ = ["PROFILES", "Problem", "validate"]

_HL7_NULL = '""'  # the explicit null value (§2.5.3): present, but not a value to check


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: severity, where (``"PID-3.4"``), table 0357 code, and why."""

    severity: Literal["error", "warning"]
    location: str
    code: str
    message: str

    def __str__(self) -> str:
        """``ERROR PID-3 101 patient identifier (PID-3) missing``, as ``accord validate``."""
        return f"{self.severity.upper()} {self.location or '-'} {self.code} {self.message}"


BASIC = ProfileSpec("basic", "MSH header, segment IDs, data type formats, required fields")

#: Profiles by name, for ``validate(msg, profile=...)`` and ``accord validate --profile``.
PROFILES: dict[str, ProfileSpec] = {p.name: p for p in (BASIC, IHE_SWF)}

_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
_DATE = re.compile(r"\d{4}(?:\d{2}(?:\d{2})?)?")
_TIME = re.compile(r"\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,4})?)?)?(?:[+-]\d{4})?")
_TIME_TYPES = frozenset({"TS", "DTM"})


def _valid(data_type: str, value: str) -> bool:
    """Whether a leaf ``value`` is well formed for a primitive ``data_type``."""
    if data_type in _TIME_TYPES:
        return parse_dtm(value) is not None
    if data_type == "DT":
        return _DATE.fullmatch(value) is not None and parse_dtm(value) is not None
    if data_type == "TM":
        return _TIME.fullmatch(value) is not None and int(value[:2]) < 24
    if data_type == "NM":
        return _NUMBER.fullmatch(value.strip()) is not None
    if data_type == "SI":
        return value.isdigit()
    return True


def _header(msg: Message) -> Iterator[Problem]:
    for n, what in ((3, "sending application"), (5, "receiving application"),
                    (7, "message date/time"), (9, "message type"), (10, "message control ID"),
                    (11, "processing ID"), (12, "version ID")):
        if not msg.get_raw(f"MSH-{n}"):
            yield Problem("error", f"MSH-{n}", "101", f"{what} (MSH-{n}) missing")
    for n, what in ((4, "sending facility"), (6, "receiving facility")):
        if not msg.get_raw(f"MSH-{n}"):
            yield Problem("warning", f"MSH-{n}", "101", f"{what} (MSH-{n}) missing")
    if msg.get("MSH-9.1") and msg.get("MSH-9.1") != "ACK" and not msg.get("MSH-9.2"):
        yield Problem("error", "MSH-9.2", "201", "message type has no trigger event (MSH-9.2)")
    version = msg.version
    if version and version not in KNOWN_VERSIONS:
        yield Problem("error", "MSH-12", "203", f"unknown HL7 version {version!r}")
    processing = msg.get("MSH-11.1")
    if processing and processing not in TABLES["0103"]:
        yield Problem("error", "MSH-11", "202", f"processing ID {processing!r} not in table 0103")
    for n in (15, 16):
        value = msg.get(f"MSH-{n}")
        if value and value not in TABLES["0155"]:
            yield Problem("error", f"MSH-{n}", "103", f"{value!r} not in table 0155")
    for text in msg.warnings:
        yield Problem("warning", "MSH-18" if "MSH-18" in text else "", "102", text)


def _where(seg_id: str, occurrence: int, total: int, rest: str) -> str:
    return f"{seg_id}[{occurrence}]-{rest}" if total > 1 else f"{seg_id}-{rest}"


def _leaves(seg: Segment, n: int, data_type: str, rep_sep: str) -> Iterator[tuple[str, str, str]]:
    """(field path, data type, value) of each leaf to check in field ``n`` of ``seg``."""
    raw = seg.get_raw(str(n))
    if not raw or raw == _HL7_NULL:
        return
    count = raw.count(rep_sep) + 1 if rep_sep else 1
    for r in range(1, count + 1):
        at = f"{n}[{r}]" if count > 1 else f"{n}"
        if data_type in PRIMITIVES or data_type in _TIME_TYPES:
            yield at, data_type, seg.get(f"{n}[{r}].1" if data_type == "TS" else f"{n}[{r}]")
            continue
        if data_type == "TQ":  # TQ-4/5 start and end (ORC-7, OBR-27: the schedule)
            for c in (4, 5):
                yield f"{at}.{c}", "TS", seg.get(f"{n}[{r}].{c}.1")


_FORMAT_TYPES = _TIME_TYPES | {"DT", "TM", "NM", "SI", "TQ"}


@cache
def _checked(seg_id: str) -> tuple[tuple[FieldSpec, ...], tuple[FieldSpec, ...]]:
    """The required fields and the format-checked fields of a segment definition."""
    fields = [f for f in segment_fields(seg_id)
              if not (seg_id in HEADER_SEGMENTS and f.sequence <= 2)]
    return (tuple(f for f in fields if f.required),
            tuple(f for f in fields if f.data_type in _FORMAT_TYPES))


def _field_problems(
    seg: Segment, occ: int, total: int, strict: bool, enc: Encoding
) -> Iterator[Problem]:
    # One split of the kept ER7 text; MSH-n is at index n - 1, other SEG-n at index n.
    raw = seg.to_er7().split(enc.field)
    shift = 1 if seg.id in HEADER_SEGMENTS else 0
    required, formatted = _checked(seg.id)
    for spec in required:
        index = spec.sequence - shift
        if index >= len(raw) or not raw[index]:
            yield Problem("error" if strict else "warning",
                          _where(seg.id, occ, total, str(spec.sequence)), "101",
                          f"{spec.name} ({spec.location}) missing")
    plain = re.compile("[" + re.escape(enc.msh2) + "]") if enc.msh2 else None
    for spec in formatted:
        index = spec.sequence - shift
        if index >= len(raw) or not raw[index] or raw[index] == _HL7_NULL:
            continue
        value = raw[index]
        if spec.data_type != "TQ" and (plain is None or not plain.search(value)):
            leaves = [(str(spec.sequence), spec.data_type, value)]  # the common case: one leaf
        else:
            leaves = list(_leaves(seg, spec.sequence, spec.data_type, enc.repetition))
        for at, dtype, value in leaves:
            if value and value != _HL7_NULL and not _valid(dtype, value):
                yield Problem("error", _where(seg.id, occ, total, at), "102",
                              f"{value!r} is not a valid {dtype} ({spec.name})")


def _segment_problems(msg: Message, strict: bool) -> Iterator[Problem]:
    known = set(known_segments())
    seen: dict[str, int] = {}
    for seg in msg.segments:
        if not _SEGMENT_ID.fullmatch(seg.id):
            yield Problem("error", seg.id, "100", f"not a segment ID: {seg.id!r}")
            continue
        seen[seg.id] = occ = seen.get(seg.id, 0) + 1
        if seg.id in known:
            yield from _field_problems(seg, occ, msg.count(seg.id), strict, msg.encoding)


def _basic(msg: Message) -> Iterator[Problem]:
    yield from _header(msg)
    yield from _segment_problems(msg, strict=msg.version in ("2.5", "2.5.1"))


def _rule_for(msg: Message, profile: ProfileSpec) -> MessageRule | None:
    mtype = msg.message_type
    code = mtype.partition("^")[0]
    for rule in profile.rules:
        if mtype in rule.types or f"{code}^*" in rule.types:
            return rule
    return None


def _missing(msg: Message, path: str) -> list[int] | None:
    """Occurrences of the path's segment where it is empty; None if the segment is absent."""
    seg_id, _, field_path = path.partition("-")
    segs = msg.segments_named(seg_id)
    if not segs:
        return None
    return [i for i, seg in enumerate(segs, start=1) if not seg.get_raw(field_path)]


def _need(msg: Message, need: Need, absent: set[str]) -> Iterator[Problem]:
    reported: tuple[str, list[int]] | None = None
    for path in need.paths:
        missing = _missing(msg, path)
        if missing == []:
            if need.timestamp:
                yield from _timestamp(msg, path)
            return
        if reported is None and missing is not None:
            reported = (path, missing)
    if reported is None:  # no alternative's segment is there at all
        if need.paths[0].partition("-")[0] not in absent:  # else already said: 100
            yield Problem(need.severity, need.paths[0], "101", f"{need.what} missing")
        return
    path, missing = reported
    seg_id, _, rest = path.partition("-")
    total = msg.count(seg_id)
    for occ in missing:
        yield Problem(need.severity, _where(seg_id, occ, total, rest), "101",
                      f"{need.what} missing")


def _timestamp(msg: Message, path: str) -> Iterator[Problem]:
    seg_id, _, rest = path.partition("-")
    segs = msg.segments_named(seg_id)
    for occ, seg in enumerate(segs, start=1):
        value = seg.get(f"{rest}.1")  # the DTM: first (sub-)component of the TS
        if value and value != _HL7_NULL and parse_dtm(value) is None:
            yield Problem("error", _where(seg_id, occ, len(segs), rest), "102",
                          f"{value!r} is not a valid date/time")


def _table(msg: Message, check: TableCheck) -> Iterator[Problem]:
    seg_id, _, rest = check.path.partition("-")
    segs = msg.segments_named(seg_id)
    allowed = TABLES[check.table]
    for occ, seg in enumerate(segs, start=1):
        value = seg.get(rest if "." in rest else f"{rest}.1")
        if value and value != _HL7_NULL and value not in allowed:
            yield Problem(check.severity, _where(seg_id, occ, len(segs), rest), "103",
                          f"{value!r} not in HL7 table {check.table}")


def _profile(msg: Message, profile: ProfileSpec) -> Iterator[Problem]:
    rule = _rule_for(msg, profile)
    if rule is None:
        if profile.rules:
            yield Problem("warning", "MSH-9", "200",
                          f"message type {msg.message_type!r} not covered by {profile.name}")
        return
    absent = {seg_id for seg_id in rule.segments if not msg.count(seg_id)}
    for seg_id in rule.segments:
        if seg_id in absent:
            yield Problem("error", seg_id, "100", f"required segment {seg_id} missing")
    for need in rule.needs:
        yield from _need(msg, need, absent)
    for check in rule.tables:
        yield from _table(msg, check)


def validate(msg: Message, profile: str = "basic", *, rules_only: bool = False
             ) -> list[Problem]:
    """Problems of ``msg`` under the named profile (``PROFILES``), in message order.
    ``rules_only``: the profile's own rules (segments, required fields and their
    timestamps, tables) without the field-by-field checks of ``basic`` every profile
    starts with: a fraction of the cost, for checking every order as it arrives.

    ``KeyError`` for an unknown profile name (a caller's mistake, not the message's).
    """
    spec = PROFILES[profile]
    if rules_only and spec is not BASIC:
        return list(_profile(msg, spec))
    problems = list(_basic(msg))
    seen = {(p.location, p.code) for p in problems}
    # A profile rule restating a basic finding (OBX-11 missing) is not a second problem.
    problems += [p for p in _profile(msg, spec) if (p.location, p.code) not in seen]
    return problems
