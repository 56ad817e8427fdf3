"""Where the third-party HL7 corpus lives and which of its files are data.

``tests/corpus`` holds message files copied verbatim from public repositories, one
folder per source, each with that source's licence notice; ``tests/corpus/SOURCES.md``
says what each source is, its commit and its licence, and what was left out and why.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
# What sits in the corpus beside the data: the index and each source's licence notice.
NOT_DATA = frozenset({"SOURCES.md", "LICENSE", "LICENSE.txt", "NOTICE"})


def corpus_files(root: Path = CORPUS) -> list[tuple[str, Path]]:
    """Every data file under ``root``, as (path relative to ``root``, path), sorted."""
    found = (p for p in root.rglob("*") if p.is_file() and p.name not in NOT_DATA)
    return sorted((p.relative_to(root).as_posix(), p) for p in found)
