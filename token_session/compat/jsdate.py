"""JS dates over their whole range, in epoch milliseconds, as V8 (Node 20) computes them.

A JS Date holds a time value: whole milliseconds since the epoch within +-8.64e15 (years
-271821 to 275760), or NaN (an Invalid Date). Python's ``datetime`` stops at years 1 and
9999, so the arithmetic here is done on the time value itself; :class:`JsDate` stands for a
Date that no ``datetime`` can hold.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

__all__ = [
    "MAX_TIME_MS",
    "JsDate",
    "js_date_ms",
    "js_iso_ms",
    "js_utc_string",
    "local_to_utc_ms",
    "time_clip",
]

MAX_TIME_MS = 8_640_000_000_000_000  # ECMAScript's time value range: +-100,000,000 days
MS_PER_DAY = 86_400_000
# V8 (builtins-date.cc, ParseDateTimeString) takes a local date-time whose value, read as
# UTC, is within DateCache::kMaxTimeBeforeUTCInMs: the range plus ten days
_MAX_LOCAL_MS = MAX_TIME_MS + 10 * MS_PER_DAY
_NAIVE_EPOCH = datetime(1970, 1, 1)
_400_YEARS_S = 146_097 * 86_400  # a Gregorian cycle: the same dates on the same weekdays
_WEEKDAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def time_clip(value: float) -> float:
    """ECMAScript's TimeClip, what ``new Date(value)`` keeps of a number: NaN beyond the
    range (or for NaN and the infinities), else the number truncated toward zero."""
    if isinstance(value, float) and not math.isfinite(value):
        return math.nan
    if abs(value) > MAX_TIME_MS:  # compared before any float(): an int may be huge
        return math.nan
    return float(math.trunc(value)) + 0.0  # -0 is +0


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date; a day past the month's end runs
    on into the next month, as ECMAScript's MakeDay does."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def civil_from_days(days: int) -> tuple[int, int, int]:
    """The proleptic Gregorian (year, month, day) ``days`` after 1970-01-01."""
    days += 719_468
    era = days // 146_097
    day_of_era = days - era * 146_097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_index = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * month_index + 2) // 5 + 1
    month = month_index + 3 if month_index < 10 else month_index - 9
    return year_of_era + era * 400 + (month <= 2), month, day


def _fields(ms: int) -> tuple[int, int, int, int, int, int, int, int]:
    days, in_day = divmod(ms, MS_PER_DAY)
    year, month, day = civil_from_days(days)
    hour, in_hour = divmod(in_day, 3_600_000)
    minute, in_minute = divmod(in_hour, 60_000)
    second, milli = divmod(in_minute, 1000)
    return year, month, day, hour, minute, second, milli, (days + 4) % 7  # 1970-01-01: Thu


def js_iso_ms(ms: float) -> str | None:
    """``new Date(ms).toJSON()``: ``Date#toISOString``'s text, or None (JSON null) for an
    Invalid Date. Years outside 0..9999 are written as V8 writes them, signed and with six
    digits (``+033658-09-27T01:46:40.000Z``, ``-000001-01-01T00:00:00.000Z``)."""
    clipped = time_clip(ms)
    if clipped != clipped:
        return None
    year, month, day, hour, minute, second, milli, _ = _fields(int(clipped))
    year_text = f"{year:04d}" if 0 <= year <= 9999 else f"{year:+07d}"
    return f"{year_text}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{milli:03d}Z"


def js_utc_string(ms: float) -> str:
    """``new Date(ms).toUTCString()`` as V8 writes it ("Thu, 01 Jan 1970 00:00:00 GMT"; a
    year at least four digits, "-0001" before year 0), "Invalid Date" for an Invalid Date."""
    clipped = time_clip(ms)
    if clipped != clipped:
        return "Invalid Date"
    year, month, day, hour, minute, second, _, weekday = _fields(int(clipped))
    year_text = f"-{-year:04d}" if year < 0 else f"{year:04d}"
    return (
        f"{_WEEKDAYS[weekday]}, {day:02d} {_MONTHS[month - 1]} {year_text} "
        f"{hour:02d}:{minute:02d}:{second:02d} GMT"
    )


class JsDate:
    """A JS ``Date``: its time value ``ms`` (whole epoch milliseconds, NaN for an Invalid
    Date), for the Dates a ``datetime`` cannot hold (beyond years 1..9999, or invalid).

    :func:`~token_session.compat.dumps` writes it as ``JSON.stringify`` writes the Date
    (``Date#toJSON``: the ISO text, or null for an Invalid Date).
    """

    __slots__ = ("ms",)

    def __init__(self, ms: float) -> None:
        self.ms = time_clip(ms)

    @property
    def valid(self) -> bool:
        """False for an Invalid Date."""
        return self.ms == self.ms

    def to_json(self) -> str | None:
        """``Date#toJSON``: the ISO text, None (null) for an Invalid Date."""
        return js_iso_ms(self.ms)

    def to_utc_string(self) -> str:
        """``Date#toUTCString``."""
        return js_utc_string(self.ms)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JsDate):
            return NotImplemented
        return self.ms == other.ms or (not self.valid and not other.valid)

    def __hash__(self) -> int:
        return hash((JsDate, self.ms if self.valid else None))

    def __repr__(self) -> str:
        return f"JsDate({self.to_json() or 'Invalid Date'})"


# -- Date.parse ------------------------------------------------------------------------------


def _local_offset_s(utc_s: int) -> int:
    """The local zone's UTC offset (seconds) at an instant, as ``time.localtime`` (TZ, or
    the system's zone) gives it."""
    try:
        return time.localtime(utc_s).tm_gmtoff
    except (OverflowError, OSError, ValueError):
        # a platform whose localtime stops short: the same day of a 400-year cycle nearer 1970
        return time.localtime(utc_s - (utc_s // _400_YEARS_S) * _400_YEARS_S).tm_gmtoff


def local_to_utc_ms(local_ms: int) -> int:
    """The instant of a local date-time (``local_ms``: its fields read as if UTC).

    V8 asks ICU's ``getOffsetFromLocal`` with ``UCAL_TZ_LOCAL_FORMER`` twice: a time the
    clocks skip is read with the offset before the change, a time they pass twice is the
    first of the two instants. This is CPython's ``datetime`` reading of a naive local time
    with ``fold=0``, done on epoch seconds so that it covers every year a Date holds.
    """
    seconds, milli = divmod(local_ms, 1000)

    def local(utc_s: int) -> int:
        return utc_s + _local_offset_s(utc_s)

    first_offset = _local_offset_s(seconds)
    first = seconds - first_offset
    if local(first) == seconds:
        day_before = first - 86_400
        other_offset = _local_offset_s(day_before)
        if other_offset == first_offset:
            return first * 1000 + milli
    else:
        other_offset = local(first) - first
    second = seconds - other_offset
    if local(second) == seconds:
        return second * 1000 + milli
    if local(first) == seconds:
        return first * 1000 + milli
    return max(first, second) * 1000 + milli  # in the gap: the offset before the change


# ECMAScript's date-time string format, with what V8 also takes there: "t" or " " for "T",
# "z" for "Z", "+HHMM" for "+HH:MM", more than three fraction digits (cut to milliseconds).
_ISO_DATE = re.compile(
    r"([+-][0-9]{6}|[0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?"
    r"(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?)?"
    r"([Zz]|[+-][0-9]{2}:?[0-9]{2})?"
)
_TO_JSON_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
# the legacy form with no zone after its time ("Tue, 14 Nov 2023 22:13:20"): local time
_LEGACY_NO_ZONE = re.compile(r".*[0-9]:[0-9]{2}(?::[0-9]{2})?\s*")
_MS_DELTA = timedelta(milliseconds=1)
# The last Date#toJSON text read, and its time: under load, the sessions touched within one
# millisecond carry the same cookie.expires (express-session sets it to Date.now() + maxAge),
# and reading it takes a fifth of a Redis touch. One tuple, replaced whole: safe across threads.
_last_to_json: tuple[str, float] = ("1970-01-01T00:00:00.000Z", 0.0)


def _iso_date_ms(match: re.Match[str]) -> float:
    year_text, month, day, hour, minute, second, fraction, offset = match.groups()
    if year_text == "-000000":
        return math.nan
    year = int(year_text)
    month_n, day_n = int(month or 1), int(day or 1)
    hour_n, minute_n, second_n = int(hour or 0), int(minute or 0), int(second or 0)
    ms = int((fraction or "0")[:3].ljust(3, "0"))
    if not (1 <= month_n <= 12 and 1 <= day_n <= 31 and minute_n < 60 and second_n < 60):
        return math.nan
    if hour_n > 24 or (hour_n == 24 and (minute_n or second_n or ms)):
        return math.nan
    time_ms = ((hour_n * 60 + minute_n) * 60 + second_n) * 1000 + ms
    value = days_from_civil(year, month_n, day_n) * MS_PER_DAY + time_ms
    if offset is None and hour is not None:
        # a date-time with no offset is local time (a date alone is UTC): ES2016 on, V8
        if abs(value) > _MAX_LOCAL_MS:
            return math.nan
        value = local_to_utc_ms(value)
    elif offset and offset not in "Zz":
        offset_hours, offset_minutes = int(offset[1:3]), int(offset[-2:])
        if offset_hours > 23 or offset_minutes > 59:
            return math.nan
        sign = 1 if offset[0] == "+" else -1
        value -= sign * (offset_hours * 60 + offset_minutes) * 60_000
    return float(value) if abs(value) <= MAX_TIME_MS else math.nan


def js_date_ms(text: str) -> float:
    """``Number(new Date(text))``: epoch milliseconds, NaN where JS gets an Invalid Date.

    Reads what V8 reads in practice for dates that were written by a program: ECMAScript's
    date-time format (``Date#toJSON``; a day past the month's end runs on, 24:00 is the next
    day's start; a date-time with no offset is in the local time zone, as Node takes it from
    TZ or the system, a date alone is UTC) and the RFC 1123 form ``Date#toUTCString`` writes
    (local time too when it names no zone). V8's other, legacy forms read as NaN.
    """
    global _last_to_json
    last = _last_to_json
    if text == last[0]:
        return last[1]
    if _TO_JSON_FORM.fullmatch(text):  # Date#toJSON's form, the usual case, read faster
        try:
            # whole milliseconds over one: the quotient is exact, and a float already
            ms = (datetime.fromisoformat(text[:23]) - _NAIVE_EPOCH) / _MS_DELTA
        except ValueError:  # a day past the month's end, 24:00: read below
            pass
        else:
            _last_to_json = (text, ms)
            return ms
    match = _ISO_DATE.fullmatch(text)
    if match is not None:
        return _iso_date_ms(match)
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return math.nan
    offset = parsed.utcoffset()
    local_ms = (parsed.replace(tzinfo=None) - _NAIVE_EPOCH) // _MS_DELTA
    if offset is not None:
        return float(local_ms - offset // _MS_DELTA)
    if _LEGACY_NO_ZONE.fullmatch(text):  # no zone named: V8 reads local time
        return float(local_to_utc_ms(local_ms))
    return float(local_ms)  # "-0000" and zones Python does not know: read as UTC
