"""JS values as the Node driver writes them to BSON, and BSON values read back; pure.

What connect-mongo's documents hold is what the Node MongoDB driver made of JS values: these
functions give the Python value whose BSON (as pymongo writes it) is the same, and read
pymongo's answers back as the values the rest of token_session expects.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from ...compat.cookie import COOKIE_JSON_KEYS, Cookie, from_ms, to_ms
from ...compat.cookie import js_date as compat_js_date
from ...compat.jsdate import JsDate, js_date_ms, time_clip
from ...compat.jsjson import js_key_order
from ...errors import InvalidArgumentError

__all__ = [
    "cookie_document",
    "default_serialize",
    "js_bson",
    "js_date",
    "js_object",
    "ms_of",
    "ms_or_none",
    "plain",
    "utf8_safe",
]

_INT32 = 2**31
# express-session's Cookie#toJSON keys; the Node driver writes the undefined ones as null
_COOKIE_KEYS = COOKIE_JSON_KEYS


def js_date(ms: float) -> Any:
    """``new Date(ms)`` as the Node driver writes it: a BSON date holds int64 milliseconds,
    so a Date past year 9999 is stored too (a ``DatetimeMS`` here, where no datetime holds
    it), and an Invalid Date (NaN, or beyond JS's range) as 0, which js-bson's
    ``Long.fromNumber(NaN)`` gives."""
    clipped = time_clip(ms)
    if clipped != clipped:
        return from_ms(0)
    try:
        return from_ms(int(clipped))
    except OverflowError:
        from bson.datetime_ms import DatetimeMS

        return DatetimeMS(int(clipped))


def _aware(value: datetime) -> datetime:
    """A naive datetime has no instant: refused, as ``dumps`` refuses it for the JSON text."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgumentError(
            "a naive datetime has no defined instant: give it a tzinfo to store it"
        )
    return value


def js_bson(value: Any) -> Any:
    """The Python value whose BSON is what the Node driver writes for the same JS value.

    JS has one number type: the Node driver writes an integral number in the int32 range
    as int32 and any other number as a double, where pymongo would write int64 or double.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return utf8_safe(value)
    if isinstance(value, int):
        return value if -_INT32 <= value < _INT32 else float(value)
    if isinstance(value, float):
        if (
            value.is_integer()
            and -_INT32 <= value < _INT32
            and not (value == 0 and math.copysign(1, value) < 0)
        ):
            return int(value)
        return value
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, JsDate):
        return js_date(value.ms)
    if isinstance(value, (list, tuple)):
        return [js_bson(item) for item in value]
    if isinstance(value, Mapping):
        return js_object((str(key), js_bson(item)) for key, item in value.items())
    raise InvalidArgumentError(f"{type(value).__name__} cannot be stored in a session document")


def utf8_safe(text: str) -> str:
    """The string the Node driver's UTF-8 encoding stores: a lone surrogate becomes U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def cookie_document(cookie: Any) -> Any:
    """``cookie.toJSON()`` as connect-mongo's default serializer stores it (expires a Date)."""
    if isinstance(cookie, Cookie):
        cookie = cookie.to_json()
    elif not (
        isinstance(cookie, Mapping)
        and "originalMaxAge" in cookie
        and set(cookie) <= set(_COOKIE_KEYS)
    ):
        return js_bson(cookie)  # not an express-session cookie: stored as it is
    document = {key: cookie.get(key) for key in _COOKIE_KEYS}
    expires = document["expires"]
    if isinstance(expires, str):  # express-session made it a Date: new Date(text)
        document["expires"] = compat_js_date(js_date_ms(expires))
    return js_bson(document)


def js_object(items: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """A JS object's own keys in JS order: integer-like keys first, ascending."""
    ordered = js_key_order(list(items))
    document = {utf8_safe(key): value for key, value in ordered}
    if len(document) != len(ordered):  # two keys differing only in lone surrogates
        raise InvalidArgumentError(
            "session keys that differ only in lone surrogates collide in BSON"
        )
    return document


def default_serialize(session: Mapping[str, Any]) -> dict[str, Any]:
    """connect-mongo's ``defaultSerializeFunction``: ``cookie`` first (after integer-like
    keys, as in any JS object), as ``toJSON`` gives it."""
    items = [("cookie", cookie_document(session.get("cookie")))]
    items += [(str(key), js_bson(value)) for key, value in session.items() if key != "cookie"]
    return js_object(items)


def plain(value: Any) -> Any:
    """A document read back: naive datetimes (pymongo without tz_aware) made UTC, and dates
    no datetime holds (``DatetimeMS``) made :class:`JsDate`."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if _is_datetime_ms(value):
        return compat_js_date(int(value))
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def _is_datetime_ms(value: Any) -> bool:
    if type(value).__name__ != "DatetimeMS":  # no bson import for every other value
        return False
    from bson.datetime_ms import DatetimeMS

    return isinstance(value, DatetimeMS)


def ms_of(value: Any) -> float:
    """Epoch milliseconds of a stored date (or JS date text); 0 for anything else."""
    ms = ms_or_none(value)
    if ms is not None:
        return ms
    if isinstance(value, JsDate):
        return value.ms if value.valid else 0
    if isinstance(value, str):
        parsed = js_date_ms(value)
        return parsed if parsed == parsed else 0
    return 0


def ms_or_none(value: Any) -> int | None:
    """Epoch milliseconds of a stored date; None when there is none."""
    if isinstance(value, datetime):
        return to_ms(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
    if _is_datetime_ms(value):
        return int(value)
    return None
