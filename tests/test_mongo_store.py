"""MongoStore / AsyncMongoStore against a MongoDB-protocol server: connect-mongo's rules."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pymongo
import pytest
from bson import Int64
from bson.raw_bson import RawBSONDocument

from token_session import (
    BackendUnavailableError,
    InvalidArgumentError,
    SessionDecodeError,
    SessionNotFoundError,
    TokenSession,
)
from token_session.compat import Cookie, js_iso
from token_session.stores import AsyncMongoStore, MongoStore, async_from_url, from_url
from token_session.stores.mongo import MongoRecords
from token_session.stores.records import readable

from .mongo_server import MongoServer

DB = "token_session_tests"


def in_ms(ms: int) -> str:
    return js_iso(datetime.now(timezone.utc) + timedelta(milliseconds=ms))


@pytest.fixture(scope="module")
def client(mongo_url: str) -> Iterator[pymongo.MongoClient[Any]]:
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_url, tz_aware=True)
    yield client
    client.close()


@pytest.fixture
def name() -> str:
    return f"s_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def collection(client: pymongo.MongoClient[Any], name: str) -> Iterator[Any]:
    yield client[DB][name]
    client[DB].drop_collection(name)


def store_for(client: Any, name: str, **options: Any) -> MongoStore:
    return MongoStore(client, db_name=DB, collection_name=name, **options)


def test_document_written_by_set(client: Any, name: str, collection: Any) -> None:
    store = store_for(client, name)
    session: dict[str, Any] = {"user": "zoë", "n": 1.0, "cookie": Cookie(max_age=60_000).to_json()}
    store.set("a", session)
    doc = collection.find_one({"_id": "a"})
    assert set(doc) == {"_id", "session", "expires"}
    assert doc["session"] == store.codec.encode(session)
    assert isinstance(doc["expires"], datetime)
    assert abs((doc["expires"] - datetime.now(timezone.utc)).total_seconds() - 60) < 2
    assert store.get("a") == {
        **session,
        "n": 1,
        "cookie": {**session["cookie"], "expires": js_iso(session["cookie"]["expires"])},
    }


def test_no_cookie_expires_means_now_plus_ttl(client: Any, name: str, collection: Any) -> None:
    store_for(client, name, ttl=100).set("a", {"cookie": {"maxAge": 0}})
    expires = collection.find_one({"_id": "a"})["expires"]
    assert abs((expires - datetime.now(timezone.utc)).total_seconds() - 100) < 2


def test_expired_documents_are_hidden_from_get_all_ids_length(
    client: Any, name: str, collection: Any
) -> None:
    store = store_for(client, name, auto_remove="disabled")
    store.set("live", {"n": 1})
    store.set("dead", {"n": 2, "cookie": {"expires": in_ms(-5000)}})
    collection.insert_one({"_id": "no-expiry", "session": '{"n":3}'})
    assert store.get("dead") is None
    assert store.get("no-expiry") == {"n": 3}
    assert sorted(store.ids()) == ["live", "no-expiry"]
    assert store.length() == 2
    assert sorted(store.all()) == ["live", "no-expiry"]
    assert collection.count_documents({}) == 3


def test_the_or_filter_never_returns_another_users_session(client: Any, name: str) -> None:
    store = store_for(client, name)
    store.set("alice", {"user": "alice"})
    assert store.get("bob") is None
    store.set("bob", {"user": "bob", "cookie": {"expires": in_ms(-1000)}})
    assert store.get("bob") is None


def test_touch_sets_only_expires_and_fails_for_a_missing_session(
    client: Any, name: str, collection: Any
) -> None:
    store = store_for(client, name)
    store.set("a", {"n": 1})
    before = collection.find_one({"_id": "a"})
    store.touch("a", {"n": 999, "cookie": {"expires": in_ms(3_600_000)}})
    after = collection.find_one({"_id": "a"})
    assert after["session"] == before["session"]
    assert isinstance(after["expires"], datetime)
    assert abs((after["expires"] - datetime.now(timezone.utc)).total_seconds() - 3600) < 2
    with pytest.raises(SessionNotFoundError):
        store.touch("missing", {})
    assert collection.find_one({"_id": "missing"}) is None


@pytest.mark.parametrize("stringify", [True, False])
def test_a_read_only_mapping_is_written_as_the_dict_it_holds(
    client: Any, name: str, collection: Any, stringify: bool
) -> None:
    store = store_for(client, name, stringify=stringify)
    cookie = {"expires": in_ms(60_000)}
    store.set("a", MappingProxyType({"user": "ada", "cookie": cookie}))
    doc = collection.find_one({"_id": "a"})
    stored = store.codec.encode({"user": "ada", "cookie": cookie})
    assert doc["session"] == stored
    assert abs((doc["expires"] - datetime.now(timezone.utc)).total_seconds() - 60) < 2
    store.touch("a", MappingProxyType({"cookie": {"expires": in_ms(3_600_000)}}))
    doc = collection.find_one({"_id": "a"})
    assert doc["session"] == stored
    assert abs((doc["expires"] - datetime.now(timezone.utc)).total_seconds() - 3600) < 2
    for not_a_mapping in (["user"], "user", None):
        with pytest.raises(InvalidArgumentError):
            store.set("b", not_a_mapping)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            store.touch("a", not_a_mapping)  # type: ignore[arg-type]
    assert collection.find_one({"_id": "b"}) is None
    assert collection.find_one({"_id": "a"})["session"] == stored


def test_touch_after_skips_recent_touches(client: Any, name: str, collection: Any) -> None:
    store = store_for(client, name, touch_after=3600)
    store.set("a", {"n": 1})
    session = store.get("a")
    assert session is not None and isinstance(session["lastModified"], datetime)
    expires = collection.find_one({"_id": "a"})["expires"]
    store.touch("a", {**session, "cookie": {"expires": in_ms(9_000_000)}})
    assert collection.find_one({"_id": "a"})["expires"] == expires  # skipped
    old = {**session, "lastModified": datetime.now(timezone.utc) - timedelta(hours=2)}
    time.sleep(0.01)  # a later millisecond than set's lastModified, however fast the server
    store.touch("a", {**old, "cookie": {"expires": in_ms(9_000_000)}})
    doc = collection.find_one({"_id": "a"})
    assert doc["expires"] != expires
    assert doc["lastModified"] > session["lastModified"]
    store.set("a", session)  # set drops the lastModified it was given and writes its own
    assert "lastModified" not in collection.find_one({"_id": "a"})["session"]


def test_timestamps(client: Any, name: str, collection: Any) -> None:
    store = store_for(client, name, timestamps=True)
    store.set("a", {"n": 1})
    first = collection.find_one({"_id": "a"})
    time.sleep(0.01)
    store.set("a", {"n": 2})
    store.touch("a", {"n": 2})
    second = collection.find_one({"_id": "a"})
    assert second["createdAt"] == first["createdAt"]
    assert second["updatedAt"] > first["updatedAt"]


def test_stringify_false_stores_a_document_with_js_number_types(
    client: Any, name: str, collection: Any
) -> None:
    store = store_for(client, name, stringify=False)
    store.set(
        "a",
        {
            "small": 7,
            "integral": 3.0,
            "big": 2**40,
            "frac": 0.5,
            "cookie": Cookie(max_age=1000).to_json(),
        },
    )
    raw = collection.with_options(
        codec_options=collection.codec_options.with_options(document_class=RawBSONDocument)
    ).find_one({"_id": "a"})
    session = raw["session"]
    assert type(session["small"]) is int and type(session["integral"]) is int
    assert type(session["big"]) is float and type(session["frac"]) is float
    assert list(session["cookie"]) == [
        "originalMaxAge",
        "partitioned",
        "priority",
        "expires",
        "secure",
        "httpOnly",
        "domain",
        "path",
        "sameSite",
    ]
    assert isinstance(session["cookie"]["expires"], datetime)
    assert next(iter(session)) == "cookie"
    assert not isinstance(session["small"], Int64)


def test_stringify_false_lone_surrogates_become_replacement_characters(
    client: Any, name: str, collection: Any
) -> None:
    store = store_for(client, name, stringify=False)
    store.set("a", {"k\ud800": "v\udc00", "pair": "\ud83d\ude00"})
    assert collection.find_one({"_id": "a"})["session"] == {
        "cookie": None,
        "k\ufffd": "v\ufffd",
        "pair": "\U0001f600",
    }
    with pytest.raises(InvalidArgumentError, match="collide"):
        store.set("b", {chr(0xD800): 1, chr(0xDBFF): 2})
    assert collection.find_one({"_id": "b"}) is None


def test_native_auto_remove_creates_the_ttl_index(client: Any, name: str, collection: Any) -> None:
    store_for(client, name).set("a", {})
    indexes = {tuple(ix["key"].items()): ix for ix in collection.list_indexes()}
    ttl_index = indexes[(("expires", 1),)]
    assert ttl_index["expireAfterSeconds"] == 0


def test_interval_auto_remove_deletes_only_expired_and_stops_on_close(
    client: Any, name: str, collection: Any
) -> None:
    store = store_for(client, name, auto_remove="interval", auto_remove_interval=0.5 / 60)
    store.set("live", {"n": 1})
    collection.insert_one(
        {
            "_id": "dead",
            "session": "{}",
            "expires": datetime.now(timezone.utc) - timedelta(seconds=5),
        }
    )
    deadline = time.monotonic() + 10
    while collection.find_one({"_id": "dead"}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert collection.find_one({"_id": "dead"}) is None
    assert collection.find_one({"_id": "live"}) is not None
    store.close()
    assert store._remover is not None and not store._remover.is_alive()


@pytest.mark.parametrize("sid", [{"$ne": None}, ["a"], {"$gt": ""}, 42, None, b"a", ""])
def test_a_sid_that_is_not_a_str_raises_before_any_query(
    client: Any, name: str, collection: Any, sid: Any
) -> None:
    store = store_for(client, name)
    store.set("victim", {"secret": 1})
    calls: tuple[Callable[[], object], ...] = (
        lambda: store.get(sid),
        lambda: store.set(sid, {}),
        lambda: store.touch(sid, {}),
        lambda: store.destroy(sid),
    )
    for call in calls:
        with pytest.raises(InvalidArgumentError):
            call()
    assert collection.find_one({"_id": "victim"}) is not None
    assert collection.count_documents({}) == 1


def test_corrupt_and_encrypted_documents_raise_and_are_kept(
    client: Any, name: str, collection: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = store_for(client, name)
    store.set("good", {"n": 1})
    collection.insert_one({"_id": "bad", "session": "{not json"})
    collection.insert_one(
        {"_id": "enc", "session": "MIIBOQQQSnEvWWNFd2NvY05MZkFBPQRAazNJWDJSeU5ZMVNjajJhTTJlNUFG"}
    )
    collection.insert_one({"_id": "array", "session": "[1,2]"})
    collection.insert_one({"_id": "number", "session": 7})
    with pytest.raises(SessionDecodeError, match="'bad'"):
        store.get("bad")
    with pytest.raises(SessionDecodeError, match="encrypted"):
        store.get("enc")
    # all() skips what it cannot decode, naming it in a warning, as every store does
    with caplog.at_level("WARNING", logger="token_session.stores.mongo"):
        assert store.all() == {"good": {"n": 1}}
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert all(f"'{sid}'" in warned for sid in ("bad", "enc", "array", "number"))
    assert sorted(store.ids()) == ["array", "bad", "enc", "good", "number"]
    # the command's pages: texts as stored, and what holds no text in failed; the texts
    # that are no session are moved there too before any use
    page = MongoRecords(store).page(None, 10)
    assert list(page.failed) == ["number"]
    readable_page = readable(page)
    assert [record.sid for record in readable_page.records] == ["good"]
    assert sorted(readable_page.failed) == ["array", "bad", "enc", "number"]
    assert collection.count_documents({}) == 5


def test_transform_id_and_custom_serializers(client: Any, name: str, collection: Any) -> None:
    store = store_for(
        client,
        name,
        transform_id=lambda sid: "t-" + sid,
        serialize=lambda s: {"wrapped": dict(s)},
        unserialize=lambda d: d["wrapped"],
    )
    store.set("a", {"n": 1})
    assert collection.find_one({"_id": "t-a"})["session"] == {"wrapped": {"n": 1}}
    assert store.get("a") == {"n": 1}


def test_write_operation_options_and_unknown_options(client: Any, name: str) -> None:
    store = store_for(client, name, write_operation_options={"w": 1})
    assert store.collection.write_concern.document == {"w": 1}
    with pytest.raises(InvalidArgumentError):
        store_for(client, name, auto_remove="sometimes")
    with pytest.raises(InvalidArgumentError):
        store_for(client, name, ttl_seconds=5)


def test_from_url_and_token_session(mongo_url: str, name: str, client: Any) -> None:
    with from_url(mongo_url, db_name=DB, collection_name=name) as store:
        assert isinstance(store, MongoStore)
        tokens = TokenSession(store)
        created = tokens.new_with_ttl({"code": 1}, 60)
        session = tokens.get(created.sid)
        assert session is not None
        assert session["code"] == 1 and session["cookie"]["originalMaxAge"] == 60_000
        tokens.destroy(created.sid)
        assert tokens.get(created.sid) is None
    client[DB].drop_collection(name)


def test_unreachable_server_is_a_typed_error_in_time() -> None:
    store = MongoStore.from_url("mongodb://127.0.0.1:9/", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError):
        store.get("a")
    assert time.monotonic() - started < 10
    store.close()


def test_server_stopped_mid_run_is_a_typed_error_then_the_same_store_recovers() -> None:
    with MongoServer.temporary() as server:
        store = MongoStore.from_url(server.url, db_name=DB, timeout=1.0)
        store.set("a", {"n": 1})
        server.stop()
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError):
            store.get("a")
        with pytest.raises(BackendUnavailableError):
            store.set("a", {"n": 2})
        assert time.monotonic() - started < 15
        server.start()  # same port, same data, as a restarted mongod
        assert store.get("a") == {"n": 1}  # the failed set wrote nothing
        store.set("a", {"n": 3})
        assert store.get("a") == {"n": 3}
        store.close()


async def test_async_store_server_stopped_mid_run_then_recovers() -> None:
    with MongoServer.temporary() as server:
        store = AsyncMongoStore.from_url(server.url, db_name=DB, timeout=1.0)
        await store.set("a", {"n": 1})
        server.stop()
        with pytest.raises(BackendUnavailableError):
            await store.touch("a", {"n": 1})
        server.start()
        assert await store.get("a") == {"n": 1}
        await store.close()


async def test_async_store(mongo_url: str, name: str, client: Any) -> None:
    store = async_from_url(
        mongo_url, db_name=DB, collection_name=name, auto_remove="interval", auto_remove_interval=1
    )
    assert isinstance(store, AsyncMongoStore)
    async with store:
        await asyncio.gather(*(store.set(f"s{i}", {"i": i}) for i in range(20)))
        assert await store.get("s3") == {"i": 3}
        assert await store.length() == 20
        assert sorted(await store.ids()) == sorted(f"s{i}" for i in range(20))
        assert (await store.all())["s4"] == {"i": 4}
        await store.touch("s1", {"cookie": {"expires": in_ms(50_000)}})
        with pytest.raises(SessionNotFoundError):
            await store.touch("nope", {})
        await store.destroy("s1")
        assert await store.get("s1") is None
        with pytest.raises(InvalidArgumentError):
            await store.get({"$ne": 1})  # type: ignore[arg-type]
        await store.clear()
        assert await store.length() == 0
    assert store._remover is not None and store._remover.done()
    client[DB].drop_collection(name)
