"""Run one coverage-guided fuzz target (Atheris, libFuzzer underneath).

    python fuzz/run.py TARGET [--seconds N] [--keep DIR]
    python fuzz/run.py TARGET --replay FILE...

TARGET is ``hl7``, ``framing``, ``dicom`` or ``config`` (``fuzz/fuzz_TARGET.py``, whose
docstring says what outcomes are documented: anything else is a bug). The run starts
from seeds taken from the test samples and corpus (never written to: new inputs go to a
temporary folder, or ``--keep DIR``), stops after N seconds (default 600), and on a crash
prints the crashing input's path (``fuzz/crashes/``, ignored by git). A crash found is
fixed and its input kept as a regression test: a named file under
``tests/fuzz/regressions/TARGET/``, replayed by ``make test`` (``--replay``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("hl7", "framing", "dicom", "config")
REGRESSIONS = ROOT / "tests" / "fuzz" / "regressions"


def seeds(target: str, into: Path) -> list[Path]:
    """Seed folders for ``target`` (the framer's are written into ``into``)."""
    samples, corpus = ROOT / "tests" / "samples", ROOT / "tests" / "corpus"
    if target == "hl7":
        return [samples, samples / "mllp", *sorted(p for p in corpus.rglob("*") if p.is_dir()),
                corpus]
    if target == "framing":
        into.mkdir(parents=True, exist_ok=True)
        for n, sample in enumerate(sorted(samples.glob("*.hl7"))[:40]):
            body = sample.read_bytes().replace(b"\n", b"\r").replace(b"\x1c\r", b"")
            # FuzzedDataProvider reads a limit byte, a junk-limit byte and cut points first.
            (into / f"framed-{n}").write_bytes(b"\x20\x01" + b"\x0b" + body + b"\x1c\r")
        return [into]
    if target == "config":
        return [p for p in sorted({p.parent for p in ROOT.joinpath("tests").rglob("*.yaml")})]
    return []  # dicom: the target describes its datasets itself


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--keep", type=Path, help="folder for the new inputs (kept)")
    parser.add_argument("--replay", nargs="+", type=Path, help="run these inputs once each")
    args = parser.parse_args(argv)
    script = ROOT / "fuzz" / f"fuzz_{args.target}.py"
    if args.replay:
        return subprocess.call([sys.executable, str(script), *map(str, args.replay)])
    crashes = ROOT / "fuzz" / "crashes"
    crashes.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"accord-fuzz-{args.target}-") as tmp:
        work = args.keep or Path(tmp) / "corpus"
        work.mkdir(parents=True, exist_ok=True)
        seed_dirs = [d for d in seeds(args.target, Path(tmp) / "seeds") if d.is_dir()]
        command = [sys.executable, str(script), f"-max_total_time={args.seconds}",
                   "-rss_limit_mb=2048", "-timeout=10", "-max_len=65536",
                   f"-artifact_prefix={crashes}/{args.target}-", str(work),
                   *map(str, seed_dirs)]
        return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
