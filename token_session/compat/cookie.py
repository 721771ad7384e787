"""The session cookie model of express-session 1.19.0 (``session/cookie.js``).

Every session express-session stores carries ``cookie``: what ``Cookie.prototype.toJSON``
returns. The stores read its ``expires`` to pick the session's expiry, so both languages
must write the same keys, in the same order, with the same values.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from .jsjson import js_truthy

__all__ = ["Cookie", "expires_ms", "js_date_ms", "now_ms", "parse_js_date"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# Cookie.prototype's `data` getter: the keys toJSON gives, in its order.
COOKIE_JSON_KEYS = _JSON_KEYS = (
    "originalMaxAge",
    "partitioned",
    "priority",
    "expires",
    "secure",
    "httpOnly",
    "domain",
    "path",
    "sameSite",
)
_SNAKE_TO_JS = {
    "max_age": "maxAge",
    "original_max_age": "originalMaxAge",
    "http_only": "httpOnly",
    "same_site": "sameSite",
    "expires": "expires",
    "path": "path",
    "secure": "secure",
    "domain": "domain",
    "partitioned": "partitioned",
    "priority": "priority",
}


def now_ms() -> int:
    """``Date.now()``: whole milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def to_ms(value: datetime) -> int:
    if value.tzinfo is None:
        raise TypeError("naive datetime has no defined instant; give it a tzinfo")
    return (value - _EPOCH) // timedelta(milliseconds=1)


# ECMAScript's date-time string format, with what V8 also takes there: "t" or " " for "T",
# "z" for "Z", "+HHMM" for "+HH:MM", more than three fraction digits (cut to milliseconds).
_ISO_DATE = re.compile(
    r"([+-][0-9]{6}|[0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?"
    r"(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?)?"
    r"([Zz]|[+-][0-9]{2}:?[0-9]{2})?"
)
_TO_JSON_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
_NAIVE_EPOCH = datetime(1970, 1, 1)
_ONE_MS = timedelta(milliseconds=1)
_MS_PER_DAY = 86_400_000
_MAX_TIME_MS = 8.64e15  # the ECMAScript time value range


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date; a day past the month's end runs
    on into the next month, as ECMAScript's MakeDay does."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


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
    value = _days_from_civil(year, month_n, day_n) * _MS_PER_DAY + time_ms
    if offset and offset not in "Zz":
        offset_hours, offset_minutes = int(offset[1:3]), int(offset[-2:])
        if offset_hours > 23 or offset_minutes > 59:
            return math.nan
        sign = 1 if offset[0] == "+" else -1
        value -= sign * (offset_hours * 60 + offset_minutes) * 60_000
    return float(value) if abs(value) <= _MAX_TIME_MS else math.nan


def js_date_ms(text: str) -> float:
    """``Number(new Date(text))``: epoch milliseconds, NaN where JS gets an Invalid Date.

    Reads what V8 reads in practice for dates that were written by a program: ECMAScript's
    date-time format (``Date#toJSON``; a day past the month's end runs on, 24:00 is the next
    day's start; no offset means UTC here, where JS takes a date-time's as local time) and
    the RFC 1123 form ``Date#toUTCString`` writes. V8's other, legacy forms read as NaN.
    """
    if _TO_JSON_FORM.fullmatch(text):  # Date#toJSON's form, the usual case, read faster
        try:
            # whole milliseconds over one: the quotient is exact, and a float already
            return (datetime.fromisoformat(text[:23]) - _NAIVE_EPOCH) / _ONE_MS
        except ValueError:  # a day past the month's end, 24:00: read below
            pass
    match = _ISO_DATE.fullmatch(text)
    if match is not None:
        return _iso_date_ms(match)
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return math.nan
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return float(to_ms(parsed))


def parse_js_date(text: str) -> datetime | None:
    """``new Date(text)`` as an aware datetime (see :func:`js_date_ms`), or None where JS gets
    an Invalid Date or the instant is beyond what ``datetime`` holds."""
    ms = js_date_ms(text)
    if math.isnan(ms):
        return None
    try:
        return from_ms(int(ms))
    except OverflowError:
        return None


def expires_ms(session: Mapping[str, Any]) -> float | None:
    """``Number(new Date(session.cookie.expires))``, the way the Node stores read it.

    connect-redis, express-mysql-session and connect-mongo only look at ``cookie.expires``
    when it is truthy; then they take ``new Date(expires)``. None: no such expiry (use the
    store's default TTL). NaN: JS's Invalid Date, for which connect-redis computes a NaN TTL
    and deletes the session.
    """
    cookie = session.get("cookie")
    if type(cookie) is not dict and not isinstance(cookie, Mapping):
        return None
    expires = cookie.get("expires")
    if type(expires) is str:  # the usual case: what JSON.parse gave back
        return js_date_ms(expires) if expires else None
    if not js_truthy(expires):
        return None
    if isinstance(expires, datetime):
        return to_ms(expires)
    if isinstance(expires, str):
        return js_date_ms(expires)
    if isinstance(expires, (bool, int, float)):
        return float(expires) if math.isfinite(expires) else math.nan
    return math.nan


class _JsField:
    """A plain Cookie field, stored under its JS name; deleting it makes it ``undefined``."""

    def __init__(self, js_name: str) -> None:
        self.js_name = js_name

    def __get__(self, cookie: Cookie | None, owner: type | None = None) -> Any:
        return self if cookie is None else cookie._fields.get(self.js_name)

    def __set__(self, cookie: Cookie, value: Any) -> None:
        cookie._fields[self.js_name] = value

    def __delete__(self, cookie: Cookie) -> None:
        cookie._fields.pop(self.js_name, None)


class Cookie:
    """express-session's ``Cookie``: the same fields, defaults and setter side effects.

    Keyword options use snake_case and are applied in the order given, as ``new Cookie``
    applies its options' keys. Time is whole milliseconds from ``clock`` (``Date.now``).
    A field never set is JS ``undefined``: it reads as None and is left out of
    :meth:`to_json`; a field set to None is JS ``null`` and is written as null.
    """

    __slots__ = ("_clock", "_fields")

    path = _JsField("path")
    http_only = _JsField("httpOnly")
    secure = _JsField("secure")
    domain = _JsField("domain")
    same_site = _JsField("sameSite")
    partitioned = _JsField("partitioned")
    priority = _JsField("priority")

    def __init__(self, *, clock: Callable[[], int] = now_ms, **options: Any) -> None:
        unknown = set(options) - set(_SNAKE_TO_JS)
        if unknown:
            raise TypeError(f"unknown cookie option(s): {', '.join(sorted(unknown))}")
        self._init({_SNAKE_TO_JS[name]: value for name, value in options.items()}, clock)

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any] | None = None, *, clock: Callable[[], int] = now_ms
    ) -> Cookie:
        """``new Cookie(options)`` with express-session's camelCase option names."""
        cookie = cls.__new__(cls)
        cookie._init(dict(options or {}), clock)
        return cookie

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, clock: Callable[[], int] = now_ms) -> Cookie:
        """A stored cookie as express-session's ``Store#createSession`` revives it."""
        cookie = cls.from_options(data, clock=clock)
        # `sess.cookie.originalMaxAge = originalMaxAge`: undefined when the record has none
        if "originalMaxAge" in data:
            cookie._fields["originalMaxAge"] = data["originalMaxAge"]
        else:
            cookie._fields.pop("originalMaxAge", None)
        return cookie

    def _init(self, options: dict[str, Any], clock: Callable[[], int]) -> None:
        if not isinstance(options, dict):
            raise TypeError("argument options must be a object")
        self._fields: dict[str, Any] = {}
        self._clock = clock
        self.path = "/"
        self.max_age = None
        self.http_only = True
        for key, value in options.items():
            if key == "maxAge":
                self.max_age = value
            elif key == "expires":
                # a stored cookie's expires is text; createSession makes it a Date again
                self.expires = parse_js_date(value) if isinstance(value, str) else value
            elif key in _JSON_KEYS:
                self._fields[key] = value
            # other keys become plain properties in Node, outside toJSON: nothing to keep
        if self._fields.get("originalMaxAge") is None:
            self._fields["originalMaxAge"] = self.max_age

    @property
    def expires(self) -> datetime | None:
        value = self._fields.get("expires")
        return value if isinstance(value, datetime) else None

    @expires.setter
    def expires(self, value: datetime | None) -> None:
        if value is not None and not isinstance(value, datetime):
            raise TypeError("expires must be a datetime or None")
        if value is not None:
            value = from_ms(to_ms(value))  # a JS Date holds whole milliseconds
        self._fields["expires"] = value
        self._fields["originalMaxAge"] = self.max_age

    @property
    def max_age(self) -> int | None:
        """Milliseconds left until ``expires`` (negative once past), None without one."""
        expires = self.expires
        return None if expires is None else to_ms(expires) - self._clock()

    @max_age.setter
    def max_age(self, ms: float | None) -> None:
        if ms is None:
            self.expires = None
            return
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms):
            raise TypeError("maxAge must be a number of milliseconds or None")
        self.expires = from_ms(math.trunc(self._clock() + ms))

    @property
    def original_max_age(self) -> int | float | None:
        value = self._fields.get("originalMaxAge")
        return None if isinstance(value, bool) else value

    @original_max_age.setter
    def original_max_age(self, value: float | None) -> None:
        self._fields["originalMaxAge"] = value

    def touch(self) -> Cookie:
        """express-session's ``Session#resetMaxAge``: ``maxAge = originalMaxAge``."""
        if "originalMaxAge" not in self._fields:
            # maxAge = undefined: expires and then originalMaxAge become undefined too
            self._fields.pop("expires", None)
            return self
        self.max_age = self.original_max_age
        return self

    def to_json(self) -> dict[str, Any]:
        """The keys, order and values of ``Cookie.prototype.toJSON`` (expires as a datetime)."""
        fields = self._fields
        return {key: fields[key] for key in _JSON_KEYS if key in fields}

    def __repr__(self) -> str:
        return f"Cookie({self.to_json()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cookie) and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]
