"""MemoryStore / AsyncMemoryStore: session-memory-store 0.2.2's options, and its flaws fixed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import pytest

from token_session import InvalidArgumentError, SessionDecodeError
from token_session.compat import js_iso, loads
from token_session.stores import (
    AsyncMemoryStore,
    AsyncStore,
    MemoryStore,
    Store,
    async_from_url,
    from_url,
)
from token_session.stores.base import GetAndTouchStore, encode_session, refreshed

from .conftest import NOW, Clock


@pytest.fixture
def store(clock: Clock) -> MemoryStore:
    return MemoryStore(clock=clock)


def expiring(ms_from_now: int, **data: Any) -> dict[str, Any]:
    at = datetime.fromtimestamp((NOW + ms_from_now) / 1000, timezone.utc)
    return {**data, "cookie": {"originalMaxAge": ms_from_now, "expires": js_iso(at)}}


def test_defaults_are_session_memory_stores() -> None:
    store = MemoryStore()
    assert (store.expires, store.checkperiod) == (43200, 600)
    assert isinstance(store, Store)
    assert isinstance(AsyncMemoryStore(), AsyncStore)


def test_set_get_destroy_round_trip(store: MemoryStore) -> None:
    store.set("a", {"user": "ada", "n": 1})
    assert store.get("a") == {"user": "ada", "n": 1}
    assert store.get("missing") is None
    store.destroy("a")
    store.destroy("a")  # destroying twice is fine
    assert store.get("a") is None


def test_store_keeps_its_own_copy(store: MemoryStore) -> None:
    data = {"cart": ["x"]}
    store.set("a", data)
    data["cart"].append("y")
    got = store.get("a")
    assert got == {"cart": ["x"]}
    assert got is not None
    got["cart"].append("z")
    assert store.get("a") == {"cart": ["x"]}


def test_default_ttl_is_expires_seconds(store: MemoryStore, clock: Clock) -> None:
    store.set("a", {"n": 1})
    assert store.raw("a") == ('{"n":1}', NOW + 43200 * 1000)
    clock.now += 43200 * 1000 - 1
    assert store.get("a") == {"n": 1}
    clock.now += 1
    assert store.get("a") is None


def test_expires_zero_means_never(clock: Clock) -> None:
    store = MemoryStore(expires=0, clock=clock)
    store.set("a", {})
    clock.now += 10**12
    assert store.raw("a") == ("{}", None)


def test_cookie_expires_sets_the_ttl(store: MemoryStore, clock: Clock) -> None:
    store.set("a", expiring(5000))
    text = '{"cookie":{"originalMaxAge":5000,"expires":"2023-11-14T22:13:25.000Z"}}'
    assert store.raw("a") == (text, NOW + 5000)
    clock.now += 5000
    assert store.get("a") is None


def test_past_cookie_expires_deletes(store: MemoryStore) -> None:
    store.set("a", {"n": 1})
    store.set("a", expiring(-1, n=2))
    assert store.get("a") is None


def test_touch_restarts_ttl_and_keeps_the_stored_data(store: MemoryStore, clock: Clock) -> None:
    store.set("a", {"n": 1})
    clock.now += 1000
    store.touch("a", {"n": 2})
    assert store.raw("a") == ('{"n":1}', NOW + 1000 + 43200 * 1000)


def test_touch_takes_its_expiry_from_the_given_cookie(store: MemoryStore, clock: Clock) -> None:
    store.set("a", expiring(1000, n=1))
    store.touch("a", expiring(5000, n=2))
    text, expiry = store.raw("a") or ("", 0)
    assert (loads(text)["n"], expiry) == (1, NOW + 5000)
    store.touch("a", expiring(-1, n=3))  # a cookie that has expired ends the session
    assert store.get("a") is None


def test_a_set_between_a_get_and_its_touch_is_kept(store: MemoryStore) -> None:
    store.set("a", {"n": 1})
    read = store.get("a")
    assert read is not None
    store.set("a", {"n": 2})  # another writer
    store.touch("a", read)
    assert store.get("a") == {"n": 2}


def test_touch_does_not_revive_a_destroyed_or_expired_session(
    store: MemoryStore, clock: Clock
) -> None:
    store.touch("never", {"n": 1})
    assert store.get("never") is None
    store.set("a", expiring(1000))
    clock.now += 1000
    store.touch("a", {"n": 2})
    assert store.get("a") is None


def test_all_ids_length_count_live_sessions(store: MemoryStore, clock: Clock) -> None:
    store.set("a", {"n": 1})
    store.set("b", {"n": 2})
    store.set("c", expiring(10, n=3))
    assert store.length() == 3  # session-memory-store answers 0 here
    clock.now += 10
    assert store.length() == 2
    assert sorted(store.ids()) == ["a", "b"]
    assert store.all() == {"a": {"n": 1}, "b": {"n": 2}}
    store.clear()
    assert store.length() == 0


def test_expired_sessions_are_swept_on_writes(clock: Clock) -> None:
    store = MemoryStore(expires=1, checkperiod=60, clock=clock)
    for i in range(100):
        store.set(f"s{i}", {})
    clock.now += 61_000
    store.set("fresh", {})
    assert store._entries.keys() == {"fresh"}


@pytest.mark.parametrize("sid", [None, 1, b"a", ["a"], {"$ne": ""}, "", "x" * 257])
def test_bad_sid_is_rejected_before_anything_happens(store: MemoryStore, sid: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        store.set(sid, {})
    with pytest.raises(InvalidArgumentError):
        store.get(sid)
    with pytest.raises(InvalidArgumentError):
        store.destroy(sid)
    assert store.length() == 0


@pytest.mark.parametrize("session", [None, [1], "text", {"a": {1, 2}}, {"a": b"x"}])
def test_bad_session_is_rejected_and_nothing_is_written(store: MemoryStore, session: Any) -> None:
    store.set("a", {"kept": True})
    with pytest.raises(InvalidArgumentError):
        store.set("a", session)
    assert store.get("a") == {"kept": True}


def test_corrupt_entry_raises_a_decode_error_naming_the_sid_and_is_kept(store: MemoryStore) -> None:
    store._entries["bad"] = ("{not json", 0)
    with pytest.raises(SessionDecodeError, match="'bad'") as caught:
        store.get("bad")
    assert caught.value.sid == "bad"
    assert "bad" in store._entries


def test_thread_safety_under_concurrent_writers() -> None:
    store = MemoryStore()

    def work(worker: int) -> None:
        for i in range(300):
            sid = f"s{i % 20}"
            store.set(sid, {"worker": worker, "i": i})
            store.get(sid)
            store.touch(sid, {"worker": worker, "i": i, "touched": True})
            if i % 7 == 0:
                store.destroy(sid)

    with ThreadPoolExecutor(8) as pool:
        for done in [pool.submit(work, w) for w in range(8)]:
            done.result()  # an exception in a worker fails the test
    for sid, session in store.all().items():
        assert set(session) <= {"worker", "i", "touched"}, sid


def test_from_url_and_context_manager() -> None:
    with from_url("memory://?expires=60&checkperiod=5") as store:
        assert isinstance(store, MemoryStore)
        assert (store.expires, store.checkperiod) == (60, 5)
    with pytest.raises(InvalidArgumentError, match="unknown store URL scheme"):
        from_url("nosuch://x")
    with pytest.raises(InvalidArgumentError, match="unknown memory store option"):
        from_url("memory://?ttl=5")
    assert from_url("memory://", expires=7).expires == 7  # type: ignore[attr-defined]


async def test_async_memory_store() -> None:
    async with async_from_url("memory://") as store:
        assert isinstance(store, AsyncMemoryStore)
        await store.set("a", {"n": 1})
        assert await store.get("a") == {"n": 1}
        await store.touch("a", {"n": 2})
        assert await store.all() == {"a": {"n": 1}}
        assert await store.ids() == ["a"]
        assert await store.length() == 1
        await store.destroy("a")
        assert await store.get("a") is None
        await store.set("b", {})
        await store.clear()
        assert await store.length() == 0


@pytest.mark.parametrize(
    "session",
    [
        {"cookie": {"originalMaxAge": 60_000}, "n": 1},
        {"cookie": {"originalMaxAge": 1500.7, "expires": "2000-01-01T00:00:00.000Z"}},
        {"cookie": {"originalMaxAge": -5}},  # restarted into the past: gone
        {"cookie": {"originalMaxAge": 9e15}},  # an Invalid Date: the default expiry
        {"cookie": {"maxAge": 0}},
        {"cookie": {"expires": js_iso(datetime.fromtimestamp(NOW / 1000 + 90, timezone.utc))}},
        {"n": 2},
    ],
)
def test_get_and_touch_is_get_then_touch_with_the_cookie_restarted(
    clock: Clock, session: dict[str, Any]
) -> None:
    one, two = MemoryStore(expires=1800, clock=clock), MemoryStore(expires=1800, clock=clock)
    for store in (one, two):
        store.set("s", {"cookie": {"originalMaxAge": 10_000}})
        store._entries["s"] = (encode_session(session), NOW + 5_000)  # as written, expiring soon
    clock.now += 1_000
    found = two.get("s")
    assert found is not None
    two.touch("s", refreshed(found, clock.now))
    assert one.get_and_touch("s") == found
    assert one.raw("s") == two.raw("s")
    assert isinstance(one, GetAndTouchStore)
    assert one.get_and_touch("missing") is None


def test_get_and_touch_never_revives_an_expired_session(store: MemoryStore, clock: Clock) -> None:
    store.set("s", expiring(1_000))
    clock.now += 1_000
    assert store.get_and_touch("s") is None
    assert store.raw("s") is None


def test_get_and_touch_of_a_corrupt_record_raises_and_leaves_it(
    store: MemoryStore, clock: Clock
) -> None:
    store._entries["s"] = ("{not json", NOW + 5_000)
    with pytest.raises(SessionDecodeError):
        store.get_and_touch("s")
    assert store._entries["s"] == ("{not json", NOW + 5_000)


async def test_async_get_and_touch(clock: Clock) -> None:
    store = AsyncMemoryStore(expires=60, clock=clock)
    await store.set("s", {"n": 1})
    clock.now += 30_000
    assert await store.get_and_touch("s") == {"n": 1}
    assert store.sync.raw("s") == ('{"n":1}', clock.now + 60_000)
