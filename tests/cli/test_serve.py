"""``accord serve`` as a subprocess: a listener whose port is taken stops it with one line
naming the port and its flag, exit 2, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

ACCORD = Path(sys.executable).parent / "accord"


def test_an_http_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run(
            [str(ACCORD), "serve", "--data", str(tmp_path), "--mllp-port", "0",
             "--dicom-port", "0", "--http-port", str(port)],
            capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("accord:")]
    assert lines == [f"accord: error: HTTP port {port} is in use (--http-port)"]
    assert "Traceback" not in r.stderr and "Accord is running" not in r.stdout
