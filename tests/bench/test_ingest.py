"""bench/ingest.py: ``--servers`` reads every server's name whole, commas inside a name
included, and keeps an unknown one for the refusal to name."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import ingest


def test_the_default_servers_read_back_as_themselves() -> None:
    assert ingest.server_names(",".join(ingest.SERVERS)) == ingest.SERVERS


def test_a_name_with_a_comma_is_one_server() -> None:
    ceiling = next(name for name in ingest.SERVERS if "," in name)
    assert ingest.server_names(f"python-hl7,{ceiling}") == ("python-hl7", ceiling)


def test_an_unknown_name_is_kept_for_the_refusal() -> None:
    assert ingest.server_names("python-hl7, no such server") == (
        "python-hl7", "no such server")


def test_msa_1_is_read_from_the_msa_segment_not_from_a_control_id() -> None:
    from engine_harness import ack_code

    ack = (b"MSH|^~\\&|ACCORD|RADIOLOGY|RIS|RADIOLOGY|20261207071050||ACK^O01^ACK|"
           b"6341071050284059TMSA|P|2.5.1\rMSA|AA|B2011000004599\r")
    assert ack_code(ack) == "AA"
    assert ack_code(b"MSH|^~\\&|A|B\r") == ""
