"""TS/DTM: points in time as HL7 v2 sends them (HL7 v2.5.1 §2.A.75 TS, §2.A.22 DTM).

Rules: pure (no clock, no I/O). ``parse_dtm`` reads a DTM string into a frozen :class:`TS`
that keeps the precision and the offset as sent (None when the sender gave none, which is
the sender's local time, not UTC); a string that is not a valid DTM gives None, never an
exception. ``format_ts`` writes one for an outgoing message (MSH-7, OBR-22...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Literal

__all__ = ["TS", "Precision", "format_ts", "parse_dtm"]

Precision = Literal["year", "month", "day", "hour", "minute", "second", "fraction"]
_PRECISIONS: tuple[Precision, ...] = (
    "year", "month", "day", "hour", "minute", "second", "fraction",
)

# DTM: YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ] (HL7 v2.5.1 §2.A.22). Six fraction
# digits are accepted because real senders emit microseconds.
_DTM = re.compile(
    r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?(?:([+-])(\d{2})(\d{2}))?"
)


@dataclass(frozen=True, slots=True)
class TS:
    """A point in time with its precision (TS/DTM, HL7 v2.5.1 §2.A.75 and §2.A.22).

    Parts beyond ``precision`` are None. ``utc_offset`` is None when the sender gave none
    (local time of the sender, per §2.A.22), which is not the same as UTC.
    """

    year: int
    month: int | None = None
    day: int | None = None
    hour: int | None = None
    minute: int | None = None
    second: int | None = None
    microsecond: int | None = None
    utc_offset: timedelta | None = None
    precision: Precision = "year"

    def to_datetime(self, default_tz: tzinfo | None = None) -> datetime:
        """Aware when the value has an offset (or ``default_tz`` is given), naive otherwise.

        Missing parts count from the start of the period: ``2024`` is 2024-01-01 00:00.
        """
        tz: tzinfo | None = default_tz
        if self.utc_offset is not None:
            tz = timezone(self.utc_offset)
        return datetime(
            self.year, self.month or 1, self.day or 1, self.hour or 0, self.minute or 0,
            self.second or 0, self.microsecond or 0, tzinfo=tz,
        )

    def to_date(self) -> date:
        """The calendar date as sent (no shift to UTC)."""
        return date(self.year, self.month or 1, self.day or 1)


def parse_dtm(text: str) -> TS | None:
    """Parse a DTM string (the first component of a TS); None when it is not a valid DTM."""
    m = _DTM.fullmatch(text.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, sign, oh, om = m.groups()
    nums = [int(v) if v is not None else None for v in (month, day, hour, minute, second)]
    precision = _PRECISIONS[sum(1 for v in nums if v is not None)]
    micro = None
    if frac is not None:
        if second is None:
            return None
        micro, precision = int(frac.ljust(6, "0")), "fraction"
    offset = None
    if sign is not None:
        if int(oh) > 14 or int(om) > 59:
            return None
        offset = timedelta(hours=int(oh), minutes=int(om)) * (-1 if sign == "-" else 1)
    value = TS(int(year), nums[0], nums[1], nums[2], nums[3], nums[4], micro, offset, precision)
    try:
        value.to_datetime()  # checks ranges: month 13, 31 February, hour 24...
    except ValueError:
        return None
    return value


_FORMATS: dict[Precision, str] = {
    "year": "%Y", "month": "%Y%m", "day": "%Y%m%d", "hour": "%Y%m%d%H",
    "minute": "%Y%m%d%H%M", "second": "%Y%m%d%H%M%S", "fraction": "%Y%m%d%H%M%S",
}


def format_ts(value: datetime | date, precision: Precision = "second") -> str:
    """Format a DTM for a message (HL7 v2.5.1 §2.A.22).

    An aware datetime carries its offset (``+HHMM``); a naive one or a date carries none.
    ``fraction`` gives four digits, the most DTM allows.
    """
    if precision == "second" and isinstance(value, datetime) and value.year >= 1000:
        # What strftime gives, without its cost (an ACK's MSH-7 is one per message).
        text = (f"{value.year}{value.month:02d}{value.day:02d}{value.hour:02d}"
                f"{value.minute:02d}{value.second:02d}")
        if value.tzinfo is UTC:  # the engine's own clock: no offset to work out
            return text + "+0000"
    else:
        text = value.strftime(_FORMATS[precision])
    if precision == "fraction" and isinstance(value, datetime):
        text += f".{value.microsecond // 100:04d}"
    offset = value.utcoffset() if isinstance(value, datetime) else None
    if offset is not None and precision not in ("year", "month", "day"):
        minutes = int(offset.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        text += f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    return text


