"""Real processes for the operations tests: the ``accord`` command, ``accord serve`` on
ports chosen by the system (port 0, read back from what it prints), a downstream MLLP
peer answering AA, and numbered orders to send. Importable from any test folder
(``tests/conftest.py`` puts this folder on the import path)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ACCORD = Path(sys.executable).with_name("accord")
SAMPLES = Path(__file__).resolve().parent / "samples"
START, END = b"\x0b", b"\x1c\r"


def accord(*args: str, stdin: str = "", binary: Path = ACCORD, cwd: Path | None = None,
           env: dict[str, str] | None = None, timeout: float = 120
           ) -> subprocess.CompletedProcess[str]:
    """Run ``accord ARGS`` to the end; stdout, stderr and the exit code."""
    return subprocess.run([str(binary), *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=cwd, env=env)


def one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """``result`` failed with exit 2 and one line ``accord: error: …`` holding ``words``."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("accord: error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def order(n: int, prefix: str = "OPS") -> bytes:
    """ORM^O01 number ``n``: its own MSH-10 (``<prefix><n>``), patient, order numbers,
    accession and Study Instance UID."""
    text = (SAMPLES / "gateway_orm_o01_nw.hl7").read_text(encoding="utf-8")
    text = (text.replace("GW00000003", control_id(n, prefix))
            .replace("P26030200001", f"P{prefix}{n}").replace("ACC26030200001", f"A{prefix}{n}")
            .replace("MRN3530829", f"M{prefix}{n}").replace("V3530829", f"V{prefix}{n}")
            .replace("2.25.73058006044257005896280401393107928181", f"2.25.{7000000 + n}")
            .replace("|US-ABD|US1|", f"|R{prefix}{n}|US1|")
            .replace("Moreau^Ben", f"Moreau{_letters(n)}^Ben"))
    return "\r".join(line for line in text.splitlines() if line).encode()


def _letters(n: int) -> str:
    """``n`` in letters (a family name of its own for each order: no duplicate pairs)."""
    out = ""
    while True:
        n, digit = divmod(n, 26)
        out = chr(ord("a") + digit) + out
        if n == 0:
            return out


def control_id(n: int, prefix: str = "OPS") -> str:
    return f"{prefix}{n:08d}"


def send(port: int, payload: bytes, timeout: float = 30) -> bytes:
    """One message over MLLP; the ACK (b"" when the connection closed first)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(START + payload + END)
        buf = b""
        while END not in buf:
            chunk = s.recv(65536)
            if not chunk:
                return b""
            buf += chunk
    return buf.lstrip(START).split(END, 1)[0]


def ack_code(ack: bytes) -> str:
    """MSA-1 of an ACK ("" when there is none)."""
    found = re.search(rb"MSA\|([A-Z]{2})", ack)
    return found.group(1).decode() if found else ""


def dead_port() -> socket.socket:
    """A socket bound to a port and not listening: connecting there is refused, and no
    other listener can take the port while the socket stays open."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


class AckPeer:
    """A downstream system on a free port: answers every framed message AA (MSA-2 =
    its MSH-10), after ``delay`` seconds, and keeps the MSH-10s it received
    (``received``) and the messages themselves (``messages``)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.received: list[str] = []
        self.messages: list[bytes] = []
        self._closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        buf = b""
        with conn, contextlib.suppress(OSError):
            while chunk := conn.recv(65536):
                buf += chunk
                while END in buf:
                    frame, buf = buf.split(END, 1)
                    message = frame.lstrip(START)
                    msh = message.split(b"\r", 1)[0].split(b"|")
                    control = msh[9] if len(msh) > 9 else b""
                    self.messages.append(message)
                    self.received.append(control.decode())
                    time.sleep(self.delay)
                    conn.sendall(START + b"MSH|^~\\&|PEER|PEER|ACCORD|ACCORD|20260302||ACK|A"
                                 + control + b"|P|2.5.1\rMSA|AA|" + control + b"\r" + END)

    def close(self) -> None:
        self._closed = True
        self.sock.close()


def write_config(path: Path, **sections: Any) -> Path:
    """A config file (JSON is YAML) with these top-level sections; DICOM off unless
    given, so no test binds a DICOM port it does not use."""
    body = {"dicom": {"enabled": False}, **sections}
    path.write_text(json.dumps(body, indent=2), encoding="utf-8")
    return path


def destination(name: str, port: int, send: Sequence[str] = ("adt", "orders"),
                **extra: Any) -> dict[str, Any]:
    return {"name": name, "host": "127.0.0.1", "port": port, "send": list(send),
            "connect_timeout": 1, "backoff": {"base": 0.2, "cap": 1}, **extra}


@dataclass
class Serve:
    """A running ``accord serve``: its process, log and the ports it bound."""

    process: subprocess.Popen[bytes]
    log_path: Path
    mllp_port: int = 0
    http_port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send ``sig`` and wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


def serve_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("ACCORD_API_TOKEN", None)
    return env


def text_ports(text: str) -> tuple[int, int] | None:
    """The MLLP and HTTP ports ``accord serve`` printed (text logs), once it has."""
    mllp = re.search(r"listening: HL7 mllp(?:\+tls)?://[^:]+:(\d+)", text)
    http = re.search(r"listening: console\+API http://[^:]+:(\d+)", text)
    return (int(mllp.group(1)), int(http.group(1))) if mllp and http else None


def start_serve(args: Sequence[str], log_path: Path, *, binary: Path = ACCORD,
                cwd: Path | None = None, env: dict[str, str] | None = None,
                timeout: float = 90,
                ports: Callable[[str], tuple[int, int] | None] = text_ports) -> Serve:
    """``accord serve ARGS`` on ports 0 (unless ARGS name them); returns once
    ``/api/health`` answers 200, with the bound ports read from its output by
    ``ports``."""
    unnamed = [flag for flag in ("--mllp-port", "--http-port", "--dicom-port")
               if flag not in args]
    command = [str(binary), "serve", *args]
    for flag in unnamed:
        command += [flag, "0"]
    with log_path.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                   env=env or serve_env(), cwd=cwd)
    found = Serve(process, log_path)
    try:
        _wait_ready(found, ports, timeout)
    except BaseException:
        process.kill()  # never leave an engine behind, whatever went wrong
        process.wait()
        raise
    return found


def _wait_ready(found: Serve, ports: Callable[[str], tuple[int, int] | None],
                timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found.process.poll() is not None:
            raise RuntimeError(f"accord serve exited {found.process.returncode}:\n{found.log()}")
        bound = ports(found.log())
        if bound is not None:
            found.mllp_port, found.http_port = bound
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{found.url}/api/health", timeout=2).status_code == 200:
                    return
        time.sleep(0.2)
    raise RuntimeError(f"accord serve did not become ready:\n{found.log()}")


@contextlib.contextmanager
def serving(args: Sequence[str], log_path: Path, **kwargs: Any) -> Iterator[Serve]:
    """:func:`start_serve`, stopped (SIGTERM, then SIGKILL) when the block ends."""
    found = start_serve(args, log_path, **kwargs)
    try:
        yield found
    finally:
        if found.process.poll() is None:
            found.process.terminate()
            try:
                found.process.wait(30)
            except subprocess.TimeoutExpired:
                found.process.kill()
                found.process.wait()


def free_port() -> int:
    """A port nobody listens on now, for a process that must be told its port before it
    starts (a configuration file written by a script)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
