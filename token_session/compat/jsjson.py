"""JSON text exactly as Node 20's ``JSON.stringify`` writes it and ``JSON.parse`` reads it.

Session stores keep sessions as JSON text, and a Python process sharing them with a Node
process must produce the same bytes for the same session. orjson (when installed) and the
stdlib C encoder already agree with V8 on almost everything a session holds, so :func:`dumps`
runs one of them first and only falls back to the exact (slower) encoder when its output
holds something the two may write differently: an integral or exponent-form float, an
integer beyond 2**53, a numeric object key (JS orders those first), a surrogate code point,
NaN or an infinity. The reading side is ``jsparse.py``; its :func:`loads` is given here too.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from enum import Enum
from typing import Any
from uuid import UUID

from .jsdate import JsDate, days_from_civil, js_iso_ms
from .jsparse import loads, stdlib_loads

__all__ = ["dumps", "js_iso", "js_number", "js_truthy", "loads", "stdlib_loads"]

_orjson: Any
try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - the stdlib parser serves alone
    _orjson = None

try:
    from json.encoder import c_encode_basestring as _encode_str  # type: ignore[attr-defined]
    from json.encoder import c_make_encoder  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - CPython always has the C accelerator
    from json.encoder import py_encode_basestring as _encode_str

    c_make_encoder = None

# The stdlib C encoder, made once: no circular-reference markers (a loop ends in
# RecursionError and the exact encoder then names it), NaN and Infinity refused.
_c_encode = (
    None
    if c_make_encoder is None
    else c_make_encoder(
        None, lambda o: _default(o), _encode_str, None, ":", ",", False, False, False
    )
)

# Where the stdlib output can differ from V8's, found on its UTF-8 bytes with searches that
# start with a literal (fast in `re`). Digits are first mapped to "0" so that one search
# covers them all. Matches inside string values only cost a trip through the exact encoder.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_INTEGRAL_FLOAT = re.compile(rb'\.0(?:[,\]}]|":)')  # Python 1.0, JS 1
_EXPONENT = re.compile(rb"0e[+-]")  # Python 1e-05 / 1e+16, JS 0.00001 / 10000000000000000
_SIXTEEN_DIGITS = b"0" * 16  # an int beyond 2**53: JS writes the double it holds
_NUMERIC_KEY = re.compile(rb'"0[0.e+-]*":')  # JS puts integer keys first, in order
_SURROGATES = re.compile(r"[\ud800-\udbff][\udc00-\udfff]|[\ud800-\udfff]")
_MAX_SAFE = 2**53
# JS orders "array index" keys (canonical integers 0 .. 2**32-2) first, ascending.
_INDEX_KEY = re.compile(r"0|[1-9][0-9]{0,9}")
_MAX_INDEX = 2**32 - 2


def dumps(obj: Any) -> str:
    """Serialize ``obj`` to the exact text ``JSON.stringify`` gives for the same JS value.

    Besides JSON's own types, an aware ``datetime`` and a
    :class:`~token_session.compat.jsdate.JsDate` are written as ``Date#toJSON`` writes them
    (an Invalid Date as null), a ``UUID`` as its canonical string and an ``Enum`` member as
    its value.

    Raises :class:`TypeError` naming the path of a value JSON cannot carry (bytes, sets,
    naive datetimes, arbitrary objects) or of a circular reference, and :class:`ValueError`
    for nesting deeper than Python's stack goes (about 990 levels under the default recursion
    limit; Node 20's ``JSON.stringify`` throws its RangeError past about 4,000 on its default
    stack). Such a value could not be read back here either: :func:`loads` refuses the same
    depth.
    """
    if _orjson is not None and (type(obj) is dict or type(obj) is list):
        try:
            raw: bytes = _orjson.dumps(obj, default=_default, option=_ORJSON_OPTIONS)
        except _orjson.JSONEncodeError:
            pass  # a surrogate, a key that is not a str, a subclass, deep nesting: see below
        else:
            if _v8_writes_the_same(raw):
                return raw.decode("utf-8")
    return stdlib_dumps(obj)


# orjson writes exact dicts, lists, str, int, float, bool, None, UUID and Enum itself and hands
# everything else to _default, which turns a datetime, and refuses the rest: a dict subclass
# (an OrderedDict's order is not its storage's), a dataclass, a date.
_ORJSON_OPTIONS = (
    0
    if _orjson is None
    else _orjson.OPT_PASSTHROUGH_SUBCLASS
    | _orjson.OPT_PASSTHROUGH_DATETIME
    | _orjson.OPT_PASSTHROUGH_DATACLASS
)


def stdlib_dumps(obj: Any) -> str:
    """:func:`dumps` without orjson."""
    if _c_encode is not None and (type(obj) is dict or type(obj) is list):
        try:
            text = "".join(_c_encode(obj, 0))
        except (TypeError, ValueError, RecursionError):
            pass  # the exact encoder raises the same problem with its path, or writes null
        else:
            try:
                raw = text.encode("utf-8")
            except UnicodeEncodeError:
                pass  # a surrogate code point: JS escapes a lone one, joins a pair
            else:
                if _v8_writes_the_same(raw):
                    return text
    parts: list[str] = []
    try:
        _encode(obj, parts, "$", set())
    except RecursionError:
        raise ValueError("value nested too deeply to write here") from None
    return "".join(parts)


def _v8_writes_the_same(raw: bytes) -> bool:
    """Whether V8 writes the same as ``raw``, UTF-8 JSON text from orjson or the stdlib."""
    if _INTEGRAL_FLOAT.search(raw) is not None:
        return False
    digits = raw.translate(_DIGITS_AS_ZERO)
    return not (
        _SIXTEEN_DIGITS in digits
        or _EXPONENT.search(digits) is not None
        or _NUMERIC_KEY.search(digits) is not None
    )


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return js_iso(obj)
    if isinstance(obj, JsDate):
        return obj.to_json()
    if isinstance(obj, UUID):
        return str(obj)
    if isinstance(obj, Enum):
        return obj.value
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def js_iso(value: datetime) -> str:
    """``Date.prototype.toJSON``: UTC, milliseconds (truncated, as a JS Date holds), ``Z``."""
    offset = None if value.tzinfo is None else value.utcoffset()
    if offset is None:
        raise TypeError("naive datetime has no defined instant; give it a tzinfo")
    try:
        utc = value.astimezone(timezone.utc)
    except OverflowError:
        # an instant in year 0 or 10000 (9999-12-31T19:00-05:00): no Python datetime, but a JS
        # Date, which V8 writes with a signed six-digit year ("+010000-01-01T00:00:00.000Z")
        days = days_from_civil(value.year, value.month, value.day)
        wall_us = ((days * 24 + value.hour) * 60 + value.minute) * 60_000_000 + (
            value.second * 1_000_000 + value.microsecond
        )
        offset_us = (offset.days * 86_400 + offset.seconds) * 1_000_000 + offset.microseconds
        text = js_iso_ms((wall_us - offset_us) // 1000)
        assert text is not None  # years 0 and 10000 lie well inside a JS Date's range
        return text
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
        f"{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


def js_truthy(value: object) -> bool:
    """JS truthiness of a JSON-born value: false for null, false, 0, NaN and ""."""
    if isinstance(value, float) and math.isnan(value):
        return False
    return value is not None and value is not False and value != 0 and value != ""


def js_number(value: float | int) -> str:
    """``Number.prototype.toString`` of the double nearest ``value``; "null" if not finite."""
    if isinstance(value, int):
        if -_MAX_SAFE <= value <= _MAX_SAFE:
            return int.__repr__(value)
        try:
            value = float(value)
        except OverflowError:
            return "null"  # JS would hold +-Infinity, which JSON.stringify writes as null
    if not math.isfinite(value):
        return "null"
    if value == 0:
        return "0"  # also -0
    text = float.__repr__(value)
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exp_text = text.partition("e")
    int_part, _, frac = mantissa.partition(".")
    if frac == "0":
        frac = ""
    digits = int_part + frac
    # value == 0.DIGITS * 10**point once leading zeros are gone (ECMA-262 Number::toString's n)
    point = len(int_part) + (int(exp_text) if exp_text else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= point <= 21:
        return sign + digits + "0" * (point - k)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * -point + digits
    exp = point - 1
    exp_str = ("+" if exp >= 0 else "-") + str(abs(exp))
    if k == 1:
        return sign + digits + "e" + exp_str
    return sign + digits[0] + "." + digits[1:] + "e" + exp_str


def _escape_surrogate(match: re.Match[str]) -> str:
    text = match.group()
    if len(text) == 2:  # a valid pair is one astral character to JS, written raw
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    return f"\\u{ord(text):04x}"


def _encode_string(value: str) -> str:
    text: str = _encode_str(value)
    if _SURROGATES.search(text) is not None:
        text = _SURROGATES.sub(_escape_surrogate, text)
    return text


def js_key_order(items: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Object entries in the order JS keeps them: array-index keys first, ascending."""
    index_keys = []
    other = []
    for item in items:
        key = item[0]
        if _INDEX_KEY.fullmatch(key) and int(key) <= _MAX_INDEX:
            index_keys.append(item)
        else:
            other.append(item)
    if not index_keys:
        return items
    index_keys.sort(key=lambda item: int(item[0]))
    return index_keys + other


def _key_text(key: Any, path: str) -> str:
    """A JS object key is a string: what ``String(key)`` gives for a scalar Python key."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool):
        return _KEY_CONSTANTS[key]
    if isinstance(key, (int, float)):
        return js_number(key) if math.isfinite(key) else _KEY_CONSTANTS[repr(float(key))]
    raise TypeError(f"object key {key!r} at {path} is not a string")


_KEY_CONSTANTS: dict[Any, str] = {
    None: "null",
    True: "true",
    False: "false",
    "nan": "NaN",
    "inf": "Infinity",
    "-inf": "-Infinity",
}


def _child_path(path: str, key: str) -> str:
    if key.isidentifier():
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


def _encode(obj: Any, out: list[str], path: str, active: set[int]) -> None:
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, str):
        out.append(_encode_string(obj))
    elif isinstance(obj, (int, float)):
        out.append(js_number(obj))
    elif isinstance(obj, dict):
        _enter(obj, path, active)
        items = js_key_order([(_key_text(k, path), v) for k, v in obj.items()])
        out.append("{")
        for position, (key, value) in enumerate(items):
            if position:
                out.append(",")
            out.append(_encode_string(key))
            out.append(":")
            _encode(value, out, _child_path(path, key), active)
        out.append("}")
        active.discard(id(obj))
    elif isinstance(obj, (list, tuple)):
        _enter(obj, path, active)
        out.append("[")
        for index, value in enumerate(obj):
            if index:
                out.append(",")
            _encode(value, out, f"{path}[{index}]", active)
        out.append("]")
        active.discard(id(obj))
    elif isinstance(obj, datetime):
        try:
            out.append(_encode_string(js_iso(obj)))
        except TypeError as exc:
            raise TypeError(f"{exc} (at {path})") from None
    elif isinstance(obj, JsDate):
        text = obj.to_json()
        out.append("null" if text is None else _encode_string(text))
    elif isinstance(obj, UUID):
        out.append(_encode_string(str(obj)))
    elif isinstance(obj, Enum):
        _encode(obj.value, out, path, active)
    else:
        raise TypeError(
            f"{type(obj).__name__} at {path} cannot be stored as JSON (sessions hold dicts, "
            "lists, str, int, float, bool, None, aware datetimes, JsDates, UUIDs and enums)"
        )


def _enter(container: object, path: str, active: set[int]) -> None:
    if id(container) in active:
        raise TypeError(f"circular reference at {path}")
    active.add(id(container))
