"""Message and Segment: a lazy, lossless view of one HL7 v2 message (HL7 v2.5.1 §2.5-2.6).

Rules of this module:
- A segment keeps its ER7 text exactly as received. It is split into fields on the first
  read, and a field into repetitions/components/subcomponents only while being read.
  ``to_er7`` joins the kept texts: untouched segments are reproduced byte for byte.
- ``set`` re-encodes only the segment it changes.
- Header segments (MSH, FHS, BHS) number their fields the standard's way: field 1 is
  the field separator itself and field 2 the encoding characters, both atomic.

What ``get`` returns for an element that is not a leaf (the rule, §2.5.3 "the value"):
the addressed element, unescaped, when it holds no separator of a lower level; otherwise
its ER7 text as received (escapes intact). So ``get("MSH-9")`` is ``"ORM^O01^ORM_O01"``,
``get("PID-3")`` the whole field with every repetition, ``get("PID-3[1]")`` the first
repetition, ``get("PID-5.1")`` the unescaped family name. An absent element is ``""``.
A component path without a repetition index (``PID-3.1``) reads the first repetition.
"""

from __future__ import annotations

from collections.abc import Iterable

from accord.hl7.charset import codec_for
from accord.hl7.encoding import DEFAULT_ENCODING, Encoding, escape
from accord.hl7.path import parse_path
from accord.hl7.segment import _NONE, HEADER_SEGMENTS, Segment, _Context

__all__ = ["HEADER_SEGMENTS", "Message", "Segment"]


class Message:
    """One parsed HL7 v2 message. Build with ``accord.hl7.parse`` or ``Message.new``."""

    __slots__ = ("_ctx", "_gaps", "_index", "_segments", "charset", "declared_charset", "warnings")

    def __init__(
        self,
        segments: Iterable[str],
        *,
        encoding: Encoding = DEFAULT_ENCODING,
        charset: str = "ascii",
        declared_charset: str = "",
        warnings: tuple[str, ...] = (),
        gaps: dict[int, list[str]] | None = None,
    ) -> None:
        """Wrap segment texts already checked by the parser; prefer ``parse``/``new``.

        ``gaps`` maps a segment index to the blank lines received just before it, which
        ``to_er7`` gives back so that the round trip stays exact.
        """
        ctx = _Context(encoding, charset)
        self._ctx = ctx
        self._segments = [Segment(raw[:3], raw, ctx) for raw in segments]
        self._index: dict[str, list[Segment]] | None = None
        self._gaps = gaps
        self.charset = charset
        self.declared_charset = declared_charset
        self.warnings = warnings

    @classmethod
    def new(
        cls,
        message_type: str,
        *,
        control_id: str = "",
        timestamp: str = "",
        sending_application: str = "",
        sending_facility: str = "",
        receiving_application: str = "",
        receiving_facility: str = "",
        processing_id: str = "P",
        version: str = "2.5.1",
        charset: str = "",
        encoding: Encoding = DEFAULT_ENCODING,
    ) -> Message:
        """A message holding only its MSH (§2.15.9), to be filled with ``set``/``add_segment``.

        Arguments are ER7 text written with ``encoding`` (e.g. ``message_type="ORM^O01^ORM_O01"``,
        ``sending_facility="HOSP^1.2.3^ISO"``), not escaped. ``timestamp`` is MSH-7 (this
        module reads no clock). ``charset`` is MSH-18 (e.g. ``"UNICODE UTF-8"``).
        """
        fs = encoding.field
        fields = [
            "MSH",
            encoding.msh2,
            sending_application,
            sending_facility,
            receiving_application,
            receiving_facility,
            timestamp,
            "",
            message_type,
            control_id,
            processing_id,
            version,
        ]
        if charset:
            fields += [""] * 5 + [charset]
        for text in fields:
            if "\r" in text or "\n" in text:
                raise ValueError("MSH values cannot hold CR or LF")
        return cls(
            [fs.join(fields)],
            encoding=encoding,
            charset=codec_for(charset) or "utf-8" if charset else "utf-8",
            declared_charset=charset,
        )

    def __repr__(self) -> str:
        return f"<Message {self.message_type} {self.control_id!r} ({len(self._segments)} segments)>"

    def declare_charset(self, declared: str, charset: str) -> None:
        """Record MSH-18 as written and the codec used for ``\\X..\\`` escapes."""
        self.declared_charset = declared
        self.charset = self._ctx.charset = charset

    # -- reading ---------------------------------------------------------------------------

    @property
    def encoding(self) -> Encoding:
        """The delimiters from MSH-1/MSH-2."""
        return self._ctx.enc

    @property
    def segments(self) -> list[Segment]:
        """Every segment, in order (a new list; the segments themselves are live)."""
        return list(self._segments)

    def _build_index(self) -> dict[str, list[Segment]]:
        index: dict[str, list[Segment]] = {}
        for seg in self._segments:
            found = index.get(seg.id)
            if found is None:
                index[seg.id] = [seg]
            else:
                found.append(seg)
        self._index = index
        return index

    def _find(self, segment_id: str, occurrence: int | None) -> Segment | None:
        index = self._index
        if index is None:
            index = self._build_index()
        found = index.get(segment_id)
        if not found:
            return None
        if occurrence is None:
            return found[0]
        return found[occurrence - 1] if occurrence <= len(found) else None

    def segment(self, segment_id: str, occurrence: int = 1) -> Segment | None:
        """The ``occurrence``-th segment with that ID, or None."""
        return self._find(segment_id, occurrence)

    def segments_named(self, segment_id: str) -> list[Segment]:
        """Every segment with that ID, in order."""
        index = self._index
        if index is None:
            index = self._build_index()
        return list(index.get(segment_id, ()))

    def count(self, segment_id: str) -> int:
        """How many segments have that ID."""
        index = self._index
        if index is None:
            index = self._build_index()
        return len(index.get(segment_id, ()))

    def get(self, path: str) -> str:
        """The unescaped value at ``path`` (``"PID-3[2].1"``); ``""`` when absent.

        A non-leaf element with lower-level separators in it comes back as ER7 text (see
        the module docstring). ``ValueError`` if ``path`` is malformed.
        """
        seg_id, occ, field, rep, comp, sub = parse_path(path)
        seg = self._find(seg_id, occ)
        if seg is None:
            return ""
        if field is None:
            return seg._raw
        return seg._value(field, rep, comp, sub, False)

    def get_raw(self, path: str) -> str:
        """The ER7 text at ``path`` exactly as in the message (escapes intact)."""
        seg_id, occ, field, rep, comp, sub = parse_path(path)
        seg = self._find(seg_id, occ)
        if seg is None:
            return ""
        if field is None:
            return seg._raw
        return seg._value(field, rep, comp, sub, True)

    def repetitions(self, path: str) -> int:
        """How many repetitions the field at ``path`` has (0 when empty or absent)."""
        seg_id, occ, field, _rep, _comp, _sub = parse_path(path)
        if field is None:
            raise ValueError(f"{path!r} names no field")
        seg = self._find(seg_id, occ)
        if seg is None:
            return 0
        value = seg._value(field, None, None, None, True)
        if not value:
            return 0
        if seg.id in HEADER_SEGMENTS and field <= 2:
            return 1
        return value.count(self._ctx.rs) + 1 if self._ctx.rs != _NONE else 1

    @property
    def message_type(self) -> str:
        """MSH-9.1^MSH-9.2 (``"ORM^O01"``), or MSH-9.1 alone when there is no trigger event."""
        code, event = self.get("MSH-9.1"), self.get("MSH-9.2")
        return f"{code}^{event}" if event else code

    @property
    def control_id(self) -> str:
        """MSH-10, the message control ID."""
        return self.get("MSH-10")

    @property
    def version(self) -> str:
        """MSH-12.1, the version ID (``"2.5.1"``)."""
        return self.get("MSH-12.1")

    def to_er7(self) -> str:
        """The message as ER7 text, segments joined by CR (no trailing CR)."""
        if not self._gaps:
            return "\r".join([seg._raw for seg in self._segments])
        lines: list[str] = []
        for number, seg in enumerate(self._segments):
            lines.extend(self._gaps.get(number, ()))
            lines.append(seg._raw)
        return "\r".join(lines)

    # -- building --------------------------------------------------------------------------

    def add_segment(self, segment_id: str) -> Segment:
        """Append an empty segment (``"ERR"``) and return it, to be filled with ``set``."""
        path = parse_path(segment_id)  # ValueError unless it looks like a segment ID
        if path.occurrence is not None or path.field is not None:
            raise ValueError(f"not a segment ID: {segment_id!r}")
        if segment_id in HEADER_SEGMENTS:
            raise ValueError(f"a message has one {segment_id}; it cannot be added")
        seg = Segment(segment_id, segment_id, self._ctx)
        self._segments.append(seg)
        if self._index is not None:
            self._index.setdefault(segment_id, []).append(seg)
        return seg

    def _target(self, path: str) -> tuple[Segment, int, int | None, int | None, int | None]:
        seg_id, occ, field, rep, comp, sub = parse_path(path)
        if field is None:
            raise ValueError(f"{path!r} names no field to set")
        seg = self._find(seg_id, occ)
        while seg is None:
            self.add_segment(seg_id)
            seg = self._find(seg_id, occ)
        return seg, field, rep, comp, sub

    def set(self, path: str, value: str) -> None:
        """Set the element at ``path`` to ``value``, escaped (``^`` becomes ``\\S\\``...).

        Grows fields, repetitions and components as needed; appends the segment (and
        earlier occurrences of it) when absent. ``ValueError`` for MSH-1/MSH-2.
        """
        seg, field, rep, comp, sub = self._target(path)
        seg._set(field, rep, comp, sub, escape(value, self._ctx.enc))

    def set_raw(self, path: str, er7: str) -> None:
        """Set the element at ``path`` to ER7 text as is (no escaping)."""
        seg, field, rep, comp, sub = self._target(path)
        seg._set(field, rep, comp, sub, er7)
