"""The engine as the product lives, driven from the outside: ``accord serve`` as a
subprocess on its own temporary data directory and free ports, messages over MLLP,
answers from the JSON API. Nothing here imports the engine's internals, so a benchmark
built on it measures exactly what a deployment runs.

- ``Engine``: start (waits for ``/api/health``), ``send`` messages with N blocking-socket
  senders, read the API (``get``, every page of a list route with ``pages``), stop.
- ``send`` reports msg/s, ACK p50/p99, the ACK codes, and the server's CPU time per
  message and resident memory (read from ``/proc/<pid>``: Linux only); the module's
  ``send(port, pid, …)`` does the same for any MLLP server process (a peer).
- ``MllpClient``: one blocking MLLP connection, one message in flight (the senders of
  bench/ingest.py too).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

SB, END = b"\x0b", b"\x1c\x0d"
START_TIMEOUT = 120.0  # a loaded 2-core machine starts the engine slowly


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live children so far (Linux
    /proc/<pid>/stat; the engine may run parts in processes of its own)."""
    total = 0.0
    for one in process_tree(pid):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its live children (Linux /proc/<pid>/status,
    VmRSS), in MB."""
    total = 0.0
    for one in process_tree(pid):
        try:
            lines = Path(f"/proc/{one}/status").read_text().splitlines()
        except OSError:
            continue
        total += next((int(x.split()[1]) / 1024 for x in lines if x.startswith("VmRSS:")), 0.0)
    return total


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc/<pid>/task/<tid>/children)."""
    out, todo = [], [pid]
    while todo:
        one = todo.pop()
        out.append(one)
        for task in Path(f"/proc/{one}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except OSError:
                continue
    return out


def ack_code(ack: bytes) -> str:
    """MSA-1 of an ACK (AA, AE, AR, CA, ...); "" when there is no MSA. The segment is
    found at a segment's start: an MSH-10 may hold the letters MSA."""
    at = ack.find(b"\rMSA|")
    return ack[at + 5:at + 7].decode("ascii", "replace") if at >= 0 else ""


class MllpClient:
    """One blocking MLLP connection; ``exchange`` sends a message and returns its ACK.

    A blocking socket in a thread of its own: the sender's own time is on the serial path
    of every round trip (one message in flight), and an asyncio stream client adds
    ~50 us to each (measured against a server that answers at once), so it would
    understate any fast server."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 60.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)  # no answer: fail
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def exchange(self, payload: bytes) -> bytes:
        self.sock.sendall(SB + payload + END)
        while (end := self.buf.find(END)) < 0:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("the server closed the connection")
            self.buf += chunk
        ack, self.buf = self.buf[:end], self.buf[end + len(END):]
        return ack.lstrip(SB)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class SendReport:
    """One ``Engine.send``: ACK latencies in ms, server CPU ms per message, RSS in MB;
    ``refused`` holds (index, ACK) of every message not answered AA/CA."""

    messages: int
    senders: int
    seconds: float
    codes: dict[str, int]
    p50_ms: float
    p99_ms: float
    cpu_ms_per_message: float
    rss_mb: float
    refused: tuple[tuple[int, bytes], ...]

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def send(port: int, pid: int, messages: Sequence[bytes], senders: int = 1) -> SendReport:
    """Every message once to the MLLP server on ``port`` (process ``pid``, whose CPU and
    memory are read); sender ``i`` sends ``messages[i::senders]`` in order, one in
    flight per connection. With one sender the arrival order is the list's."""
    latencies: list[float] = []
    codes: Counter[str] = Counter()
    refused: list[tuple[int, bytes]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def run(first: int) -> None:
        clock, own, own_codes, own_refused = time.perf_counter, [], Counter[str](), []
        try:
            with MllpClient(port) as client:
                for i in range(first, len(messages), senders):
                    payload = messages[i]
                    t0 = clock()
                    ack = client.exchange(payload)
                    own.append(clock() - t0)
                    code = ack_code(ack)
                    own_codes[code] += 1
                    if code not in ("AA", "CA"):
                        own_refused.append((i, ack))
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)
        with lock:
            latencies.extend(own)
            codes.update(own_codes)
            refused.extend(own_refused)

    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu0
    if errors:
        raise RuntimeError(f"a sender failed: {errors[0]!r}")
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return SendReport(len(messages), senders, seconds, dict(codes), q[49] * 1000,
                      q[98] * 1000, cpu / max(len(messages), 1) * 1000, rss_mb(pid),
                      tuple(sorted(refused)))


class Engine:
    """``accord serve`` on a fresh data directory (or ``data``) and free ports, with an
    admin API token of its own (``ACCORD_API_TOKEN``). ``config`` is its YAML text."""

    def __init__(self, data: Path | None = None, config: str = "",
                 extra_env: dict[str, str] | None = None) -> None:
        self._own_dir = data is None
        self.data = data or Path(tempfile.mkdtemp(prefix="accord-bench-"))
        self.data.mkdir(parents=True, exist_ok=True)
        self.config, self.extra_env = config, extra_env or {}
        self.token = secrets.token_urlsafe(24)
        self.mllp_port = self.http_port = self.dicom_port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the engine is not running"
        return self.proc.pid

    def start(self) -> Engine:
        self.mllp_port, self.http_port, self.dicom_port = free_port(), free_port(), free_port()
        args = [sys.executable, "-m", "accord", "serve", "--data", str(self.data),
                "--mllp-port", str(self.mllp_port), "--http-port", str(self.http_port),
                "--dicom-port", str(self.dicom_port)]
        if self.config:
            path = self.data / "accord.yaml"
            path.write_text(self.config, encoding="utf-8")
            args += ["--config", str(path)]
        env = {**os.environ, "ACCORD_API_TOKEN": self.token, "PYTHONUNBUFFERED": "1",
               "NO_COLOR": "1", **self.extra_env}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        self._wait_healthy()
        return self

    @property
    def log_path(self) -> Path:
        return self.data / "serve.log"

    def log_tail(self, chars: int = 3000) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return text[-chars:]

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"accord serve exited:\n{self.log_tail()}")
            with contextlib.suppress(OSError, RuntimeError):
                if self.get("/api/health").get("status") == "ok":
                    return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"accord serve did not become healthy:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._own_dir:
            shutil.rmtree(self.data, ignore_errors=True)

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------ MLLP

    def send(self, messages: Sequence[bytes], senders: int = 1) -> SendReport:
        """Every message once; sender ``i`` sends ``messages[i::senders]`` in order, one
        in flight per connection. With one sender the arrival order is the list's."""
        try:
            return send(self.mllp_port, self.pid, messages, senders)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{self.log_tail()}") from None

    # ------------------------------------------------------------------ API

    def get(self, path: str, **params: Any) -> Any:
        """GET a JSON route with the admin token; the decoded body."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        request = urllib.request.Request(
            f"{self.url}{path}{'?' + query if query else ''}",
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"GET {path}: HTTP {exc.code} {exc.read()[:300]!r}") from None

    def pages(self, path: str, limit: int = 1000, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a list route (``{"items": [...], "next": cursor}``), page by page."""
        cursor = None
        while True:
            page = self.get(path, limit=limit, cursor=cursor, **params)
            yield from page["items"]
            cursor = page.get("next")
            if not cursor:
                return

    def duplicates(self) -> list[dict[str, Any]]:
        """All potential duplicate pairs (``/api/duplicates``)."""
        return list(self.pages("/api/duplicates"))

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/api/stats")
        return result
