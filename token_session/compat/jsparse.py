"""JSON text read exactly as Node 20's ``JSON.parse`` reads it: :func:`loads`.

orjson (when installed) parses what it is sure to read to the same values, at a fraction of
the stdlib parser's cost; the stdlib parser judges the rest.
"""

from __future__ import annotations

import json
import json.scanner
from typing import Any

__all__ = ["loads", "stdlib_loads"]

_orjson: Any
try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - the stdlib parser serves alone
    _orjson = None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)
# the C scanner the decoder runs, called directly: stored sessions carry no surrounding
# whitespace, and the decoder's own checks for it cost a third of a session's parse
_scan_once: Any = json.scanner.make_scanner(_decoder)  # type: ignore[arg-type]


def loads(text: str | bytes | bytearray) -> Any:
    """Parse JSON text as ``JSON.parse`` does; raises :class:`ValueError` where it throws.

    Integer literals become ``int`` and other numbers ``float``. An integer literal beyond
    2**53 stays exact here, where JS rounds it to a double; :func:`dumps` writes it as that
    double, so ``dumps(loads(text))`` is ``JSON.stringify(JSON.parse(text))`` byte for byte.
    Object key order is left as written.

    With orjson installed, it parses what it is sure to read to the same values, at a
    fraction of the cost; the stdlib parser judges the rest.
    """
    if _orjson is not None:
        value = _orjson_loads(text)
        if value is not _UNSURE:
            return value
    return stdlib_loads(text)


_UNSURE = object()
# every digit as b"0", every other byte as b" ": a run of 19 digits is then one search
_DIGITS_AS_ZEROS = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
_NINETEEN_DIGITS = b"0" * 19


def _orjson_loads(text: str | bytes | bytearray) -> Any:
    """orjson's value for ``text``, or ``_UNSURE`` where it may differ from
    :func:`stdlib_loads`'s (or refuses the text, which the stdlib parser then words)."""
    try:
        data = text.encode("utf-8") if isinstance(text, str) else text
    except UnicodeEncodeError:  # a lone surrogate, which orjson cannot take
        return _UNSURE
    # orjson reads an integer beyond 64 bits as a float, where it stays an exact int here
    if _NINETEEN_DIGITS in data.translate(_DIGITS_AS_ZEROS):
        return _UNSURE
    try:
        return _orjson.loads(data)
    except _orjson.JSONDecodeError:  # 1e400, "\ud800", deep nesting, and what is not JSON
        return _UNSURE


def stdlib_loads(text: str | bytes | bytearray) -> Any:
    """:func:`loads` with the stdlib's parser alone."""
    if not isinstance(text, str):
        text = text.decode("utf-8")
    try:
        try:
            value, end = _scan_once(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):
            # leading or trailing whitespace, trailing data, or not JSON: the full decoder
            # judges it and words the error
            return _decoder.decode(text)
    except RecursionError:
        # V8 reads deeper nesting than Python's stack allows; a ValueError, so that a store
        # reports such a record as one it cannot decode
        raise ValueError("JSON nested too deeply to read here") from None
    return value
