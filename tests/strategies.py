"""Hypothesis strategies for the values a session holds and the JSON texts stores keep."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from token_session.compat import Cookie
from token_session.web.session import RESERVED_KEYS

# any code point, and often the ones JSON writers disagree on: lone or paired surrogates
# (a JS string can hold either), controls, quotes, DEL, line separators, astral characters
tricky_characters = st.sampled_from(
    [
        "\ud800",
        "\udbff",
        "\udc00",
        "\udfff",
        "\ud83d",
        "\ude00",
        '"',
        "\\",
        "/",
        "\x00",
        "\x1f",
        "\x7f",
        "\x80",
        "\u2028",
        "\u2029",
        "\ufeff",
        "\uffff",
        "é",
        "😀",
        "a",
        "<",
    ]
)
texts = st.one_of(
    st.text(st.characters(codec=None), max_size=12),
    st.text(tricky_characters, max_size=8),
    st.text(
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()), max_size=3
    ),
)

# keys JS orders specially ("array index" keys 0 .. 2**32-2) and their near misses
tricky_keys = st.sampled_from(
    [
        "0",
        "1",
        "2",
        "10",
        "007",
        "-1",
        "1.5",
        "1e3",
        "4294967294",
        "4294967295",
        "99999999999",
        "__proto__",
        "constructor",
        "",
        "cookie",
    ]
)
keys = st.one_of(texts, tricky_keys, st.integers(0, 2**33).map(str))

edge_ints = st.sampled_from(
    [
        0,
        -1,
        2**53 - 1,
        2**53,
        2**53 + 1,
        -(2**53) - 1,
        10**15,
        10**16,
        10**20,
        10**21,
        10**22,
        2**64,
        12345678901234567890,
        10**308,
        10**309,
        -(10**400),
    ]
)
edge_floats = st.sampled_from(
    [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.1,
        1e-7,
        1e-6,
        1.5e-7,
        123e-20,
        1e16,
        1e20,
        1e21,
        1.5e21,
        2.0**60,
        5e-324,
        1.7976931348623157e308,
        float("nan"),
        float("inf"),
        float("-inf"),
        100.0,
        1e-5,
        0.000001234,
        123456789012345680000.0,
    ]
)
numbers = st.one_of(
    st.integers(),
    st.integers(-(2**70), 2**70),
    edge_ints,
    st.floats(),
    st.floats(min_value=-1e6, max_value=1e6),
    edge_floats,
)
datetimes = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(timezone.utc)
) | st.datetimes(timezones=st.just(timezone(timedelta(hours=-5, minutes=-30))))

scalars = st.one_of(st.none(), st.booleans(), numbers, texts, datetimes)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=6),
        st.tuples(children, children),
        st.dictionaries(keys, children, max_size=6),
    )


values = st.recursive(scalars, _containers, max_leaves=25)
sessions = st.dictionaries(keys, values, max_size=8)

# what most sessions hold: no huge integers, floats of everyday size (the fast path)
plain_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**53), 2**53),
        st.floats(-1e6, 1e6),
        texts,
        datetimes,
    ),
    lambda c: st.lists(c, max_size=5) | st.dictionaries(texts, c, max_size=5),
    max_leaves=25,
)
plain_sessions = st.dictionaries(texts, plain_values, max_size=8)


@st.composite
def json_texts(draw: st.DrawFn) -> str:
    """Valid JSON text in the many spellings JSON.parse accepts (whitespace, escapes, exponents)."""

    def space() -> str:
        return draw(st.text(st.sampled_from(" \t\n\r"), max_size=2))

    def number(value: int | float) -> str:
        literal = draw(st.sampled_from(["plain", "exp", "frac"]))
        base = repr(value) if isinstance(value, float) else str(value)
        if literal == "exp" and "e" not in base:
            return base + draw(st.sampled_from(["e0", "E+0", "e-0", "E00"]))
        if literal == "frac" and isinstance(value, int):
            return base + ".0"
        return base

    def string(text: str) -> str:
        out = ['"']
        for ch in text:
            code = ord(ch)
            if ch == '"' or ch == "\\" or code < 0x20 or draw(st.integers(0, 5)) == 0:
                if code > 0xFFFF:
                    code -= 0x10000
                    pair = (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))
                    out.extend(f"\\u{unit:04X}" for unit in pair)
                else:
                    out.append(draw(st.sampled_from(["\\u{:04x}", "\\u{:04X}"])).format(code))
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)

    def render(value: Any) -> str:
        if value is None or isinstance(value, bool):
            return {None: "null", True: "true", False: "false"}[value]
        if isinstance(value, (int, float)):
            return number(value)
        if isinstance(value, str):
            return string(value)
        if isinstance(value, list):
            return "[" + ",".join(space() + render(v) + space() for v in value) + "]"
        return (
            "{"
            + ",".join(
                space() + string(k) + space() + ":" + space() + render(v) for k, v in value.items()
            )
            + "}"
        )

    json_scalar = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        edge_ints,
        st.floats(allow_nan=False, allow_infinity=False),
        texts,
    )
    value = draw(
        st.recursive(
            json_scalar,
            lambda c: st.lists(c, max_size=5) | st.dictionaries(keys, c, max_size=5),
            max_leaves=20,
        )
    )
    return space() + render(value) + space()


# texts JSON.parse rejects or reads in a way a lenient parser might not
edge_texts = [
    "NaN",
    "Infinity",
    "-Infinity",
    "[1,]",
    '{"a":1,}',
    "'a'",
    "01",
    "1.",
    ".5",
    "+1",
    "-",
    "1e",
    "1e+",
    '"\\x41"',
    '"\t"',
    '"\\u12"',
    "\ufeff{}",
    "\x0b1",
    "\u00a01",
    "[1]x",
    '{"a" 1}',
    '"\\ud800"',
    '"\\udc00\\ud800"',
    "1E400",
    "-1e-400",
    "[" * 50 + "]" * 50,
    '{"a":1,"a":2}',
    '{"b":1,"2":2,"1":3}',
    "-0",
    "0.0e0",
    '"\\/"',
    "true ",
    " null",
    '["\u2028"]',
    "1234567890123456789012345678901234567890",
]


# Keys express-session's Session constructor skips (`prop in this`): its own methods and
# properties and Object.prototype's. Sessions that pass through express-session never hold them.
SESSION_OWN = RESERVED_KEYS | {"cookie"}

cookies = st.builds(
    lambda max_age, secure, same_site: Cookie(
        max_age=max_age, secure=secure, same_site=same_site
    ).to_json(),
    st.integers(2_000, 10**9),
    st.booleans(),
    st.sampled_from(["lax", "strict"]),
)
# express-session makes a new session's cookie first, and keeps stored sessions' order
express_sessions = st.builds(
    lambda data, cookie: {
        "cookie": cookie,
        **{k: v for k, v in data.items() if k not in SESSION_OWN},
    },
    plain_sessions,
    cookies,
)
