"""Text as both databases can store it, the same way on both.

Rule: whatever arrived on the wire is stored, never refused for its characters. Raw bytes
are kept exactly (``raw``, ``ack``); only the *text* columns and the JSON outcome are
cleaned: PostgreSQL refuses NUL in text and JSONB, and no driver encodes lone surrogates
(``surrogateescape`` leftovers) to UTF-8. Both become U+FFFD, on SQLite too, so a search
or a dedupe key finds the same rows on either database.
"""

from __future__ import annotations

import re
from typing import Any

_BAD = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def clean_text(value: str) -> str:
    """``value`` with NUL and lone surrogates replaced by U+FFFD (unchanged if none)."""
    if value.isascii():  # no NUL in practice, never a surrogate: skip the regex
        return value.replace("\x00", REPLACEMENT) if "\x00" in value else value
    return _BAD.sub(REPLACEMENT, value) if _BAD.search(value) else value


def clean_json(value: Any) -> Any:
    """A JSON-able value with every string (keys included) cleaned."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value
