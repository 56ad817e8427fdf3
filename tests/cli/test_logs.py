"""The JSON log format (``cli/_logs.py``): one object per line with time, level, logger,
message, the structured fields a call passed, and the exception when one was logged."""

from __future__ import annotations

import json
import logging
import sys

from accord.cli._logs import JsonFormatter


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("accord.engine.ingest", logging.INFO, __file__, 1,
                               "ORM^O01 %s answered %s", ("C1", "AA"), None)
    record.__dict__.update(extra)
    return record


def test_one_object_per_line_with_the_extra_fields() -> None:
    line = JsonFormatter().format(_record(listening=["HL7 mllp://127.0.0.1:2575"]))
    assert "\n" not in line
    event = json.loads(line)
    assert event["message"] == "ORM^O01 C1 answered AA"
    assert (event["level"], event["logger"]) == ("INFO", "accord.engine.ingest")
    assert event["time"].endswith("Z") and event["listening"] == ["HL7 mllp://127.0.0.1:2575"]
    assert "args" not in event and "color_message" not in JsonFormatter().format(
        _record(color_message="\x1b[1mx"))


def test_an_exception_stays_on_its_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record()
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["exception"]
