"""The path grammar ``SEG[n]-F[r].C.S`` (docs/interface.md, "Paths")."""

from __future__ import annotations

import pytest

from accord.hl7.path import FieldPath, Path, parse_field_path, parse_path


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("PID", Path("PID", None, None, None, None, None)),
        ("PID-3", Path("PID", None, 3, None, None, None)),
        ("PID-3[2].1", Path("PID", None, 3, 2, 1, None)),
        ("OBX[3]-5", Path("OBX", 3, 5, None, None, None)),
        ("PID-3.4.2", Path("PID", None, 3, None, 4, 2)),
        ("OBX[12]-5[3].2.1", Path("OBX", 12, 5, 3, 2, 1)),
        ("ZDS-1", Path("ZDS", None, 1, None, None, None)),
        ("Z01-1", Path("Z01", None, 1, None, None, None)),
        ("MSH-1", Path("MSH", None, 1, None, None, None)),
    ],
)
def test_parse_path(text: str, path: Path) -> None:
    assert parse_path(text) == path


@pytest.mark.parametrize(
    "text",
    ["", "pid-3", "PI-3", "PIDX-3", "PID-", "PID-3.", "PID-0", "PID-3[0]", "OBX[0]-5",
     "PID-3.1.2.3", "PID.3", "PID-3[]", "PID-a", " PID-3", "PID-3 ", "1ID-3", "PID-3[2]x"],
)
def test_malformed_path_is_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_path(text)


def test_non_string_path_is_value_error() -> None:
    with pytest.raises(ValueError):
        parse_path(3)  # type: ignore[arg-type]


def test_field_path() -> None:
    assert parse_field_path("3[2].1") == FieldPath(3, 2, 1, None)
    assert parse_field_path("5") == FieldPath(5, None, None, None)
    assert parse_field_path("4.1.2") == FieldPath(4, None, 1, 2)
    for bad in ("", "0", "PID-3", "3.", "3[0]"):
        with pytest.raises(ValueError):
            parse_field_path(bad)
