"""Reading the parts of a message the workflow needs: groups, PID, PV1, times.

Rules: pure; reads through ``accord.hl7`` paths and typed readers only. An order
message is split into groups (one per ORC, or per OBR when no ORC comes first,
HL7 v2.5.1 §4.4 ORM^O01 / §4.4.6 OMI^O23 / §7.3.1 ORU^R01): a :class:`Group` reads
paths such as ``"OBR-18"`` inside its own group, so that the second order of a message
reads the second OBR.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from accord.hl7 import Message, Segment
from accord.hl7.types import XPN, read_cx, read_ts, read_xad, read_xcn, read_xpn, read_xtn
from accord.mapping.checks import Checks
from accord.mapping.dialect import Dialect
from accord.mapping.procedures import Catalog
from accord.workflow.commands import PatientData, VisitData
from accord.workflow.findings import Finding, FindingKind
from accord.workflow.model import Address, Demographics, Identifier, PersonName

_PATH = re.compile(r"([A-Z][A-Z0-9]{2})(?:\[(\d+)\])?-(.*)")
_GROUP_STARTS = frozenset({"ORC", "OBR"})
_ABSENT = 999999  # an occurrence no message has: reads as ""


@lru_cache(maxsize=1024)
def _split(path: str) -> tuple[str, str] | None:
    """``"OBR-18.1"`` as ``("OBR", "18.1")``; None for a path that names its occurrence
    (``"OBR[2]-18"``) or is not a field path. Cached: the same few dozen paths are read
    from every message, several times each."""
    m = _PATH.fullmatch(path)
    if m is None or m.group(2) is not None:
        return None
    return m.group(1), m.group(3)


@dataclass(slots=True)
class Group:
    """One ORC/OBR group: which occurrence of each segment ID belongs to it."""

    msg: Message
    occurrences: dict[str, list[int]] = field(default_factory=dict)
    scoped: set[str] = field(default_factory=set)  # IDs that live in groups (shared set)

    def has(self, segment_id: str) -> bool:
        return segment_id in self.occurrences

    def path(self, path: str, nth: int = 1) -> str:
        """``"OBR-18"`` as a message path inside this group (``"OBR[2]-18"``).

        A segment that never appears inside a group is read message-wide (MSH, PID,
        PV1...); one that does but not in this group reads as absent.
        """
        split = _split(path)
        if split is None:
            return path
        seg_id, rest = split
        occ = self.occurrences.get(seg_id)
        if not occ or nth > len(occ):
            absent = occ or seg_id in self.scoped
            return f"{seg_id}[{_ABSENT}]-{rest}" if absent else path
        return f"{seg_id}[{occ[nth - 1]}]-{rest}"

    def segment(self, segment_id: str, nth: int = 1) -> Segment | None:
        """The ``nth`` ``segment_id`` of this group, as :meth:`path` places it."""
        occ = self.occurrences.get(segment_id)
        if occ:
            return self.msg.segment(segment_id, occ[nth - 1]) if nth <= len(occ) else None
        return None if segment_id in self.scoped else self.msg.segment(segment_id)

    def get(self, path: str, nth: int = 1) -> str:
        """The unescaped value at ``path`` inside the group; "" when absent."""
        # The segment is looked up directly rather than through the message path that
        # ``path`` spells out: building and parsing that string cost more than the read.
        split = _split(path)
        if split is None:
            return self.msg.get(path)
        seg = self.segment(split[0], nth)
        return seg.get(split[1]) if seg is not None else ""

    def first(self, *paths: str) -> tuple[str, str]:
        """The first filled ``(path, value)`` among ``paths``, or ``(paths[0], "")``."""
        for p in paths:
            value = self.get(p)
            if value:
                return p, value
        return (paths[0] if paths else ""), ""

    def count(self, segment_id: str) -> int:
        return len(self.occurrences.get(segment_id, ()))


def order_groups(msg: Message) -> list[Group]:
    """The ORC/OBR groups of an order or result message, in order."""
    groups: list[Group] = []
    seen: dict[str, int] = {}
    current: Group | None = None
    scoped: set[str] = set()
    for seg in msg.segments:
        n = seen[seg.id] = seen.get(seg.id, 0) + 1
        starts = seg.id == "ORC" or (
            seg.id == "OBR" and (current is None or current.has("OBR"))
        )
        if seg.id in _GROUP_STARTS and starts:
            current = Group(msg, scoped=scoped)
            groups.append(current)
        if current is not None:
            current.occurrences.setdefault(seg.id, []).append(n)
            scoped.add(seg.id)
    return groups


def when(msg: Message, path: str) -> datetime | None:
    """The TS at ``path`` as an aware datetime (UTC when the sender gave no offset)."""
    ts = read_ts(msg, path)
    if ts is None:
        return None
    try:
        return ts.to_datetime(UTC)
    except ValueError:
        return None


def person(msg: Message, path: str) -> str:
    """An XCN (OBR-16, PV1-7, OBR-32.1) as ``Family^Given`` text, or its ID."""
    people = read_xcn(msg, path)
    if not people:
        return ""
    p = people[0]
    return f"{p.family}^{p.given}" if p.family else p.id


def identifiers(msg: Message, path: str, dialect: Dialect) -> tuple[Identifier, ...]:
    """The CX identifiers at ``path`` (PID-3, MRG-1), authoritative one first.

    CX-4.1 (else CX-4.2) is the authority; one without is given the dialect's
    ``default_authority``. The MRN is the ``mrn_repetition``-th repetition when set,
    else the first one whose authority is the dialect's authoritative one.
    """
    found: list[Identifier] = []
    for cx in read_cx(msg, path):
        hd = cx.assigning_authority
        authority = hd.namespace_id or hd.universal_id or dialect.identifier_authority
        ident = Identifier(cx.id, authority, cx.type_code)
        if ident not in found:
            found.append(ident)
    if dialect.mrn_repetition and 0 < dialect.mrn_repetition <= len(found):
        mrn = found.pop(dialect.mrn_repetition - 1)
        found.insert(0, mrn)
    elif dialect.authority:
        found.sort(key=lambda i: i.authority != dialect.authority)
    return tuple(found)


def patient(msg: Message, dialect: Dialect, occurrence: int = 1) -> PatientData:
    """PID (the ``occurrence``-th one): identifiers and demographics (HL7 v2.5.1 §3.4.2)."""
    pid = f"PID[{occurrence}]"
    idents = identifiers(msg, f"{pid}-3", dialect) or identifiers(msg, f"{pid}-2", dialect)
    names = read_xpn(msg, f"{pid}-5")
    name = _name(names[0]) if names else PersonName()
    birth = read_ts(msg, f"{pid}-7")
    addresses = read_xad(msg, f"{pid}-11")
    a = addresses[0] if addresses else None
    address = Address(a.street, a.other_designation, a.city, a.state, a.postal_code,
                      a.country) if a else Address()
    phones = read_xtn(msg, f"{pid}-13")
    phone = ""
    if phones:
        p = phones[0]
        phone = (p.area_code + p.local_number) if p.local_number else p.number
    national = msg.get(f"{pid}-19") or next(
        (i.value for i in idents if i.type_code in ("SS", "NI", "NN")), ""
    )
    mothers = read_xpn(msg, f"{pid}-6")
    demographics = Demographics(
        name=name,
        birth_date=birth.to_date() if birth is not None else None,
        sex=msg.get(f"{pid}-8.1"),
        address=address,
        phone=phone,
        national_id=national,
        mothers_maiden_name=mothers[0].family if mothers else "",
        ideographic_name=_represented(msg, f"{pid}-5", names, "I"),
        phonetic_name=_represented(msg, f"{pid}-5", names, "P"),
    )
    return PatientData(idents, demographics)


def _represented(msg: Message, path: str, names: Sequence[XPN], code: str) -> PersonName | None:
    """The PID-5 repetition whose XPN-8 name representation code (table 4000) is ``code``:
    ``I`` ideographic (Kanji), ``P`` phonetic — the DICOM PN component groups."""
    for n, xpn in enumerate(names, start=1):
        if n > 1 and msg.get(f"{path}[{n}].8") == code:
            return _name(xpn)
    return None


def _name(xpn: XPN) -> PersonName:
    return PersonName(xpn.family, xpn.given, xpn.middle, xpn.suffix, xpn.prefix)


def visit(msg: Message, occurrence: int = 1) -> VisitData | None:
    """PV1 (§3.4.3): PV1-19 visit number (else PID-18 account number), class, location."""
    pv1 = f"PV1[{occurrence}]"
    number = msg.get(f"{pv1}-19.1") or msg.get(f"PID[{occurrence}]-18.1")
    if not number:
        return None
    location = "^".join(
        v for v in (msg.get(f"{pv1}-3.1"), msg.get(f"{pv1}-3.2"), msg.get(f"{pv1}-3.3")) if v
    )
    return VisitData(
        visit_number=number,
        patient_class=msg.get(f"{pv1}-2"),
        location=location,
        attending=person(msg, f"{pv1}-7"),
        admitted_at=when(msg, f"{pv1}-44"),
        discharged_at=when(msg, f"{pv1}-45"),
    )


@dataclass(frozen=True, slots=True)
class Context:
    """What every reader needs: the message, its sender's dialect, the catalog, the time."""

    msg: Message
    dialect: Dialect
    now: datetime
    catalog: Catalog | None = None
    checks: Checks | None = None  # the order checks to run (``mapping.checks``)

    @property
    def source(self) -> str:
        """The sending system, MSH-3.1 (MSH-3.2 when .1 is empty)."""
        return self.msg.get("MSH-3.1") or self.msg.get("MSH-3.2")

    @property
    def message_ref(self) -> str:
        """``SENDER/MSH-10``: how findings and the trace name this message."""
        return f"{self.source}/{self.msg.control_id}"

    def finding(
        self, kind: FindingKind, detail: str, *, accession: str = "", subject: str = "",
        location: str = "", patient_id: str = "",
    ) -> Finding:
        """A finding seen now in this message."""
        return Finding(
            kind=kind, detail=detail, first_seen=self.now, source=self.source,
            messages=(self.message_ref,), accession=accession, subject=subject,
            location=location, patient_id=patient_id,
        )
