"""``accord send``: an MLLP client for files of HL7 messages (docs/interface.md).

Each FILE may hold one message, several, or a FHS/BHS batch (HL7 v2.5.1 §2.10.3). Every
file is checked with ``parse_batch`` before anything is sent, so a bad file stops the run
with one line and exit 2 and nothing half-sent. Messages go out as the bytes read from the
file: the file is cut at its ``MSH`` segments and envelope segments (FHS, BHS, BTS, FTS)
are dropped, without decoding, so the original character set's bytes are kept. The one
change made is the segment terminator: CR LF and LF line ends become CR, as MLLP peers
expect. (Should the raw cut disagree with the parser's count of messages, the parsed
messages are re-encoded in the file's character set instead.)

Output: one line per ACK, ``CONTROL_ID CODE TEXT`` (``--verbose``: the ACK itself after
it). A reply that does not acknowledge the message sent prints ``CONTROL_ID MISMATCH …``.
Exit 0 when every message got AA/CA, 1 on any AE/AR/CE/CR or mismatch, 2 when a file is
bad or the receiver cannot be reached or does not answer in time.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from accord.cli import app, fail, read_batch
from accord.errors import AccordError, ConfigError, DeliveryError
from accord.hl7 import parse
from accord.mllp.client import AckMismatchError, AckResult, MllpClient
from accord.mllp.tls import client_context

PROGRESS_ABOVE = 20  # messages; fewer go without a progress bar
_ENVELOPE = (b"FHS", b"BHS", b"BTS", b"FTS")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to send: where it came from, its MSH-10 and its bytes."""

    source: str
    control_id: str
    payload: bytes


def split_raw(data: bytes) -> list[bytes]:
    """Cut a file into messages at MSH segments, keeping bytes; CR LF / LF become CR.
    Envelope segments are dropped. Segments before the first MSH make the cut fail ([])."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    messages: list[list[bytes]] = []
    for segment in data.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r"):
        if not segment.strip():
            continue
        tag = segment[:3]
        if tag in _ENVELOPE:
            messages.append([])  # ends the message in progress
        elif tag == b"MSH":
            messages.append([segment])
        elif messages and messages[-1]:
            messages[-1].append(segment)
        else:
            return []
    return [b"\r".join(segs) + b"\r" for segs in messages if segs]


def read_messages(file: Path) -> list[Outgoing]:
    """The messages of ``file``; a one-line error (exit 2) when it is not HL7."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise fail(f"{file}: cannot read: {exc.strerror or exc}") from None
    batch = read_batch(file, data)
    if not batch.messages:
        raise fail(f"{file}: no HL7 message in it")
    raw = split_raw(data)
    if len(raw) != len(batch.messages):
        raw = [m.to_er7().encode(batch.charset, errors="replace") + b"\r"
               for m in batch.messages]
    return [Outgoing(str(file), m.get("MSH-10"), payload)
            for m, payload in zip(batch.messages, raw, strict=True)]


def parse_target(to: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT``."""
    host, sep, port = to.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise fail(f"--to {to!r}: expected HOST:PORT")
    return host, int(port)


def _tls_context(tls: bool, ca: Path | None, cert: Path | None, key: Path | None,
                 no_verify: bool) -> ssl.SSLContext | None:
    if not (tls or ca or cert or key or no_verify):
        return None
    try:
        return client_context(ca_file=ca, cert_file=cert, key_file=key, verify=not no_verify)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def _describe(result: AckResult) -> str:
    return f"{result.control_id} {result.code} {result.text}".rstrip()


def _ack_er7(ack: bytes) -> str:
    try:
        return parse(ack).to_er7().replace("\r", "\n").rstrip("\n")
    except AccordError:
        return ack.decode("utf-8", errors="replace").replace("\r", "\n").rstrip("\n")


async def _send_all(client: MllpClient, messages: list[Outgoing], verbose: bool,
                    progress: Progress | None) -> bool:
    """Send in order; print each outcome; True when every message was accepted."""
    all_ok = True
    task = progress.add_task("sending", total=len(messages)) if progress else None
    async with client:
        for out in messages:
            try:
                result = await client.send_message(out.payload, out.control_id)
            except AckMismatchError as exc:
                all_ok = False
                typer.echo(f"{out.control_id} MISMATCH {exc}")
                if verbose and exc.ack:
                    typer.echo(_ack_er7(exc.ack))
            else:
                all_ok = all_ok and result.accepted
                typer.echo(_describe(result))
                if verbose:
                    typer.echo(_ack_er7(result.ack))
            if progress is not None and task is not None:
                progress.advance(task)
    return all_ok


def _progress(count: int) -> Progress | None:
    if count <= PROGRESS_ABOVE:
        return None
    console = Console(stderr=True)
    return Progress(TextColumn("[bold]sending"), BarColumn(), MofNCompleteColumn(),
                    console=console, transient=True, disable=not console.is_terminal)


@app.command("send")
def send_command(
    files: Annotated[list[Path], typer.Argument(
        help="HL7 files: one message, several, or a FHS/BHS batch each.")],
    to: Annotated[str, typer.Option("--to", help="Receiver as HOST:PORT.")],
    tls: Annotated[bool, typer.Option("--tls", help="Use TLS (1.2 or later).")] = False,
    ca: Annotated[Path | None, typer.Option(
        "--ca", help="CA file to verify the receiver (implies --tls).")] = None,
    cert: Annotated[Path | None, typer.Option(
        "--cert", help="Client certificate for mutual TLS (implies --tls).")] = None,
    key: Annotated[Path | None, typer.Option(
        "--key", help="Key of the client certificate.")] = None,
    no_verify: Annotated[bool, typer.Option(
        "--no-verify", help="Do not verify the receiver's certificate (implies --tls).")] = False,
    timeout: Annotated[float, typer.Option(
        "--timeout", min=0.001, help="Seconds to wait for each ACK (and to connect).")] = 30.0,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Print each ACK message after its summary line.")] = False,
) -> None:
    """Send HL7 messages over MLLP and print each ACK; exit 1 on any AE/AR."""
    host, port = parse_target(to)
    context = _tls_context(tls, ca, cert, key, no_verify)
    messages = [out for file in files for out in read_messages(file)]
    client = MllpClient(host, port, ssl_context=context, connect_timeout=min(timeout, 10.0),
                        ack_timeout=timeout)
    progress = _progress(len(messages))
    live: AbstractContextManager[object] = progress if progress is not None else nullcontext()
    try:
        with live:
            all_ok = asyncio.run(_send_all(client, messages, verbose, progress))
    except DeliveryError as exc:
        sys.stdout.flush()
        raise fail(str(exc).replace("\n", " ")) from None
    if not all_ok:
        raise typer.Exit(1)
