"""Helpers for end-to-end tests: a real ``accord serve`` process on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port nobody listens on right now (127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class ServeProcess:
    """``python -m accord serve --config FILE --data DIR --mllp-port N`` as a child."""

    def __init__(self, config: Path, data: Path, port: int, command: str = "serve",
                 env: dict[str, str] | None = None) -> None:
        self.config, self.data, self.port, self.command = config, data, port, command
        self.env = env or {}
        self.dicom_port, self.http_port = free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data / f"{command}.log"

    def start(self, timeout: float = 30.0) -> None:
        """Start and wait until the MLLP port accepts connections."""
        self.data.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "accord", self.command, "--config", str(self.config),
                "--data", str(self.data), "--mllp-port", str(self.port),
                "--dicom-port", str(self.dicom_port), "--http-port", str(self.http_port)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1",
                                              **self.env})
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"accord {self.command} exited: {self.log.read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"accord {self.command} did not listen on {self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no chance to finish anything."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the graceful stop; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def serve() -> Iterator[Callable[..., ServeProcess]]:
    """``serve(config, data, port, command="serve")`` makes a :class:`ServeProcess` (not
    started); any still running at the end of the test is killed."""
    procs: list[ServeProcess] = []

    def make(config: Path, data: Path, port: int, command: str = "serve",
             env: dict[str, str] | None = None) -> ServeProcess:
        procs.append(ServeProcess(config, data, port, command, env))
        return procs[-1]

    yield make
    for p in procs:
        p.cleanup()


@pytest.fixture(name="free_port")
def free_port_fixture() -> Callable[[], int]:
    return free_port


@pytest.fixture(name="gateway_config")
def gateway_config_fixture() -> Callable[..., Path]:
    return gateway_config


def gateway_config(path: Path, receiver_port: int, node_id: str | None = None,
                   **dest: object) -> Path:
    """A config with one destination (the test's receiver) for adt, orders and reports.
    The workflow is off: these tests are about the gateway (messages pass through)."""
    extra = "".join(f"    {k}: {v}\n" for k, v in dest.items())
    path.write_text(
        "workflow: {enabled: false}\n"
        + (f"node_id: {node_id}\n" if node_id else "")
        + "destinations:\n"
        "  - name: pacs\n"
        "    host: 127.0.0.1\n"
        f"    port: {receiver_port}\n"
        "    send: [adt, orders, reports]\n"
        "    connect_timeout: 1\n"
        "    ack_timeout: 2\n"
        "    backoff: {base: 0.05, cap: 0.5}\n" + extra,
        encoding="utf-8")
    return path
