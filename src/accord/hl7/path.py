"""The path grammar: ``SEG[n]-F[r].C.S``, every index 1-based (docs/interface.md, "Paths").

``PID-3[2].1`` is the first component of the second repetition of PID-3, ``OBX[3]-5``
is OBX-5 of the third OBX segment, ``PID-3.4.2`` the second subcomponent of the fourth
component (of the first repetition). ``PID`` alone addresses the whole segment.
A malformed path is a programmer's error: ``ValueError``, never ``ParseError``.
Parsed paths are cached, since the same few paths are read from every message.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

__all__ = ["FieldPath", "Path", "parse_field_path", "parse_path"]

_PATH = re.compile(
    r"([A-Z][A-Z0-9]{2})(?:\[(\d+)\])?"
    r"(?:-(\d+)(?:\[(\d+)\])?(?:\.(\d+)(?:\.(\d+))?)?)?"
)
_FIELD_PATH = re.compile(r"(\d+)(?:\[(\d+)\])?(?:\.(\d+)(?:\.(\d+))?)?")


class Path(NamedTuple):
    """A parsed path; ``None`` means "not given" (the whole element at that level)."""

    segment: str
    occurrence: int | None
    field: int | None
    repetition: int | None
    component: int | None
    subcomponent: int | None


class FieldPath(NamedTuple):
    """A path inside one segment (``3[2].1``), as ``Segment.get`` takes it."""

    field: int
    repetition: int | None
    component: int | None
    subcomponent: int | None


def _index(text: str | None, path: str) -> int | None:
    if text is None:
        return None
    value = int(text)
    if value < 1:
        raise ValueError(f"HL7 path {path!r}: indexes start at 1")
    return value


@lru_cache(maxsize=4096)
def parse_path(path: str) -> Path:
    """Parse ``SEG[n]-F[r].C.S``; raises ``ValueError`` when malformed."""
    match = _PATH.fullmatch(path) if isinstance(path, str) else None
    if match is None:
        raise ValueError(f"not an HL7 path: {path!r} (expected e.g. 'PID-3[2].1' or 'OBX[3]-5')")
    seg, occ, field, rep, comp, sub = match.groups()
    return Path(
        seg,
        _index(occ, path),
        _index(field, path),
        _index(rep, path),
        _index(comp, path),
        _index(sub, path),
    )


@lru_cache(maxsize=1024)
def parse_field_path(path: str) -> FieldPath:
    """Parse ``F[r].C.S`` (a path inside one segment); raises ``ValueError`` when malformed."""
    match = _FIELD_PATH.fullmatch(path) if isinstance(path, str) else None
    if match is None:
        raise ValueError(f"not a field path: {path!r} (expected e.g. '3', '3[2].1', '5.1.2')")
    field, rep, comp, sub = match.groups()
    number = _index(field, path)
    assert number is not None  # the group is not optional
    return FieldPath(number, _index(rep, path), _index(comp, path), _index(sub, path))
