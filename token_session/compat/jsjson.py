"""JSON text exactly as Node 20's ``JSON.stringify`` writes it and ``JSON.parse`` reads it.

Session stores keep sessions as JSON text, and a Python process sharing them with a Node
process must produce the same bytes for the same session. The stdlib encoder already agrees
with V8 on almost everything a session holds, so :func:`dumps` runs it first and only falls
back to the exact (slower) encoder when its output holds something the two write
differently: a float, an integer beyond 2**53, a numeric object key (JS orders those first),
or a lone surrogate.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from typing import Any

__all__ = ["dumps", "js_iso", "js_number", "loads"]

_c_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=True, separators=(",", ":"), default=lambda o: _default(o)
)

try:
    from json.encoder import c_encode_basestring as _encode_str  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - CPython always has the C accelerator
    from json.encoder import py_encode_basestring as _encode_str

# Anything in the stdlib encoder's output that V8 would write differently. It may also
# match inside a string value; that only costs a trip through the exact encoder.
_NEEDS_EXACT = re.compile(
    r'[\ud800-\udfff]|[:,\[]-?(?:\d+[.e]|\d{16}|NaN|Infinity)|[{,]"-?\d[\d.e+-]*":'
)
_SURROGATES = re.compile(r"[\ud800-\udbff][\udc00-\udfff]|[\ud800-\udfff]")
_MAX_SAFE = 2**53
# JS orders "array index" keys (canonical integers 0 .. 2**32-2) first, ascending.
_INDEX_KEY = re.compile(r"0|[1-9][0-9]{0,9}")
_MAX_INDEX = 2**32 - 2


def dumps(obj: Any) -> str:
    """Serialize ``obj`` to the exact text ``JSON.stringify`` gives for the same JS value.

    Raises :class:`TypeError` naming the path of a value JSON cannot carry (bytes, sets,
    naive datetimes, arbitrary objects) or of a circular reference.
    """
    if type(obj) is dict or type(obj) is list:
        try:
            text = _c_encoder.encode(obj)
        except (TypeError, ValueError, RecursionError):
            pass  # the exact encoder raises the same problem with its path
        else:
            if _NEEDS_EXACT.search(text) is None:
                return text
    parts: list[str] = []
    _encode(obj, parts, "$", set())
    return "".join(parts)


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return js_iso(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def js_iso(value: datetime) -> str:
    """``Date.prototype.toJSON``: UTC, milliseconds (truncated, as a JS Date holds), ``Z``."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise TypeError("naive datetime has no defined instant; give it a tzinfo")
    utc = value.astimezone(timezone.utc)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
        f"{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


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


def _js_key_order(items: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
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
        items = _js_key_order([(_key_text(k, path), v) for k, v in obj.items()])
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
    else:
        raise TypeError(
            f"{type(obj).__name__} at {path} cannot be stored as JSON "
            "(sessions hold dicts, lists, str, int, float, bool, None and aware datetimes)"
        )


def _enter(container: object, path: str, active: set[int]) -> None:
    if id(container) in active:
        raise TypeError(f"circular reference at {path}")
    active.add(id(container))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _js_int(text: str) -> int | float:
    """An integer literal as JS holds it: the nearest double, kept as int while finite."""
    value = int(text)
    if -_MAX_SAFE <= value <= _MAX_SAFE:
        return value
    as_float = float(text)
    return int(as_float) if math.isfinite(as_float) else as_float


_LONG_INT = re.compile(r"\d{16}")
_fast_decoder = json.JSONDecoder(parse_constant=_reject_constant)
_exact_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_js_int)


def loads(text: str | bytes | bytearray) -> Any:
    """Parse JSON text as ``JSON.parse`` does; raises :class:`ValueError` where it throws.

    Integer literals stay ``int`` (rounded to the nearest double beyond 2**53, as JS holds
    them); other numbers are ``float``. Object key order is left as written.
    """
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8")
    decoder = _exact_decoder if _LONG_INT.search(text) else _fast_decoder
    return decoder.decode(text)
