"""Python and the real connect-mongo (6.0.0 and 4.6.0, each with its own mongodb driver) on
one MongoDB-protocol server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pymongo
import pytest
from bson import BSON
from hypothesis import assume, given, settings

from token_session import TokenSession, TokenSessionError
from token_session.compat import Cookie, dumps, loads
from token_session.stores import MongoStore

from .databases import mongo_client
from .hammer import hammer_with_node
from .node import NodeStore, NodeStoreDriver
from .strategies import express_sessions

DB = "token_session_interop"


@pytest.fixture(scope="module")
def client(mongo_url: str) -> Iterator[pymongo.MongoClient[Any]]:
    with mongo_client(mongo_url, DB) as opened:
        yield opened


def url_with_db(mongo_url: str) -> str:
    base, _, query = mongo_url.partition("?")
    return base.rstrip("/") + "/" + DB + ("?" + query if query else "")


OPTION_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "stringify false": {"stringify": False},
    "touch after + timestamps": {"touchAfter": 3600, "timestamps": True},
}


# connect-mongo 4.6.0 has no timestamps option
COMBINATIONS = [
    (version, option_set)
    for version in ("connect-mongo-6", "connect-mongo-4")
    for option_set in sorted(OPTION_SETS)
    if not (version == "connect-mongo-4" and "timestamps" in OPTION_SETS[option_set])
]


@pytest.fixture(scope="module", params=COMBINATIONS, ids=lambda combo: f"{combo[0]}, {combo[1]}")
def pair(
    request: pytest.FixtureRequest, node_stores: NodeStoreDriver, mongo_url: str, client: Any
) -> Iterator[tuple[NodeStore, MongoStore, Any]]:
    version, option_set = request.param
    options = OPTION_SETS[option_set]
    name = f"{version}_{option_set}_{uuid.uuid4().hex[:6]}".replace("-", "_")
    name = "".join(ch for ch in name.replace(" ", "_") if ch.isalnum() or ch == "_")
    node = node_stores.open(
        version, mongoUrl=url_with_db(mongo_url), collectionName=name, **options
    )
    python = MongoStore(
        client,
        db_name=DB,
        collection_name=name,
        stringify=options.get("stringify", True),
        touch_after=options.get("touchAfter", 0),
        timestamps=options.get("timestamps", False),
    )
    yield node, python, client[DB][name]
    node.close()


def raw(collection: Any, sid: str) -> dict[str, Any]:
    """The stored document, as pymongo decodes it."""
    document = collection.find_one({"_id": sid})
    assert document is not None, sid
    return dict(document)


def without_last_modified(session: dict[str, Any] | None) -> dict[str, Any] | None:
    assert session is not None
    return {key: value for key, value in session.items() if key != "lastModified"}


def keys_collide_in_utf8(value: Any) -> bool:
    if isinstance(value, list):
        return any(keys_collide_in_utf8(item) for item in value)
    if not isinstance(value, dict):
        return False
    stored = {
        key.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace") for key in value
    }
    return len(stored) != len(value) or any(keys_collide_in_utf8(item) for item in value.values())


def bson_of(value: Any) -> bytes:
    return bytes(BSON.encode({"v": value}))


def same_document(node_doc: dict[str, Any], py_doc: dict[str, Any]) -> None:
    assert list(node_doc) == list(py_doc)
    assert bson_of(node_doc["session"]) == bson_of(py_doc["session"])
    for key in node_doc:
        if key in ("_id", "session"):
            continue
        assert type(node_doc[key]) is type(py_doc[key]), key
        if isinstance(node_doc[key], datetime):
            assert abs((node_doc[key] - py_doc[key]).total_seconds()) < 2, key


@given(session=express_sessions)
@settings(max_examples=25)
def test_python_writes_the_document_node_writes(
    pair: tuple[NodeStore, MongoStore, Any], session: dict[str, Any]
) -> None:
    node, python, collection = pair
    # keys differing only in lone surrogates become one key in UTF-8: the Node driver writes
    # it twice into the document, we refuse such a session (see test_mongo_store)
    assume(not keys_collide_in_utf8(session))
    text = dumps(session)
    node_sid, py_sid = uuid.uuid4().hex, uuid.uuid4().hex
    refused = node.call_answer("set", sid=node_sid, session=text, shape="express")
    if not refused["ok"]:  # e.g. a key holding NUL in a stored document: both must refuse
        with pytest.raises(TokenSessionError):
            python.set(py_sid, loads(text))
        return
    python.set(py_sid, loads(text))
    same_document(raw(collection, node_sid), raw(collection, py_sid))
    # each reads what the other wrote (lastModified, with touch_after, is each write's time)
    assert without_last_modified(python.get(node_sid)) == without_last_modified(python.get(py_sid))
    assert without_last_modified(loads(node.get(py_sid) or "null")) == without_last_modified(
        loads(node.get(node_sid) or "null")
    )


def test_touch_from_either_side_gives_the_same_expires(
    pair: tuple[NodeStore, MongoStore, Any],
) -> None:
    node, python, collection = pair
    sid = uuid.uuid4().hex
    python.set(sid, {"n": 1, "cookie": Cookie(max_age=60_000).to_json()})
    later = Cookie(max_age=7_200_000).to_json()
    node.touch(sid, dumps({"n": 1, "cookie": later}))
    by_node = raw(collection, sid)["expires"]
    python.touch(sid, {"n": 1, "cookie": later})
    by_python = raw(collection, sid)["expires"]
    assert type(by_node) is type(by_python) is datetime
    assert abs((by_node - by_python).total_seconds()) < 1
    assert abs((by_python - datetime.now(timezone.utc)).total_seconds() - 7200) < 2


def test_token_session_tokens_are_served_by_both(pair: tuple[NodeStore, MongoStore, Any]) -> None:
    node, python, _ = pair
    tokens = TokenSession(python)
    data = {"user": "ada", "n": 2, "tags": ["x"]}
    node_sid = node.token_session("new", data=dumps(data))["sessionId"]
    got = tokens.get(node_sid)
    assert got is not None and got["user"] == "ada" and got["tags"] == ["x"]
    py_sid = tokens.new(data).sid
    from_node = node.token_session("get", sid=py_sid)
    assert from_node is not None and loads(from_node)["user"] == "ada"
    node.token_session("destroy", sid=py_sid)
    assert tokens.get(py_sid) is None


def test_node_and_python_at_once_on_the_same_ids(pair: tuple[NodeStore, MongoStore, Any]) -> None:
    node, python, _ = pair
    sids = [f"h{i}-{uuid.uuid4().hex[:6]}" for i in range(6)]
    stats, _ = hammer_with_node(node, python, sids, ("set", "get", "destroy"), ms=2000, in_flight=4)
    assert stats["corrupt"] == []
    for sid in sids:
        session = python.get(sid)
        assert session is None or session["writer"] in ("node", "python")


def test_an_invalid_cookie_date_is_written_as_node_writes_it(
    pair: tuple[NodeStore, MongoStore, Any],
) -> None:
    # new Date("not a date") is an Invalid Date: js-bson stores it as 0 (1970), in expires
    # and, with stringify false, in the cookie, so the session reads as expired on both sides
    node, python, collection = pair
    cookie = {"originalMaxAge": None, "expires": "not a date", "httpOnly": True, "path": "/"}
    session = {"cookie": cookie, "n": 1}
    node_sid, py_sid = uuid.uuid4().hex, uuid.uuid4().hex
    assert node.call_answer("set", sid=node_sid, session=dumps(session), shape="express")["ok"]
    python.set(py_sid, session)
    by_node, by_python = raw(collection, node_sid), raw(collection, py_sid)
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert by_node["expires"] == by_python["expires"] == epoch
    if not python.codec.stringify:
        assert bson_of(by_node["session"]) == bson_of(by_python["session"])
        assert by_python["session"]["cookie"]["expires"] == epoch
    assert python.get(node_sid) is None and python.get(py_sid) is None
