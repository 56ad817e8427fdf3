"""Typed readers for the HL7 v2 data types the workflow needs (HL7 v2.5.1 §2.A).

Rules: pure (no clock, no I/O); every value is a frozen dataclass; a value that does not
fit its type gives ``None`` (one value) or is left out (a list), never an exception:
``accord.hl7.validate`` reports it. Readers take a Message and a path (``"PID-3"``,
``"OBR-27.4"``); a path to a component reads that component's sub-components as the
type's parts, so ``read_ts(msg, "OBR-27.4")`` reads the TS inside TQ. TS/DTM parsing and
formatting live in ``accord.hl7.dtm`` (re-exported here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from accord.hl7.dtm import TS, Precision, format_ts, parse_dtm
from accord.hl7.encoding import unescape
from accord.hl7.message import Message
from accord.hl7.path import parse_path

__all__ = [
    "CE",
    "CWE",
    "CX",
    "EI",
    "HD",
    "TS",
    "XAD",
    "XCN",
    "XPN",
    "XTN",
    "Parts",
    "Precision",
    "format_ts",
    "parse_dtm",
    "read_ce",
    "read_cwe",
    "read_cx",
    "read_ei",
    "read_hd",
    "read_ts",
    "read_xad",
    "read_xcn",
    "read_xpn",
    "read_xtn",
    "values_at",
]

#: One value read at a path: its parts (components), each a list of sub-components,
#: unescaped. ``[["PID_1"], [""], [""], ["ADT1", "1.2.3", "ISO"]]`` for a CX.
Parts = list[list[str]]


def part(parts: Parts, index: int, sub: int = 1) -> str:
    """Part ``index`` (1-based), sub-part ``sub``; "" when absent."""
    if index > len(parts):
        return ""
    subs = parts[index - 1]
    return subs[sub - 1] if sub <= len(subs) else ""


def _depth(path: str) -> int:
    """0 for a field path, 1 for a component, 2 for a sub-component."""
    parsed = parse_path(path)
    return 2 if parsed.subcomponent else 1 if parsed.component else 0


def values_at(msg: Message, path: str) -> list[Parts]:
    """The values at ``path``, one per repetition, split into unescaped parts.

    At a field path the parts are the components (each split into sub-components); at a
    component path they are its sub-components; at a sub-component path, the one leaf.
    Empty repetitions are kept so that positions match ``PID-3[n]``.
    """
    raw = msg.get_raw(path)
    if not raw:
        return []
    enc, charset = msg.encoding, msg.charset
    depth = _depth(path)
    if depth >= 2 or (depth == 1 and not enc.subcomponent):
        return [[[unescape(raw, enc, charset)]]]
    if depth == 1:
        return [[[unescape(s, enc, charset)] for s in raw.split(enc.subcomponent)]]
    out: list[Parts] = []
    for rep in raw.split(enc.repetition) if enc.repetition else [raw]:
        comps = rep.split(enc.component) if enc.component else [rep]
        out.append([
            [unescape(s, enc, charset) for s in
             (c.split(enc.subcomponent) if enc.subcomponent else [c])]
            for c in comps
        ])
    return out


@dataclass(frozen=True, slots=True)
class HD:
    """Hierarchic designator (§2.A.33): an assigning authority or application."""

    namespace_id: str = ""
    universal_id: str = ""
    universal_id_type: str = ""

    def __bool__(self) -> bool:
        return bool(self.namespace_id or self.universal_id)


@dataclass(frozen=True, slots=True)
class CX:
    """Extended composite ID with check digit (§2.A.17): PID-3, MRG-1..."""

    id: str
    assigning_authority: HD = HD()
    type_code: str = ""
    assigning_facility: HD = HD()
    check_digit: str = ""


@dataclass(frozen=True, slots=True)
class XPN:
    """Extended person name (§2.A.88): PID-5 and friends."""

    family: str = ""
    given: str = ""
    middle: str = ""
    suffix: str = ""
    prefix: str = ""
    degree: str = ""
    name_type: str = ""


@dataclass(frozen=True, slots=True)
class XCN:
    """Extended composite ID number and name for persons (§2.A.87): ORC-12, PV1-8."""

    id: str = ""
    family: str = ""
    given: str = ""
    middle: str = ""
    suffix: str = ""
    prefix: str = ""
    degree: str = ""
    assigning_authority: HD = HD()


@dataclass(frozen=True, slots=True)
class XAD:
    """Extended address (§2.A.85): PID-11."""

    street: str = ""
    other_designation: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""
    address_type: str = ""
    county: str = ""


@dataclass(frozen=True, slots=True)
class XTN:
    """Extended telecommunication number (§2.A.89): PID-13, PID-14.

    ``number`` is XTN-1 as sent (the pre-2.5 ``[NN] [(999)]999-9999[X99999][C any text]``
    form); area code, local number and extension come from XTN-6/7/8, or are read out of
    that form when the components are empty.
    """

    number: str = ""
    use_code: str = ""
    equipment_type: str = ""
    email: str = ""
    country_code: str = ""
    area_code: str = ""
    local_number: str = ""
    extension: str = ""
    text: str = ""


@dataclass(frozen=True, slots=True)
class EI:
    """Entity identifier (§2.A.28): ORC-2/3, IPC-1..4."""

    entity_id: str = ""
    namespace_id: str = ""
    universal_id: str = ""
    universal_id_type: str = ""


@dataclass(frozen=True, slots=True)
class CWE:
    """Coded element, with or without exceptions (CE §2.A.8, CWE §2.A.13): OBR-4, OBX-3."""

    identifier: str = ""
    text: str = ""
    coding_system: str = ""
    alt_identifier: str = ""
    alt_text: str = ""
    alt_coding_system: str = ""
    original_text: str = ""


CE = CWE  # CE is CWE without components 7-9; one class reads both.


def _hd(parts: Parts, index: int) -> HD:
    return HD(part(parts, index, 1), part(parts, index, 2), part(parts, index, 3))


def _hd_whole(parts: Parts) -> HD:
    return HD(part(parts, 1), part(parts, 2), part(parts, 3))


def _cx(parts: Parts) -> CX | None:
    ident = part(parts, 1)
    if not ident:
        return None
    return CX(ident, _hd(parts, 4), part(parts, 5), _hd(parts, 6), part(parts, 2))


def _xpn(parts: Parts) -> XPN | None:
    name = XPN(*(part(parts, i) for i in range(1, 8)))
    return name if any((name.family, name.given, name.middle)) else None


def _xcn(parts: Parts) -> XCN | None:
    p = [part(parts, i) for i in range(1, 8)]
    person = XCN(p[0], p[1], p[2], p[3], p[4], p[5], p[6], _hd(parts, 9))
    return person if any((person.id, person.family, person.given)) else None


def _xad(parts: Parts) -> XAD | None:
    p = [part(parts, i) for i in (1, 2, 3, 4, 5, 6, 7, 9)]
    return XAD(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]) if any(p) else None


# [NN] [(999)]999-9999[X99999][B99999][C any text] (HL7 v2.3 §2.8.49, kept in §2.A.89)
_OLD_PHONE = re.compile(
    # a country code only when a space or "(" follows it: "555-0100" is a local number
    r"(?:(\d{1,3})(?: |(?=\()))?(?:\((\d{1,5})\))?\s*(\d[\d\- ]{2,})(?:X(\d+))?(?:B\d+)?"
    r"(?:C(.*))?"
)


def _xtn(parts: Parts) -> XTN | None:
    raw = part(parts, 1)
    fields = [part(parts, i) for i in (1, 2, 3, 4, 5, 6, 7, 8, 9)]
    if not any(fields):
        return None
    phone = XTN(*fields)
    if raw and not (phone.area_code or phone.local_number):
        m = _OLD_PHONE.fullmatch(raw.strip())
        if m is not None:
            country, area, local, ext, text = m.groups()
            phone = XTN(
                raw, phone.use_code, phone.equipment_type, phone.email,
                phone.country_code or (country or ""), area or "", local.strip(),
                phone.extension or (ext or ""), phone.text or (text or "").strip(),
            )
    return phone


def _ei(parts: Parts) -> EI | None:
    ei = EI(*(part(parts, i) for i in range(1, 5)))
    return ei if ei.entity_id or ei.universal_id else None


def _cwe(parts: Parts) -> CWE | None:
    p = [part(parts, i) for i in (1, 2, 3, 4, 5, 6, 9)]
    code = CWE(p[0], p[1], p[2], p[3], p[4], p[5], p[6])
    return code if code.identifier or code.text or code.original_text else None


def _ts(parts: Parts) -> TS | None:
    return parse_dtm(part(parts, 1)) if part(parts, 1) else None


def read_ts(msg: Message, path: str) -> TS | None:
    """The TS/DTM at ``path`` (first repetition); None when absent or not a valid DTM."""
    values = values_at(msg, path)
    return _ts(values[0]) if values else None


def read_hd(msg: Message, path: str) -> list[HD]:
    """The HD repetitions at ``path`` (MSH-3, EVN-7...); empty ones left out."""
    return [hd for hd in map(_hd_whole, values_at(msg, path)) if hd]


def read_cx(msg: Message, path: str) -> list[CX]:
    """The CX repetitions at ``path`` (``read_cx(msg, "PID-3")``); ones without an ID left out."""
    return [v for v in map(_cx, values_at(msg, path)) if v is not None]


def read_xpn(msg: Message, path: str) -> list[XPN]:
    """The XPN repetitions at ``path`` (``read_xpn(msg, "PID-5")``)."""
    return [v for v in map(_xpn, values_at(msg, path)) if v is not None]


def read_xcn(msg: Message, path: str) -> list[XCN]:
    """The XCN repetitions at ``path`` (ORC-12 ordering provider, PV1-8 referring doctor)."""
    return [v for v in map(_xcn, values_at(msg, path)) if v is not None]


def read_xad(msg: Message, path: str) -> list[XAD]:
    """The XAD repetitions at ``path`` (``read_xad(msg, "PID-11")``)."""
    return [v for v in map(_xad, values_at(msg, path)) if v is not None]


def read_xtn(msg: Message, path: str) -> list[XTN]:
    """The XTN repetitions at ``path`` (``read_xtn(msg, "PID-13")``)."""
    return [v for v in map(_xtn, values_at(msg, path)) if v is not None]


def read_ei(msg: Message, path: str) -> EI | None:
    """The EI at ``path`` (first repetition): ORC-2, IPC-1..."""
    values = values_at(msg, path)
    return _ei(values[0]) if values else None


def read_cwe(msg: Message, path: str) -> list[CWE]:
    """The CE/CWE repetitions at ``path`` (OBR-4, OBX-3, IPC-5)."""
    return [v for v in map(_cwe, values_at(msg, path)) if v is not None]


read_ce = read_cwe
