"""A real engine for the browser and canary tests: ``accord serve`` as a subprocess on
free ports with a tmp SQLite store, users made with ``accord user add``, a fake PACS
(an MLLP peer answering AA) and a RIS destination that is down, messages sent over
MLLP. Everything it prints (stdout and stderr, INFO and above) is kept in ``log``."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from console_support import CATALOG, PASSWORD, ROLES, sample

ACCORD = Path(sys.executable).with_name("accord")
START, END = b"\x0b", b"\x1c\r"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakePeer:
    """A downstream system: answers every framed message with an AA (MSA-2 = MSH-10)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.received: list[bytes] = []
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while chunk := conn.recv(65536):
                buf += chunk
                while END in buf:
                    frame, buf = buf.split(END, 1)
                    msg = frame.lstrip(START)
                    self.received.append(msg)
                    msh = msg.split(b"\r", 1)[0].split(b"|")
                    control = msh[9] if len(msh) > 9 else b""
                    ack = (b"MSH|^~\\&|PACS|PACS|ACCORD|ACCORD|20260302||ACK|A" + control
                           + b"|P|2.5.1\rMSA|AA|" + control + b"\r")
                    conn.sendall(START + ack + END)

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def send(port: int, payload: bytes) -> bytes:
    """One message over MLLP; the ACK."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(START + payload + END)
        buf = b""
        while END not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return buf.lstrip(START).split(END, 1)[0]


@dataclass
class Engine:
    data: Path
    http_port: int
    mllp_port: int
    process: subprocess.Popen[bytes]
    pacs: FakePeer
    log_path: Path
    acks: list[bytes] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _config(data: Path, mllp: int, http: int, pacs: int, ris: int) -> Path:
    path = data / "accord.yaml"
    path.write_text(json.dumps({  # JSON is YAML
        "mllp": {"port": mllp}, "http": {"port": http}, "dicom": {"enabled": False},
        "store": {"data_dir": str(data)}, "workflow": {"catalog": CATALOG},
        "alerts": {"interval": 1, "rules": [{"kind": "connection_down",
                                             "severity": "error"}]},
        "destinations": [
            {"name": "pacs", "host": "127.0.0.1", "port": pacs,
             "send": ["adt", "orders", "reports"]},
            {"name": "ris", "host": "127.0.0.1", "port": ris, "send": ["status"],
             "connect_timeout": 0.5, "backoff": {"base": 1, "cap": 2}},
        ]}), encoding="utf-8")
    return path


def _wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("accord serve exited:\n" + log_path.read_text())
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError("accord serve did not become ready:\n" + log_path.read_text())


@contextlib.contextmanager
def engine(data: Path, feed: tuple[str, ...], log_format: str = "text") -> Iterator[Engine]:
    """``accord serve`` with users for every role (password PASSWORD), fed ``feed``,
    logging in ``log_format`` (``text`` or ``json``)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    env.pop("ACCORD_API_TOKEN", None)
    for role in ROLES:
        subprocess.run([str(ACCORD), "user", "add", role, "--role", role, "--data", str(data)],
                       input=PASSWORD.encode(), check=True, capture_output=True, env=env,
                       timeout=60)
    pacs = FakePeer()
    mllp, http = free_port(), free_port()
    config = _config(data, mllp, http, pacs.port, free_port())
    log_path = data / "serve.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen([str(ACCORD), "serve", "--config", str(config),
                                    "--log-format", log_format],
                                   stdout=out, stderr=subprocess.STDOUT, env=env)
    eng = Engine(data, http, mllp, process, pacs, log_path)
    try:
        _wait_ready(eng.url, process, log_path)
        eng.acks = [send(mllp, sample(name)) for name in feed]
        yield eng
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        pacs.close()
