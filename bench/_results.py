"""Shared helper for benchmarks: rewrite one section of bench/RESULTS.md.

Each benchmark owns the text between ``<!-- name:start -->`` and ``<!-- name:end -->``;
everything else in the file is left as it is. A missing section is appended.
"""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(name: str, markdown: str) -> None:
    """Replace (or append) the section ``name`` of bench/RESULTS.md with ``markdown``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    head, found, rest = text.partition(start)
    if found and end in rest:
        text = head + block + rest.partition(end)[2]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(text, encoding="utf-8")
