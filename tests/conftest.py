"""Root of the test tree. Being a conftest in a folder without ``__init__.py``, pytest
puts this folder on the import path, so helpers shared across test folders
(``pg_support``, ``hl7_corpus``) import by name from any of them, however the run is
started.

It also pins a neutral environment for the whole run, so that no test depends on the
terminal, locale, colour settings or time zone of whoever runs it. The pin is set before
any test module is imported (some libraries read the environment at import) and holds
for the test process and every process a test starts. A test that needs something else
(a colour terminal, a narrow screen, another zone) sets it itself, with
``monkeypatch.setenv`` or the ``env`` of the process it starts.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

# Set to a fixed value, and why.
PINNED = {
    # No terminal capabilities: rich and typer draw no live displays and no colours
    # unless a test asks for a terminal (tests/cli/test_send.py does, on a pty).
    "TERM": "dumb",
    # One UTF-8 locale: the CLI subprocesses read and print UTF-8 whatever the caller uses.
    "LC_ALL": "C.UTF-8",
    # Local time is UTC: a test about another zone names it.
    "TZ": "UTC",
}
# Removed, and why: each changes what a CLI or the console prints or does.
CLEARED = (
    # Width and height of the screen (rich wraps error lines at COLUMNS).
    "COLUMNS", "LINES",
    # Colour and terminal forcing, read by rich and click.
    "NO_COLOR", "FORCE_COLOR", "CLICOLOR", "CLICOLOR_FORCE", "COLORTERM",
    "TTY_COMPATIBLE", "TTY_INTERACTIVE",
    # Locale variables under LC_ALL, and Python's own encoding overrides.
    "LANG", "LANGUAGE", "PYTHONIOENCODING", "PYTHONUTF8",
    # Accord's own switches: tracebacks on CLI errors, and the API token of the console.
    "ACCORD_DEBUG", "ACCORD_API_TOKEN",
)

_pin = pytest.MonkeyPatch()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--readme-images", metavar="DIR", type=Path, default=None,
        help="write the README's screenshots (tests/web/browser) into DIR, e.g. docs/img; "
             "without it they go to the test's temporary folder, like every other file "
             "a test writes")


@pytest.fixture
def readme_images(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Where the browser test saves the screenshots shown in the README."""
    chosen: Path | None = request.config.getoption("readme_images")
    return chosen.resolve() if chosen is not None else tmp_path / "readme-images"


def pytest_configure(config: pytest.Config) -> None:
    for name, value in PINNED.items():
        _pin.setenv(name, value)
    for name in CLEARED:
        _pin.delenv(name, raising=False)
    time.tzset()  # the running process takes the new TZ, not only its children


def pytest_unconfigure(config: pytest.Config) -> None:
    _pin.undo()
    time.tzset()

