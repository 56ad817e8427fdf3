"""The fuzz targets (fuzz/), briefly: each runs for a few seconds from its seeds, and every
input that once crashed one (tests/fuzz/regressions/TARGET/) is replayed. ``make fuzz``
runs each target for 10 minutes. A target fails on any exception its docstring does not
document (libFuzzer then exits non-zero and writes the input under fuzz/crashes/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "fuzz" / "run.py"
REGRESSIONS = Path(__file__).resolve().parent / "regressions"
TARGETS = ("hl7", "framing", "dicom", "config")
SECONDS = 4  # per target in make test: a smoke run; make fuzz gives each 10 minutes


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUN), *args], capture_output=True, text=True,
                          timeout=180, check=False)


@pytest.mark.parametrize("target", TARGETS)
def test_target_runs_clean_for_a_few_seconds(target: str) -> None:
    done = _run(target, "--seconds", str(SECONDS))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "DONE" in done.stderr  # libFuzzer really ran and finished its time


KEPT = sorted(d.name for d in REGRESSIONS.iterdir() if d.is_dir() and any(d.iterdir()))


def test_every_kept_crash_belongs_to_a_target() -> None:
    assert set(KEPT) <= set(TARGETS) and KEPT


@pytest.mark.parametrize("target", KEPT)
def test_inputs_that_once_crashed_the_target_pass(target: str) -> None:
    inputs = sorted(p for p in (REGRESSIONS / target).iterdir() if p.is_file())
    done = _run(target, "--replay", *map(str, inputs))
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Executed {inputs[-1]}" in done.stderr
