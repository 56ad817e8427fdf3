"""Fuzz target: the configuration loader (``python fuzz/run.py config``).

Documented outcome: ``load_config`` returns a ``Config`` or raises ``ConfigError`` with a
one-line message; it never raises anything else, whatever the file holds (bad YAML, tags,
wrong types, deep nesting, any bytes).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["accord"]):
    from accord.config import Config, load_config
    from accord.errors import ConfigError

_DIR = Path(tempfile.mkdtemp(prefix="accord-fuzz-config-"))
_FILE = _DIR / "accord.yaml"


def TestOneInput(data: bytes) -> None:
    _FILE.write_bytes(data)
    try:
        config = load_config(_FILE)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc), repr(str(exc))
        return
    assert isinstance(config, Config)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    os.environ.setdefault("TZ", "UTC")
    atheris.Fuzz()


if __name__ == "__main__":
    main()
