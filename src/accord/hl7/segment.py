"""Segment: one segment of a message, kept as received and split lazily (HL7 v2.5.1 §2.5).

Rules of this module:
- A segment keeps its ER7 text exactly as received; it is split into fields on the first
  read, and a field into repetitions/components/subcomponents only while being read.
- Header segments (MSH, FHS, BHS) number their fields the standard's way: field 1 is the
  field separator itself and field 2 the encoding characters, both atomic.
- ``get`` on a non-leaf element: see ``accord.hl7.message`` (the rule is stated there).
"""

from __future__ import annotations

from accord.hl7.encoding import Encoding, escape, unescape
from accord.hl7.path import parse_field_path

__all__ = ["HEADER_SEGMENTS", "Segment"]

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
