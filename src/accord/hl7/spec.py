"""Segment, field and data type names from HL7 v2.5.1, for display, JSON and validation.

Rule: data lives in ``_spec_data`` (one row per field, one per component); this module
only looks it up. Pure: nothing here reads a file or the clock.

The table is the v2.5.1 one whatever MSH-12 says: names and types are stable enough across
2.3-2.8 for display, and the validation profiles that rely on optionality say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accord.hl7._spec_data import COMPOSITES, SEGMENT_FIELDS
from accord.hl7.encoding import unescape
from accord.hl7.message import HEADER_SEGMENTS, Message, Segment

__all__ = [
    "PRIMITIVES",
    "SEGMENT_NAMES",
    "FieldSpec",
    "component_name",
    "component_names",
    "component_type",
    "describe",
    "field_name",
    "field_spec",
    "field_type",
    "known_segments",
    "segment_fields",
    "segment_name",
]

#: Segment descriptions (HL7 v2.5.1 chapter headings; ZDS per IHE RAD TF-2 §4.4).
SEGMENT_NAMES: dict[str, str] = {
    "MSH": "Message Header",
    "EVN": "Event Type",
    "PID": "Patient Identification",
    "PD1": "Patient Additional Demographic",
    "NK1": "Next of Kin / Associated Parties",
    "PV1": "Patient Visit",
    "PV2": "Patient Visit - Additional Information",
    "MRG": "Merge Patient Information",
    "ORC": "Common Order",
    "OBR": "Observation Request",
    "OBX": "Observation/Result",
    "NTE": "Notes and Comments",
    "TQ1": "Timing/Quantity",
    "SCH": "Scheduling Activity Information",
    "AIS": "Appointment Information",
    "AIG": "Appointment Information - General Resource",
    "AIL": "Appointment Information - Location Resource",
    "AIP": "Appointment Information - Personnel Resource",
    "RGS": "Resource Group",
    "IPC": "Imaging Procedure Control",
    "ZDS": "Additional Identification Information (IHE RAD)",
    "MSA": "Message Acknowledgment",
    "ERR": "Error",
    "AL1": "Patient Allergy Information",
    "DG1": "Diagnosis",
    "IN1": "Insurance",
    "GT1": "Guarantor",
    "TXA": "Transcription Document Header",
    "SPM": "Specimen",
    "QRD": "Original-Style Query Definition",
    "BHS": "Batch Header",
    "BTS": "Batch Trailer",
    "FHS": "File Header",
    "FTS": "File Trailer",
    "SFT": "Software Segment",
    "PRT": "Participation Information",
}

#: Data types with no components (HL7 v2.5.1 §2.A); ``varies`` is OBX-5, typed by OBX-2.
PRIMITIVES: frozenset[str] = frozenset(
    {"DT", "DTM", "FT", "GTS", "ID", "IS", "NM", "SI", "ST", "TM", "TX", "varies"}
)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a segment definition: ``PID-3`` is Patient Identifier List, CX, R, *."""

    segment: str
    sequence: int
    name: str
    data_type: str
    required: bool
    repeatable: bool
    table: str  # HL7 table number such as "0001", or ""

    @property
    def location(self) -> str:
        """The field's path, such as ``"PID-3"``."""
        return f"{self.segment}-{self.sequence}"


def _build() -> dict[str, tuple[FieldSpec, ...]]:
    return {
        seg: tuple(
            FieldSpec(seg, n, name, dtype, opt == "R", rep, table)
            for n, name, dtype, opt, rep, table in rows
        )
        for seg, rows in SEGMENT_FIELDS.items()
    }


_FIELDS = _build()


def known_segments() -> tuple[str, ...]:
    """The segment IDs this table defines, in table order."""
    return tuple(_FIELDS)


def segment_name(segment: str) -> str:
    """Description of a segment ID (``"PID"`` -> ``"Patient Identification"``), or ""."""
    return SEGMENT_NAMES.get(segment, "")


def segment_fields(segment: str) -> tuple[FieldSpec, ...]:
    """Every field of a segment definition, in sequence order; () when unknown."""
    return _FIELDS.get(segment, ())


def field_spec(segment: str, sequence: int) -> FieldSpec | None:
    """The definition of ``SEG-n``, or None when the segment or field is not in the table."""
    fields = _FIELDS.get(segment)
    if fields is None or not 1 <= sequence <= len(fields):
        return None
    return fields[sequence - 1]


def field_name(segment: str, sequence: int) -> str:
    """Name of ``SEG-n`` (``field_name("PID", 3)`` -> ``"Patient Identifier List"``), or ""."""
    spec = field_spec(segment, sequence)
    return spec.name if spec else ""


def field_type(segment: str, sequence: int) -> str:
    """Data type of ``SEG-n`` (``field_type("PID", 3)`` -> ``"CX"``), or "" when unknown."""
    spec = field_spec(segment, sequence)
    return spec.data_type if spec else ""


def component_names(data_type: str) -> tuple[str, ...]:
    """Component names of a composite type (``"HD"`` -> Namespace ID, Universal ID, ...).

    Primitive and unknown types give ``()``.
    """
    return tuple(name for name, _ in COMPOSITES.get(data_type, ()))


def component_name(data_type: str, position: int) -> str:
    """Name of component ``position`` (1-based) of ``data_type``, or ""."""
    comps = COMPOSITES.get(data_type, ())
    return comps[position - 1][0] if 1 <= position <= len(comps) else ""


def component_type(data_type: str, position: int) -> str:
    """Data type of component ``position`` (1-based) of ``data_type``, or ""."""
    comps = COMPOSITES.get(data_type, ())
    return comps[position - 1][1] if 1 <= position <= len(comps) else ""


def _split(raw: str, sep: str) -> list[str]:
    return raw.split(sep) if sep else [raw]


def _field_json(msg: Message, seg: Segment, n: int, where: str) -> dict[str, Any] | None:
    raw = seg.get_raw(str(n))
    if not raw:
        return None
    dtype = field_type(seg.id, n)
    enc = msg.encoding
    if seg.id in HEADER_SEGMENTS and n <= 2:  # the delimiters themselves: never split
        reps = [[[raw]]]
    else:
        reps = [
            [[unescape(s, enc, msg.charset) for s in _split(c, enc.subcomponent)]
             for c in _split(r, enc.component)]
            for r in _split(raw, enc.repetition)
        ]
    return {
        "path": f"{where}-{n}",
        "position": n,
        "name": field_name(seg.id, n),
        "type": dtype,
        "components": list(component_names(dtype)),
        "raw": raw,
        "repetitions": reps,
    }


def describe(msg: Message) -> dict[str, Any]:
    """A message as plain JSON-ready data, with names from this table.

    Shape (``accord parse --json``, the console's message viewer)::

        {"message_type": "ORM^O01", "control_id": "...", "version": "2.5.1",
         "charset": "utf-8", "declared_charset": "8859/1", "warnings": [...],
         "segments": [{"id": "PID", "name": "Patient Identification", "occurrence": 1,
                       "fields": [{"path": "PID-3", "position": 3,
                                   "name": "Patient Identifier List", "type": "CX",
                                   "components": ["ID Number", ...], "raw": "...",
                                   "repetitions": [[["ID"], [""], [""], ["ADT1"]]]}]}]}

    Only valued fields are listed. ``repetitions`` holds, per repetition, the components,
    each a list of its unescaped sub-components. ``path`` carries the segment occurrence
    (``OBX[2]-5``) when the segment ID occurs more than once.
    """
    seen: dict[str, int] = {}
    segments = []
    for seg in msg.segments:
        seen[seg.id] = occ = seen.get(seg.id, 0) + 1
        where = f"{seg.id}[{occ}]" if msg.count(seg.id) > 1 else seg.id
        fields = [_field_json(msg, seg, n, where) for n in range(1, seg.field_count + 1)]
        segments.append({
            "id": seg.id,
            "name": segment_name(seg.id),
            "occurrence": occ,
            "fields": [f for f in fields if f is not None],
        })
    return {
        "message_type": msg.message_type,
        "control_id": msg.control_id,
        "version": msg.version,
        "charset": msg.charset,
        "declared_charset": msg.declared_charset,
        "warnings": list(msg.warnings),
        "segments": segments,
    }
