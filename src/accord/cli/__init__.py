"""The ``accord`` command line (commands, flags and exit codes: docs/interface.md).

Each command lives in its own small module and registers itself on :data:`app`.
Errors print one line on standard error, never a traceback (set ``ACCORD_DEBUG=1`` to
see one): a deliberate :class:`~accord.errors.AccordError` exits 2, anything else 70.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from accord.errors import AccordError, ParseError
from accord.hl7 import Batch, parse_batch

app = typer.Typer(
    name="accord",
    help="Accord: an integration engine for medical imaging (HL7 v2, MLLP, DICOM MWL/MPPS).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from accord import __version__
        from accord.store.schema.migrations import head_revision

        typer.echo(f"accord {__version__} (schema {head_revision()})")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_version,
        help="Print the version and the schema revision, and exit.")] = False) -> None:
    """Accord: an integration engine for medical imaging (HL7 v2, MLLP, DICOM MWL/MPPS)."""


def _register() -> None:
    # Imported for their side effect of adding commands to `app`.
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error and return the Exit to raise."""
    typer.echo(f"accord: error: {message}", err=True)
    return typer.Exit(code)


def read_batch(file: str | Path, data: bytes) -> Batch:
    """``data``, the bytes of ``file``, parsed as HL7 v2 (one message, several, or a batch);
    a one-line error naming ``file`` and where parsing stopped when it is not HL7."""
    try:
        return parse_batch(data)
    except ParseError as exc:
        where = f" ({exc.location})" if exc.location else ""
        raise fail(f"{file}: not HL7 v2: {exc}{where}".replace("\n", " ")) from None


def main() -> None:
    """Entry point of the ``accord`` script."""
    try:
        _register()
        app(standalone_mode=True)
    except AccordError as exc:
        if os.environ.get("ACCORD_DEBUG"):
            raise
        where = f" ({exc.location})" if exc.location else ""
        print(f"accord: error: {exc}{where}".replace("\n", " "), file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, BrokenPipeError):
        sys.exit(130)
    except Exception as exc:  # the one place a bug becomes one line, not a traceback
        if os.environ.get("ACCORD_DEBUG"):
            raise
        print(f"accord: internal error: {type(exc).__name__}: {exc}".replace("\n", " "),
              file=sys.stderr)
        sys.exit(70)
