"""TokenSession / AsyncTokenSession: token-session 1.0.0's API and what it stores."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings

from token_session import (
    AsyncTokenSession,
    InvalidArgumentError,
    MemoryStore,
    NewSession,
    SessionNotFoundError,
    TokenSession,
)
from token_session.compat import expires_ms, js_iso, js_iso_ms
from token_session.compat.cookie import now_ms
from token_session.flows import run as run_flow
from token_session.session import destroy_flow, refreshed
from token_session.stores import AsyncMemoryStore
from token_session.stores.base import encode_session

from .conftest import NOW, Clock
from .node import NodeOracle, tag
from .python_ops import answer
from .strategies import plain_sessions, sessions


@pytest.fixture
def store(clock: Clock) -> MemoryStore:
    return MemoryStore(expires=1800, clock=clock)


@pytest.fixture
def tokens(store: MemoryStore, clock: Clock) -> TokenSession:
    return TokenSession(store, clock=clock)


@given(plain_sessions | sessions)
@settings(max_examples=200)
def test_new_and_set_store_what_node_token_session_stores(
    node: NodeOracle, data: dict[str, Any]
) -> None:
    for call in ("new", "set"):
        request = {"op": "tokenSession", "call": call, "sid": "tok", "now": NOW, "data": tag(data)}
        expected = node.ask(**request)
        assert expected["ok"], expected
        got = answer(request)
        assert got["out"]["json"] == expected["out"]["json"]


def test_new_returns_a_token_and_the_stored_data(tokens: TokenSession, store: MemoryStore) -> None:
    created = tokens.new({"name": "jhon", "count": 0})
    assert isinstance(created, NewSession)
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", created.sid)
    assert created.session_id == created.sid
    assert created.data == {"name": "jhon", "count": 0, "cookie": {"maxAge": 0}}
    assert store.raw(created.sid) == (
        '{"name":"jhon","count":0,"cookie":{"maxAge":0}}',
        NOW + 1800 * 1000,
    )


def test_new_does_not_mutate_the_callers_data(tokens: TokenSession) -> None:
    data = {"a": 1}
    tokens.new(data)
    tokens.new_with_ttl(data, 60)
    assert data == {"a": 1}


def test_a_read_only_mapping_is_stored_as_the_dict_it_holds(
    tokens: TokenSession, store: MemoryStore
) -> None:
    created = tokens.new(MappingProxyType({"name": "jhon"}))
    assert store.raw(created.sid) == ('{"name":"jhon","cookie":{"maxAge":0}}', NOW + 1800 * 1000)
    tokens.set(created.sid, MappingProxyType({"name": "ana", "cookie": {"maxAge": 0}}))
    assert tokens.get(created.sid) == {"name": "ana", "cookie": {"maxAge": 0}}
    store.set("direct", MappingProxyType({"n": 1}))
    store.touch("direct", MappingProxyType({"n": 1}))
    assert store.raw("direct") == ('{"n":1}', NOW + 1800 * 1000)
    for not_a_mapping in (["name", "jhon"], "name", None):
        with pytest.raises(InvalidArgumentError):
            tokens.set(created.sid, not_a_mapping)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            store.set("direct", not_a_mapping)  # type: ignore[arg-type]


def test_default_store_is_token_sessions_memory_store() -> None:
    with TokenSession() as tokens:
        assert isinstance(tokens.store, MemoryStore)
        assert (tokens.store.expires, tokens.store.checkperiod) == (1800, 60)
        assert tokens.auto_touch is True


def test_genid_is_used_and_checked() -> None:
    tokens = TokenSession(genid=lambda: "fixed-id")
    assert tokens.new({}).sid == "fixed-id"
    with pytest.raises(InvalidArgumentError):
        TokenSession(genid=lambda: 42).new({})  # type: ignore[arg-type, return-value]
    with pytest.raises(InvalidArgumentError):
        TokenSession(genid="nope")  # type: ignore[arg-type]


def test_get_touches_when_auto_touch(
    tokens: TokenSession, store: MemoryStore, clock: Clock
) -> None:
    sid = tokens.new({"n": 1}).sid
    clock.now += 60_000
    assert tokens.get(sid) == {"n": 1, "cookie": {"maxAge": 0}}
    assert store.raw(sid)[1] == clock.now + 1800 * 1000  # type: ignore[index]


def test_get_without_auto_touch_leaves_expiry(store: MemoryStore, clock: Clock) -> None:
    tokens = TokenSession(store, auto_touch=False, clock=clock)
    sid = tokens.new({"n": 1}).sid
    clock.now += 60_000
    assert tokens.get(sid) == {"n": 1, "cookie": {"maxAge": 0}}
    assert store.raw(sid)[1] == NOW + 1800 * 1000  # type: ignore[index]
    tokens.get_and_touch(sid)
    assert store.raw(sid)[1] == clock.now + 1800 * 1000  # type: ignore[index]
    assert tokens.getNtouch == tokens.get_and_touch


def test_missing_session_reads_as_none_and_is_not_created(tokens: TokenSession) -> None:
    assert tokens.get("missing") is None
    assert tokens.get_and_touch("missing") is None
    assert tokens.touch("missing") is False
    assert tokens.store.length() == 0


def test_new_with_ttl_writes_the_ttl_into_the_cookie(
    tokens: TokenSession, store: MemoryStore, clock: Clock
) -> None:
    created = tokens.new_with_ttl({"code": "493817"}, 120)
    expected_expiry = NOW + 120_000
    assert created.data == {
        "code": "493817",
        "cookie": {
            "originalMaxAge": 120_000,
            "expires": js_iso(datetime.fromtimestamp(expected_expiry / 1000, timezone.utc)),
            "httpOnly": True,
            "path": "/",
        },
    }
    assert store.raw(created.sid)[1] == expected_expiry  # type: ignore[index]
    # a touch extends it by its own TTL, not by the store's default
    clock.now += 100_000
    session = tokens.get(created.sid)
    assert session is not None
    assert expires_ms(session) == clock.now + 120_000
    assert store.raw(created.sid)[1] == clock.now + 120_000  # type: ignore[index]
    clock.now += 120_000
    assert tokens.get(created.sid) is None


def test_set_with_ttl_keeps_other_cookie_fields(tokens: TokenSession, store: MemoryStore) -> None:
    sid = tokens.new({"n": 1}).sid
    tokens.set_with_ttl(sid, {"n": 2, "cookie": {"maxAge": 0, "path": "/x"}}, 30)
    session = tokens.get(sid)
    assert session is not None
    assert session["cookie"]["path"] == "/x"
    assert session["cookie"]["originalMaxAge"] == 30_000
    assert store.raw(sid)[1] == NOW + 30_000  # type: ignore[index]
    assert tokens.setWttl == tokens.set_with_ttl
    assert tokens.newWttl == tokens.new_with_ttl


def test_per_session_ttls_do_not_share_state_across_threads(store: MemoryStore) -> None:
    tokens = TokenSession(store)
    made: list[tuple[int, str]] = []
    lock = threading.Lock()

    def work(ttl: int) -> None:
        for _ in range(50):
            sid = tokens.new_with_ttl({"ttl": ttl}, ttl).sid
            with lock:
                made.append((ttl, sid))

    with ThreadPoolExecutor(3) as pool:
        for done in [pool.submit(work, ttl) for ttl in (60, 600, 6000)]:
            done.result()  # an exception in a worker fails the test
    for ttl, sid in made:
        session = store.get(sid)
        assert session is not None
        assert session["cookie"]["originalMaxAge"] == ttl * 1000


def test_auto_touch_never_undoes_a_concurrent_set(store: MemoryStore) -> None:
    tokens = TokenSession(store)
    sid = tokens.new({"n": -1}).sid
    stop = threading.Event()

    def read() -> int:
        reads = 0
        while not stop.is_set():
            tokens.get(sid)  # reads, then touches
            reads += 1
        return reads

    with ThreadPoolExecutor(2) as pool:
        readers = [pool.submit(read) for _ in range(2)]
        for n in range(2000):
            tokens.set(sid, {"n": n})
            assert store.get(sid) is not None
        stop.set()
        assert all(reader.result() > 0 for reader in readers)
    assert store.get(sid) == {"n": 1999, "cookie": {"maxAge": 0}}


def test_regenerate_moves_the_session_to_a_new_token(tokens: TokenSession) -> None:
    sid = tokens.new({"user": "ada"}).sid
    new_sid = tokens.regenerate(sid)
    assert new_sid != sid
    assert tokens.get(sid) is None
    assert tokens.get(new_sid) == {"user": "ada", "cookie": {"maxAge": 0}}
    other = tokens.regenerate(new_sid, {"user": "bob"})
    assert tokens.get(other) == {"user": "bob", "cookie": {"maxAge": 0}}
    with pytest.raises(SessionNotFoundError):
        tokens.regenerate("missing")


def test_destroy(tokens: TokenSession) -> None:
    sid = tokens.new({}).sid
    tokens.destroy(sid)
    assert tokens.get(sid) is None


@pytest.mark.parametrize("sid", [None, 7, b"tok", {"$gt": ""}, "", "x" * 300])
def test_bad_sid_raises_before_any_write(tokens: TokenSession, sid: Any) -> None:
    for call in (
        lambda: tokens.get(sid),
        lambda: tokens.set(sid, {}),
        lambda: tokens.touch(sid),
        lambda: tokens.destroy(sid),
        lambda: tokens.set_with_ttl(sid, {}, 5),
    ):
        with pytest.raises(InvalidArgumentError):
            call()
    assert tokens.store.length() == 0


@pytest.mark.parametrize("data", [None, [], "x", {"blob": b"\x00"}, {"s": {1}}, {"o": object()}])
def test_bad_data_raises_before_any_write(tokens: TokenSession, data: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        tokens.new(data)
    with pytest.raises(InvalidArgumentError):
        tokens.new_with_ttl(data, 10)
    assert tokens.store.length() == 0


@pytest.mark.parametrize("ttl", [0, -5, float("nan"), float("inf"), "60", True])
def test_bad_ttl_is_rejected(tokens: TokenSession, ttl: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        tokens.new_with_ttl({}, ttl)


async def test_async_token_session_lifecycle(clock: Clock) -> None:
    store = AsyncMemoryStore(clock=clock)
    async with AsyncTokenSession(store, clock=clock) as tokens:
        created = await tokens.new({"n": 1})
        assert await tokens.get(created.sid) == {"n": 1, "cookie": {"maxAge": 0}}
        await tokens.set(created.sid, {"n": 2})
        assert await tokens.get_and_touch(created.sid) == {"n": 2, "cookie": {"maxAge": 0}}
        assert await tokens.touch(created.sid) is True
        short = await tokens.new_with_ttl({"code": 1}, 5)
        assert store.sync.raw(short.sid)[1] == NOW + 5000  # type: ignore[index]
        await tokens.set_with_ttl(short.sid, {"code": 2}, 50)
        assert store.sync.raw(short.sid)[1] == NOW + 50_000  # type: ignore[index]
        new_sid = await tokens.regenerate(created.sid)
        assert await tokens.get(created.sid) is None
        assert await tokens.get(new_sid) == {"n": 2, "cookie": {"maxAge": 0}}
        await tokens.destroy(new_sid)
        assert await tokens.get(new_sid) is None
        with pytest.raises(InvalidArgumentError):
            await tokens.get(None)  # type: ignore[arg-type]


# -- what Node accepts, Python reads: expiries past year 9999 and past JS's dates ----------

FAR = 10**15  # originalMaxAge 1e15: expires in year 33,7xx, a valid JS date
BEYOND = 8_640_000_000_000_000 - NOW + 1  # now + it is past JS's last date


def _node_date_json(node: NodeOracle, ms: int) -> str | None:
    """``JSON.parse(JSON.stringify(new Date(ms)))`` by Node: the text, or None for null."""
    text: str | None = node.out("date", ms=str(ms))[1]
    return text


def _stored_with_lifetime(store: MemoryStore, sid: str, lifetime: int) -> None:
    cookie = {"originalMaxAge": lifetime, "expires": js_iso_ms(NOW + 60_000)}
    store.set(sid, {"user": "ada", "cookie": cookie})


@pytest.mark.parametrize("lifetime", [FAR, BEYOND, -FAR])
def test_touching_a_session_far_in_time_writes_what_node_writes(
    node: NodeOracle, tokens: TokenSession, store: MemoryStore, clock: Clock, lifetime: int
) -> None:
    clock.now += 5_000
    expected = _node_date_json(node, clock.now + lifetime)
    if lifetime == BEYOND:
        assert expected is None  # an Invalid Date: JSON.stringify writes null
    refreshed = {"user": "ada", "cookie": {"originalMaxAge": lifetime, "expires": expected}}
    # the store's expiry: the cookie's, or its default TTL for expires null
    expiry = clock.now + (lifetime if expected is not None else 1800 * 1000)
    live = expiry > clock.now
    for name, call in (
        ("get", tokens.get),
        ("get_and_touch", tokens.get_and_touch),
        ("touch", tokens.touch),
    ):
        _stored_with_lifetime(store, name, lifetime)
        stored_text = store.raw(name)[0]  # type: ignore[index]
        assert call(name) == (True if name == "touch" else refreshed)
        # a touch moves the expiry only; the stored text stays as it was
        assert store.raw(name) == ((stored_text, expiry) if live else None)
    _stored_with_lifetime(store, "old", lifetime)
    new_sid = tokens.regenerate("old")
    assert store.get("old") is None
    assert store.get(new_sid) == (refreshed if live else None)


def test_a_lifetime_past_any_float_touches_to_an_invalid_date() -> None:
    # 1e400 written out in digits: Infinity to JS, so new Date(now + it) is invalid
    touched = refreshed({"cookie": {"originalMaxAge": 10**400}}, NOW)
    assert touched["cookie"]["expires"] is None


async def test_async_touch_of_a_session_far_in_time(clock: Clock) -> None:
    store = AsyncMemoryStore(clock=clock)
    _stored_with_lifetime(store.sync, "far", FAR)
    tokens = AsyncTokenSession(store, clock=clock)
    session = await tokens.get("far")
    assert session is not None
    assert session["cookie"]["expires"] == js_iso_ms(NOW + FAR)
    assert store.sync.raw("far")[1] == NOW + FAR  # type: ignore[index]


@pytest.mark.parametrize("cookie", [None, {"path": "/"}])
def test_a_ttl_far_in_time_is_written_as_node_writes_the_date(
    node: NodeOracle, tokens: TokenSession, store: MemoryStore, cookie: Any
) -> None:
    data = {"code": 1} if cookie is None else {"code": 1, "cookie": cookie}
    created = tokens.new_with_ttl(data, 1e12)
    assert created.data["cookie"]["originalMaxAge"] == FAR
    assert created.data["cookie"]["expires"] == _node_date_json(node, NOW + FAR)
    assert store.get(created.sid) == created.data
    tokens.set_with_ttl(created.sid, data, 1e12)
    assert store.get(created.sid) == created.data


@pytest.mark.parametrize(
    "ttl", [1e308, 8.64e12, (8_640_000_000_000_000 - NOW) / 1000 + 0.001, 10**400]
)
def test_a_ttl_past_js_dates_is_refused(tokens: TokenSession, ttl: float) -> None:
    for data in ({}, {"cookie": {"path": "/"}}):
        with pytest.raises(InvalidArgumentError, match="past the last date"):
            tokens.new_with_ttl(data, ttl)
        with pytest.raises(InvalidArgumentError, match="past the last date"):
            tokens.set_with_ttl("tok", data, ttl)
    assert tokens.store.length() == 0
    last = (8_640_000_000_000_000 - NOW) / 1000  # the last TTL that stays within
    assert tokens.new_with_ttl({}, last).data["cookie"]["expires"] == "+275760-09-13T00:00:00.000Z"


def _deep(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [1_000, 20_000])
def test_sessions_nested_deeper_than_python_writes_are_refused(
    tokens: TokenSession, store: MemoryStore, depth: int
) -> None:
    data = {"deep": _deep(depth)}
    with pytest.raises(InvalidArgumentError, match="nested too deeply"):
        encode_session(data)
    with pytest.raises(InvalidArgumentError, match="nested too deeply"):
        store.set("tok", data)
    with pytest.raises(InvalidArgumentError, match="nested too deeply"):
        tokens.new(data)
    with pytest.raises(InvalidArgumentError, match="nested too deeply"):
        tokens.set("tok", data)
    with pytest.raises(InvalidArgumentError, match="nested too deeply"):
        tokens.new_with_ttl(data, 60)
    assert store.length() == 0
    shallower = {"deep": _deep(500)}
    tokens.set("tok", shallower)
    assert tokens.get("tok") == {**shallower, "cookie": {"maxAge": 0}}


class StoreOfItsOwn:
    """A user's store: the protocol's methods, without get_and_touch."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name == "get_and_touch":
            raise AttributeError(name)
        self.calls.append(name)
        return getattr(self.inner, name)


class Counting(MemoryStore):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.calls: list[str] = []

    def get(self, sid: str) -> Any:
        self.calls.append("get")
        return super().get(sid)

    def touch(self, sid: str, session: Any) -> None:
        self.calls.append("touch")
        super().touch(sid, session)

    def get_and_touch(self, sid: str) -> Any:
        self.calls.append("get_and_touch")
        return super().get_and_touch(sid)


@pytest.mark.parametrize("kind", ["one step", "own store", "own clock"])
def test_get_touches_in_one_step_where_the_store_can(kind: str) -> None:
    """The store's get_and_touch where it has one and runs on the session's clock; else get
    then touch, with the same result."""
    if kind == "own store":
        inner = Counting(expires=1800)
        store: Any = StoreOfItsOwn(inner)
        tokens = TokenSession(store)
    elif kind == "own clock":
        store = inner = Counting(expires=1800)
        tokens = TokenSession(store, clock=lambda: now_ms() + 0)
    else:
        store = inner = Counting(expires=1800)
        tokens = TokenSession(store)
    sid = tokens.new_with_ttl({"n": 1}, 60).sid
    inner._entries[sid] = (inner._entries[sid][0], now_ms() + 5_000)
    inner.calls.clear()
    before = now_ms()
    found = tokens.get(sid)
    took = now_ms() - before
    assert found is not None and found["n"] == 1
    assert js_iso(datetime.now(timezone.utc)) < found["cookie"]["expires"]
    assert inner.calls == (["get_and_touch"] if kind == "one step" else ["get", "touch"])
    expiry = store.raw(sid)[1]
    assert now_ms() + 59_000 < expiry <= now_ms() + 60_000
    # the store's now and the session's, both read during the get
    assert abs(expires_ms(found) - expiry) <= took
    assert tokens.get("missing") is None
    tokens.auto_touch = False
    inner.calls.clear()
    tokens.get(sid)
    assert inner.calls == ["get"]


async def test_async_get_touches_in_one_step() -> None:
    store = AsyncMemoryStore(expires=1800)
    tokens = AsyncTokenSession(store)
    sid = (await tokens.new({"n": 1})).sid
    store.sync._entries[sid] = (store.sync._entries[sid][0], now_ms() + 5_000)
    assert await tokens.get(sid) == {"n": 1, "cookie": {"maxAge": 0}}
    expiry = store.sync.raw(sid)[1]  # type: ignore[index]
    assert expiry is not None and expiry > now_ms() + 1_700_000


def test_a_store_without_a_method_still_says_so() -> None:
    with pytest.raises(AttributeError, match="destroy"):
        run_flow(object(), destroy_flow("sid"))
