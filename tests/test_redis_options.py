"""Each documented option of the Redis stores, the same through the URL's query, as a keyword
of ``from_url`` / ``async_from_url`` and as a keyword of the constructor; bad values refused
with InvalidArgumentError before any I/O."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

from token_session import BackendUnavailableError, InvalidArgumentError
from token_session.stores import AsyncRedisStore, RedisStore, async_from_url, from_url

from .redis_servers import free_port, prefixed_client

Way = Callable[[str, dict[str, Any], str], RedisStore]


@pytest.fixture
def prefix() -> str:
    return f"o-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def client(redis_url: str, prefix: str) -> Iterator[redis.Redis]:
    with prefixed_client(redis_url, prefix) as opened:
        yield opened


def by_url(url: str, options: dict[str, Any], query: str) -> RedisStore:
    store = from_url(f"{url}?{query}")
    assert isinstance(store, RedisStore)
    return store


def by_keyword(url: str, options: dict[str, Any], query: str) -> RedisStore:
    store = from_url(url, **options)
    assert isinstance(store, RedisStore)
    return store


def by_constructor(url: str, options: dict[str, Any], query: str) -> RedisStore:
    return RedisStore(redis.Redis.from_url(url), owns_client=True, **options)


WAYS = pytest.mark.parametrize("way", [by_url, by_keyword, by_constructor])


@WAYS
def test_prefix_ttl_disable_ttl_disable_touch_three_ways(
    way: Way, redis_url: str, client: redis.Redis, prefix: str
) -> None:
    with way(redis_url, {"prefix": prefix, "ttl": 77}, f"prefix={prefix}&ttl=77") as store:
        store.set("a", {})
        assert client.exists(prefix + "a")
        assert 75_000 < client.pttl(prefix + "a") <= 77_000
    with way(
        redis_url, {"prefix": prefix, "disable_ttl": True}, f"prefix={prefix}&disable_ttl=1"
    ) as store:
        store.set("b", {})
        assert client.pttl(prefix + "b") == -1
    options = {"prefix": prefix, "ttl": 50, "disable_touch": True}
    with way(redis_url, options, f"prefix={prefix}&ttl=50&disable_touch=true") as store:
        store.set("c", {})
        store.touch("c", {"cookie": {"expires": "2999-01-01T00:00:00.000Z"}})
        assert 48_000 < client.pttl(prefix + "c") <= 50_000


@WAYS
def test_scan_count_and_timeout_three_ways(way: Way, redis_url: str, prefix: str) -> None:
    options = {"prefix": prefix, "scan_count": 7, "timeout": 1.5}
    with way(redis_url, options, f"prefix={prefix}&scan_count=7&timeout=1.5") as store:
        assert store.codec.scan_count == 7
        assert store.timeout == 1.5
        store.set("a", {})
        assert store.ids() == ["a"]
        store.clear()


@pytest.mark.parametrize("way", [by_keyword, by_constructor])
def test_serializer_as_a_keyword(
    way: Way, redis_url: str, client: redis.Redis, prefix: str
) -> None:
    # an object is no URL text: a keyword of from_url and of the constructor
    with way(redis_url, {"prefix": prefix, "serializer": json}, "") as store:
        store.set("j", {"a": 1})
        assert client.get(prefix + "j") == b'{"a": 1}'
        assert store.get("j") == {"a": 1}


def test_a_url_made_client_waits_the_timeout_and_never_retries(redis_url: str) -> None:
    with from_url(f"{redis_url}?timeout=2.5") as store:
        kwargs = store.client.connection_pool.connection_kwargs  # type: ignore[attr-defined]
        assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 2.5
        assert kwargs["retry"].get_retries() == 0
    with from_url(redis_url) as store:
        assert isinstance(store, RedisStore) and store.timeout == 5.0  # the default


@pytest.mark.parametrize("how", ["url", "keyword", "constructor"])
async def test_auto_pipeline_and_timeout_three_ways(
    how: str, redis_url: str, client: redis.Redis, prefix: str
) -> None:
    if how == "url":
        store = async_from_url(f"{redis_url}?auto_pipeline=0&timeout=2&prefix={prefix}")
    elif how == "keyword":
        store = async_from_url(redis_url, auto_pipeline=False, timeout=2, prefix=prefix)
    else:
        aclient = redis.asyncio.Redis.from_url(redis_url)
        store = AsyncRedisStore(
            aclient, owns_client=True, auto_pipeline=False, timeout=2, prefix=prefix
        )
    assert isinstance(store, AsyncRedisStore)
    async with store:
        assert store._lean is None and store._run == store._execute
        assert store.timeout == 2.0
        await store.set("a", {"n": 1})  # every call works: the option is the store's
        assert await store.get("a") == {"n": 1}
        await store.touch("a", {"cookie": {"expires": "2999-01-01T00:00:00.000Z"}})
        await store.destroy("a")
        assert await store.get("a") is None
    async with async_from_url(f"{redis_url}?auto_pipeline=1") as piped:
        assert isinstance(piped, AsyncRedisStore) and piped._lean is not None
    # one URL serves both shells: the blocking store takes the option and has no use for it
    with from_url(f"{redis_url}?auto_pipeline=0&prefix={prefix}") as blocking:
        blocking.set("b", {})
        assert client.exists(prefix + "b")


@pytest.mark.parametrize("aio", [False, True])
async def test_url_option_values_keep_their_escapes(aio: bool, redis_url: str) -> None:
    url = f"{redis_url}?client_name=a%26b%3Dc"
    check = redis.Redis.from_url(redis_url)
    if aio:
        store = async_from_url(url)
        assert isinstance(store, AsyncRedisStore)
        await store.get("x")
        names = [c["name"] for c in check.client_list()]
        await store.close()
    else:
        with from_url(url) as blocking:
            blocking.get("x")
            names = [c["name"] for c in check.client_list()]
    check.close()
    assert "a&b=c" in names


@pytest.mark.parametrize(
    "url, keywords",
    [
        ("redis://127.0.0.1:6379/0?ttl=abc", {}),
        ("redis://127.0.0.1:6379/0?scan_count=1.5", {}),
        ("redis://127.0.0.1:6379/0?timeout=0", {}),
        ("redis://127.0.0.1:6379/0?timeout=nan", {}),
        ("redis://127.0.0.1:6379/0?disable_ttl=maybe", {}),
        ("redis://127.0.0.1:6379/0?socket_timeout=3", {}),
        ("redis://127.0.0.1:6379/0", {"socket_timeout": 3}),
        ("redis://127.0.0.1:6379/0", {"timeout": -1}),
        ("redis://127.0.0.1:6379/0", {"timeout": True}),
        ("redis://127.0.0.1:abc/0", {}),
        ("redis://127.0.0.1:6379/0", {"prefix": 3}),
    ],
)
def test_bad_option_values_are_refused_before_any_io(url: str, keywords: dict[str, Any]) -> None:
    started = time.monotonic()
    for make in (from_url, async_from_url):
        with pytest.raises(InvalidArgumentError):
            make(url, **keywords)
    assert time.monotonic() - started < 1


def test_the_constructor_refuses_an_unknown_option(client: redis.Redis) -> None:
    with pytest.raises(InvalidArgumentError, match="bogus"):
        RedisStore(client, bogus=1)
    with pytest.raises(InvalidArgumentError, match="timeout"):
        AsyncRedisStore(redis.asyncio.Redis(), timeout="5")  # type: ignore[arg-type]


async def test_cluster_on_a_server_that_is_no_cluster_node(redis_url: str) -> None:
    url = f"{redis_url}?cluster=1"
    with pytest.raises(InvalidArgumentError, match="drop \\?cluster=1"):
        from_url(url)  # redis-py's cluster client connects at once
    store = async_from_url(url)  # and its asyncio twin on first use
    with pytest.raises(InvalidArgumentError, match="drop \\?cluster=1"):
        await store.get("a")
    with pytest.raises(InvalidArgumentError, match="drop \\?cluster=1"):
        await store.all()
    await store.close()


async def test_cluster_that_cannot_be_reached() -> None:
    port = free_port()
    with pytest.raises(BackendUnavailableError):
        from_url(f"redis://127.0.0.1:{port}/0?cluster=1&timeout=1")
    store = async_from_url(f"redis://127.0.0.1:{port}/0?cluster=1&timeout=1")
    with pytest.raises(BackendUnavailableError):
        await store.get("a")
    with pytest.raises(BackendUnavailableError):
        await store.ids()
    await store.close()


@pytest.mark.parametrize("store_class", [RedisStore, AsyncRedisStore])
def test_a_unix_socket_url_keeps_its_path_when_store_options_leave_its_query(
    store_class: Any,
) -> None:
    store = store_class.from_url("unix:///tmp/no-such.sock?timeout=1&db=2&prefix=u:")
    kwargs = store.client.connection_pool.connection_kwargs
    assert kwargs["path"] == "/tmp/no-such.sock" and kwargs["db"] == 2
    assert store.codec.prefix == "u:" and store.timeout == 1.0
