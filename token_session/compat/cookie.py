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
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = ["Cookie", "expires_ms", "now_ms", "parse_js_date"]

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


def parse_js_date(text: str) -> datetime | None:
    """``new Date(text)`` as an aware datetime, or None where JS gets an Invalid Date.

    Reads what V8 reads in practice: ISO 8601 (``Date#toJSON``, date-only forms; no offset
    means UTC here) and the RFC 1123 form ``Date#toUTCString`` writes.
    """
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def expires_ms(session: Mapping[str, Any]) -> float | None:
    """``Number(new Date(session.cookie.expires))``, the way the Node stores read it.

    connect-redis, express-mysql-session and connect-mongo only look at ``cookie.expires``
    when it is truthy; then they take ``new Date(expires)``. None: no such expiry (use the
    store's default TTL). NaN: JS's Invalid Date, for which connect-redis computes a NaN TTL
    and deletes the session.
    """
    cookie = session.get("cookie")
    if not isinstance(cookie, Mapping):
        return None
    expires = cookie.get("expires")
    if expires is None or expires is False or expires == "" or expires == 0:
        return None
    if isinstance(expires, datetime):
        return to_ms(expires)
    if isinstance(expires, str):
        parsed = parse_js_date(expires)
        return math.nan if parsed is None else to_ms(parsed)
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
