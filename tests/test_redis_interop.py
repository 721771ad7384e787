"""Python and the real connect-redis (9.0.0, 7.1.1) on one Redis, at the same time."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.cluster import RedisCluster

from token_session import TokenSession
from token_session.compat import Cookie, dumps, loads
from token_session.stores import RedisStore

from .hammer import hammer_with_node
from .node import NodeStore, NodeStoreDriver
from .redis_servers import prefixed_client, redis_cluster
from .strategies import express_sessions, plain_sessions

token_sessions = plain_sessions.map(lambda data: {**data, "cookie": {"maxAge": 0}})


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"it-{uuid.uuid4().hex[:8]}:"


@pytest.fixture(scope="module")
def client(redis_url: str, prefix: str) -> Iterator[redis.Redis]:
    with prefixed_client(redis_url, prefix) as opened:
        yield opened


@pytest.fixture(scope="module")
def py_store(client: redis.Redis, prefix: str) -> RedisStore:
    return RedisStore(client, prefix=prefix)


@pytest.fixture(scope="module", params=["connect-redis-9", "connect-redis-7"])
def node_store(
    request: pytest.FixtureRequest, node_stores: NodeStoreDriver, redis_url: str, prefix: str
) -> Iterator[NodeStore]:
    store = node_stores.open(request.param, url=redis_url, prefix=prefix)
    yield store
    store.close()


def expires_within(
    client: redis.Redis, key: str, seconds: float, since: float, rounding: int = 1000
) -> int:
    """The key's PTTL, checked to be what ``EX seconds`` leaves after the time since
    ``since`` (a time.monotonic() taken before the expiry's clock started), give or take
    ``rounding`` ms (connect-redis rounds a cookie's expiry to whole seconds): exact,
    whatever time the test took."""
    pttl = int(client.pttl(key))
    waited = (time.monotonic() - since) * 1000
    low = seconds * 1000 - waited - rounding - 2  # Redis counts whole milliseconds
    assert low <= pttl <= math.ceil(seconds) * 1000, (pttl, waited)
    return pttl


def fresh_sid() -> str:
    return uuid.uuid4().hex


@given(session=st.one_of(express_sessions, token_sessions))
@settings(max_examples=60)
def test_python_writes_the_bytes_and_ttl_node_writes(
    node_store: NodeStore,
    py_store: RedisStore,
    client: redis.Redis,
    prefix: str,
    session: dict[str, Any],
) -> None:
    text = dumps(session)
    shape = "plain" if session["cookie"] == {"maxAge": 0} else "express"
    node_sid, py_sid = fresh_sid(), fresh_sid()
    since = time.monotonic()
    node_store.set(node_sid, text, shape=shape)
    py_store.set(py_sid, loads(text))
    assert client.get(prefix + py_sid) == client.get(prefix + node_sid)
    # whole seconds each, written one after the other
    gap = 1000 + (time.monotonic() - since) * 1000
    assert abs(client.pttl(prefix + py_sid) - client.pttl(prefix + node_sid)) <= gap


@given(session=express_sessions)
@settings(max_examples=40)
def test_each_side_reads_what_the_other_wrote(
    node_store: NodeStore,
    py_store: RedisStore,
    client: redis.Redis,
    prefix: str,
    session: dict[str, Any],
) -> None:
    text = dumps(session)
    node_sid, py_sid = fresh_sid(), fresh_sid()
    node_store.set(node_sid, text)
    assert py_store.get(node_sid) == loads(text)
    py_store.set(py_sid, loads(text))
    assert node_store.get(py_sid) == client.get(prefix + py_sid).decode()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "stored",
    [b'{"a":"\xff\xfe"}', b'{"\xc3":1,"b":"caf\xc3\xa9 \xed\xa0\x80"}', b'{"a":"\xf0\x9f\x98"}'],
)
def test_bytes_that_are_not_utf8_read_as_node_redis_reads_them(
    node_store: NodeStore, py_store: RedisStore, client: redis.Redis, prefix: str, stored: bytes
) -> None:
    sid = fresh_sid()
    client.set(prefix + sid, stored)
    node_text = node_store.get(sid)
    assert node_text is not None
    assert py_store.get(sid) == loads(node_text)  # U+FFFD where the bytes are not UTF-8


@pytest.mark.parametrize("lifetime_ms", [5_000, 90_000, 3_600_000])
def test_touch_from_either_side_gives_the_same_ttl(
    node_store: NodeStore, py_store: RedisStore, client: redis.Redis, prefix: str, lifetime_ms: int
) -> None:
    sid = fresh_sid()
    py_store.set(sid, {"n": 1})
    since = time.monotonic()
    later = Cookie(max_age=lifetime_ms).to_json()
    node_store.touch(sid, dumps({"n": 1, "cookie": later}))
    node_pttl = expires_within(client, prefix + sid, lifetime_ms / 1000, since)
    py_store.touch(sid, {"n": 1, "cookie": later})
    py_pttl = expires_within(client, prefix + sid, lifetime_ms / 1000, since)
    assert abs(py_pttl - node_pttl) <= 1000 + (time.monotonic() - since) * 1000
    assert client.get(prefix + sid) == b'{"n":1}'


def test_destroy_from_either_side(node_store: NodeStore, py_store: RedisStore) -> None:
    a, b = fresh_sid(), fresh_sid()
    py_store.set(a, {"x": 1})
    node_store.set(b, dumps({"x": 2}), shape="plain")
    node_store.destroy(a)
    py_store.destroy(b)
    assert py_store.get(a) is None and node_store.get(b) is None


def test_token_session_tokens_are_served_by_both(
    node_store: NodeStore, py_store: RedisStore, client: redis.Redis, prefix: str
) -> None:
    tokens = TokenSession(py_store)
    data = {"user": "ada", "roles": ["admin"], "n": 1.5, "when": "2026-11-27"}
    # Node token-session makes a token, Python serves it
    created = node_store.token_session("new", data=dumps(data))
    node_sid = created["sessionId"]
    assert tokens.get(node_sid) == {**data, "cookie": {"maxAge": 0}}
    # Python makes a token, Node token-session serves it; both stored the same bytes
    py_sid = tokens.new(data).sid
    assert loads(node_store.token_session("get", sid=py_sid)) == {**data, "cookie": {"maxAge": 0}}
    assert client.get(prefix + py_sid) == client.get(prefix + node_sid)
    # updates from either side are seen by the other
    tokens.set(node_sid, {"user": "bob"})
    assert loads(node_store.token_session("get", sid=node_sid)) == {
        "user": "bob",
        "cookie": {"maxAge": 0},
    }
    node_store.token_session("destroy", sid=py_sid)
    assert tokens.get(py_sid) is None


def test_per_session_ttl_holds_when_node_touches_it(
    node_store: NodeStore, py_store: RedisStore, client: redis.Redis, prefix: str
) -> None:
    tokens = TokenSession(py_store)
    since = time.monotonic()
    sid = tokens.new_with_ttl({"code": "493817"}, 120).sid
    expires_within(client, prefix + sid, 120, since, rounding=0)
    # Node token-session's get touches with the cookie it read: the expiry the cookie says
    node_store.token_session("get", sid=sid)
    expires_within(client, prefix + sid, 120, since)
    time.sleep(1.1)
    since = time.monotonic()
    tokens.get(sid)  # a Python touch extends it by its own TTL again
    expires_within(client, prefix + sid, 120, since, rounding=0)


def test_connect_redis_7_and_9_and_python_write_the_same_bytes(
    node_stores: NodeStoreDriver,
    py_store: RedisStore,
    redis_url: str,
    client: redis.Redis,
    prefix: str,
) -> None:
    v9 = node_stores.open("connect-redis-9", url=redis_url, prefix=prefix + "v9:")
    v7 = node_stores.open("connect-redis-7", url=redis_url, prefix=prefix + "v7:")
    session = {
        "cookie": Cookie(max_age=60_000).to_json(),
        "cart": [{"sku": "A", "qty": 2}],
        "z": None,
    }
    try:
        v9.set("s", dumps(session))
        v7.set("s", dumps(session))
        py_store.set("v:s", session)
        assert (
            client.get(prefix + "v9:s") == client.get(prefix + "v7:s") == client.get(prefix + "v:s")
        )
    finally:
        v9.close()
        v7.close()


def test_cluster_interop(node_stores: NodeStoreDriver) -> None:
    with redis_cluster() as ports:
        client = RedisCluster(host="127.0.0.1", port=ports[0])
        py_store = RedisStore(client, prefix="ci:")
        node = node_stores.open(
            "connect-redis-9", cluster=[f"redis://127.0.0.1:{p}" for p in ports], prefix="ci:"
        )
        try:
            for i in range(30):
                py_store.set(f"p{i}", {"from": "python", "i": i})
                node.set(f"n{i}", dumps({"from": "node", "i": i}), shape="plain")
            assert node.call("length") == 60 == py_store.length()
            assert sorted(node.call("ids")) == sorted(py_store.ids())
            assert py_store.get("n7") == {"from": "node", "i": 7}
            assert loads(node.get("p7") or "null") == {"from": "python", "i": 7}
        finally:
            node.close()
            client.close()


def test_node_and_python_hammering_the_same_ids(
    node_stores: NodeStoreDriver, redis_url: str, client: redis.Redis, prefix: str
) -> None:
    sids = [f"h{i}" for i in range(8)]
    node = node_stores.open("connect-redis-9", url=redis_url, prefix=prefix)
    store = RedisStore(redis.Redis.from_url(redis_url), prefix=prefix)
    stats, counts = hammer_with_node(
        node, store, sids, ("set", "touch", "get", "destroy"), ms=3000, in_flight=8
    )
    assert stats["corrupt"] == []
    assert stats["set"] > 100 and counts["set"] > 100 and counts["get"] > 100
    for sid in sids:  # every value left is whole, from one writer or the other
        session = store.get(sid)
        assert session is None or session["writer"] in ("node", "python")
    # destroyed, then touched from both sides: nothing comes back
    for sid in sids:
        store.destroy(sid)
        node.touch(sid, dumps({"cookie": Cookie(max_age=60_000).to_json()}))
        store.touch(sid, {"cookie": Cookie(max_age=60_000).to_json()})
        assert client.exists(prefix + sid) == 0
    node.close()
