"""Whole-store operations on Redis with keys and values no session has (not UTF-8, too long,
the prefix alone, a corrupt value): skipped by all/ids/length, listed in the record pages'
``failed`` and by the command, which carries on. Pages keep to their limit, on one server and
on a cluster; ``doctor`` reads every primary's eviction policy."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster

from token_session.cli import main
from token_session.stores import AsyncRedisStore, RedisStore
from token_session.stores.records import record_io

from .redis_servers import prefixed_client, redis_cluster


@pytest.fixture
def prefix() -> str:
    return f"r-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def client(redis_url: str, prefix: str) -> Iterator[redis.Redis]:
    with prefixed_client(redis_url, prefix) as opened:
        yield opened


@pytest.fixture(scope="module")
def cluster_ports() -> Iterator[list[int]]:
    with redis_cluster() as ports:
        yield ports


def hostile(client: redis.Redis, prefix: str) -> dict[bytes, bytes]:
    """Keys under the prefix that name no session, and a corrupt value, beside good ones."""
    keys = {
        prefix.encode() + b"\xff\xfebad": b"{}",  # not UTF-8
        prefix.encode() + b"x" * 300: b"{}",  # longer than the id limit
        prefix.encode(): b"{}",  # the prefix alone
        prefix.encode() + b"corrupt": b"{not json",
    }
    for key, value in keys.items():
        client.set(key, value)
    for i in range(3):
        client.set(f"{prefix}good{i}", json.dumps({"i": i}))
    return keys


def test_all_ids_length_skip_what_names_no_session(
    client: redis.Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    hostile(client, prefix)
    store = RedisStore(client, prefix=prefix)
    assert sorted(store.ids()) == ["corrupt", "good0", "good1", "good2"]
    assert store.length() == 4
    with caplog.at_level(logging.WARNING):
        assert store.all() == {f"good{i}": {"i": i} for i in range(3)}
    logged = caplog.text
    assert "'corrupt'" in logged and "\\xff\\xfebad" in logged and "x" * 300 in logged
    assert client.get(prefix + "corrupt") == b"{not json"  # left alone
    store.clear()  # clear deletes every key under the prefix, these too
    assert list(client.scan_iter(match=prefix.encode() + b"*")) == []


async def test_the_async_store_skips_them_too(
    redis_url: str, client: redis.Redis, prefix: str
) -> None:
    hostile(client, prefix)
    async with AsyncRedisStore.from_url(redis_url, prefix=prefix) as store:
        assert await store.all() == {f"good{i}": {"i": i} for i in range(3)}
        assert await store.length() == 4


def test_record_pages_report_them_as_failed_and_carry_on(client: redis.Redis, prefix: str) -> None:
    hostile(client, prefix)
    records = record_io(RedisStore(client, prefix=prefix))
    seen: list[str] = []
    failed: dict[str, str] = {}
    cursor = None
    while True:
        page = records.page(cursor, 2)
        assert len(page.records) + len(page.failed) <= 2
        seen += [r.sid for r in page.records]
        failed.update(page.failed)
        if page.cursor is None:
            break
        cursor = page.cursor
    assert sorted(seen) == ["corrupt", "good0", "good1", "good2"]  # the text is kept as is
    assert set(failed) == {"\\xff\\xfebad", "x" * 300, ""}
    assert "not UTF-8" in failed["\\xff\\xfebad"] and "longer" in failed["x" * 300]


@pytest.mark.parametrize("command", ["ls", "stats", "migrate"])
def test_the_command_lists_them_and_goes_on(
    command: str,
    redis_url: str,
    client: redis.Redis,
    prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hostile(client, prefix)
    url = f"{redis_url}?prefix={prefix}"
    argv = {
        "ls": ["ls", "--store", url, "--all"],
        "stats": ["stats", "--store", url],
        "migrate": ["migrate", "--from", url, "--to", "memory://"],
    }[command]
    status = main([*argv, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert status == 1  # the command's rule: something could not be read
    assert {"\\xff\\xfebad", "x" * 300, ""} <= set(out["failed"])
    if command == "ls":  # the good ones listed (a corrupt text is the command's to judge)
        assert {"good0", "good1", "good2"} <= {s["sid"] for s in out["sessions"]}
    if command == "stats":
        assert out["count"] >= 3


def pages(records: Any, limit: int) -> list[list[str]]:
    result = []
    cursor = None
    for _ in range(10_000):
        page = records.page(cursor, limit)
        result.append([r.sid for r in page.records])
        if page.cursor is None:
            return result
        cursor = page.cursor
    raise AssertionError("the pages never end")


def test_pages_keep_to_their_limit(client: redis.Redis, prefix: str) -> None:
    # SCAN's COUNT is a hint: a step over buckets holding two keys each gives more
    pipe = client.pipeline(transaction=False)
    for i in range(1500):
        pipe.set(f"{prefix}s{i}", "{}")
    pipe.execute()
    records = record_io(RedisStore(client, prefix=prefix))
    for limit in (1, 3, 100):
        got = pages(records, limit)
        assert max(len(page) for page in got) <= limit
        flat = [sid for page in got for sid in page]
        # each key at least once: SCAN itself may give a key twice while Redis resizes
        assert set(flat) == {f"s{i}" for i in range(1500)}, limit
        assert len(flat) - len(set(flat)) <= len(flat) // 10, limit


def test_cluster_pages_keep_to_their_limit(cluster_ports: list[int]) -> None:
    store = RedisStore.from_url(f"redis://127.0.0.1:{cluster_ports[0]}/0?cluster=1&prefix=pl:")
    client = store.client
    pipe = client.pipeline()
    for i in range(900):
        pipe.set(f"pl:s{i}", "{}")
    pipe.execute()
    records = record_io(store)
    try:
        for limit in (1, 100):
            got = pages(records, limit)
            assert max(len(page) for page in got) <= limit
            flat = [sid for page in got for sid in page]
            assert set(flat) == {f"s{i}" for i in range(900)}, limit  # as above
            assert len(flat) - len(set(flat)) <= len(flat) // 10, limit
    finally:
        store.clear()
        store.close()


def test_doctor_reads_every_primary_s_eviction_policy(cluster_ports: list[int]) -> None:
    odd = cluster_ports[1]
    with redis.Redis(port=odd) as node:
        node.config_set("maxmemory-policy", "allkeys-lru")
        node.config_set("maxmemory", "100mb")
    store = RedisStore(RedisCluster(host="127.0.0.1", port=cluster_ports[0]), prefix="pd:")
    try:
        findings = [f for f in record_io(store).doctor() if f.check == "eviction policy"]
        by_level = {f.level: f for f in findings}
        assert set(by_level) == {"ok", "error"}, findings
        assert f"127.0.0.1:{odd}" in by_level["error"].message
        assert len(findings) == 3  # one per primary: they do not agree
    finally:
        with redis.Redis(port=odd) as node:
            node.config_set("maxmemory-policy", "noeviction")
            node.config_set("maxmemory", "0")
        store.close()
    findings = [f for f in record_io(store).doctor() if f.check == "eviction policy"]
    assert [f.level for f in findings] == ["ok"]
