"""Fault injection on the Redis stores, on loopback only: the tests' own redis-server stalled
(SIGSTOP), killed and restarted under load, a connection lost with a write on the wire, a
server loading its data or a replica whose master is down, and a primary of the tests' own
3-primary cluster killed under load. Each checks the error type, the time it took, that no
acknowledged write was lost, and that the same store object works again afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import hiredis
import pytest
import redis

from token_session import BackendUnavailableError
from token_session.stores import AsyncRedisStore, RedisStore

from .faults import elapsed, sigstop
from .redis_servers import (
    RedisServer,
    cluster_ok,
    cluster_servers,
    free_port,
    lone_redis,
    redis_sentinel,
    wait_for,
)

TIMEOUT = 1.0
BOUND = TIMEOUT + 1.5  # two busy cores
DURABLE = ("--appendonly", "yes", "--appendfsync", "always")  # an answered write is on disk


@contextlib.contextmanager
def stopped(server: RedisServer) -> Iterator[None]:
    """The server stalled (every thread of it stopped): its connections open, nothing
    answered."""
    assert server.process is not None
    sigstop(server.process.pid)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


def async_store(url: str, path: str, **options: Any) -> AsyncRedisStore:
    """The asyncio store over its lean connection, through redis-py's client one command
    at a time, or over one of redis-py's connections (RESP3 is not for the lean one)."""
    if path == "lean":
        store = AsyncRedisStore.from_url(url, timeout=TIMEOUT, **options)
        assert store._lean is not None
    elif path == "client":
        store = AsyncRedisStore.from_url(url, timeout=TIMEOUT, auto_pipeline=False, **options)
    else:
        store = AsyncRedisStore.from_url(url + "?protocol=3", timeout=TIMEOUT, **options)
        assert store._lean is None
    return store


PATHS = pytest.mark.parametrize("path", ["lean", "client", "connection"])


def test_blocking_store_on_a_stalled_server() -> None:
    with lone_redis() as server, RedisStore.from_url(server.url, timeout=TIMEOUT) as store:
        store.set("kept", {"n": 1})
        with stopped(server):
            calls = [
                lambda: store.get("kept"),
                lambda: store.set("other", {"n": 2}),
                lambda: store.touch("kept", {}),
                lambda: store.destroy("other"),
            ]
            for call in calls:
                with elapsed() as took, pytest.raises(BackendUnavailableError):
                    call()
                assert took[0] < BOUND
            # a store made meanwhile connects (the kernel accepts for the stopped server)
            # and waits no longer
            with RedisStore.from_url(server.url + "/3", timeout=TIMEOUT) as fresh:
                with elapsed() as took, pytest.raises(BackendUnavailableError):
                    fresh.get("kept")
                assert took[0] < BOUND
            results: list[float] = []

            def wait_in_a_thread() -> None:
                with elapsed() as took, pytest.raises(BackendUnavailableError):
                    store.get("kept")
                results.append(took[0])

            threads = [threading.Thread(target=wait_in_a_thread) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(10)
            assert len(results) == 4 and max(results) < BOUND
        assert store.get("kept") == {"n": 1}  # the same store, once Redis answers again
        store.set("after", {"n": 3})
        assert store.get("after") == {"n": 3}


async def test_a_client_made_without_timeouts_waits_the_store_s_timeout() -> None:
    import redis.asyncio

    with lone_redis() as server:
        blocking = RedisStore(redis.Redis(port=server.port), owns_client=True, timeout=TIMEOUT)
        store = AsyncRedisStore(
            redis.asyncio.Redis(port=server.port), owns_client=True, timeout=TIMEOUT
        )
        blocking.set("kept", {"n": 1})
        await store.get("kept")
        with stopped(server):
            for call in (lambda: blocking.get("kept"), blocking.all, blocking.ids):
                with elapsed() as took, pytest.raises(BackendUnavailableError):
                    call()
                assert took[0] < BOUND
            for pending in (store.get("kept"), store.all(), store.length()):
                with elapsed() as took, pytest.raises(BackendUnavailableError):
                    await pending
                assert took[0] < BOUND
        assert blocking.all() == {"kept": {"n": 1}}
        assert await store.all() == {"kept": {"n": 1}}
        blocking.close()
        await store.close()


@PATHS
async def test_async_store_on_a_stalled_server(path: str) -> None:
    with lone_redis() as server:
        store = async_store(server.url, path)
        await store.set("kept", {"n": 1})
        with stopped(server):
            with elapsed() as took:
                results = await asyncio.gather(
                    *(store.get("kept") for _ in range(10)),
                    *(store.set(f"s{i}", {"i": i}) for i in range(10)),
                    store.touch("kept", {}),
                    store.destroy("s0"),
                    return_exceptions=True,
                )
            assert all(isinstance(r, BackendUnavailableError) for r in results), results
            assert took[0] < BOUND
        assert await store.get("kept") == {"n": 1}
        await store.set("after", {"n": 3})
        assert await store.get("after") == {"n": 3}
        await store.close()


def test_blocking_store_killed_and_restarted_under_load() -> None:
    with lone_redis(*DURABLE) as server, RedisStore.from_url(server.url, timeout=TIMEOUT) as store:
        acknowledged: dict[str, int] = {}
        failures: list[tuple[float, BaseException]] = []
        stop = threading.Event()

        def writer(thread: int) -> None:
            for i in range(100_000):
                if stop.is_set():
                    return
                sid = f"w{thread}-{i}"
                started = time.monotonic()
                try:
                    store.set(sid, {"i": i})
                except Exception as exc:  # every one is checked below
                    failures.append((time.monotonic() - started, exc))
                else:
                    acknowledged[sid] = i

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        server.stop()  # SIGKILL
        time.sleep(0.5)
        server.start()  # the same port and directory: it reloads its append-only file
        time.sleep(0.3)
        stop.set()
        for thread in threads:
            thread.join(10)
        assert failures, "the writes while Redis was down must fail"
        assert all(isinstance(exc, BackendUnavailableError) for _, exc in failures), failures
        assert max(took for took, _ in failures) < BOUND
        with redis.Redis(port=server.port) as check:
            sids = list(acknowledged)
            values = check.mget([f"sess:{sid}" for sid in sids])
        lost = [sid for sid, value in zip(sids, values, strict=True) if value is None]
        assert not lost, f"{len(lost)} acknowledged writes lost"
        store.set("after", {"n": 1})
        assert store.get("after") == {"n": 1}


@PATHS
async def test_async_store_killed_and_restarted_under_load(path: str) -> None:
    with lone_redis(*DURABLE) as server:
        store = async_store(server.url, path)
        acknowledged: dict[str, int] = {}
        failures: list[tuple[float, BaseException]] = []
        stop = False

        async def writer(task: int) -> None:
            for i in range(100_000):
                if stop:
                    return
                sid = f"w{task}-{i}"
                started = time.monotonic()
                try:
                    await store.set(sid, {"i": i})
                except Exception as exc:
                    failures.append((time.monotonic() - started, exc))
                    await asyncio.sleep(0.01)
                else:
                    acknowledged[sid] = i

        tasks = [asyncio.ensure_future(writer(t)) for t in range(16)]
        await asyncio.sleep(0.3)
        server.stop()
        await asyncio.sleep(0.5)
        server.start()
        await asyncio.sleep(0.5)
        stop = True
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        assert failures, "the writes while Redis was down must fail"
        assert all(isinstance(exc, BackendUnavailableError) for _, exc in failures), failures
        assert max(took for took, _ in failures) < BOUND
        assert len(acknowledged) > 100
        with redis.Redis(port=server.port) as check:
            sids = list(acknowledged)
            values = check.mget([f"sess:{sid}" for sid in sids])
        lost = [sid for sid, value in zip(sids, values, strict=True) if value is None]
        assert not lost, f"{len(lost)} acknowledged writes lost"
        await store.set("after", {"n": 1})
        assert await store.get("after") == {"n": 1}
        await store.close()


async def test_a_write_on_a_lost_connection_is_not_sent_again_a_read_is(redis_url: str) -> None:
    prefix = f"f-{uuid.uuid4().hex[:8]}:"
    store = AsyncRedisStore.from_url(redis_url, prefix=prefix, timeout=TIMEOUT)
    other = redis.Redis.from_url(redis_url)
    try:
        await store.set("a", {"v": "old"})
        await store.set("b", {"n": 1})
        lean = store._lean
        assert lean is not None and lean.protocol is not None
        transport = lean.protocol.transport
        transport.pause_reading()  # Redis answers; the answers are not read
        write = asyncio.ensure_future(store.set("a", {"v": "ours"}))
        read = asyncio.ensure_future(store.get("b"))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if other.get(prefix + "a") == b'{"v":"ours"}':
                break
        other.set(prefix + "a", '{"v":"newer"}')  # another process writes meanwhile
        transport.abort()  # the connection breaks before our answers are read
        with pytest.raises(BackendUnavailableError):
            await write
        assert await read == {"n": 1}  # a read is sent again, and answered
        assert other.get(prefix + "a") == b'{"v":"newer"}'  # the newer write stands
        await store.set("a", {"v": "last"})
        assert await store.get("a") == {"v": "last"}
    finally:
        for key in other.scan_iter(match=prefix + "*"):
            other.delete(key)
        other.close()
        await store.close()


@contextlib.contextmanager
def loading_server() -> Iterator[str]:
    """A loopback server answering every command as a Redis still loading its data does."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.05)
    running = True

    def serve(connection: socket.socket) -> None:
        reader = hiredis.Reader()
        with connection, contextlib.suppress(OSError):
            while data := connection.recv(65536):
                reader.feed(data)
                while reader.gets() is not False:
                    connection.sendall(b"-LOADING Redis is loading the dataset in memory\r\n")

    def accept() -> None:
        while running:
            with contextlib.suppress(TimeoutError):
                connection, _ = listener.accept()
                threading.Thread(target=serve, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        running = False
        thread.join(5)
        listener.close()


@PATHS
async def test_loading_and_masterdown_are_unavailability(path: str) -> None:
    with loading_server() as url:
        store = async_store(url, path)
        with pytest.raises(BackendUnavailableError, match="loading the dataset"):
            await store.get("a")
        await store.close()
        blocking = RedisStore.from_url(url, timeout=TIMEOUT)
        with blocking, pytest.raises(BackendUnavailableError, match="loading the dataset"):
            blocking.get("a")
    # a replica whose master is gone, told not to serve what it may have missed
    dead_master = free_port()
    with lone_redis(
        "--replicaof", "127.0.0.1", str(dead_master), "--replica-serve-stale-data", "no"
    ) as replica:
        store = async_store(replica.url, path)
        with pytest.raises(BackendUnavailableError, match="Link with MASTER is down"):
            await store.get("a")
        await store.close()
        blocking = RedisStore.from_url(replica.url, timeout=TIMEOUT)
        with blocking, pytest.raises(BackendUnavailableError, match="Link with MASTER is down"):
            blocking.get("a")


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[RedisServer]]:
    # the live primaries keep serving while the cluster counts a node as failed
    with cluster_servers(3, *DURABLE, "--cluster-require-full-coverage", "no") as servers:
        yield servers


def outcome_by_node(
    sids: list[str], results: list[Any], node_of: dict[str, int], victim: int
) -> tuple[list[str], list[str]]:
    """The ids whose command went wrong on the live primaries and on the dead one."""
    wrong_live, wrong_dead = [], []
    for sid, result in zip(sids, results, strict=True):
        if node_of[sid] == victim:
            if not isinstance(result, BackendUnavailableError):
                wrong_dead.append(sid)
        elif result is not None:
            wrong_live.append(sid)
    return wrong_live, wrong_dead


async def test_a_killed_primary_fails_only_its_own_commands(cluster: list[RedisServer]) -> None:
    ports = [server.port for server in cluster]
    url = f"redis://127.0.0.1:{ports[0]}/0?cluster=1&prefix=fk:&timeout={TIMEOUT}"
    store = AsyncRedisStore.from_url(url)
    blocking = RedisStore.from_url(url)
    sids = [f"s{i}" for i in range(300)]
    await asyncio.gather(*(store.set(sid, {"round": 0}) for sid in sids))
    node_of = {sid: store.client.get_node_from_key(f"fk:{sid}").port for sid in sids}
    victim = cluster[2]
    acknowledged = {sid: 0 for sid in sids}
    victim.stop()
    try:
        for round_ in (1, 2, 3):
            with elapsed() as took:
                results = await asyncio.gather(
                    *(store.set(sid, {"round": round_}) for sid in sids), return_exceptions=True
                )
            assert took[0] < BOUND
            wrong_live, wrong_dead = outcome_by_node(sids, results, node_of, victim.port)
            assert not wrong_live and not wrong_dead, (wrong_live[:3], wrong_dead[:3])
            acknowledged.update(
                {s: round_ for s, r in zip(sids, results, strict=True) if r is None}
            )
        blocking_results: list[Any] = []
        with elapsed() as took:
            for sid in sids[:60]:
                try:
                    blocking.set(sid, {"round": 4})
                    blocking_results.append(None)
                except Exception as exc:
                    blocking_results.append(exc)
        assert took[0] < 60 * 0.05 + BOUND
        wrong_live, wrong_dead = outcome_by_node(sids[:60], blocking_results, node_of, victim.port)
        assert not wrong_live and not wrong_dead
        acknowledged.update(
            {s: 4 for s, r in zip(sids[:60], blocking_results, strict=False) if r is None}
        )
    finally:
        victim.start()  # its node configuration kept: it rejoins with its slots
    wait_for(lambda: cluster_ok(ports), "the cluster to agree again", seconds=15)
    results: list[Any] = []
    for _ in range(50):  # the stores find the node again
        results = await asyncio.gather(*(store.get(sid) for sid in sids), return_exceptions=True)
        if not any(isinstance(r, Exception) for r in results):
            break
        await asyncio.sleep(0.1)
    assert results == [{"round": acknowledged[sid]} for sid in sids]  # nothing answered lost
    blocking.set("s0", {"round": 5})
    assert blocking.get("s0") == {"round": 5}
    await store.clear()
    await store.close()
    blocking.close()


async def test_a_stalled_primary_stalls_only_its_own_commands(cluster: list[RedisServer]) -> None:
    ports = [server.port for server in cluster]
    wait_for(lambda: cluster_ok(ports), "the cluster to agree", seconds=15)
    url = f"redis://127.0.0.1:{ports[0]}/0?cluster=1&prefix=fs:&timeout={TIMEOUT}"
    store = AsyncRedisStore.from_url(url)
    blocking = RedisStore.from_url(url)
    sids = [f"s{i}" for i in range(200)]
    await asyncio.gather(*(store.set(sid, {"n": 0}) for sid in sids))
    node_of = {sid: store.client.get_node_from_key(f"fs:{sid}").port for sid in sids}
    victim = cluster[1]
    live = [sid for sid in sids if node_of[sid] != victim.port]
    stalled = [sid for sid in sids if node_of[sid] == victim.port]
    with stopped(victim):  # for less than the cluster's node timeout (5 s)
        with elapsed() as took:
            results = await asyncio.gather(
                *(store.set(sid, {"n": 1}) for sid in sids), return_exceptions=True
            )
        assert took[0] < BOUND
        wrong_live, wrong_dead = outcome_by_node(sids, results, node_of, victim.port)
        assert not wrong_live and not wrong_dead, (wrong_live[:3], wrong_dead[:3])
        with elapsed() as took:
            for sid in live[:20]:
                blocking.set(sid, {"n": 2})
            with pytest.raises(BackendUnavailableError):
                blocking.get(stalled[0])
        assert took[0] < 20 * 0.05 + BOUND
    assert await store.get(live[0]) == {"n": 2}
    assert blocking.get(live[0]) == {"n": 2}
    await store.set(stalled[0], {"n": 3})  # the same stores, the node answering again
    assert blocking.get(stalled[0]) == {"n": 3}
    await store.clear()
    await store.close()
    blocking.close()


async def test_a_sentinel_failover_finds_the_new_master() -> None:
    from redis.asyncio.sentinel import Sentinel as AsyncSentinel
    from redis.sentinel import Sentinel

    fast = (
        "sentinel down-after-milliseconds sessions 300",
        "sentinel failover-timeout sessions 2000",
    )
    with (
        lone_redis() as master,
        lone_redis("--replicaof", "127.0.0.1", str(master.port)) as replica,
        redis_sentinel(master, "sessions", *fast) as port,
    ):
        wait_for(
            lambda: (
                redis.Redis(port=replica.port).info("replication")["master_link_status"] == "up"
            ),
            "the replica to follow its master",
        )
        sentinel = Sentinel([("127.0.0.1", port)], socket_timeout=TIMEOUT)
        blocking = RedisStore(sentinel.master_for("sessions"), timeout=TIMEOUT)
        async_sentinel = AsyncSentinel([("127.0.0.1", port)], socket_timeout=TIMEOUT)
        store = AsyncRedisStore(async_sentinel.master_for("sessions"), timeout=TIMEOUT)
        blocking.set("a", {"n": 1})
        await store.set("b", {"n": 2})
        master.stop()
        deadline = time.monotonic() + 15
        served: set[str] = set()
        while served != {"blocking", "async"}:  # fails, each within the timeout, until promoted
            assert time.monotonic() < deadline, "the stores never found the new master"
            for name, call in (
                ("blocking", lambda: blocking.set("c", {"n": 3})),
                ("async", lambda: asyncio.ensure_future(store.set("d", {"n": 4}))),
            ):
                with elapsed() as took:
                    try:
                        pending = call()
                        if pending is not None:
                            await pending
                        served.add(name)
                    except BackendUnavailableError:
                        await asyncio.sleep(0.1)
                assert took[0] < BOUND
        with redis.Redis(port=replica.port) as promoted:
            assert promoted.get("sess:c") == b'{"n":3}' and promoted.get("sess:d") == b'{"n":4}'
        blocking.close()
        await store.close()


@pytest.mark.parametrize("command", ["ls", "stats", "doctor"])
def test_the_command_on_a_stalled_server(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    from token_session.cli import main

    with lone_redis() as server:
        url = f"{server.url}?timeout={TIMEOUT}"
        with RedisStore.from_url(url) as store:
            store.set("a", {"n": 1})
        capsys.readouterr()
        with stopped(server), elapsed() as took:
            status = main([command, "--store", url] if command != "doctor" else [command, url])
        captured = capsys.readouterr()
        assert status != 0 and took[0] < BOUND
        assert "Traceback" not in captured.err + captured.out
        assert "unavailable" in (captured.err + captured.out).lower()
