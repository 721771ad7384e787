"""Every documented MongoStore option, given in the URL's query, to ``from_url`` as a keyword
and to the constructor, does the same thing; bad options and names are InvalidArgumentError
before any I/O."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

import pymongo
import pytest

from token_session import InvalidArgumentError
from token_session.stores import AsyncMongoStore, MongoStore, async_from_url, from_url

DB = "token_session_options"
OTHER_DB = "token_session_options_b"
WAYS = ("url", "from_url", "constructor")


@pytest.fixture(scope="module")
def client(mongo_url: str) -> Iterator[pymongo.MongoClient[Any]]:
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_url, tz_aware=True)
    yield client
    client.drop_database(DB)
    client.drop_database(OTHER_DB)
    client.close()


def with_query(url: str, options: dict[str, Any]) -> str:
    text = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in options.items()}
    base, _, query = url.partition("?")
    return base + "?" + "&".join(part for part in (query, urlencode(text)) if part)


Make = Callable[..., MongoStore]


@pytest.fixture(params=WAYS)
def make(request: pytest.FixtureRequest, mongo_url: str, client: Any) -> Iterator[Make]:
    made: list[MongoStore] = []

    def build(**options: Any) -> MongoStore:
        options.setdefault("db_name", DB)
        options.setdefault("collection_name", f"o_{uuid.uuid4().hex[:10]}")
        if request.param == "url":
            store = MongoStore.from_url(with_query(mongo_url, options))
        elif request.param == "from_url":
            store = MongoStore.from_url(mongo_url, **options)
        else:
            store = MongoStore(client, **options)
        made.append(store)
        return store

    yield build
    for store in made:
        store.close()


def document(client: Any, store: MongoStore, sid: str) -> dict[str, Any]:
    found = client[store.collection.database.name][store.codec.collection_name].find_one(
        {"_id": sid}
    )
    assert found is not None
    return dict(found)


def seconds_from_now(value: datetime) -> float:
    return (value - datetime.now(timezone.utc)).total_seconds()


def test_db_name_and_collection_name(make: Make, client: Any) -> None:
    store = make(db_name=OTHER_DB, collection_name="named_here")
    store.set("a", {"n": 1})
    assert client[OTHER_DB]["named_here"].find_one({"_id": "a"})["session"] == '{"n":1}'
    client[OTHER_DB].drop_collection("named_here")


def test_stringify(make: Make, client: Any) -> None:
    as_text, as_document = make(stringify=True), make(stringify=False)
    as_text.set("a", {"n": 1})
    as_document.set("a", {"n": 1})
    assert document(client, as_text, "a")["session"] == '{"n":1}'
    assert document(client, as_document, "a")["session"] == {"cookie": None, "n": 1}


def test_ttl(make: Make, client: Any) -> None:
    store = make(ttl=120)
    store.set("a", {"n": 1})
    assert abs(seconds_from_now(document(client, store, "a")["expires"]) - 120) < 3


def test_touch_after(make: Make, client: Any) -> None:
    store, plain = make(touch_after=3600), make()
    store.set("a", {"n": 1})
    plain.set("a", {"n": 1})
    assert isinstance(document(client, store, "a")["lastModified"], datetime)
    assert "lastModified" not in document(client, plain, "a")


def test_timestamps(make: Make, client: Any) -> None:
    store = make(timestamps=True)
    store.set("a", {"n": 1})
    assert {"createdAt", "updatedAt"} <= set(document(client, store, "a"))


def test_auto_remove(make: Make, client: Any) -> None:
    native, disabled = make(auto_remove="native"), make(auto_remove="disabled")
    for store in (native, disabled):
        store.set("a", {"n": 1})
    ttl_indexes = [
        [ix for ix in store.collection.list_indexes() if "expireAfterSeconds" in ix]
        for store in (native, disabled)
    ]
    assert len(ttl_indexes[0]) == 1 and ttl_indexes[1] == []


def test_auto_remove_interval(make: Make, client: Any) -> None:
    store = make(auto_remove="interval", auto_remove_interval=0.3 / 60)
    store.set("live", {"n": 1})
    store.set("dead", {"n": 2, "cookie": {"expires": "2000-01-01T00:00:00.000Z"}})
    deadline = time.monotonic() + 15
    while document_count(client, store) > 1:
        assert time.monotonic() < deadline, "the interval clean-up removed nothing in 15 s"
        time.sleep(0.1)
    assert store.get("live") == {"n": 1}


def document_count(client: Any, store: MongoStore) -> int:
    name = store.codec.collection_name
    return int(client[store.collection.database.name][name].count_documents({}))


def test_timeout(make: Make) -> None:
    assert make(timeout=2.5).timeout == 2.5
    assert make().timeout == 5.0


@pytest.mark.parametrize(
    "bad",
    [
        {"collection_name": "a$b"},
        {"collection_name": ".x"},
        {"collection_name": "a\x00b"},
        {"db_name": "a/b"},
        {"db_name": "a b"},
        {"auto_remove": "sometimes"},
        {"auto_remove_interval": 10**6},
        {"timeout": 0},
        {"timeout": -1},
        {"timeout": "inf"},
    ],
)
def test_bad_options_and_names_are_refused_when_the_store_is_made(
    make: Make, bad: dict[str, Any]
) -> None:
    with pytest.raises(InvalidArgumentError):
        make(**bad)


def test_keyword_only_options(mongo_url: str, client: Any) -> None:
    name = f"o_{uuid.uuid4().hex[:10]}"
    options: dict[str, Any] = {
        "db_name": DB,
        "collection_name": name,
        "transform_id": lambda sid: "t-" + sid,
        "serialize": lambda s: {"wrapped": dict(s)},
        "unserialize": lambda d: d["wrapped"],
        "write_operation_options": {"w": 1},
    }
    with MongoStore.from_url(mongo_url, **options) as made, MongoStore(client, **options) as given:
        for store in (made, given):
            assert store.collection.write_concern.document == {"w": 1}
            store.set("a", {"n": 1})
            assert client[DB][name].find_one({"_id": "t-a"})["session"] == {"wrapped": {"n": 1}}
            assert store.get("a") == {"n": 1}
            client[DB][name].delete_many({})


def test_timeout_precedence(mongo_url: str) -> None:
    base = mongo_url.partition("?")[0]
    cases = [
        (f"{base}?timeoutMS=2500", {}, 2.5),
        (f"{base}?timeoutMS=2500&timeout=1.5", {}, 1.5),
        (f"{base}?timeout=1.5", {"timeout": 0.5}, 0.5),
        (base, {}, 5.0),
    ]
    for url, options, expected in cases:
        with MongoStore.from_url(url, **options) as store:
            assert store.timeout == expected, url


def test_the_users_url_options_are_kept_as_written(mongo_url: str) -> None:
    url = with_query(mongo_url, {"collection_name": "kept"}) + "&appname=a%26b%3Dc"
    with MongoStore.from_url(url) as store:
        assert store.codec.collection_name == "kept"
        metadata = store.client.options.pool_options.metadata
        assert metadata["application"] == {"name": "a&b=c"}


@pytest.mark.parametrize(
    "url",
    [
        "mongodb://a:b:c@/x",
        "mongodb://127.0.0.1:abc/",
        "mongodb://127.0.0.1/?timeout=abc",
        "mongodb://127.0.0.1/?timeout=0",
        "mongodb://127.0.0.1/?timeoutMS=0",
        "mongodb://127.0.0.1/?timeoutMS=soon",
        "mongodb://127.0.0.1/?stringify=maybe",
        "mongodb://127.0.0.1/?ttl=abc",
        "mongodb://127.0.0.1/?collection_name=a%24b",
        "mongodb://127.0.0.1/a%20b",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidArgumentError):
        from_url(url)
    with pytest.raises(InvalidArgumentError):
        async_from_url(url)


async def test_the_asyncio_store_takes_the_same_url_options(mongo_url: str, client: Any) -> None:
    name = f"o_{uuid.uuid4().hex[:10]}"
    options = {"db_name": DB, "collection_name": name, "stringify": False, "ttl": 120}
    store = async_from_url(with_query(mongo_url, {**options, "timeout": 2}))
    assert isinstance(store, AsyncMongoStore) and store.timeout == 2.0
    async with store:
        await store.set("a", {"n": 1})
    stored = client[DB][name].find_one({"_id": "a"})
    assert stored["session"] == {"cookie": None, "n": 1}
    assert abs(seconds_from_now(stored["expires"]) - 120) < 3
