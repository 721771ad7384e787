"""compat.dumps / compat.loads against Node's JSON.stringify / JSON.parse, byte for byte."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from enum import Enum, IntEnum
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from token_session.compat import dumps, js_number, jsparse, loads
from token_session.compat.jsjson import _encode, stdlib_dumps, stdlib_loads

from .node import NodeOracle, tag
from .strategies import edge_texts, json_texts, plain_sessions, sessions, values


def exact(value: Any) -> str:
    parts: list[str] = []
    _encode(value, parts, "$", set())
    return "".join(parts)


@given(values)
@settings(max_examples=600)
def test_dumps_matches_json_stringify(node: NodeOracle, value: Any) -> None:
    assert dumps(value) == node.out("stringify", value=tag(value))


@given(sessions)
@settings(max_examples=300)
def test_dumps_session_matches_json_stringify(node: NodeOracle, session: dict[str, Any]) -> None:
    assert dumps(session) == node.out("stringify", value=tag(session))


@given(plain_sessions)
@settings(max_examples=300)
def test_dumps_plain_session_matches_json_stringify(
    node: NodeOracle, session: dict[str, Any]
) -> None:
    assert dumps(session) == node.out("stringify", value=tag(session))


@given(sessions | plain_sessions)
@settings(max_examples=300)
def test_fast_paths_agree_with_exact_encoder(session: dict[str, Any]) -> None:
    assert dumps(session) == exact(session)
    assert stdlib_dumps(session) == exact(session)


class Plan(Enum):
    FREE = "free"
    TEAM = ("team", 9.5, [1.0])


class Level(IntEnum):
    ADMIN = 3


@pytest.mark.parametrize("encode", [dumps, stdlib_dumps, exact])
def test_uuids_and_enums_are_written_as_their_values_on_every_path(encode: Any) -> None:
    value = {"id": UUID(int=1), "plan": Plan.TEAM, "plans": [Plan.FREE], "level": Level.ADMIN}
    assert encode(value) == (
        '{"id":"00000000-0000-0000-0000-000000000001","plan":["team",9.5,[1]],'
        '"plans":["free"],"level":3}'
    )


@pytest.mark.parametrize("encode", [dumps, stdlib_dumps, exact])
def test_a_dict_subclass_is_written_in_its_own_order(encode: Any) -> None:
    # an OrderedDict's order is not the order of the dict beneath it once an entry moves
    moved = OrderedDict(a=1, b=[1.0, 2.5])
    moved.move_to_end("a")
    assert encode({"moved": moved}) == '{"moved":{"b":[1,2.5],"a":1}}'


@given(json_texts())
@settings(max_examples=400)
def test_loads_matches_json_parse(node: NodeOracle, text: str) -> None:
    answer = node.ask("parse", text=text)
    assert answer["ok"], answer
    assert dumps(loads(text)) == answer["out"]


def assert_parses_as_node_does(node: NodeOracle, text: str) -> None:
    answer = node.ask("parse", text=text)
    if answer["ok"]:
        assert dumps(loads(text)) == answer["out"]
    else:
        with pytest.raises(ValueError):
            loads(text)


@pytest.mark.parametrize("text", edge_texts)
def test_loads_accepts_and_rejects_what_json_parse_does(node: NodeOracle, text: str) -> None:
    assert_parses_as_node_does(node, text)


@given(st.text(max_size=20))
@settings(max_examples=300)
def test_loads_rejects_garbage_as_json_parse_does(node: NodeOracle, text: str) -> None:
    assert_parses_as_node_does(node, text)


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (-0.0, "0"),
        (9007199254740993, "9007199254740992"),
        (2.0**60, "1152921504606847000"),
        (123e-20, "1.23e-18"),
        (0.000001, "0.000001"),
        (1.0, "1"),
        (float("nan"), "null"),
        (10**400, "null"),
    ],
)
def test_js_number_formats(number: float, text: str) -> None:
    assert js_number(number) == text


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"a": b"x"}, "$.a"),
        ({"cart": {"items": [1, {2, 3}]}}, "$.cart.items[1]"),
        ({"when": datetime(2024, 1, 1)}, "$.when"),
        ({"odd key": object()}, '$["odd key"]'),
    ],
)
def test_unstorable_values_name_their_path(value: Any, path: str) -> None:
    with pytest.raises(TypeError, match=path.replace("[", r"\[").replace("$", r"\$")):
        dumps(value)


def test_circular_reference_is_a_type_error() -> None:
    loop: dict[str, Any] = {"a": []}
    loop["a"].append(loop)
    with pytest.raises(TypeError, match=r"circular reference at \$\.a\[0\]"):
        dumps(loop)


def test_integer_keys_are_ordered_first_as_js_objects_do() -> None:
    assert dumps({"b": 1, "2": 2, "1": 3, "01": 4}) == '{"1":3,"2":2,"b":1,"01":4}'


def test_loads_keeps_long_integers_exact_and_dumps_writes_the_double() -> None:
    assert loads("[9007199254740993, 1e400]") == [9007199254740993, float("inf")]
    assert dumps(loads("[9007199254740993, 1e400]")) == "[9007199254740992,null]"


def typed(value: Any) -> Any:
    """``value`` with every number tagged with its type (and a float's sign and bits), so that
    1 and 1.0, 0.0 and -0.0 differ."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, list):
        return [typed(item) for item in value]
    return [(key, typed(item)) for key, item in value.items()]


digit_runs = st.integers(1, 40).flatmap(
    lambda n: st.text(st.sampled_from("0123456789"), min_size=n, max_size=n)
)
number_texts = st.builds(
    lambda sign, whole, fraction, exponent: sign + (whole.lstrip("0") or "0") + fraction + exponent,
    st.sampled_from(["", "-"]),
    digit_runs,
    st.one_of(st.just(""), digit_runs.map(lambda d: "." + d)),
    st.one_of(
        st.just(""),
        st.builds(
            lambda e, s, n: f"{e}{s}{n}",
            st.sampled_from("eE"),
            st.sampled_from(["", "+", "-"]),
            st.integers(0, 400),
        ),
    ),
)


@pytest.mark.skipif(jsparse._orjson is None, reason="orjson is not installed")
@given(
    json_texts()
    | number_texts.map(lambda n: f'{{"n":{n},"a":[{n}]}}')
    | st.sampled_from(edge_texts)
)
@settings(max_examples=1500)
def test_orjson_reads_what_it_vouches_for_as_the_stdlib_parser_does(text: str) -> None:
    fast = jsparse._orjson_loads(text)
    for data in (text, text.encode("utf-8", "surrogatepass")):
        if jsparse._orjson_loads(data) is not jsparse._UNSURE:
            assert typed(jsparse._orjson_loads(data)) == typed(stdlib_loads(data))
    if fast is jsparse._UNSURE:
        return
    assert typed(loads(text)) == typed(stdlib_loads(text))


@pytest.mark.skipif(jsparse._orjson is None, reason="orjson is not installed")
@pytest.mark.parametrize(
    "text",
    [
        "[18446744073709551616]",  # beyond 64 bits: a float to orjson, an exact int here
        "[-9223372036854775809]",
        "[1e400]",  # an infinity here, refused by orjson
        '["\\ud800"]',  # a lone surrogate
        '"\ud800"',
    ],
)
def test_what_orjson_would_read_otherwise_goes_to_the_stdlib_parser(text: str) -> None:
    assert jsparse._orjson_loads(text) is jsparse._UNSURE
    assert typed(loads(text)) == typed(stdlib_loads(text))


@pytest.mark.skipif(jsparse._orjson is None, reason="orjson is not installed")
def test_nesting_deeper_than_orjson_goes_is_left_to_the_stdlib_parser() -> None:
    assert jsparse._orjson_loads("[" * 2000 + "]" * 2000) is jsparse._UNSURE


@pytest.mark.parametrize("space", ["", " "])
def test_nesting_deeper_than_python_reads_is_a_value_error(space: str) -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        loads(space + "[" * 100_000 + "]" * 100_000)


def _nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for index in range(depth):
        value = {"a": value} if index % 2 else [value]
    return value


@pytest.mark.parametrize("encode", [dumps, stdlib_dumps])
def test_nesting_deeper_than_python_writes_is_a_value_error(encode: Any) -> None:
    # Node 20 writes a few thousand levels before its RangeError; Python's stack stops
    # sooner, and what it cannot read back it refuses to write, as a ValueError
    with pytest.raises(ValueError, match="nested too deeply"):
        encode(_nested(5_000, 1.5))


def test_nesting_python_writes_is_written_as_node_writes_it(node: NodeOracle) -> None:
    value = _nested(400, 1.0)  # deeper than orjson goes: the stdlib and exact encoders
    assert dumps(value) == node.out("stringify", value=tag(value))


@pytest.mark.parametrize(
    ("when", "node_writes"),
    [
        # node -e "console.log(new Date(Date.UTC(10000, 0, 1)).toJSON())"
        (
            datetime(9999, 12, 31, 19, tzinfo=timezone(timedelta(hours=-5))),
            "+010000-01-01T00:00:00.000Z",
        ),
        # node -e "console.log(new Date('0001-01-01T01:00:00+05:00').toJSON())"
        (datetime(1, 1, 1, 1, tzinfo=timezone(timedelta(hours=5))), "0000-12-31T20:00:00.000Z"),
        (
            datetime(2024, 1, 1, 1, 0, 0, 123_999, tzinfo=timezone(timedelta(hours=5))),
            "2023-12-31T20:00:00.123Z",
        ),
    ],
)
def test_an_aware_datetime_is_written_as_a_js_date_even_past_pythons_years(
    when: datetime, node_writes: str
) -> None:
    assert dumps({"when": when}) == f'{{"when":"{node_writes}"}}'
