"""TS/DTM (accord.hl7.dtm): precision, offsets, invalid values, formatting."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from accord.hl7.dtm import format_ts, parse_dtm


@pytest.mark.parametrize(
    ("text", "precision", "parts"),
    [
        ("2024", "year", (2024, None, None, None, None, None)),
        ("202403", "month", (2024, 3, None, None, None, None)),
        ("20240315", "day", (2024, 3, 15, None, None, None)),
        ("2024031508", "hour", (2024, 3, 15, 8, None, None)),
        ("202403150830", "minute", (2024, 3, 15, 8, 30, None)),
        ("20240315083012", "second", (2024, 3, 15, 8, 30, 12)),
        ("20240315083012.5", "fraction", (2024, 3, 15, 8, 30, 12)),
    ],
)
def test_dtm_precision(text, precision, parts):
    ts = parse_dtm(text)
    assert ts is not None
    assert ts.precision == precision
    assert (ts.year, ts.month, ts.day, ts.hour, ts.minute, ts.second) == parts
    assert ts.utc_offset is None


def test_dtm_fraction_and_offsets():
    ts = parse_dtm("20240315083012.1234-0500")
    assert ts is not None
    assert ts.microsecond == 123400
    assert ts.utc_offset == timedelta(hours=-5)
    assert parse_dtm("202101151620+0215").utc_offset == timedelta(hours=2, minutes=15)
    assert parse_dtm("20240315+0000").utc_offset == timedelta(0)


@pytest.mark.parametrize(
    "text",
    ["", "abc", "24", "2024-03-15", "20241315", "20230229", "2024031524", "202403150860",
     "20240315083061", "20240315+2500", "2024031508.5", "20240315083012.1234567",
     "201702291252-0500"],
)
def test_dtm_invalid_is_none(text):
    assert parse_dtm(text) is None


def test_to_datetime_aware_naive_default_tz():
    aware = parse_dtm("20240315083012-0500").to_datetime()
    assert aware == datetime(2024, 3, 15, 13, 30, 12, tzinfo=UTC)
    naive = parse_dtm("202403150830").to_datetime()
    assert naive.tzinfo is None and naive == datetime(2024, 3, 15, 8, 30)
    paris = ZoneInfo("Europe/Paris")
    local = parse_dtm("202403150830").to_datetime(paris)
    assert local.tzinfo is paris
    # the sender's offset wins over the default zone
    assert parse_dtm("202403150830+0000").to_datetime(paris).utcoffset() == timedelta(0)
    assert parse_dtm("2024").to_datetime() == datetime(2024, 1, 1)
    assert parse_dtm("20240315").to_date() == date(2024, 3, 15)


def test_format_ts_round_trips():
    dt = datetime(2024, 3, 15, 8, 30, 12, 123456, tzinfo=timezone(timedelta(hours=-5)))
    assert format_ts(dt) == "20240315083012-0500"
    assert format_ts(dt, "minute") == "202403150830-0500"
    assert format_ts(dt, "day") == "20240315"
    assert format_ts(dt, "fraction") == "20240315083012.1234-0500"
    assert format_ts(datetime(2024, 3, 15, 8, 30), "second") == "20240315083000"
    for t in (datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(1999, 1, 2, 3, 4, 5)):
        assert format_ts(t, "second") == t.strftime("%Y%m%d%H%M%S") + (
            "+0000" if t.tzinfo else "")
    assert format_ts(date(2024, 3, 15), "day") == "20240315"
    back = parse_dtm(format_ts(dt))
    assert back is not None and back.to_datetime() == dt.replace(microsecond=0)
    assert format_ts(datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=45))),
                     "hour") == "2024010100+0545"
