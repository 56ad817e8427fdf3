"""The store's seam, read from the source: outside ``accord.store`` nothing imports
SQLAlchemy, asks whether a store or transaction is the SQL one, or reaches for an
engine. The composition root (``accord.runtime``) hands every part the port it needs."""

from __future__ import annotations

import ast
from pathlib import Path

import accord

SRC = Path(accord.__file__).resolve().parent
STORE = SRC / "store"


def _outside_the_store() -> list[tuple[Path, ast.AST]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if STORE in path.parents:
            continue
        found += [(path, node) for node in ast.walk(ast.parse(path.read_text()))]
    return found


def test_nothing_outside_the_store_imports_sqlalchemy() -> None:
    offenders = set()
    for path, node in _outside_the_store():
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        if any(n == "sqlalchemy" or n.startswith("sqlalchemy.") for n in names):
            offenders.add(str(path.relative_to(SRC)))
    assert offenders == set()


def test_nothing_outside_the_store_tests_for_the_sql_store_or_its_engine() -> None:
    offenders = set()
    for path, node in _outside_the_store():
        text = ast.unparse(node) if isinstance(node, ast.Call | ast.Attribute) else ""
        if (isinstance(node, ast.Call) and text.startswith(("isinstance(", "getattr("))
                and ("SqlStore" in text or "SqlTx" in text or "'engine'" in text)):
            offenders.add(f"{path.relative_to(SRC)}: {text}")
        if isinstance(node, ast.Attribute) and node.attr == "engine":
            offenders.add(f"{path.relative_to(SRC)}: {text}")
    assert offenders == set()
