"""The session cookie model of express-session 1.19.0 (``session/cookie.js``).

Every session express-session stores carries ``cookie``: what ``Cookie.prototype.toJSON``
returns. The stores read its ``expires`` to pick the session's expiry, so both languages
must write the same keys, in the same order, with the same values.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from .jsdate import JsDate, js_date_ms, time_clip
from .jsjson import js_truthy

__all__ = ["Cookie", "JsDate", "expires_ms", "js_date", "js_date_ms", "now_ms", "parse_js_date"]

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
    """The aware datetime of an epoch-milliseconds instant; OverflowError beyond years
    1..9999 (:func:`js_date` takes a Date's whole range)."""
    return _EPOCH + timedelta(milliseconds=ms)


def to_ms(value: datetime) -> int:
    if value.tzinfo is None:
        raise TypeError("naive datetime has no defined instant; give it a tzinfo")
    return (value - _EPOCH) // timedelta(milliseconds=1)


_MIN_DATETIME_MS = -62_135_596_800_000  # 0001-01-01T00:00:00.000Z
_MAX_DATETIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def js_date(ms: float) -> datetime | JsDate:
    """``new Date(ms)``: an aware datetime where one holds the instant, else a
    :class:`~token_session.compat.jsdate.JsDate` (beyond years 1..9999, or invalid)."""
    clipped = time_clip(ms)
    if _MIN_DATETIME_MS <= clipped <= _MAX_DATETIME_MS:  # NaN is neither
        return from_ms(int(clipped))
    return JsDate(clipped)


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
    if isinstance(expires, JsDate):  # new Date(date) keeps its time value (NaN if invalid)
        return expires.ms
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

    ``expires`` is a JS Date over the whole range JS gives one (years -271821 to 275760):
    an aware ``datetime`` within years 1..9999, else a :class:`JsDate` (an expiry such as
    ``originalMaxAge: 1e15`` gives, or an Invalid Date, which JSON writes as null).
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
                self.expires = js_date(js_date_ms(value)) if isinstance(value, str) else value
            elif key in _JSON_KEYS:
                self._fields[key] = value
            # other keys become plain properties in Node, outside toJSON: nothing to keep
        if self._fields.get("originalMaxAge") is None:
            self._fields["originalMaxAge"] = self.max_age

    @property
    def expires(self) -> datetime | None:
        """The expiry as an aware datetime; None without one, and also where no datetime
        holds it (past year 9999, or an Invalid Date): :attr:`expires_ms` has it then."""
        value = self._fields.get("expires")
        return value if isinstance(value, datetime) else None

    @expires.setter
    def expires(self, value: datetime | JsDate | None) -> None:
        if isinstance(value, datetime):
            value = js_date(to_ms(value))  # a JS Date holds whole milliseconds
        elif isinstance(value, JsDate):
            value = js_date(value.ms)
        elif value is not None:
            raise TypeError("expires must be a datetime, a JsDate or None")
        self._fields["expires"] = value
        self._fields["originalMaxAge"] = self.max_age

    @property
    def expires_ms(self) -> int | float | None:
        """``expires.valueOf()``: epoch milliseconds over a JS Date's whole range (NaN for an
        Invalid Date); None when ``expires`` is not a Date (null or undefined)."""
        value = self._fields.get("expires")
        if isinstance(value, datetime):
            return to_ms(value)
        if isinstance(value, JsDate):
            return int(value.ms) if value.valid else value.ms
        return None

    @property
    def max_age(self) -> int | float | None:
        """Milliseconds left until ``expires`` (negative once past; NaN for an Invalid Date,
        as express-session's ``maxAge`` getter gives), None without one."""
        expires = self.expires_ms
        return None if expires is None else expires - self._clock()

    @max_age.setter
    def max_age(self, ms: float | None) -> None:
        if ms is None:
            self.expires = None
            return
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms):
            raise TypeError("maxAge must be a number of milliseconds or None")
        # new Date(Date.now() + ms): an Invalid Date past the range, as in Node
        self.expires = js_date(self._clock() + ms)

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
        lifetime = self.original_max_age
        if isinstance(lifetime, float) and not math.isfinite(lifetime):
            # NaN, as an Invalid Date leaves originalMaxAge: new Date(NaN) again
            self.expires = JsDate(math.nan)
            return self
        self.max_age = lifetime
        return self

    def to_json(self) -> dict[str, Any]:
        """The keys, order and values of ``Cookie.prototype.toJSON`` (expires as a datetime,
        or a :class:`JsDate` where no datetime holds it; both are Dates to ``dumps``)."""
        fields = self._fields
        return {key: fields[key] for key in _JSON_KEYS if key in fields}

    def __repr__(self) -> str:
        return f"Cookie({self.to_json()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cookie) and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]
