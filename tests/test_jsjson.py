"""compat.dumps / compat.loads against Node's JSON.stringify / JSON.parse, byte for byte."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from token_session.compat import dumps, js_number, loads
from token_session.compat.jsjson import _encode

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
def test_fast_path_agrees_with_exact_encoder(session: dict[str, Any]) -> None:
    assert dumps(session) == exact(session)


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
