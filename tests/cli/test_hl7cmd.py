"""``accord parse`` and ``accord validate`` run as subprocesses (docs/interface.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hl7_corpus import CORPUS

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
ACCORD = Path(sys.executable).parent / "accord"
ORM = SAMPLES / "hl7x_orm_o01_v231.hl7"
ADT = SAMPLES / "hl7x_adt_a04_types.hl7"
TWO = SAMPLES / "hl7x_two_messages.hl7"
PROBLEM_LINE = re.compile(r"(ERROR|WARNING) \S+ \d+ \S.*")


def accord(*args: str | Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("ACCORD_DEBUG", None)
    return subprocess.run([str(ACCORD), *map(str, args)], input=stdin, capture_output=True,
                          timeout=60, env=env, check=False)


def lines(out: bytes) -> list[str]:
    return out.decode().splitlines()


def test_get_prints_each_value_in_order():
    run = accord("parse", ORM, "--get", "MSH-10", "--get", "PID-3", "--get", "PID-3.4",
                 "--get", "PID-99", "--get", "OBR-18", "--get", "MSH-1", "--get", "MSH-9.2")
    assert run.returncode == 0, run.stderr
    assert lines(run.stdout) == ["ORM0310", "PAT3^^^HOSP^MR", "HOSP", "", "ACC0310", "|", "O01"]
    assert run.stderr == b""


def test_get_unescapes_and_runs_per_message():
    run = accord("parse", TWO, "--get", "MSH-10", "--get", "PID-5.2")
    assert run.returncode == 0, run.stderr
    assert lines(run.stdout) == ["MULTI1", "FIRST", "MULTI2", "SECOND^PART"]


def test_get_on_batch_file():
    run = accord("parse", SAMPLES / "hl7_batch_fhs.hl7", "--get", "MSH-10")
    assert run.returncode == 0, run.stderr
    assert lines(run.stdout) == ["B1", "B2"]


def test_roundtrip_is_exact():
    run = accord("parse", ORM, "--roundtrip")
    assert run.returncode == 0, run.stderr
    original = ORM.read_bytes()
    assert run.stdout == original.rstrip(b"\r") + b"\n"


def test_roundtrip_normalises_lf_to_cr(corpus_file: Path):
    run = accord("parse", corpus_file, "--roundtrip")
    assert run.returncode == 0, run.stderr
    text = corpus_file.read_bytes().decode("utf-8-sig")
    expected = "\r".join(text.replace("\r\n", "\n").strip("\n").split("\n"))
    assert run.stdout.decode() == expected + "\n"


@pytest.fixture
def corpus_file() -> Path:
    path = CORPUS / "microsoft-FHIR-Converter" / "ORM-O01-01.hl7"
    assert path.is_file(), f"HL7 corpus missing at {CORPUS}"
    return path


def test_json_one_line_per_message():
    run = accord("parse", TWO, "--json")
    assert run.returncode == 0, run.stderr
    docs = [json.loads(line) for line in lines(run.stdout)]
    assert [d["control_id"] for d in docs] == ["MULTI1", "MULTI2"]
    pid = next(s for s in docs[1]["segments"] if s["id"] == "PID")
    assert pid["name"] == "Patient Identification"
    pid5 = next(f for f in pid["fields"] if f["path"] == "PID-5")
    assert pid5["name"] == "Patient Name" and pid5["type"] == "XPN"
    assert pid5["repetitions"] == [[["TWO"], ["SECOND^PART"]]]


def test_json_carries_decoding_warnings():
    run = accord("parse", SAMPLES / "hl7_utf8_declared_8859-1.hl7", "--json")
    assert run.returncode == 0, run.stderr
    (doc,) = [json.loads(line) for line in lines(run.stdout)]
    assert any("MSH-18" in w for w in doc["warnings"])


def test_default_listing_names_fields():
    run = accord("parse", ADT)
    assert run.returncode == 0, run.stderr
    out = run.stdout.decode()
    assert out.startswith("# ADT^A04  control ID ADT0007  version 2.5.1")
    assert re.search(r"^PID-3 +Patient Identifier List +MRN7001\^", out, re.M)


def test_stdin():
    run = accord("parse", "-", "--get", "PID-5.1", stdin=ADT.read_bytes())
    assert run.returncode == 0, run.stderr
    assert lines(run.stdout) == ["TESTER"]


def test_validate_good_file_exits_0():
    run = accord("validate", ORM, "--profile", "ihe-swf")
    assert (run.returncode, run.stdout, run.stderr) == (0, b"", b"")


def test_validate_prints_problems_and_exits_1(tmp_path: Path):
    bad = tmp_path / "bad.hl7"
    bad.write_bytes(ORM.read_bytes().replace(b"|ACC0310|", b"||").replace(b"|2.3.1", b"|9.9"))
    run = accord("validate", bad, "--profile", "ihe-swf")
    assert run.returncode == 1
    out = lines(run.stdout)
    assert all(PROBLEM_LINE.fullmatch(line) for line in out), out
    assert "ERROR MSH-12 203 unknown HL7 version '9.9'" in out
    assert "ERROR OBR-18 101 accession number (OBR-18 or IPC-1) missing" in out
    basic = accord("validate", bad)
    assert basic.returncode == 1
    assert not any("OBR-18" in line for line in lines(basic.stdout))


def test_validate_warnings_only_exit_0():
    run = accord("validate", SAMPLES / "hl7_utf8_declared_8859-1.hl7")
    assert run.returncode == 0, run.stdout
    assert lines(run.stdout)[0].startswith("WARNING MSH-18 102 ")


def test_validate_several_messages_has_headers(tmp_path: Path):
    both = tmp_path / "both.hl7"
    both.write_bytes(TWO.read_bytes().replace(b"|RADIOLOGY|PACS|", b"|RADIOLOGY||"))
    run = accord("validate", both)
    assert run.returncode == 1
    out = lines(run.stdout)
    assert out[0] == "# message 1: ADT^A08 MULTI1"
    assert "# message 2: ADT^A08 MULTI2" in out
    assert out.count("ERROR MSH-5 101 receiving application (MSH-5) missing") == 2


def _one_line_error(run: subprocess.CompletedProcess[bytes]) -> str:
    assert run.returncode != 0
    assert run.stdout == b""
    err = run.stderr.decode()
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("accord: error: ")
    return err


def test_not_hl7_inputs(tmp_path: Path):
    junk = tmp_path / "junk.txt"
    junk.write_text("this is not\nan HL7 message\n")
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 8 + b"MSH\x00\xff|")
    empty = tmp_path / "empty.hl7"
    empty.write_bytes(b"")
    half = tmp_path / "half.hl7"
    half.write_bytes(b"MSH|^~\\&|A|B\rPID|1\r\x00\x01\x02 garbage\r")
    for path in (junk, garbage, empty, half):
        assert "not HL7" in _one_line_error(accord("parse", path)), path
    assert "no such file" in _one_line_error(accord("parse", tmp_path / "missing.hl7"))
    assert "directory" in _one_line_error(accord("parse", tmp_path))
    assert "not HL7" in _one_line_error(accord("parse", "-", stdin=b"\x89PNG\r\n\x1a\n"))


def test_validate_not_hl7_inputs(tmp_path: Path):
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 8)
    assert "not HL7" in _one_line_error(accord("validate", garbage))
    assert "no such file" in _one_line_error(accord("validate", tmp_path / "missing.hl7"))
    assert "directory" in _one_line_error(accord("validate", tmp_path))


def test_bad_path_and_profile():
    assert "not an HL7 path" in _one_line_error(accord("parse", ORM, "--get", "pid-3"))
    assert "unknown profile" in _one_line_error(accord("validate", ORM, "--profile", "nope"))
