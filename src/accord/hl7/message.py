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

from accord.hl7.encoding import DEFAULT_ENCODING, Encoding, escape, unescape
from accord.hl7.path import parse_field_path, parse_path

__all__ = ["HEADER_SEGMENTS", "Message", "Segment"]

HEADER_SEGMENTS = frozenset({"MSH", "FHS", "BHS"})
_NONE = "\r"  # stands for an undeclared delimiter: a segment never contains CR


class _Context:
    """What every segment of one message shares: delimiters and the charset for \\X\\."""

    __slots__ = ("charset", "cs", "enc", "es", "fs", "rs", "ss")

    def __init__(self, enc: Encoding, charset: str) -> None:
        self.enc = enc
        self.charset = charset
        self.fs = enc.field
        self.cs = enc.component or _NONE
        self.rs = enc.repetition or _NONE
        self.ss = enc.subcomponent or _NONE
        self.es = enc.escape or _NONE


def _leaf(value: str, ctx: _Context, raw: bool) -> str:
    if raw or ctx.es not in value:
        return value
    return unescape(value, ctx.enc, ctx.charset)


def _put(value: str, levels: list[tuple[str, int]], text: str) -> str:
    """``value`` with the element at ``levels`` (separator, 1-based index) set to ``text``."""
    if not levels:
        return text
    sep, index = levels[0]
    if sep == _NONE:
        if index != 1:
            raise ValueError("this message declares no separator for that level")
        return _put(value, levels[1:], text)
    parts = value.split(sep)
    if index > len(parts):
        if not text:
            return value  # setting an absent element to empty: nothing to grow
        parts.extend([""] * (index - len(parts)))
    parts[index - 1] = _put(parts[index - 1], levels[1:], text)
    return sep.join(parts)


class Segment:
    """One segment: ``.id`` and its fields, read with field paths such as ``"3[2].1"``."""

    __slots__ = ("_ctx", "_fields", "_raw", "id")

    def __init__(self, segment_id: str, raw: str, ctx: _Context) -> None:
        self.id = segment_id
        self._raw = raw
        self._fields: list[str] | None = None
        self._ctx = ctx

    def __repr__(self) -> str:
        return f"<Segment {self.id} ({len(self._raw)} chars)>"

    def to_er7(self) -> str:
        """The segment's ER7 text (as received unless ``set`` changed it)."""
        return self._raw

    @property
    def field_count(self) -> int:
        """The number of the last field present (0 for a bare segment ID)."""
        fields = self._split()
        return len(fields) if self.id in HEADER_SEGMENTS else len(fields) - 1

    def _split(self) -> list[str]:
        fields = self._fields
        if fields is None:
            fields = self._fields = self._raw.split(self._ctx.fs)
        return fields

    def _value(
        self, field: int, rep: int | None, comp: int | None, sub: int | None, raw: bool
    ) -> str:
        fields = self._fields
        if fields is None:
            fields = self._fields = self._raw.split(self._ctx.fs)
        if self.id in HEADER_SEGMENTS:
            if field <= 2:
                if (rep or 1) != 1 or (comp or 1) != 1 or (sub or 1) != 1:
                    return ""
                return self._ctx.fs if field == 1 else fields[1]
            field -= 1
        if field >= len(fields):
            return ""
        value = fields[field]
        if not value:
            return ""
        ctx = self._ctx
        if rep is None and comp is None:
            if ctx.rs in value or ctx.cs in value or ctx.ss in value:
                return value
            return _leaf(value, ctx, raw)
        if ctx.rs in value:
            parts = value.split(ctx.rs)
            index = rep or 1
            if index > len(parts):
                return ""
            value = parts[index - 1]
        elif rep is not None and rep != 1:
            return ""
        if comp is None:
            if ctx.cs in value or ctx.ss in value:
                return value
            return _leaf(value, ctx, raw)
        return self._component(value, comp, sub, raw)

    def _component(self, value: str, comp: int, sub: int | None, raw: bool) -> str:
        ctx = self._ctx
        if ctx.cs in value:
            parts = value.split(ctx.cs)
            if comp > len(parts):
                return ""
            value = parts[comp - 1]
        elif comp != 1:
            return ""
        if ctx.ss in value:
            if sub is None:
                return value
            parts = value.split(ctx.ss)
            if sub > len(parts):
                return ""
            value = parts[sub - 1]
        elif sub is not None and sub != 1:
            return ""
        return _leaf(value, ctx, raw)

    def get(self, path: str) -> str:
        """The unescaped value at a field path (``"5"``, ``"3[2].1"``); ``""`` if absent."""
        field, rep, comp, sub = parse_field_path(path)
        return self._value(field, rep, comp, sub, False)

    def get_raw(self, path: str) -> str:
        """The ER7 text at a field path, escapes intact."""
        field, rep, comp, sub = parse_field_path(path)
        return self._value(field, rep, comp, sub, True)

    def set(self, path: str, value: str) -> None:
        """Set the element at a field path to ``value``, escaping it (§2.7)."""
        self.set_raw(path, escape(value, self._ctx.enc))

    def set_raw(self, path: str, er7: str) -> None:
        """Set the element at a field path to ER7 text, as is (no escaping)."""
        field, rep, comp, sub = parse_field_path(path)
        self._set(field, rep, comp, sub, er7)

    def _set(
        self, field: int, rep: int | None, comp: int | None, sub: int | None, er7: str
    ) -> None:
        if "\r" in er7 or "\n" in er7:
            raise ValueError("ER7 text cannot hold a segment terminator (CR or LF)")
        ctx = self._ctx
        if self.id in HEADER_SEGMENTS:
            if field <= 2:
                raise ValueError(f"{self.id}-1 and {self.id}-2 (the delimiters) cannot be set")
            field -= 1
        fields = self._split()
        if field >= len(fields):
            if not er7:
                return
            fields.extend([""] * (field + 1 - len(fields)))
        levels: list[tuple[str, int]] = []
        if rep is not None or comp is not None:
            levels.append((ctx.rs, rep or 1))
            if comp is not None:
                levels.append((ctx.cs, comp))
                if sub is not None:
                    levels.append((ctx.ss, sub))
        fields[field] = _put(fields[field], levels, er7)
        self._raw = ctx.fs.join(fields)


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
        from accord.hl7.charset import codec_for

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
        parse_path(segment_id)  # validates the ID
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
