"""get_and_touch on Redis: one script doing what get, then touch with the cookie restarted,
do in two commands: the same answer, the same expiry, the same stored bytes, over sessions
of every shape and values that are none; one command when the expiry is the one expected;
on every way the stores reach Redis, a cluster included, a server that refuses scripts,
and against the real connect-redis."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
from hypothesis import HealthCheck, given, settings
from redis.cluster import RedisCluster

from token_session import BackendUnavailableError, TokenSession, TokenSessionError
from token_session.compat import dumps, loads
from token_session.compat.cookie import now_ms
from token_session.stores import AsyncRedisStore, RedisStore
from token_session.stores.redis.senders import ConnectionPipeline
from token_session.stores.redis.touching import SHA

from . import get_and_touch_cases as cases
from .get_and_touch_cases import counted_calls, get_then_touch, node_touched, stored_texts
from .node import NodeOracle, NodeStoreDriver
from .redis_servers import lone_redis, prefixed_client, redis_cluster

SESSIONS = cases.SESSIONS
# stored values of the shapes a lenient parser would read otherwise, and values that are no
# session (the two steps fail, or find none: nothing is touched); and Redis's own
ODD: list[str | bytes] = [
    *cases.JSON_ODD,
    *(dumps(session) for session in cases.INVALID_DATES),
    cases.LONE_SURROGATE,  # cjson refuses it
    *cases.NOT_JSON,
    b'{"cookie":{"originalMaxAge":9000},"x":"\xff\xfe"}',  # not UTF-8: U+FFFD for the client
    '{"cookie":{"originalMaxAge":9000},"a":' + "[" * 1100 + "]" * 1100 + "}",  # past cjson's
]


class Sync(cases.Sync):
    """:class:`.get_and_touch_cases.Sync`, knowing whether the client decodes replies
    (get+touch keeps to two commands there)."""

    def __init__(
        self, store: Any, loop: asyncio.AbstractEventLoop | None = None, decoded: bool = False
    ) -> None:
        super().__init__(store, loop)
        self.decoded = decoded


def outcome(call: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    return cases.outcome(call, *args, errors=TokenSessionError)


def counted(store: Any) -> list[str]:
    """The names of the commands ``store`` sends from now on."""
    return counted_calls(store, lambda command: command[0])


def assert_same(client: Any, store: Sync, prefix: str, raw: str | bytes) -> tuple[str, Any]:
    """One step on one copy of ``raw``, two on another: same answer, expiry, bytes."""
    one, two = uuid.uuid4().hex, uuid.uuid4().hex
    for sid in (one, two):
        client.set(prefix + sid, raw, ex=100)
    started = time.monotonic()
    first = outcome(store.get_and_touch, one)
    second = outcome(get_then_touch, store, two, now_ms)
    assert first == second
    pttls = [client.pttl(prefix + sid) for sid in (one, two)]
    # whole seconds may round apart by one, plus the milliseconds between the two touches
    slack = 1000 + math.ceil((time.monotonic() - started) * 1000)
    if -1 in pttls:
        assert pttls == [-1, -1]  # both kept without expiry
    else:  # gone counts as 0 ms left: a touch to within a second of now may delete
        assert abs(max(pttls[0], 0) - max(pttls[1], 0)) <= slack, pttls
    want = raw.encode() if isinstance(raw, str) else raw
    for stored in (client.get(prefix + sid) for sid in (one, two)):
        assert stored in (None, want)  # the bytes as they were, or gone
    return first


@pytest.fixture
def prefix() -> str:
    return f"gt-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def client(redis_url: str, prefix: str) -> Iterator[redis.Redis]:
    with prefixed_client(redis_url, prefix) as opened:
        yield opened


def through_redis_py(store: AsyncRedisStore) -> AsyncRedisStore:
    store._lean = None
    pool = store.client.connection_pool
    store._run = ConnectionPipeline(pool, store.timeout, store._errors)
    return store


WAYS = ["held", "client-decoded", "lean", "no-pipeline", "redis-py-connection"]


@pytest.fixture(params=WAYS)
def store(request: pytest.FixtureRequest, redis_url: str, prefix: str) -> Iterator[Sync]:
    """The store on each way to Redis: the blocking store's held connection and a client
    that decodes replies; the asyncio store's lean connection, its client without
    pipelining, and redis-py's connection."""
    way = request.param
    if way in ("held", "client-decoded"):
        client = redis.Redis.from_url(redis_url, decode_responses=way == "client-decoded")
        blocking = RedisStore(client, prefix=prefix, ttl=300)
        yield Sync(blocking, decoded=way == "client-decoded")
        blocking.close()
        client.close()
        return
    loop = asyncio.new_event_loop()
    aclient = redis.asyncio.Redis.from_url(redis_url)
    store = AsyncRedisStore(aclient, prefix=prefix, ttl=300, auto_pipeline=way != "no-pipeline")
    if way == "redis-py-connection":
        through_redis_py(store)
    elif way == "lean":
        assert store._lean is not None
    yield Sync(store, loop)
    loop.run_until_complete(store.close())
    loop.run_until_complete(aclient.aclose())
    loop.close()


@pytest.mark.parametrize("session", SESSIONS, ids=range(len(SESSIONS)))
def test_one_step_is_get_then_touch(
    client: redis.Redis, store: Sync, prefix: str, session: dict[str, Any]
) -> None:
    kind, value = assert_same(client, store, prefix, dumps(session))
    assert (kind, value) == ("ok", loads(dumps(session)))
    assert store.store._get_and_touch.scripted is not store.decoded


@pytest.mark.parametrize("raw", ODD, ids=range(len(ODD)))
def test_one_step_is_get_then_touch_where_the_client_touches(
    client: redis.Redis, store: Sync, prefix: str, raw: str | bytes
) -> None:
    assert_same(client, store, prefix, raw)
    assert store.store._get_and_touch.scripted is not store.decoded


def test_one_command_while_the_expiry_is_the_one_expected(client: redis.Redis, prefix: str) -> None:
    store = RedisStore(client, prefix=prefix, ttl=300)
    sent = counted(store)
    lives = (None, None, 60_000, 60_000, 60_000, 1500.5, 60_000, None)
    commands = (1, 1, 2, 1, 1, 2, 2, 2)  # a second one (EXPIRE) when the expiry changes
    for life, count in zip(lives, commands, strict=True):
        cookie = {"path": "/"} if life is None else {"originalMaxAge": life}
        store.set("s", {"cookie": cookie})
        sent.clear()
        store.get_and_touch("s")
        expected = 300_000 if life is None else math.ceil(life / 1000) * 1000
        assert expected - 1500 < client.pttl(prefix + "s") <= expected
        assert sent == ["EVALSHA", "EXPIRE"][:count]
    sent.clear()
    for _ in range(3):
        store.get_and_touch("s")
    assert sent == ["EVALSHA"] * 3


def test_a_missing_session_is_none_and_stays_missing(client: redis.Redis, store: Sync) -> None:
    assert store.get_and_touch("nothing-here") is None
    assert client.exists(store.store.codec.key("nothing-here")) == 0


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=stored_texts(infinities=True))
def test_one_step_is_get_then_touch_for_any_value(
    client: redis.Redis, prefix: str, raw: str
) -> None:
    with RedisStore(client, prefix=prefix) as store:  # lone surrogates as CESU bytes
        assert_same(client, Sync(store), prefix, raw.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize(
    "options",
    [
        {"disable_touch": True},
        {"disable_ttl": True},
        {"ttl": lambda session: 77},
        {"ttl": 100.7},
        {"ttl": -5},
        {"ttl": 10**13},
        {"ttl": lambda session: 10**17},  # past EXPIRE's range: touch fails, nothing moves
        {"serializer": json},
    ],
    ids=[
        "disable_touch",
        "disable_ttl",
        "ttl-function",
        "ttl-float",
        "ttl-negative",
        "ttl-huge",
        "ttl-function-huge",
        "serializer",
    ],
)
def test_store_options_hold(client: redis.Redis, prefix: str, options: dict[str, Any]) -> None:
    with RedisStore(client, prefix=prefix, **options) as store:
        for session in SESSIONS[:4]:
            assert_same(client, Sync(store), prefix, dumps(session))
        assert store._get_and_touch.scripted is not any(
            options.get(name) for name in ("disable_touch", "disable_ttl")
        )


def test_a_flushed_script_is_sent_again(client: redis.Redis, store: Sync, prefix: str) -> None:
    session = SESSIONS[0]
    client.script_flush()
    assert assert_same(client, store, prefix, dumps(session))[0] == "ok"
    assert store.store._get_and_touch.scripted is not store.decoded
    assert client.script_exists(SHA) == [not store.decoded]


@pytest.mark.parametrize("way", ["blocking", "lean", "no-pipeline"])
def test_a_server_that_refuses_scripts(way: str, caplog: pytest.LogCaptureFixture) -> None:
    """An ACL without EVAL and EVALSHA: two commands from the first refusal on, said once."""
    with lone_redis() as server:
        admin = redis.Redis(port=server.port)
        admin.acl_setuser(
            "app", enabled=True, nopass=True, keys=["*"], commands=["+@all", "-eval", "-evalsha"]
        )
        url = f"redis://app@127.0.0.1:{server.port}/0"
        if way == "blocking":
            sync = Sync(RedisStore.from_url(url, prefix="p:"))
        else:
            loop = asyncio.new_event_loop()
            options = {"auto_pipeline": way == "lean"}
            sync = Sync(loop.run_until_complete(_opened(url, options)), loop)
        with caplog.at_level(logging.WARNING):
            for session in SESSIONS[:3]:
                assert assert_same(admin, sync, "p:", dumps(session))[0] == "ok"
        assert not sync.store._get_and_touch.scripted
        refusals = [r for r in caplog.records if "refused its script" in r.getMessage()]
        assert len(refusals) == 1
        sync.close()
        admin.close()


async def _opened(url: str, options: dict[str, Any]) -> AsyncRedisStore:
    return AsyncRedisStore.from_url(url, prefix="p:", **options)


def test_a_wrong_type_is_the_get_error_and_scripts_stay(client: redis.Redis, prefix: str) -> None:
    store = RedisStore(client, prefix=prefix)
    client.hset(prefix + "h", "a", "1")
    with pytest.raises(TokenSessionError, match="WRONGTYPE"):
        store.get_and_touch("h")
    assert store._get_and_touch.scripted


def test_bounded_by_the_timeout() -> None:
    with lone_redis() as server:
        admin = redis.Redis(port=server.port)
        store = RedisStore.from_url(server.url + "?timeout=0.3", prefix="p:")
        store.set("s", {"cookie": {"originalMaxAge": 60_000}})
        admin.client_pause(2000)
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError):
            store.get_and_touch("s")
        assert time.monotonic() - started < 1.0
        store.close()
        admin.close()


@pytest.fixture(scope="module")
def cluster_ports() -> Iterator[list[int]]:
    with redis_cluster() as ports:
        yield ports


def test_on_a_cluster(cluster_ports: list[int]) -> None:
    client = RedisCluster(host="127.0.0.1", port=cluster_ports[0])
    blocking = Sync(RedisStore(client, prefix="c:"))
    loop = asyncio.new_event_loop()
    aclient = redis.asyncio.RedisCluster(host="127.0.0.1", port=cluster_ports[1])
    asynchronous = Sync(AsyncRedisStore(aclient, prefix="c:"), loop)
    for store in (blocking, asynchronous):
        for session in SESSIONS[:6]:
            assert assert_same(client, store, "c:", dumps(session))[0] == "ok"
        assert store.store._get_and_touch.scripted is not store.decoded

    async def many() -> list[Any]:
        sids = [f"m{i}" for i in range(40)]
        for sid in sids:
            client.set("c:" + sid, dumps({"cookie": {"originalMaxAge": 50_000}, "sid": sid}), ex=9)
        return await asyncio.gather(*(asynchronous.store.get_and_touch(sid) for sid in sids))

    found = loop.run_until_complete(many())
    assert [session["sid"] for session in found] == [f"m{i}" for i in range(40)]
    assert all(45_000 < client.pttl(f"c:m{i}") <= 50_000 for i in range(40))
    loop.run_until_complete(aclient.aclose())
    loop.close()
    client.close()


def test_node_reads_the_touched_session_with_the_ttl_its_own_get_touch_leaves(
    node_stores: NodeStoreDriver, node: NodeOracle, redis_url: str, prefix: str
) -> None:
    """connect-redis 9.0.0 writes a session; ours get_and_touch it; Node's get then
    express-session's touch (resetMaxAge) then connect-redis's touch do the same to a twin."""
    oracle = node
    node_store = node_stores.open("connect-redis-9", url=redis_url, prefix=prefix)
    client = redis.Redis.from_url(redis_url)
    ours = RedisStore(client, prefix=prefix)
    try:
        for life in (60_000, 1_500_700, 86_400_000):
            session = {"cookie": {"originalMaxAge": life, "httpOnly": True, "path": "/"}, "n": 1}
            one, two = uuid.uuid4().hex, uuid.uuid4().hex
            for sid in (one, two):
                node_store.set(sid, json.dumps(session), shape="plain")
                client.expire(prefix + sid, 5)  # a while has passed
            written = client.get(prefix + one)
            started = time.monotonic()
            found = ours.get_and_touch(one)
            assert found == json.loads(node_store.get(one) or "null") == json.loads(written or "")
            assert client.get(prefix + one) == written  # the bytes stay Node's
            node_store.touch(two, node_touched(oracle, node_store.get(two) or ""))
            slack = 1000 + math.ceil((time.monotonic() - started) * 1000)
            assert abs(client.pttl(prefix + one) - client.pttl(prefix + two)) <= slack
            assert client.pttl(prefix + one) > life - 2000
    finally:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        node_store.close()
        client.close()


def test_token_session_gets_and_touches_in_one_command(client: redis.Redis, prefix: str) -> None:
    store = RedisStore(client, prefix=prefix, ttl=300)
    tokens = TokenSession(store)
    created = tokens.new_with_ttl({"user": "ada"}, 60)
    store.get_and_touch(created.sid)  # the store learns the expiry its sessions get
    client.expire(prefix + created.sid, 5)
    sent = counted(store)
    found = tokens.get(created.sid)
    assert sent == ["EVALSHA"]
    assert found is not None and found["user"] == "ada"
    assert found["cookie"]["expires"] > created.data["cookie"]["expires"]
    assert 59_000 < client.pttl(prefix + created.sid) <= 60_000
