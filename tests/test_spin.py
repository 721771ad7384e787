"""How the blocking stores wait for an answer (``token_session/stores/spin.py``): polling a
socket for a short while, pausing where answers keep coming later; the ``spin`` option of
the Redis, MySQL and PostgreSQL stores; and their timeouts holding with it."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from token_session import BackendUnavailableError, InvalidArgumentError
from token_session.stores import MySQLStore, PostgresStore, RedisStore
from token_session.stores import spin as spin_module
from token_session.stores.spin import (
    DEFAULT_SPIN,
    ReplySpin,
    ReplySpins,
    answered,
    answering,
    check_spin,
)

from .redis_servers import lone_redis


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


def test_an_answer_already_there_ends_the_wait_at_once(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    spin = ReplySpin(0.01)
    theirs.send(b"+OK\r\n")
    started = time.perf_counter()
    spin.wait(ours.fileno())
    assert time.perf_counter() - started < 0.005
    assert spin.misses == 0 and spin.pause == 0
    assert ours.recv(16) == b"+OK\r\n"  # nothing read: the store's own read takes it


def test_answers_that_keep_missing_pause_the_polling(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    spin = ReplySpin(0.002)
    for missed in (1, 2):
        started = time.perf_counter()
        spin.wait(ours.fileno())
        assert time.perf_counter() - started >= 0.002
        assert spin.misses == missed and spin.pause == 0
    spin.wait(ours.fileno())
    assert spin.pause == 64  # the third miss in a row
    started = time.perf_counter()
    for _ in range(64):
        spin.wait(ours.fileno())  # no polling: 64 calls of 2 ms would take 128 ms
    assert time.perf_counter() - started < 0.05
    assert spin.pause == 0
    spin.wait(ours.fileno())  # polled again, missed again: a longer pause
    assert spin.pause == 128
    for _ in range(128):
        spin.wait(ours.fileno())
    theirs.send(b"+OK\r\n")
    spin.wait(ours.fileno())  # caught in time: polling goes on, the pauses start over
    assert spin.misses == 0 and spin.pause == 0 and spin.paused == 64


def test_pauses_double_up_to_a_limit(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    spin = ReplySpin(0.0001)
    pauses = []
    for _ in range(9):
        spin.wait(ours.fileno())
        while spin.misses < 3 or spin.pause == 0:
            spin.wait(ours.fileno())
        pauses.append(spin.pause)
        spin.pause = 0
    assert pauses == [64, 128, 256, 512, 1024, 2048, 4096, 4096, 4096]


def test_a_pause_counted_below_zero_by_racing_threads_ends(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = pair
    spin = ReplySpin(0.002)
    spin.pause = -2  # two threads took the last paused call at once
    started = time.perf_counter()
    spin.wait(ours.fileno())
    assert time.perf_counter() - started >= 0.002 and spin.misses == 1  # it polled


def test_no_polling_while_another_thread_waits_for_an_answer(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = pair
    spin = ReplySpin(0.005)
    other_waits, release = threading.Event(), threading.Event()

    def other() -> None:
        answering()
        other_waits.set()
        release.wait(5)
        answered()

    thread = threading.Thread(target=other)
    thread.start()
    assert other_waits.wait(5)
    answering()
    try:
        started = time.perf_counter()
        spin.wait(ours.fileno())  # the other thread's server gets the CPU: no polling
        assert time.perf_counter() - started < 0.005 and spin.misses == 0
        release.set()
        thread.join(5)
        spin.wait(ours.fileno())  # alone again: it polls
        assert spin.misses == 1
    finally:
        answered()
    assert not spin_module._ANSWERING


def test_no_polling_with_zero() -> None:
    spin = ReplySpin(0)
    spin.wait(-1)  # not even looked at
    assert spin.misses == 0


@pytest.mark.parametrize("value", [-0.001, 0.02, True, "0.001", None, float("nan")])
def test_spin_is_checked(value: object) -> None:
    with pytest.raises(InvalidArgumentError, match="spin"):
        check_spin(value)


def test_each_kind_of_call_has_its_own_spin() -> None:
    spins = ReplySpins(0.0002)
    assert spins["GET"] is spins["GET"] and spins["GET"] is not spins["EXPIRE"]
    assert spins["GET"].seconds == 0.0002
    kinds = [spins[f"SELECT {i}"] for i in range(100)]
    assert len(set(map(id, kinds))) == 63 and kinds[-1] is spins.shared  # at most 64


# -- the stores' option ------------------------------------------------------------------


def test_redis_store_spin_option(redis_url: str) -> None:
    prefix = f"spin:{secrets.token_hex(4)}:"
    with RedisStore.from_url(redis_url, prefix=prefix) as store:
        assert store._lane is not None and store._lane.spins.seconds == DEFAULT_SPIN
        store.set("a", {"n": 1})
        assert store.get("a") == {"n": 1}
        assert "GET" in store._lane.spins.by_kind and "SET" in store._lane.spins.by_kind
        store.clear()
    with RedisStore.from_url(redis_url + "?spin=0", prefix=prefix) as store:
        assert store._lane is not None and store._lane.spins.seconds == 0
        store.set("a", {"n": 1})
        assert store.get("a") == {"n": 1}
        store.clear()
    for bad in ("?spin=1", "?spin=x"):
        with pytest.raises(InvalidArgumentError, match="spin"):
            RedisStore.from_url(redis_url + bad)
    with pytest.raises(InvalidArgumentError, match="spin"):
        RedisStore(redis.Redis.from_url(redis_url), spin=-1)


def test_mysql_store_spin_option(mysql_url: str) -> None:
    table = f"t_{secrets.token_hex(6)}"
    url = f"{mysql_url}?table_name={table}&clear_expired=0"
    with MySQLStore.from_url(url + "&spin=0.0002") as store:
        assert store._source.spins.seconds == 0.0002
        store.set("a", {"n": 1})
        assert store.get("a") == {"n": 1}
        assert len(store._source.spins.by_kind) >= 2  # the lookup, the write, the read
        store.clear()
    with MySQLStore.from_url(url, spin=0) as store:
        assert store._source.spins.seconds == 0
        assert store.get("a") is None
    with pytest.raises(InvalidArgumentError, match="spin"):
        MySQLStore.from_url(url + "&spin=nope")
    with pytest.raises(InvalidArgumentError, match="spin"):
        MySQLStore.from_url(url, spin=0.5)
    assert not spin_module._ANSWERING  # every call's thread unmarked after it


def test_postgres_store_spin_option(postgres_url: str) -> None:
    table = f"t_{secrets.token_hex(6)}"
    url = f"{postgres_url}?create_table_if_missing=1&table_name={table}"
    with PostgresStore.from_url(url + "&spin=0.0002") as store:
        assert store._spins.seconds == 0.0002
        store.set("a", {"n": 1})
        assert store.get("a") == {"n": 1}
        assert len(store._spins.by_kind) >= 2
        store.clear()
    with PostgresStore.from_url(url, spin=0) as store:
        assert store._spins.seconds == 0
        assert store.get("a") is None
    with pytest.raises(InvalidArgumentError, match="spin"):
        PostgresStore.from_url(url, spin="0.001")
    assert not spin_module._ANSWERING


def test_the_timeout_holds_with_the_longest_spin() -> None:
    with lone_redis() as server:
        admin = redis.Redis(port=server.port)
        store = RedisStore.from_url(server.url + "?timeout=0.3&spin=0.01", prefix="p:")
        store.set("s", {"n": 1})
        admin.client_pause(2000)
        for _ in range(5):  # misses, then pauses: each within the timeout
            started = time.monotonic()
            with pytest.raises(BackendUnavailableError):
                store.get("s")
            assert time.monotonic() - started < 0.3 + 0.2
        store.close()
        admin.close()
    assert not spin_module._ANSWERING  # failed calls too leave no thread marked
