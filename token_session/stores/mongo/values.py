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

from ...compat.cookie import COOKIE_JSON_KEYS, Cookie, from_ms, parse_js_date, to_ms
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


def js_date(ms: float) -> datetime:
    """``new Date(ms)``: BSON dates hold whole milliseconds."""
    return from_ms(math.floor(ms))


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
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
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
    if isinstance(expires, str):
        parsed = parse_js_date(expires)
        document["expires"] = parsed
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
    """A document read back: naive datetimes (pymongo without tz_aware) made UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def ms_of(value: Any) -> float:
    """Epoch milliseconds of a stored date (or JS date text); 0 for anything else."""
    if isinstance(value, datetime):
        return to_ms(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
    if isinstance(value, str):
        parsed = parse_js_date(value)
        return to_ms(parsed) if parsed else 0
    return 0


def ms_or_none(value: Any) -> int | None:
    """Epoch milliseconds of a stored date; None when there is none."""
    if isinstance(value, datetime):
        return to_ms(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
    return None
