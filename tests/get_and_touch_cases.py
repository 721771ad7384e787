"""What every store's get_and_touch is held to: the sessions and stored texts it reads, and
the helpers the tests compare it with get then touch by. Each backend's test module adds
the values only its store can hold (PostgreSQL's ``\\u0000`` texts, Redis's bytes, Mongo's
BSON values)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Generator
from typing import Any

from hypothesis import strategies as st

from token_session.compat import dumps, js_iso
from token_session.compat.cookie import from_ms, now_ms
from token_session.stores.base import refreshed

from .node import NodeOracle, tag
from .strategies import edge_texts, express_sessions, json_texts, plain_sessions

BIG = 10**15
# a JSON text nested deeper than the decoders take: no session, for every store
TOO_DEEP = '{"cookie":{"originalMaxAge":4000},"x":' + "[" * 2000 + "]" * 2000 + "}"

# sessions of every shape touch reads: the first six are sessions each store keeps and
# touches without error
SESSIONS: list[dict[str, Any]] = [
    {"cookie": {"originalMaxAge": 3_600_000, "expires": "2020-01-01T00:00:00.000Z"}, "n": 1},
    {"cookie": {"originalMaxAge": 60_000, "httpOnly": True, "path": "/"}, "a": [1, {"b": None}]},
    {"cookie": {"originalMaxAge": None, "expires": None, "path": "/"}},  # a browser session
    {"cookie": {"maxAge": 0}},  # token-session's: the store's default lifetime
    {"cookie": {"originalMaxAge": "60000"}},
    {"cookie": {"originalMaxAge": True}},
    {"cookie": {"originalMaxAge": None, "expires": None}},
    {"cookie": {"originalMaxAge": None, "expires": "2030-01-01T00:00:00.000Z"}},
    {"cookie": {"originalMaxAge": None, "expires": "garbage"}},
    {"cookie": {"originalMaxAge": None, "expires": "+275760-09-13T00:00:00.001Z"}},  # invalid
    {"cookie": {"originalMaxAge": None, "expires": "9999-12-31T23:59:59.999Z"}},
    {"cookie": {"expires": ""}},
    {"cookie": {"expires": 0}},
    {"cookie": {"expires": False}},
    {"cookie": None},
    {"cookie": "a string"},
    {"cookie": [1, 2]},
    {"cookie": {}},
    {},
    {"x": "no cookie"},
    {"cookie": {"originalMaxAge": 1500.7}},
    {"cookie": {"originalMaxAge": -1500.7}},  # a touch to the past
    {"cookie": {"originalMaxAge": -500}},
    {"cookie": {"originalMaxAge": 0}},
    {"cookie": {"originalMaxAge": 1}},
    {"cookie": {"originalMaxAge": 999}},
    {"cookie": {"originalMaxAge": 1001}},
    {"cookie": {"originalMaxAge": BIG}},  # year 33658
    {"cookie": {"originalMaxAge": -BIG}},
    {"cookie": {"originalMaxAge": -(10**13)}},  # before 1970
    {"cookie": {"originalMaxAge": 3.6e6}},
    {"s": 'quotes " and \\ backslashes, "a":01, x.5 -inf NaN', "cookie": {"originalMaxAge": 9000}},
    {"s": "é😀\u2028", "cookie": {"originalMaxAge": 9000}},
    {"a": [[[[[[[[[[1]]]]]]]]]], "cookie": {"originalMaxAge": 9000}},
    {"cookie": {"originalMaxAge": 9000}, "d": {"cookie": {"originalMaxAge": 1}}},
]
# sessions whose restarted expiry is no date JS holds (an Invalid Date: expires null)
INVALID_DATES: list[dict[str, Any]] = [
    {"cookie": {"originalMaxAge": 8.64e15}},
    {"cookie": {"originalMaxAge": 10**20}},
]

# JSON texts a lenient reader would take otherwise, and JSON values that are no session
JSON_ODD: list[str] = [
    json.dumps({"cookie": {"originalMaxAge": BIG + 1}}),
    json.dumps({"cookie": {"originalMaxAge": 8.64e15}}),  # an Invalid Date: expires null
    json.dumps({"cookie": {"originalMaxAge": 10**20}}),
    '{"cookie":{"originalMaxAge":1e400}}',  # Infinity
    '{"cookie":{"originalMaxAge":-1e400}}',
    '{"cookie":{"originalMaxAge":-0}}',
    '{"cookie":{"originalMaxAge":1E3}}',
    '{"cookie":{"originalMaxAge":2000.0}}',
    '{"cookie":{"originalMaxAge":123456789012345678901234567890}}',
    '{"cookie":{"originalMaxAge":1000,"originalMaxAge":"x"}}',  # the last one counts
    '{"cookie":{"originalMaxAge":"x","originalMaxAge":5000}}',
    '{"cookie":{"expires":null},"cookie":{"originalMaxAge":7000}}',
    '{ "cookie" : { "originalMaxAge" : 4000 , "expires" : null } }',
    '{\n  "cookie": {"originalMaxAge": 9000}\n}',  # whitespace JSON.stringify never writes
    '{"cookie":{"originalMaxAge":4000},"x":"\\ud83d\\ude00 \\u00e9"}',
    '{"cookie":{"originalMaxAge":4000},"x":1e400}',
    '{"cookie":{"expires":"2030-01-01T00:00:00.000Z"}}',
    '{"cookie":{"expires":"+275760-09-13T00:00:00.000Z"}}',  # the last date JS holds
    '{"cookie":{"expires":"+275760-09-13T00:00:00.001Z"}}',  # past it: Invalid Date
    '{"cookie":{"expires":"garbage"}}',
    '{"cookie":{"expires":12345}}',
    '{"cookie":{"expires":{"$date":1}}}',
    '{"cookie":{"originalMaxAge":9000},"a":' + "[" * 500 + "]" * 500 + "}",
    TOO_DEEP,
    '[{"cookie":{"originalMaxAge":9000}}]',
    "null",
    '"a string"',
    '"{\\"cookie\\":{\\"originalMaxAge\\":1000}}"',
    "[1, 2]",
    "[]",
    "3",
]
# JSON text a JSON column may refuse: an escaped lone surrogate (JSON.parse takes it)
LONE_SURROGATE = '{"cookie":{"originalMaxAge":9000},"x":"\\ud800"}'
# texts JSON.parse refuses, some of which a lenient parser would read
NOT_JSON: list[str] = [
    '{"cookie":{"originalMaxAge":9000},"x":"\x01"}',  # a control character
    '{"cookie":{"originalMaxAge":0x10}}',
    '{"cookie":{"originalMaxAge":01}}',
    '{"cookie":{"originalMaxAge":1.}}',
    '{"cookie":{"originalMaxAge":-.5}}',
    '{"cookie":{"originalMaxAge":-inf}}',
    '{"cookie":{"originalMaxAge":NaN}}',
    '{"cookie":{"originalMaxAge":9000},"x":Infinity}',
    '{"cookie":{"originalMaxAge":9000},"x":nan}',
    '{"cookie":{"originalMaxAge":9000},}',
    '{"cookie":{"originalMaxAge":9000}} x',
    '\ufeff{"cookie":{"originalMaxAge":9000}}',
    "not json",
    "QUJDREVGR0hJSktMTU5PUFFSU1RVVg==",  # looks encrypted
    "{",
    "",
]


class Sync:
    """A store driven from sync code: a blocking one as is, an asyncio one on a loop."""

    def __init__(self, store: Any, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.store = store
        self.loop = loop

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.store, name)
        if self.loop is None:
            return method  # type: ignore[no-any-return]
        loop = self.loop
        return lambda *args: loop.run_until_complete(method(*args))


def outcome(
    call: Callable[..., Any], *args: Any, errors: type[BaseException] = Exception
) -> tuple[str, Any]:
    """("ok", what ``call`` returns) or ("error", the name of the type it raised)."""
    try:
        return "ok", call(*args)
    except errors as exc:
        return "error", type(exc).__name__


def get_then_touch(store: Any, sid: str, now: Callable[[], int]) -> Any:
    """get, then touch with the cookie restarted: what the one step must equal."""
    found = store.get(sid)
    if found is not None:
        store.touch(sid, refreshed(found, now()))
    return found


def first_word(statement: Any) -> str:
    return str(statement.sql.split()[0])


def counted(store: Any, name: Callable[[Any], str] = first_word) -> list[str]:
    """``name`` of each statement a store running flows (PostgreSQL, MySQL) sends from now
    on: its ``_run`` is handed a spy of each flow."""
    sent: list[str] = []
    run = store._run

    def spy(flow: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
        try:
            statement = next(flow)
        except StopIteration as done:
            return done.value
        while True:
            sent.append(name(statement))
            try:
                value = yield statement
            except Exception as exc:
                statement = flow.throw(exc)
            else:
                try:
                    statement = flow.send(value)
                except StopIteration as done:
                    return done.value

    if asyncio.iscoroutinefunction(run):

        async def arun(flow: Any) -> Any:
            return await run(spy(flow))

        store._run = arun
    else:
        store._run = lambda flow: run(spy(flow))
    return sent


def counted_calls(store: Any, name: Callable[[Any], str]) -> list[str]:
    """``name`` of each request a store sending one at a time (Redis, Mongo) sends from now
    on."""
    sent: list[str] = []
    run = store._run

    def counting(request: Any) -> Any:
        sent.append(name(request))
        return run(request)

    store._run = counting
    return sent


@st.composite
def stored_texts(draw: st.DrawFn, infinities: bool = False) -> str:
    """Sessions, and JSON texts around a cookie of any lifetime: what a store may hold.
    ``infinities``: lifetimes json.dumps writes as Infinity, which is no JSON."""
    life = draw(
        st.one_of(
            st.integers(-(10**16), 10**16),
            st.floats(allow_nan=False, allow_infinity=infinities),
            st.sampled_from(["null", "true", '"1"', "[]", "{}"]),
        )
    )
    expires = draw(st.sampled_from(["", ',"expires":null', ',"expires":"2030-01-01T00:00:00Z"']))
    cookie = '{"originalMaxAge":' + (life if isinstance(life, str) else json.dumps(life))
    cookie += expires + "}"
    shape = draw(st.integers(0, 3))
    if shape == 0:
        return dumps(draw(st.one_of(express_sessions, plain_sessions)))
    if shape == 1:
        return '{"cookie":' + cookie + ',"x":' + draw(json_texts()) + "}"
    if shape == 2:
        return '{"cookie":' + cookie + ',"x":' + draw(st.sampled_from(edge_texts)) + "}"
    return '{"cookie":' + draw(json_texts()) + "}"


# lifetimes of the sessions the Node stores write for the comparisons with them (None: a
# browser-session cookie)
NODE_LIFETIMES = (60_000, 1_500_700, 86_400_000, None)


def node_cookie(life: int | None) -> dict[str, Any]:
    """A cookie as express-session wrote it a while ago: ``cookie.expires`` 5 s from now,
    whatever its lifetime (none for a browser-session cookie)."""
    return {
        "originalMaxAge": life,
        "expires": None if life is None else js_iso(from_ms(now_ms() + 5000)),
        "httpOnly": True,
        "path": "/",
    }


def node_touched(node: NodeOracle, text: str) -> str:
    """The session JSON ``text`` a Node store returned, after express-session's touch
    (resetMaxAge, run by the real express-session): what it hands the store's touch. A
    browser-session cookie stays as it is."""
    session = json.loads(text)
    cookie = session["cookie"]
    if cookie.get("originalMaxAge") is not None:
        fields = {k: v for k, v in cookie.items() if k != "expires"}
        cookie = json.loads(node.out("cookie", now=now_ms(), options=tag(fields), touch=True))
    return json.dumps({**session, "cookie": cookie})
