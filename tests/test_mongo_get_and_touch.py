"""get_and_touch on MongoDB: one findAndModify doing what get, then touch with the cookie
restarted, do in two: the same answer or error, the same expiry to the millisecond, the same
stored text, over sessions of every shape, blocking and asyncio; one round trip for the
sessions express-session writes; and against the real connect-mongo 6."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import pymongo
import pytest

from token_session import TokenSession
from token_session.compat.cookie import from_ms, now_ms
from token_session.stores import MongoStore
from token_session.stores.mongo import AsyncMongoStore
from token_session.stores.mongo.values import js_date

from . import get_and_touch_cases as cases
from .conftest import Clock
from .get_and_touch_cases import (
    NODE_LIFETIMES,
    Sync,
    counted_calls,
    get_then_touch,
    node_cookie,
    node_touched,
    outcome,
)
from .node import NodeOracle, NodeStoreDriver

DB = "token_session_onestep"

SESSIONS: list[Any] = [*cases.SESSIONS, *cases.INVALID_DATES]
# stored values that are no session, or odd texts; and values BSON holds that are no text
ODD: list[Any] = [
    *cases.JSON_ODD,
    cases.LONE_SURROGATE,
    *cases.NOT_JSON,
    {"an": "object"},  # not text
    17,
]
# the document's expiry before: live ones only (an expired one is found by neither)
EXPIRIES: list[Any] = ["later", "none", "far"]


def counted(store: Any) -> list[str]:
    """The pymongo method of each call ``store`` sends from now on."""
    return counted_calls(store, lambda op: op.method)


@pytest.fixture(scope="module")
def client(mongo_url: str) -> Iterator[pymongo.MongoClient[Any]]:
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_url)
    yield client
    client.drop_database(DB)
    client.close()


@pytest.fixture(params=["blocking", "asyncio"])
def store(
    request: pytest.FixtureRequest, mongo_url: str, clock: Clock
) -> Iterator[tuple[Sync, str]]:
    name = f"c_{uuid.uuid4().hex[:8]}"
    base = mongo_url.rstrip("/").partition("?")[0] + "/" + DB
    if request.param == "blocking":
        blocking = MongoStore.from_url(base, collection_name=name)
        blocking.codec = dataclasses.replace(blocking.codec, clock=clock)
        yield Sync(blocking), name
        blocking.close()
        return
    loop = asyncio.new_event_loop()
    aio = AsyncMongoStore.from_url(base, collection_name=name)
    aio.codec = dataclasses.replace(aio.codec, clock=clock)
    yield Sync(aio, loop), name
    loop.run_until_complete(aio.close())
    loop.close()


def put(collection: Any, sid: str, value: Any, expiry: str, now: int) -> None:
    document: dict[str, Any] = {"_id": sid, "session": value}
    if expiry == "later":
        document["expires"] = js_date(now + 3_600_000)
    elif expiry == "far":
        document["expires"] = js_date(now + 300 * 365 * 86_400_000)
    collection.insert_one(document)


def stored(collection: Any, sid: str) -> tuple[Any, Any, Any]:
    document = collection.find_one({"_id": sid})
    assert document is not None
    expires = document.get("expires")
    return document.get("session"), expires, document.get("lastModified")


def assert_same(store: Sync, name: str, client: Any, clock: Clock, values: list[Any]) -> int:
    """One step and get then touch on twin documents; how many pairs were compared."""
    collection = client[DB][name]
    checked = 0
    for value in values:
        text = value if not isinstance(value, dict) or "an" in value else json.dumps(value)
        for expiry in EXPIRIES:
            one, two = secrets.token_hex(8), secrets.token_hex(8)
            put(collection, one, text, expiry, clock.now)
            put(collection, two, text, expiry, clock.now)
            before = stored(collection, one)
            clock.now += 1234
            ours = outcome(store.get_and_touch, one)
            theirs = outcome(get_then_touch, store, two, clock)
            assert ours == theirs, (value, expiry)
            assert stored(collection, one) == stored(collection, two), (value, expiry)
            assert stored(collection, one)[0] == before[0]
            checked += 1
    return checked


def test_one_step_leaves_what_get_then_touch_leave(
    store: tuple[Sync, str], client: Any, clock: Clock
) -> None:
    sync, name = store
    assert assert_same(sync, name, client, clock, SESSIONS + ODD) == 3 * len(SESSIONS + ODD)
    # and again in the reverse order: each expectation the previous call left
    assert assert_same(sync, name, client, clock, list(reversed(SESSIONS + ODD))) > 0


def test_missing_and_expired_sessions(store: tuple[Sync, str], client: Any, clock: Clock) -> None:
    sync, name = store
    collection = client[DB][name]
    assert sync.get_and_touch("nobody") is None
    collection.insert_one(
        {"_id": "old", "session": json.dumps({"n": 1}), "expires": js_date(clock.now - 1)}
    )
    assert sync.get_and_touch("old") is None
    assert collection.find_one({"_id": "old"})["expires"] == js_date(clock.now - 1).replace(
        tzinfo=None
    )


@pytest.mark.parametrize("life", [60_000, 1_234, None])
def test_one_round_trip_for_what_express_session_writes(
    store: tuple[Sync, str], client: Any, clock: Clock, life: int | None
) -> None:
    sync, name = store
    session = {"cookie": {"originalMaxAge": life, "expires": None}, "n": 1}
    for sid in ("a", "b", "c"):
        sync.set(sid, session)
    sent = counted(sync.store)
    assert sync.get_and_touch("a") == session  # learns the lifetime
    assert sent in (["find_one_and_update"], ["find_one_and_update", "update_one"])
    for sid in ("b", "c"):
        sent.clear()
        clock.now += 777
        assert sync.get_and_touch(sid) == session
        assert sent == ["find_one_and_update"]
        expected = clock.now + (life if life is not None else 1_209_600_000)
        stored_ms = client[DB][name].find_one({"_id": sid})["expires"]
        assert stored_ms == from_ms(expected).replace(tzinfo=None)


@pytest.mark.parametrize(
    "options",
    [
        {"touch_after": 3600},
        {"timestamps": True},
        {"stringify": False},
        {"write_operation_options": {"w": 0}},
    ],
    ids=["touch_after", "timestamps", "stringify false", "w 0"],
)
def test_get_then_touch_where_one_step_is_not_exact(
    mongo_url: str, client: Any, options: dict[str, Any]
) -> None:
    name = f"c_{uuid.uuid4().hex[:8]}"
    base = mongo_url.rstrip("/").partition("?")[0] + "/" + DB
    with MongoStore.from_url(base, collection_name=name, **options) as blocking:
        session = {"cookie": {"originalMaxAge": 60_000, "expires": None}, "n": 1}
        blocking.set("a", session)
        sent = counted(blocking)
        found = blocking.get_and_touch("a")
        assert found is not None and found["n"] == 1  # with lastModified under touch_after
        assert sent[0] == "find_one"


def test_token_session_gets_and_touches_in_one_round_trip(mongo_url: str) -> None:
    base = mongo_url.rstrip("/").partition("?")[0] + "/" + DB
    with MongoStore.from_url(base, collection_name=f"c_{uuid.uuid4().hex[:8]}") as blocking:
        tokens = TokenSession(blocking)
        created = tokens.new_with_ttl({"user": "ada"}, 60)
        tokens.get_and_touch(created.sid)
        sent = counted(blocking)
        found = tokens.get_and_touch(created.sid)
        assert sent == ["find_one_and_update"]
        assert found is not None and found["user"] == "ada"


def test_node_reads_the_touched_session_with_the_expiry_its_own_get_touch_leaves(
    node_stores: NodeStoreDriver, node: NodeOracle, mongo_url: str, client: Any
) -> None:
    """connect-mongo 6 writes a session; ours get_and_touch it; Node's get then express-
    session's touch (resetMaxAge) then connect-mongo's touch do the same to a twin."""
    name = f"c_{uuid.uuid4().hex[:8]}"
    base = mongo_url.rstrip("/").partition("?")[0] + "/" + DB
    node_store = node_stores.open("connect-mongo-6", mongoUrl=base, collectionName=name)
    ours = MongoStore(client, db_name=DB, collection_name=name)
    collection = client[DB][name]
    try:
        for life in NODE_LIFETIMES:
            cookie = node_cookie(life)
            session = {"cookie": cookie, "n": 1}
            one, two = secrets.token_hex(8), secrets.token_hex(8)
            for sid in (one, two):
                node_store.set(sid, json.dumps(session))
            written = collection.find_one({"_id": one})["session"]
            found = ours.get_and_touch(one)
            assert found == json.loads(node_store.get(one) or "null") == json.loads(written)
            assert collection.find_one({"_id": one})["session"] == written  # Node's text
            node_store.touch(two, node_touched(node, node_store.get(two) or ""))
            times = {d["_id"]: d["expires"] for d in collection.find({"_id": {"$in": [one, two]}})}
            assert abs((times[one] - times[two]).total_seconds()) <= 1
            expected = now_ms() + (life if life is not None else 1_209_600_000)
            assert (
                abs(
                    times[one].replace(tzinfo=None) - from_ms(expected).replace(tzinfo=None)
                ).total_seconds()
                < 3
            )
    finally:
        node_store.close()
        ours.close()
