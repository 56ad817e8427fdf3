"""docs/operations.md, followed step by step: its shell blocks marked ``sh test`` run in
order, in one bash session with ``set -euo pipefail``, in a temporary folder holding the
wheel built from this tree; the install (a fresh virtual environment outside the source
tree, the wheel and its dependencies from the package index), first start, TLS, reload,
backup, restore, upgrade, graceful stop and the move to PostgreSQL all happen for real,
with the installed ``accord``. A step that fails fails the test with the script's output;
the page cannot rot."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from accord import __version__
from accord.store.schema.migrations import head_revision
from ops_support import free_port
from pg_support import fresh_database

from .conftest import ROOT, wheel_of

DOC = ROOT / "docs" / "operations.md"
BLOCK = re.compile(r"^```sh test\n(.*?)^```", re.S | re.M)


def steps_of(text: str) -> list[str]:
    """The ``sh test`` blocks of a Markdown page, in order."""
    return BLOCK.findall(text)


def test_the_page_has_tested_steps_for_every_section() -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = steps_of(text)
    assert len(blocks) >= 10
    script = "\n".join(blocks)
    for step in ("bin/pip\" install", "accord serve", "accord backup", "accord restore",
                 "accord db upgrade", "accord db current", "accord db copy", "kill -HUP",
                 "kill -TERM", "openssl", "accord send"):
        assert step in script, step


@pytest.mark.postgres
def test_operations_md_step_by_step(dist: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(wheel_of(dist), work)
    script = "set -euo pipefail\n" + "\n".join(steps_of(DOC.read_text(encoding="utf-8")))
    (work / "operations.sh").write_text(script, encoding="utf-8")
    with fresh_database("accord_opsdoc", "operations.md test") as pg:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("ACCORD_", "VIRTUAL_ENV", "PYTHON"))}
        env.update({
            "ACCORD_HOME": str(tmp_path / "opt"), "ACCORD_ETC": str(tmp_path / "etc"),
            "ACCORD_DATA": str(tmp_path / "data"), "ACCORD_BACKUPS": str(tmp_path / "backups"),
            "ACCORD_MLLP_PORT": str(free_port()), "ACCORD_DICOM_PORT": str(free_port()),
            "ACCORD_HTTP_PORT": str(free_port()), "ACCORD_PG": pg,
            # python3 is the interpreter this suite runs on (3.11 or later), not a venv's.
            "PATH": f"{Path(sys.base_prefix) / 'bin'}:{env.get('PATH', '')}",
        })
        for where in ("opt", "etc", "data", "backups"):
            (tmp_path / where).mkdir()
        code, output = _run(work / "operations.sh", work, env)
    assert code == 0, output[-6000:]
    venv = tmp_path / "opt" / "venv"
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import accord; print(accord.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True, timeout=60)
    assert where.stdout.startswith(str(venv)), where.stdout  # the wheel, not this tree
    assert f"accord {__version__} (schema {head_revision()})" in output
    assert output.count("OPSDOC0001 AA") == 2, output[-3000:]  # before and after the move
    assert "refused, as it should be" in output and "not empty" in output
    assert "configuration not reloaded" in output and "(accord.yaml line 12)" in output
    assert "(head)" in output and "copied" in output


def _run(script: Path, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run the script in a process group of its own; whatever it left running (an engine
    started in the background by a step that failed later) is ended with it."""
    proc = subprocess.Popen(["bash", str(script)], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=900)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return proc.returncode, output
