"""``accord parse`` and ``accord validate`` (docs/interface.md, "Command line").

Both read one file (``-`` for standard input) holding one message, several messages, or
a FHS/BHS batch, and handle each message in turn. Input that is not HL7 (or cannot be
read) ends with one line on standard error and exit 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from accord.cli import app, fail, read_batch
from accord.hl7 import Message
from accord.hl7.path import parse_path
from accord.hl7.spec import describe
from accord.hl7.validate import PROFILES, Problem, validate

_FILE_HELP = "HL7 file (one message, several, or a batch); - for standard input."


def _read(file: str) -> bytes:
    """The bytes of ``file`` (``-``: standard input); a one-line error when unreadable."""
    if file == "-":
        return sys.stdin.buffer.read()
    path = Path(file)
    if path.is_dir():
        raise fail(f"{file}: is a directory, not an HL7 file")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise fail(f"{file}: no such file") from None
    except OSError as exc:
        raise fail(f"{file}: cannot read: {exc.strerror or exc}") from None


def _messages(file: str) -> tuple[list[Message], tuple[str, ...]]:
    """The messages of ``file`` and the warnings of decoding it (MSH-18 fallbacks...)."""
    batch = read_batch(file, _read(file))
    if not batch.messages:
        raise fail(f"{file}: no HL7 message in it (only a batch envelope)")
    return batch.messages, batch.warnings


def _write(text: str, charset: str) -> None:
    """Write ``text`` in the message's own character set, so a round trip keeps the bytes."""
    sys.stdout.flush()
    try:
        data = text.encode(charset)
    except (UnicodeEncodeError, LookupError):
        data = text.encode("utf-8")
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


@app.command("parse")
def parse_command(
    file: Annotated[str, typer.Argument(help=_FILE_HELP)],
    as_json: Annotated[bool, typer.Option(
        "--json",
        help="Print each message as one line of JSON (JSON Lines): segments and fields "
             "with their HL7 v2.5.1 names; shape documented in accord.hl7.spec.describe.",
    )] = False,
    get: Annotated[list[str] | None, typer.Option(
        "--get", metavar="PATH",
        help="Print the unescaped value at PATH (e.g. PID-3[2].1, OBX[3]-5) on its own line; "
             "repeatable, printed in order; an absent value prints an empty line.",
    )] = None,
    roundtrip: Annotated[bool, typer.Option(
        "--roundtrip",
        help="Print each message's to_er7() exactly (segments separated by CR, as on the "
             "wire, in the message's character set), then a newline. A batch envelope "
             "(FHS/BHS/BTS/FTS) is not printed.",
    )] = False,
) -> None:
    """Parse an HL7 v2 file and print values, the re-encoded message, or JSON.

    Without options: each valued field with its name. Per message: --get, --roundtrip, --json.
    """
    paths = get or []
    for path in paths:
        try:
            parse_path(path)
        except ValueError as exc:
            raise fail(str(exc)) from None
    messages, warnings = _messages(file)
    for msg in messages:
        for path in paths:
            typer.echo(msg.get(path))
        if roundtrip:
            _write(msg.to_er7() + "\n", msg.charset)
        if as_json:
            data = describe(msg)
            data["warnings"] = [*warnings, *data["warnings"]]
            typer.echo(json.dumps(data, ensure_ascii=False))
        if not (paths or roundtrip or as_json):
            _listing(msg, warnings)


def _listing(msg: Message, warnings: tuple[str, ...]) -> None:
    """A human-readable view: ``PID-3  Patient Identifier List  PID_1^^^ADT1``."""
    typer.echo(f"# {msg.message_type or '?'}  control ID {msg.control_id or '?'}  "
               f"version {msg.version or '?'}")
    for warning in (*warnings, *msg.warnings):
        typer.echo(f"# warning: {warning}")
    for seg in describe(msg)["segments"]:
        for field in seg["fields"]:
            name = field["name"] or "-"
            typer.echo(f"{field['path']:<12} {name:<40.40} {field['raw']}")


@app.command("validate")
def validate_command(
    file: Annotated[str, typer.Argument(help=_FILE_HELP)],
    profile: Annotated[str, typer.Option(
        "--profile", help=f"Validation profile: {', '.join(PROFILES)}.",
    )] = "basic",
) -> None:
    """Check each message against a profile: one problem per line, exit 1 on any error.

    Lines: SEVERITY LOCATION CODE message (CODE from HL7 table 0357).

    Several messages: a "# message N: TYPE CONTROL-ID" line precedes each one's problems.
    """
    if profile not in PROFILES:
        raise fail(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    messages, warnings = _messages(file)
    for warning in warnings:  # decoding the file, e.g. MSH-18 not matching the bytes
        typer.echo(str(Problem("warning", "MSH-18" if "MSH-18" in warning else "", "102",
                               warning)))
    errors = 0
    for number, msg in enumerate(messages, start=1):
        if len(messages) > 1:
            typer.echo(f"# message {number}: {msg.message_type or '?'} {msg.control_id or '?'}")
        for problem in validate(msg, profile):
            typer.echo(str(problem))
            errors += problem.severity == "error"
    if errors:
        raise typer.Exit(1)
