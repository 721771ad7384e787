"""AsyncRedisStore's own connection (token_session/stores/redis/lean.py): when it is used, how it
connects (password, ACL user, database, Unix socket), and what it does when Redis stops
answering, goes away, or sends an error."""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import signal
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import hiredis
import pytest
import redis
import redis.asyncio
from hypothesis import given
from hypothesis import strategies as st
from redis._parsers import _AsyncRESP2Parser
from redis.asyncio.cluster import RedisCluster
from redis.connection import Encoder, PythonRespSerializer

from token_session import BackendUnavailableError, TokenSessionError
from token_session.stores import AsyncRedisStore
from token_session.stores.redis.resp import (
    PythonReader,
    ReplyError,
    lean_settings,
    python_resp,
    resp,
)
from token_session.stores.redis.senders import ConnectionPipeline

from .faults import sigstop
from .redis_servers import lone_redis


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[AsyncRedisStore]:
    store = AsyncRedisStore.from_url(redis_url, prefix=f"lean-{uuid.uuid4().hex[:8]}:")
    assert store._lean is not None
    yield store
    await store.clear()
    await store.close()


def test_used_for_plain_connections_only() -> None:
    plain = redis.asyncio.Redis(host="127.0.0.1", db=2, password="pw", socket_timeout=1)
    settings = lean_settings(plain.connection_pool)
    assert settings is not None
    assert (settings.db, settings.password) == (2, "pw")
    unix = lean_settings(redis.asyncio.Redis.from_url("unix:///tmp/r.sock?db=1").connection_pool)
    assert unix is not None and unix.path == "/tmp/r.sock" and unix.db == 1
    tls = redis.asyncio.Redis(ssl=True, ssl_cert_reqs=ssl.CERT_NONE)
    assert lean_settings(tls.connection_pool) is None
    resp3 = redis.asyncio.Redis(protocol=3)
    assert lean_settings(resp3.connection_pool) is None
    python_parser = redis.asyncio.Redis.from_url("redis://h", parser_class=_AsyncRESP2Parser)
    settings = lean_settings(python_parser.connection_pool)
    assert settings is not None and settings.hiredis is False
    cluster_store = AsyncRedisStore(RedisCluster(host="127.0.0.1", port=1))
    assert cluster_store._lean is None


async def test_password_database_and_client_name() -> None:
    with lone_redis("--requirepass", "s3cret") as server:
        url = f"redis://:s3cret@127.0.0.1:{server.port}/3?client_name=web-1"
        async with AsyncRedisStore.from_url(url) as store:
            assert store._lean is not None
            await store.set("a", {"n": 1})
            assert await store.get("a") == {"n": 1}
            check = redis.Redis(port=server.port, password="s3cret", db=3)
            assert check.get("sess:a") == b'{"n":1}'
            names = [client["name"] for client in check.client_list()]
            assert "web-1" in names
            check.close()
        async with AsyncRedisStore.from_url(f"redis://:wrong@127.0.0.1:{server.port}/0") as bad:
            with pytest.raises(BackendUnavailableError, match="AUTH"):
                await bad.get("a")


async def test_acl_user_and_unix_socket(tmp_path: Path) -> None:
    sock = str(tmp_path / "redis.sock")
    with lone_redis("--unixsocket", sock, "--unixsocketperm", "700") as server:
        admin = redis.Redis(port=server.port)
        admin.execute_command("ACL", "SETUSER", "app", "on", ">pw", "~sess:*", "+@all")
        async with AsyncRedisStore.from_url(f"unix://app:pw@{sock}?db=0") as store:
            assert store._lean is not None and store._lean.settings.path == sock
            await store.set("u", {"via": "socket"})
            assert await store.get("u") == {"via": "socket"}
        assert admin.get("sess:u") == b'{"via":"socket"}'
        admin.close()


async def test_a_server_that_stops_answering_times_out_then_the_store_recovers() -> None:
    with lone_redis() as server:
        store = AsyncRedisStore.from_url(server.url, timeout=0.5)
        await store.set("a", {"n": 1})
        assert server.process is not None
        sigstop(server.process.pid)
        try:
            started = time.monotonic()
            results = await asyncio.gather(
                *(store.get("a") for _ in range(5)), return_exceptions=True
            )
            assert all(isinstance(r, BackendUnavailableError) for r in results), results
            assert time.monotonic() - started < 5
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        assert await store.get("a") == {"n": 1}
        await store.close()


async def test_error_replies_are_each_callers_own(store: AsyncRedisStore, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.hset(store.codec.prefix + "h", "a", "b")
    await store.set("ok", {"n": 1})
    results = await asyncio.gather(
        store.get("h"), store.get("ok"), store.get("h"), store.get("none"), return_exceptions=True
    )
    assert isinstance(results[0], TokenSessionError) and "WRONGTYPE" in str(results[0])
    assert not isinstance(results[0], BackendUnavailableError)
    assert results[1] == {"n": 1} and results[3] is None
    client.close()


async def test_close_fails_what_is_waiting_instead_of_hanging(redis_url: str) -> None:
    store = AsyncRedisStore.from_url(redis_url, prefix=f"lean-{uuid.uuid4().hex[:8]}:")
    pending = [asyncio.ensure_future(store.get(f"s{i}")) for i in range(10)]
    await asyncio.sleep(0)
    await store.close()
    results = await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 5)
    assert all(r is None or isinstance(r, TokenSessionError) for r in results)


def test_one_store_serves_one_event_loop_after_another(redis_url: str) -> None:
    store = AsyncRedisStore.from_url(redis_url, prefix=f"lean-{uuid.uuid4().hex[:8]}:")
    asyncio.run(store.set("a", {"n": 1}))
    assert asyncio.run(store.get("a")) == {"n": 1}
    asyncio.run(store.clear())


async def test_without_hiredis_the_python_reader_serves(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url, parser_class=_AsyncRESP2Parser)
    store = AsyncRedisStore(client, prefix=f"lean-{uuid.uuid4().hex[:8]}:")
    assert store._lean is not None and not store._lean.settings.hiredis
    sessions = {f"s{i}": {"i": i, "text": "é" * i} for i in range(50)}
    await asyncio.gather(*(store.set(sid, s) for sid, s in sessions.items()))
    assert await asyncio.gather(*(store.get(sid) for sid in sessions)) == list(sessions.values())
    await store.clear()
    await client.aclose()


replies = st.recursive(
    st.one_of(
        st.binary().map(lambda b: b"$%d\r\n%b\r\n" % (len(b), b)),
        st.integers(-(2**63), 2**63 - 1).map(lambda n: b":%d\r\n" % n),
        st.sampled_from([b"+OK\r\n", b"$-1\r\n", b"-ERR wrong\r\n", b"*-1\r\n"]),
    ),
    lambda items: st.lists(items, max_size=4).map(lambda xs: b"*%d\r\n" % len(xs) + b"".join(xs)),
    max_leaves=10,
)


@given(st.lists(replies, min_size=1, max_size=8), st.integers(1, 17))
def test_python_reader_reads_as_hiredis_does(stream: list[bytes], chunk: int) -> None:
    data = b"".join(stream)
    ours, theirs = PythonReader(), hiredis.Reader()
    got: list[object] = []
    expected: list[object] = []
    for start in range(0, len(data), chunk):
        ours.feed(data[start : start + chunk])
        while (reply := ours.gets()) is not False:
            got.append(reply)
    theirs.feed(data)
    while (reply := theirs.gets()) is not False:
        expected.append(reply)

    def plain(value: object) -> object:
        if isinstance(value, (ReplyError, hiredis.ReplyError)):
            return ("error", str(value))
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    assert [plain(r) for r in got] == [plain(r) for r in expected]


async def test_a_command_that_cannot_be_written_fails_alone(redis_url: str) -> None:
    class LoneSurrogates:
        @staticmethod
        def stringify(session: object) -> str:
            return "\ud800" if session == {"bad": True} else json.dumps(session)

        @staticmethod
        def parse(text: str) -> object:
            return json.loads(text)

    prefix = f"lean-{uuid.uuid4().hex[:8]}:"
    async with AsyncRedisStore.from_url(
        redis_url, prefix=prefix, serializer=LoneSurrogates
    ) as store:
        results = await asyncio.gather(
            store.set("a", {"n": 1}),
            store.set("b", {"bad": True}),
            store.set("c", {"n": 3}),
            return_exceptions=True,
        )
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], TokenSessionError)
        # the replies still reach their own callers
        assert await asyncio.gather(store.get("a"), store.get("c")) == [{"n": 1}, {"n": 3}]
        await store.clear()


def test_on_uvloop(redis_url: str) -> None:
    import uvloop

    async def main() -> None:
        prefix = f"lean-{uuid.uuid4().hex[:8]}:"
        async with AsyncRedisStore.from_url(redis_url, prefix=prefix) as store:
            await asyncio.gather(*(store.set(f"s{i}", {"i": i}) for i in range(100)))
            assert await store.get("s42") == {"i": 42}
            await store.clear()
        with lone_redis() as server:
            store = AsyncRedisStore.from_url(server.url, timeout=1.0)
            await store.set("a", {"n": 1})
            server.stop()
            with pytest.raises(BackendUnavailableError):
                await store.get("a")
            server.start()
            assert await store.get("a") is None  # a new, empty server
            await store.close()

    uvloop.run(main())


async def test_where_it_cannot_serve_one_of_the_clients_connections_does(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url, protocol=3)  # RESP3: not for the lean one
    store = AsyncRedisStore(client, prefix=f"lean-{uuid.uuid4().hex[:8]}:")
    assert store._lean is None and isinstance(store._run, ConnectionPipeline)
    client_sync = redis.Redis.from_url(redis_url)
    client_sync.hset(store.codec.prefix + "h", "a", "b")
    await store.set("ok", {"n": 1})
    task = asyncio.ensure_future(store.get("ok"))
    results = await asyncio.gather(
        store.get("ok"), store.get("h"), store.get("none"), return_exceptions=True
    )
    task.cancel()
    assert results[0] == {"n": 1} and results[2] is None
    assert isinstance(results[1], TokenSessionError) and "WRONGTYPE" in str(results[1])
    assert await store.get("ok") == {"n": 1}
    await store.clear()
    client_sync.close()
    await client.aclose()


arguments = st.one_of(st.text(max_size=30), st.integers(-(2**70), 2**70))


commands = st.builds(
    lambda name, args: (name, *args),
    st.sampled_from(["GET", "SET", "EXPIRE", "DEL"]),
    st.lists(arguments, max_size=5),
)


@given(st.lists(commands, min_size=1, max_size=5))
def test_both_packers_write_what_redis_py_writes(commands: list[tuple[object, ...]]) -> None:
    encoder = Encoder("utf-8", "strict", False)
    packer = PythonRespSerializer(6000, encoder.encode)
    expected = b"".join(b"".join(packer.pack(*command)) for command in commands)
    encodable = all(
        not isinstance(arg, str) or not any(0xD800 <= ord(ch) <= 0xDFFF for ch in arg)
        for command in commands
        for arg in command
    )
    if not encodable:
        with pytest.raises(UnicodeEncodeError):
            resp(commands)
        return
    assert resp(commands) == expected  # hiredis's packer, installed with the dev extra
    assert python_resp(commands, "utf-8", "strict") == expected


@pytest.mark.parametrize("argument", [True, 1.5, None, bytearray(b"x")])
def test_the_python_packer_refuses_what_the_store_never_sends(argument: object) -> None:
    with pytest.raises(TypeError):
        python_resp([("SET", "k", argument)], "utf-8", "strict")


def test_both_packers_send_bytes_as_they_are() -> None:
    # clear() deletes keys as SCAN gave them, those that are not UTF-8 too
    command = ("DEL", b"sess:\xff\xfe", "sess:a")
    expected = b"*3\r\n$3\r\nDEL\r\n$7\r\nsess:\xff\xfe\r\n$6\r\nsess:a\r\n"
    assert resp([command]) == python_resp([command], "utf-8", "strict") == expected


async def test_commands_in_flight_go_in_batches_answered_in_order(store: AsyncRedisStore) -> None:
    await store.set("s", {"n": 0})  # connected
    lean = store._lean
    assert lean is not None and lean.protocol is not None
    transport = lean.protocol.transport
    writes: list[bytes] = []
    write = transport.write
    transport.write = lambda data: (writes.append(data), write(data))[1]
    sessions = {f"s{i}": {"n": i} for i in range(64)}
    await asyncio.gather(*(store.set(sid, s) for sid, s in sessions.items()))
    got = await asyncio.gather(*(store.get(sid) for sid in sessions))
    assert got == list(sessions.values())
    sent = [data.count(b"$3\r\nSET\r\n") + data.count(b"$3\r\nGET\r\n") for data in writes]
    # the first command goes at once; each batch then waits only to be as large as the one
    # on the wire: several writes, none holding all 64
    assert sum(sent) == 128
    assert len(sent) > 4 and max(sent) < 64


async def replies_read_together(store: AsyncRedisStore, *coros: Any) -> list[asyncio.Task[Any]]:
    """Tasks running ``coros``, whose commands Redis answers while the store's socket is not
    read, so that one read then hands all the replies to the protocol at once."""
    await store.set("warm", {"n": 0})  # connected
    lean = store._lean
    assert lean is not None and lean.protocol is not None
    transport = lean.protocol.transport
    transport.pause_reading()
    tasks = [asyncio.ensure_future(coro) for coro in coros]
    for _ in range(50):  # until every command is on the wire and answered
        await asyncio.sleep(0.01)
    assert not any(task.done() for task in tasks)
    transport.resume_reading()
    return tasks


async def test_tasks_resumed_by_one_read_keep_their_context_and_can_cancel_each_other(
    store: AsyncRedisStore,
) -> None:
    await store.set("a", {"n": 1})
    await store.set("b", {"n": 2})
    name: contextvars.ContextVar[str] = contextvars.ContextVar("name", default="none")
    seen: list[str] = []
    later: list[asyncio.Task[Any]] = []

    async def first() -> Any:
        name.set("first")
        found = await store.get("a")
        seen.append(name.get())
        later[0].cancel()  # answered in the same read, not yet resumed
        return found

    async def second() -> Any:
        name.set("second")
        found = await store.get("b")
        seen.append(name.get())
        return found

    tasks = await replies_read_together(store, first(), second())
    later.append(tasks[1])
    assert await tasks[0] == {"n": 1}
    with pytest.raises(asyncio.CancelledError):
        await tasks[1]
    assert seen == ["first"]
    assert await store.get("b") == {"n": 2}  # the connection goes on


def test_a_task_that_raises_keyboard_interrupt_leaves_the_others_answered(redis_url: str) -> None:
    loop = asyncio.new_event_loop()
    store = AsyncRedisStore.from_url(redis_url, prefix=f"lean-{uuid.uuid4().hex[:8]}:")

    async def interrupted() -> None:
        await store.get("a")
        raise KeyboardInterrupt

    tasks: list[asyncio.Task[Any]] = []

    async def run() -> None:
        await store.set("a", {"n": 1})
        tasks.extend(
            await replies_read_together(store, interrupted(), store.get("a"), store.get("b"))
        )
        await asyncio.sleep(60)  # the read of the replies interrupts the loop meanwhile

    try:
        main = loop.create_task(run())
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(main)
        assert isinstance(tasks[0].exception(), KeyboardInterrupt)
        # the replies read with the interrupted task's still reach their tasks
        _, pending = loop.run_until_complete(asyncio.wait(tasks[1:], timeout=5))
        assert not pending
        assert (tasks[1].result(), tasks[2].result()) == ({"n": 1}, None)
        main.cancel()
        loop.run_until_complete(asyncio.wait([main]))
        loop.run_until_complete(store.clear())
        loop.run_until_complete(store.close())
    finally:
        loop.close()
