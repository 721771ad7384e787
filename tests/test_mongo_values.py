"""Values in connect-mongo's documents: dates as the Node driver's js-bson writes a JS Date
(past year 9999 and Invalid ones included), read back as such; naive datetimes refused on
every path; documents that hold no session skipped by all()."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import bson
import pymongo
import pytest
from bson.datetime_ms import DatetimeMS

from token_session import InvalidArgumentError, SessionDecodeError
from token_session.compat import Cookie, JsDate
from token_session.stores import AsyncMongoStore, MongoStore
from token_session.stores.mongo import MongoCodec
from token_session.stores.mongo.values import js_bson, ms_of

from .databases import mongo_client
from .node import NODE_PROJECT, NodeUnavailableError, ensure_node_project

DB = "token_session_dates"


@pytest.fixture
def name() -> str:
    return f"v_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def client(mongo_url: str) -> Iterator[pymongo.MongoClient[Any]]:
    with mongo_client(mongo_url, DB) as opened:
        yield opened


# JS time values: past year 9999, before year 1, JS's last instant, the epoch, one past
# the range (an Invalid Date, as NaN is)
TIME_VALUES = [1e15, -1e15, 8.64e15, 253_402_300_800_000, 0, 8.64e15 + 1, float("nan")]

_SERIALIZE = """
const bson = require('bson');
const serialize = (bson.BSON && bson.BSON.serialize) || bson.serialize;
const values = JSON.parse(process.argv[1]);
console.log(JSON.stringify(values.map(
  (ms) => Buffer.from(serialize({d: new Date(ms === null ? NaN : ms)})).toString('hex'))));
"""


def node_bson(project: str) -> list[bytes]:
    """``BSON.serialize({d: new Date(ms)})`` by the js-bson of a Node project."""
    try:
        ensure_node_project()
    except NodeUnavailableError as exc:
        pytest.skip(str(exc))
    values = [None if ms != ms else ms for ms in TIME_VALUES]
    result = subprocess.run(
        ["node", "-e", _SERIALIZE, json.dumps(values)],
        cwd=NODE_PROJECT / project,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return [bytes.fromhex(text) for text in json.loads(result.stdout)]


@pytest.mark.parametrize("project", [".", "legacy"], ids=["bson 7 (mongodb 6)", "bson 4"])
def test_a_date_is_the_bson_the_node_driver_writes(project: str) -> None:
    ours = [bson.encode({"d": js_bson(JsDate(ms))}) for ms in TIME_VALUES]
    assert ours == node_bson(project)


def test_a_cookie_past_year_9999_is_stored_and_expires_as_in_node() -> None:
    codec = MongoCodec(stringify=False)
    cookie = Cookie(max_age=1e15, clock=lambda: 0).to_json()
    assert isinstance(cookie["expires"], JsDate)
    op = codec.set_op("far", {"cookie": cookie})
    fields = op.args[1]["$set"]
    assert fields["expires"] == DatetimeMS(10**15)
    assert fields["session"]["cookie"]["expires"] == DatetimeMS(10**15)
    # the stored text of a stringified session: new Date(text) when express-session reads it
    text_cookie = {"originalMaxAge": 1e15, "expires": "+033658-09-27T01:46:40.000Z"}
    stored = MongoCodec().set_op("far", {"cookie": text_cookie}).args[1]["$set"]
    assert stored["expires"] == DatetimeMS(10**15)
    as_document = codec.encode({"cookie": text_cookie})
    assert as_document["cookie"]["expires"] == DatetimeMS(10**15)


def test_an_invalid_date_is_stored_as_the_epoch_as_in_node() -> None:
    codec = MongoCodec(stringify=False)
    session = {"cookie": {"originalMaxAge": None, "expires": "not a date"}}
    fields = codec.set_op("bad", session).args[1]["$set"]
    assert fields["expires"] == datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert fields["session"]["cookie"]["expires"] == datetime(1970, 1, 1, tzinfo=timezone.utc)


def test_a_stored_date_past_year_9999_reads_back_as_a_js_date(mongo_url: str) -> None:
    # the tests' server cannot hold such a date (mongod can): the document as the Node
    # driver sends it, decoded with the store's collection's codec options
    raw = node_bson(".")[0]
    client: pymongo.MongoClient[dict[str, Any]]
    with pymongo.MongoClient(mongo_url, connect=False) as client:
        for store in (
            MongoStore(client, db_name=DB, stringify=False),
            MongoStore.from_url(mongo_url, db_name=DB, stringify=False),
        ):
            value = bson.decode(raw, codec_options=store.collection.codec_options)["d"]
            assert value == DatetimeMS(10**15)
            document = {"_id": "far", "session": {"cookie": {"expires": value}}, "expires": value}
            session = store.codec.decode("far", document)
            assert session == {"cookie": {"expires": JsDate(1e15)}}
            assert store.codec.record_of(document).expires_ms == 10**15
            assert ms_of(value) == 10**15
            store.close()


@pytest.mark.parametrize("stringify", [True, False])
def test_naive_datetimes_are_refused_on_every_path(mongo_url: str, stringify: bool) -> None:
    naive = datetime(2030, 1, 1)
    name = f"d_{uuid.uuid4().hex[:10]}"
    with MongoStore.from_url(
        mongo_url, db_name=DB, collection_name=name, stringify=stringify
    ) as store:
        for session in (
            {"at": naive},
            {"nested": [{"at": naive}]},
            {"cookie": {"originalMaxAge": 1, "expires": naive}},
        ):
            with pytest.raises(InvalidArgumentError, match="naive"):
                store.set("a", session)
        store.set("a", {"n": 1})
        with pytest.raises(InvalidArgumentError, match="naive"):
            store.touch("a", {"cookie": {"expires": naive}})
        assert store.get("a") == ({"n": 1} if stringify else {"cookie": None, "n": 1})
        assert store.ids() == ["a"]
        store.collection.drop()


def test_aware_datetimes_are_stored_as_their_instant(mongo_url: str) -> None:
    at = datetime(2030, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    name = f"d_{uuid.uuid4().hex[:10]}"
    with MongoStore.from_url(mongo_url, db_name=DB, collection_name=name, stringify=False) as store:
        store.set("a", {"at": at})
        got: Any = store.get("a")
        assert got["at"] == at and got["at"].utcoffset() == timedelta(0)
        store.collection.drop()


async def test_async_all_skips_a_corrupt_document(mongo_url: str, name: str, client: Any) -> None:
    async with AsyncMongoStore.from_url(mongo_url, db_name=DB, collection_name=name) as store:
        await store.set("good", {"n": 1})
        client[DB][name].insert_one({"_id": "bad", "session": 7})
        assert await store.all() == {"good": {"n": 1}}
        with pytest.raises(SessionDecodeError, match="'bad'"):
            await store.get("bad")
    client[DB].drop_collection(name)


def test_an_unserialize_that_fails_is_a_decode_error(client: Any, name: str) -> None:
    store = MongoStore(
        client, db_name=DB, collection_name=name, serialize=dict, unserialize=lambda s: s["x"]
    )
    store.set("a", {"n": 1})
    with pytest.raises(SessionDecodeError, match=r"'a'.*unserialize"):
        store.get("a")
    assert store.all() == {}


@pytest.mark.parametrize("stringify", [True, False])
def test_hostile_sessions_are_refused_and_nothing_is_written(
    client: Any, name: str, stringify: bool
) -> None:
    store = MongoStore(client, db_name=DB, collection_name=name, stringify=stringify)
    store.set("a", {"n": 1})
    deep: dict[str, Any] = {}
    inner = deep
    for _ in range(5000):
        inner["a"] = inner = {}
    for session, reason in (
        ({"x": "a" * 17_000_000}, "16 MB"),
        (deep, "deep"),
        ({"k\x00": 1} if not stringify else {"n": float("nan"), "k": object()}, ""),
    ):
        with pytest.raises(InvalidArgumentError, match=reason or None):
            store.set("a", session)
    assert store.get("a") == ({"n": 1} if stringify else {"cookie": None, "n": 1})
    client[DB].drop_collection(name)
