"""RedisStore / AsyncRedisStore against real Redis: connect-redis's rules, a Redis Cluster,
bad input and an outage."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import struct
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.connection
from hypothesis import given
from hypothesis import strategies as st
from redis.cluster import RedisCluster

from token_session import (
    BackendUnavailableError,
    InvalidArgumentError,
    SessionDecodeError,
    TokenSessionError,
)
from token_session.compat import js_iso
from token_session.compat.jsdate import js_iso_ms
from token_session.stores import AsyncRedisStore, RedisStore, async_from_url, from_url
from token_session.stores.records import record_io
from token_session.stores.redis.resp import resp as _resp

from .faults import sigstop
from .redis_servers import lone_redis, prefixed_client, redis_cluster, redis_sentinel


def in_ms(ms: int) -> str:
    return js_iso(datetime.now(timezone.utc) + timedelta(milliseconds=ms))


def assert_ttl(client: Any, key: str, seconds: int, since: float) -> None:
    """The key expires ``seconds`` after it was written, at or after ``since`` (a
    time.monotonic() taken before): exact whatever time the test took since."""
    pttl = client.pttl(key)
    waited = (time.monotonic() - since) * 1000
    assert seconds * 1000 - waited - 5 <= pttl <= seconds * 1000, (pttl, seconds, waited)


@pytest.fixture
def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def client(redis_url: str, prefix: str) -> Iterator[redis.Redis]:
    with prefixed_client(redis_url, prefix) as opened:
        yield opened


@pytest.fixture
def store(client: redis.Redis, prefix: str) -> RedisStore:
    return RedisStore(client, prefix=prefix)


@pytest.fixture(scope="module")
def cluster_ports() -> Iterator[list[int]]:
    with redis_cluster() as ports:
        yield ports


def test_key_value_and_default_ttl(store: RedisStore, client: redis.Redis, prefix: str) -> None:
    store.set("abc", {"user": "zoë", "n": 1.0, "cookie": {"maxAge": 0}})
    assert client.get(prefix + "abc") == '{"user":"zoë","n":1,"cookie":{"maxAge":0}}'.encode()
    assert 86399 <= client.ttl(prefix + "abc") <= 86400
    assert store.get("abc") == {"user": "zoë", "n": 1, "cookie": {"maxAge": 0}}
    assert store.get("nope") is None


def test_ttl_follows_cookie_expires_rounded_up(
    store: RedisStore, client: redis.Redis, prefix: str
) -> None:
    now = int(time.time() * 1000)
    fixed = RedisStore(client, prefix=prefix, clock=lambda: now)
    since = time.monotonic()
    fixed.set("a", {"cookie": {"expires": js_iso_ms(now + 10_500)}})
    assert_ttl(client, prefix + "a", 11, since)  # ceil(10.5)
    fixed.set("b", {"cookie": {"expires": js_iso_ms(now + 10_001)}})
    assert_ttl(client, prefix + "b", 11, since)


def test_expired_or_unreadable_cookie_deletes_instead_of_writing(
    store: RedisStore, client: redis.Redis, prefix: str
) -> None:
    for expires in (in_ms(-1000), "not a date"):
        store.set("a", {"n": 1})
        store.set("a", {"n": 2, "cookie": {"expires": expires}})
        assert client.exists(prefix + "a") == 0


def test_touch_only_re_expires(store: RedisStore, client: redis.Redis, prefix: str) -> None:
    store.set("a", {"n": 1, "cookie": {"expires": in_ms(5000)}})
    before = client.get(prefix + "a")
    store.touch("a", {"n": 999, "cookie": {"expires": in_ms(60_000)}})
    assert client.get(prefix + "a") == before
    assert 59 <= client.ttl(prefix + "a") <= 60


def test_touch_never_revives_a_destroyed_session(
    store: RedisStore, client: redis.Redis, prefix: str
) -> None:
    store.set("a", {"n": 1})
    store.destroy("a")
    store.touch("a", {"n": 1})
    assert client.exists(prefix + "a") == 0


def test_options_ttl_function_disable_ttl_disable_touch(client: redis.Redis, prefix: str) -> None:
    since = time.monotonic()
    RedisStore(client, prefix=prefix, ttl=lambda s: s["life"]).set("f", {"life": 42})
    assert_ttl(client, prefix + "f", 42, since)
    RedisStore(client, prefix=prefix, ttl=0).set("zero", {})  # 0 means the default, as `||`
    assert_ttl(client, prefix + "zero", 86400, since)
    no_ttl = RedisStore(client, prefix=prefix, disable_ttl=True)
    no_ttl.set("n", {"cookie": {"expires": in_ms(5000)}})
    assert client.ttl(prefix + "n") == -1
    no_touch = RedisStore(client, prefix=prefix, ttl=100, disable_touch=True)
    no_touch.set("t", {})
    no_touch.touch("t", {"cookie": {"expires": in_ms(9_000_000)}})
    assert_ttl(client, prefix + "t", 100, since)


def test_serializers(client: redis.Redis, prefix: str) -> None:
    class Upper:
        @staticmethod
        def stringify(session: Any) -> str:
            return json.dumps(session).upper()

        @staticmethod
        def parse(text: str) -> Any:
            return json.loads(text.lower())

    RedisStore(client, prefix=prefix, serializer=Upper).set("u", {"a": "b"})
    assert client.get(prefix + "u") == b'{"A": "B"}'
    assert RedisStore(client, prefix=prefix, serializer=Upper).get("u") == {"a": "b"}
    RedisStore(client, prefix=prefix, serializer=json).set("j", {"a": 1})
    assert client.get(prefix + "j") == b'{"a": 1}'
    with pytest.raises(InvalidArgumentError):
        RedisStore(client, prefix=prefix, serializer=object())


def test_ids_length_all_clear(store: RedisStore, client: redis.Redis, prefix: str) -> None:
    for i in range(250):
        store.set(f"s{i}", {"i": i})
    client.set("unrelated-" + prefix, "x")
    assert store.length() == 250
    assert sorted(store.ids()) == sorted(f"s{i}" for i in range(250))
    assert store.all()["s7"] == {"i": 7}
    store.clear()
    assert store.length() == 0
    assert client.get("unrelated-" + prefix) == b"x"
    client.delete("unrelated-" + prefix)


def test_glob_characters_in_the_prefix_match_only_our_keys(
    client: redis.Redis, prefix: str
) -> None:
    tricky = prefix + "s[1]*?\\:"
    store = RedisStore(client, prefix=tricky)
    store.set("a", {})
    client.set(prefix + "s1xyz:b", "{}")  # what connect-redis's raw MATCH would also find
    try:
        assert store.ids() == ["a"]
        store.clear()
        assert client.exists(prefix + "s1xyz:b") == 1
    finally:
        client.delete(prefix + "s1xyz:b")


@pytest.mark.parametrize(
    "sid", [None, 1, b"sid", ["a"], {"$gt": ""}, "", "x" * 300, "ab\ud800", "\udfff"]
)
def test_bad_sid_raises_before_any_command(
    store: RedisStore, client: redis.Redis, prefix: str, sid: Any
) -> None:
    for call in (
        lambda: store.get(sid),
        lambda: store.set(sid, {}),
        lambda: store.touch(sid, {}),
        lambda: store.destroy(sid),
    ):
        with pytest.raises(InvalidArgumentError):
            call()
    assert list(client.scan_iter(match=prefix + "*")) == []


def test_unstorable_session_writes_nothing(
    store: RedisStore, client: redis.Redis, prefix: str
) -> None:
    store.set("a", {"kept": True})
    with pytest.raises(InvalidArgumentError):
        store.set("a", {"blob": b"\x00"})
    assert client.get(prefix + "a") == b'{"kept":true}'


def test_a_read_only_mapping_is_written_as_the_dict_it_holds(
    store: RedisStore, client: redis.Redis, prefix: str
) -> None:
    store.set("a", MappingProxyType({"kept": True, "cookie": {"maxAge": 0}}))
    assert client.get(prefix + "a") == b'{"kept":true,"cookie":{"maxAge":0}}'
    client.expire(prefix + "a", 10)
    store.touch("a", MappingProxyType({"kept": True}))
    assert 86399 <= client.ttl(prefix + "a") <= 86400
    with pytest.raises(InvalidArgumentError):
        store.touch("a", ["kept"])  # type: ignore[arg-type]


def test_corrupt_value_is_a_decode_error_naming_the_sid_and_is_left_alone(
    store: RedisStore, client: redis.Redis, prefix: str
) -> None:
    client.set(prefix + "bad", b"\xff\xfe{not json")
    with pytest.raises(SessionDecodeError, match="'bad'"):
        store.get("bad")
    client.set(prefix + "list", b"[1,2]")
    with pytest.raises(SessionDecodeError, match="'list'"):
        store.get("list")
    assert client.get(prefix + "bad") == b"\xff\xfe{not json"
    client.hset(prefix + "hash", "a", "b")
    with pytest.raises(TokenSessionError):
        store.get("hash")


def test_from_url_takes_store_options_from_the_query(
    redis_url: str, client: redis.Redis, prefix: str
) -> None:
    since = time.monotonic()
    with from_url(f"{redis_url}?prefix={prefix}&ttl=77") as store:
        assert isinstance(store, RedisStore)
        store.set("q", {})
    assert_ttl(client, prefix + "q", 77, since)


def test_outage_raises_a_typed_error_in_time_then_recovers() -> None:
    with lone_redis() as server:
        store = RedisStore.from_url(server.url, timeout=1.0)
        store.set("a", {"n": 1})
        server.stop()
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError):
            store.get("a")
        with pytest.raises(BackendUnavailableError):
            store.set("a", {"n": 2})
        assert time.monotonic() - started < 15
        server.start()  # a fresh server: the session is gone, the store works again
        store.set("a", {"n": 3})
        assert store.get("a") == {"n": 3}
        store.close()


async def test_async_store_outage_and_recovery() -> None:
    with lone_redis() as server:
        store = AsyncRedisStore.from_url(server.url, timeout=1.0)
        await store.set("a", {"n": 1})
        server.stop()
        with pytest.raises(BackendUnavailableError):
            await store.get("a")
        server.start()
        await store.set("a", {"n": 3})
        assert await store.get("a") == {"n": 3}
        await store.close()


@pytest.fixture
async def async_store(redis_url: str, prefix: str) -> AsyncIterator[AsyncRedisStore]:
    store = async_from_url(redis_url, prefix=prefix)
    assert isinstance(store, AsyncRedisStore)
    yield store
    await store.clear()
    await store.close()


async def test_async_store_operations(
    async_store: AsyncRedisStore, client: redis.Redis, prefix: str
) -> None:
    since = time.monotonic()
    session = {"n": 1, "cookie": {"expires": in_ms(29_990)}}
    await async_store.set("a", session)
    assert_ttl(client, prefix + "a", 30, since)
    assert await async_store.get("a") == session
    since = time.monotonic()
    await async_store.touch("a", {"cookie": {"expires": in_ms(89_990)}})
    assert_ttl(client, prefix + "a", 90, since)
    await asyncio.gather(*(async_store.set(f"s{i}", {"i": i}) for i in range(64)))
    assert await async_store.length() == 65
    assert (await async_store.all())["s5"] == {"i": 5}
    assert len(await async_store.ids()) == 65
    await async_store.destroy("a")
    assert await async_store.get("a") is None
    with pytest.raises(InvalidArgumentError):
        await async_store.get(None)  # type: ignore[arg-type]


def test_cluster_spreads_sessions_over_every_primary(cluster_ports: list[int]) -> None:
    client = RedisCluster(host="127.0.0.1", port=cluster_ports[0])
    store = RedisStore(client, prefix="c:")
    sids = [f"s{i}" for i in range(200)]
    for sid in sids:
        store.set(sid, {"sid": sid})
    per_node = [redis.Redis(port=port).dbsize() for port in cluster_ports]
    assert all(count > 0 for count in per_node), per_node
    assert store.length() == 200
    assert sorted(store.ids()) == sorted(sids)
    assert store.all() == {sid: {"sid": sid} for sid in sids}
    since = time.monotonic()
    store.touch("s1", {"cookie": {"expires": in_ms(19_990)}})
    assert_ttl(client, "c:s1", 20, since)
    store.clear()
    assert store.length() == 0
    client.close()


async def test_async_store_on_the_cluster(cluster_ports: list[int]) -> None:
    client = redis.asyncio.RedisCluster(host="127.0.0.1", port=cluster_ports[1])
    store = AsyncRedisStore(client, prefix="ac:")
    await asyncio.gather(*(store.set(f"s{i}", {"i": i}) for i in range(100)))
    assert await store.length() == 100
    assert (await store.all())["s42"] == {"i": 42}
    await store.clear()
    assert await store.length() == 0
    await client.aclose()


def test_cluster_records_page_through_every_primary(cluster_ports: list[int]) -> None:
    store = RedisStore.from_url(f"redis://127.0.0.1:{cluster_ports[2]}/0?cluster=1&prefix=pc:")
    assert isinstance(store.client, RedisCluster)
    sids = [f"s{i}" for i in range(150)]
    for sid in sids:
        store.set(sid, {"sid": sid})
    records = record_io(store)
    seen: list[str] = []
    cursors: list[str] = []
    cursor = None
    while True:
        page = records.page(cursor, 20)
        assert not page.failed
        seen += [record.sid for record in page.records]
        if page.cursor is None:
            break
        cursor = page.cursor
        cursors.append(cursor)
    assert sorted(seen) == sorted(sids)
    # the pages went through every primary, each named by the cursor
    assert {c.rpartition("/")[0] for c in cursors} == {f"127.0.0.1:{p}" for p in cluster_ports}
    with pytest.raises(InvalidArgumentError, match="no primary"):
        records.page("127.0.0.1:1/0", 20)
    with pytest.raises(InvalidArgumentError, match="not a cursor"):
        records.page(f"127.0.0.1:{cluster_ports[0]}/x", 20)
    store.clear()
    store.close()


async def test_async_from_url_reaches_a_cluster(cluster_ports: list[int]) -> None:
    store = AsyncRedisStore.from_url(
        f"redis://127.0.0.1:{cluster_ports[0]}?cluster=true&prefix=ac2:"
    )
    await asyncio.gather(*(store.set(f"s{i}", {"i": i}) for i in range(30)))
    assert await store.get("s7") == {"i": 7}
    assert await store.length() == 30
    await store.clear()
    await store.close()


def test_a_cursor_that_is_not_one_is_refused(store: RedisStore) -> None:
    with pytest.raises(InvalidArgumentError, match="not a cursor"):
        record_io(store).page("nonsense", 10)


def test_ttl_nan_and_none_cases_are_numbers() -> None:
    from token_session.stores.redis import RedisCodec

    codec = RedisCodec(clock=lambda: 1_000_000)
    assert codec.ttl_of({}) == 86400
    assert codec.ttl_of({"cookie": {"expires": None}}) == 86400
    assert math.isnan(codec.ttl_of({"cookie": {"expires": "soon"}}))
    assert codec.set_command("a", {"cookie": {"expires": "soon"}}) == ("DEL", "sess:a")
    assert codec.set_command("a", {}) == ("SET", "sess:a", "{}", "EX", 86400)


async def test_auto_pipeline_keeps_each_answer_and_error_apart(
    async_store: AsyncRedisStore, client: redis.Redis, prefix: str
) -> None:
    client.hset(prefix + "hash", "a", "b")  # GET on a hash fails with WRONGTYPE
    await async_store.set("ok", {"n": 1})
    results = await asyncio.gather(
        async_store.get("ok"),
        async_store.get("hash"),
        async_store.get("missing"),
        async_store.set("new", {"n": 2}),
        return_exceptions=True,
    )
    assert results[0] == {"n": 1}
    assert isinstance(results[1], TokenSessionError)
    assert results[2] is None and results[3] is None
    assert client.get(prefix + "new") == b'{"n":2}'


async def test_auto_pipeline_survives_a_cancelled_caller(async_store: AsyncRedisStore) -> None:
    await async_store.set("a", {"n": 1})
    task = asyncio.ensure_future(async_store.get("a"))
    other = asyncio.ensure_future(async_store.get("a"))
    await asyncio.sleep(0)
    task.cancel()
    assert await other == {"n": 1}
    assert await async_store.get("a") == {"n": 1}


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["GET", "SET", "EXPIRE", "DEL"]),
            st.text(),
            st.one_of(st.text(), st.integers(-(2**63), 2**63 - 1)),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_our_wire_bytes_are_redis_py_s(commands: list[tuple[str, str, str | int]]) -> None:
    packer = redis.connection.Connection(encoding_errors="surrogatepass")
    expected = b"".join(b"".join(packer.pack_command(*command)) for command in commands)
    assert _resp(commands, "utf-8", "surrogatepass") == expected


def test_threads_share_the_store_and_each_gets_its_own_answers(store: RedisStore) -> None:
    def work(thread: int) -> list[bool]:
        checks = []
        for i in range(150):
            sid = f"t{thread}-{i % 10}"
            store.set(sid, {"thread": thread, "i": i})
            checks.append(store.get(sid) == {"thread": thread, "i": i})
        return checks

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(work, range(6)))
    assert all(all(checks) for checks in results)


def test_a_restart_the_store_did_not_see_costs_no_error() -> None:
    with lone_redis() as server, RedisStore.from_url(server.url, timeout=1.0) as store:
        store.set("a", {"n": 1})
        server.stop()
        server.start()  # the store's socket is now dead, unknown to it
        store.set("b", {"n": 2})
        assert store.get("b") == {"n": 2}


def test_a_read_on_a_connection_redis_closed_is_sent_again_on_a_new_one() -> None:
    with lone_redis() as server, RedisStore.from_url(server.url, timeout=1.0) as store:
        store.set("a", {"n": 1})
        server.stop()
        server.start()  # an empty Redis; the store's socket is dead, unknown to it
        assert store.get("a") is None  # no idle check before a read: sent, lost, sent again
        store.set("a", {"n": 2})
        assert store.get("a") == {"n": 2}


def test_the_blocking_store_s_socket_is_bounded_by_the_kernel(store: RedisStore) -> None:
    store.set("a", {"n": 1})
    assert store._lane is not None
    (held,) = store._lane.idle
    sock = held.connection._sock
    # no Python timeout: CPython would poll before each send and receive
    assert sock.gettimeout() is None
    timeval = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)
    assert struct.unpack("ll", timeval) == (5, 0)  # the store's timeout
    assert struct.unpack("ll", sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16)) == (
        5,
        0,
    )


def test_the_blocking_store_over_a_unix_socket_is_bounded_too(tmp_path: Path) -> None:
    path = str(tmp_path / "redis.sock")
    with (
        lone_redis("--unixsocket", path, "--unixsocketperm", "700") as server,
        RedisStore.from_url(f"unix://{path}?timeout=1") as store,
    ):
        store.set("u", {"via": "socket"})
        assert store._lane is not None
        assert store._lane.idle[0].connection._sock.gettimeout() is None
        assert server.process is not None
        sigstop(server.process.pid)
        try:
            started = time.monotonic()
            with pytest.raises(BackendUnavailableError):
                store.get("u")
            assert time.monotonic() - started < 1.0 + 1.5
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        assert store.get("u") == {"via": "socket"}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_connects_on_its_own(store: RedisStore) -> None:
    store.set("a", {"n": 1})
    assert store._lane is not None
    parent_socket = store._lane.idle[0].connection._sock
    pid = os.fork()
    if pid == 0:  # the child: its own connection, answers of its own
        ok = store.get("a") == {"n": 1} and store._lane.idle[0].connection._sock is not None
        store.set("b", {"n": 2})
        os._exit(0 if ok and store._lane.idle[0].connection._sock is not parent_socket else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.get("b") == {"n": 2}  # the parent's connection was left alone
    assert store._lane.idle[0].connection._sock is parent_socket


async def test_async_a_restart_the_store_did_not_see_costs_no_error() -> None:
    with lone_redis() as server:
        store = AsyncRedisStore.from_url(server.url, timeout=1.0)
        await store.set("a", {"n": 1})
        server.stop()
        server.start()
        results = await asyncio.gather(*(store.set(f"s{i}", {"i": i}) for i in range(10)))
        assert results == [None] * 10
        assert await store.get("s7") == {"i": 7}
        await store.close()


async def test_a_sentinel_master_serves_both_stores() -> None:
    from redis.asyncio.sentinel import Sentinel as AsyncSentinel
    from redis.sentinel import Sentinel

    with lone_redis() as master, redis_sentinel(master) as port:
        with RedisStore(Sentinel([("127.0.0.1", port)]).master_for("sessions")) as store:
            store.set("s", {"via": "sentinel"})
            assert store.get("s") == {"via": "sentinel"}
        async_store = AsyncRedisStore(AsyncSentinel([("127.0.0.1", port)]).master_for("sessions"))
        assert async_store._lean is None  # Sentinel's own connections find the master
        assert await async_store.get("s") == {"via": "sentinel"}
        await async_store.touch("s", {"cookie": {"expires": in_ms(30_000)}})
        await async_store.close()
        with redis.Redis(port=master.port) as check:
            assert 29 <= check.ttl("sess:s") <= 30
