"""Encrypted sessions with the real connect-mongo: 6.0.0's ``crypto`` (kruptein 3.0.8) and
``cryptoAdapter`` (its kruptein and WebCrypto adapters), 4.6.0's ``crypto`` over kruptein 3.0.8,
3.1.1, 3.1.7 and the 3.4.0 its range resolves to today; and the command on such a collection."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pymongo
import pytest
from hypothesis import assume, given, settings

from token_session.cli import main
from token_session.compat import dumps, loads
from token_session.errors import SessionDecodeError
from token_session.stores import MongoStore
from token_session.stores.mongo import create_kruptein_adapter, create_webcrypto_adapter
from token_session.stores.mongo.crypto import der_octets, der_read_octets

from .databases import mongo_client
from .node import NodeStore, NodeStoreDriver
from .strategies import express_sessions
from .test_mongo_interop import keys_collide_in_utf8

DB = "token_session_crypto"
SECRET = "Sq2-Kx9!session secret"  # meets kruptein 3.1+'s complexity rule
OTHER = "Wr0ng-S3cret!!xx"

# id: (Node store, Node options, Python options)
VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "6.0.0 crypto": (
        "connect-mongo-6",
        {"crypto": {"secret": SECRET}},
        {"crypto": {"secret": SECRET}},
    ),
    "6.0.0 crypto hex sha256": (
        "connect-mongo-6",
        {"crypto": {"secret": SECRET, "encodeas": "hex", "hashing": "sha256"}},
        {"crypto": {"secret": SECRET, "encodeas": "hex", "hashing": "sha256"}},
    ),
    "6.0.0 crypto stringify false": (
        "connect-mongo-6",
        {"crypto": {"secret": SECRET}, "stringify": False},
        {"crypto": {"secret": SECRET}, "stringify": False},
    ),
    "6.0.0 kruptein adapter": (
        "connect-mongo-6",
        {"krupteinAdapter": {"secret": SECRET}},
        {"crypto_adapter": create_kruptein_adapter(SECRET)},
    ),
    "6.0.0 webcrypto gcm": (
        "connect-mongo-6",
        {"webcrypto": {"secret": SECRET}},
        {"crypto_adapter": create_webcrypto_adapter(SECRET)},
    ),
    "6.0.0 webcrypto cbc base64url": (
        "connect-mongo-6",
        {"webcrypto": {"secret": SECRET, "algorithm": "AES-CBC", "encoding": "base64url"}},
        {
            "crypto_adapter": create_webcrypto_adapter(
                SECRET, algorithm="AES-CBC", encoding="base64url"
            )
        },
    ),
    "6.0.0 webcrypto gcm hex, salt, iterations": (
        "connect-mongo-6",
        {"webcrypto": {"secret": SECRET, "encoding": "hex", "salt": "pepper", "iterations": 1000}},
        {
            "crypto_adapter": {
                "adapter": "webcrypto",
                "secret": SECRET,
                "encoding": "hex",
                "salt": "pepper",
                "iterations": 1000,
            }
        },
    ),
    "4.6.0 kruptein 3.0.8": (
        "connect-mongo-4",
        {"crypto": {"secret": SECRET}, "kruptein": "3.0.8"},
        {"crypto": {"secret": SECRET}},
    ),
    "4.6.0 kruptein 3.0.8 stringify false": (
        "connect-mongo-4",
        {"crypto": {"secret": SECRET}, "kruptein": "3.0.8", "stringify": False},
        {"crypto": {"secret": SECRET}, "stringify": False},
    ),
    "4.6.0 kruptein 3.1.1": (
        "connect-mongo-4",
        {"crypto": {"secret": SECRET}, "kruptein": "3.1.1"},
        {"crypto": {"secret": SECRET, "kruptein": "3.1.1"}},
    ),
    "4.6.0 kruptein 3.1.7": (
        "connect-mongo-4",
        {"crypto": {"secret": SECRET}, "kruptein": "3.1.7"},
        {"crypto": {"secret": SECRET, "kruptein": "3.1.7"}},
    ),
}


def session(**data: Any) -> dict[str, Any]:
    expires = datetime.now(timezone.utc) + timedelta(hours=1)
    cookie = {
        "originalMaxAge": 3600000,
        "expires": expires.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "httpOnly": True,
        "path": "/",
    }
    return {"cookie": cookie, "user": "ada", "roles": ["admin"], "note": "é\u2028😀", **data}


@pytest.fixture(scope="module")
def client(mongo_url: str) -> Iterator[pymongo.MongoClient[Any]]:
    with mongo_client(mongo_url, DB) as opened:
        yield opened


def url_with_db(mongo_url: str, db: str = DB) -> str:
    base, _, query = mongo_url.partition("?")
    return base.rstrip("/") + "/" + db + ("?" + query if query else "")


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def pair(
    request: pytest.FixtureRequest, node_stores: NodeStoreDriver, mongo_url: str, client: Any
) -> Iterator[tuple[NodeStore, MongoStore, Any, dict[str, Any]]]:
    name, node_options, python_options = VARIANTS[request.param]
    collection = "c_" + uuid.uuid4().hex[:10]
    node = node_stores.open(
        name, mongoUrl=url_with_db(mongo_url), collectionName=collection, **node_options
    )
    python = MongoStore(client, db_name=DB, collection_name=collection, **python_options)
    yield node, python, client[DB][collection], python_options
    node.close()


def stored(collection: Any, sid: str) -> Any:
    document = collection.find_one({"_id": sid})
    assert document is not None
    return document["session"]


def test_each_reads_what_the_other_wrote(pair: tuple[NodeStore, MongoStore, Any, Any]) -> None:
    node, python, collection, _ = pair
    node_sid, py_sid = uuid.uuid4().hex, uuid.uuid4().hex
    data = session(n=1)
    node.set(node_sid, dumps(data))
    python.set(py_sid, data)
    for sid in (node_sid, py_sid):  # never the clear text
        text = stored(collection, sid)
        assert isinstance(text, str) and not set(text) & set('{":, ')
    assert python.get(node_sid) == data
    assert loads(node.get(py_sid) or "null") == data
    assert python.get(py_sid) == data


@given(data=express_sessions)
@settings(max_examples=10, deadline=None)
def test_any_session_across(
    pair: tuple[NodeStore, MongoStore, Any, Any], data: dict[str, Any]
) -> None:
    """What express-session hands a store, any JSON in it, through each encryption both ways."""
    node, python, _, _ = pair
    assume(not keys_collide_in_utf8(data))
    text = dumps(data)
    node_sid, py_sid = uuid.uuid4().hex, uuid.uuid4().hex
    if not node.call_answer("set", sid=node_sid, session=text, shape="express")["ok"]:
        return  # (a key BSON cannot hold, with stringify false: refused by both, elsewhere)
    python.set(py_sid, loads(text))
    assert python.get(node_sid) == python.get(py_sid)
    assert node.get(py_sid) == node.get(node_sid)


def test_touch_and_destroy_across(pair: tuple[NodeStore, MongoStore, Any, Any]) -> None:
    node, python, collection, _ = pair
    node_sid, py_sid = uuid.uuid4().hex, uuid.uuid4().hex
    data = session(n=2)
    node.set(node_sid, dumps(data))
    python.set(py_sid, data)
    later = session(n=2)
    later["cookie"]["expires"] = "2099-01-01T00:00:00.000Z"
    python.touch(node_sid, later)
    node.touch(py_sid, dumps(later))
    for sid in (node_sid, py_sid):
        expires = collection.find_one({"_id": sid})["expires"]
        assert expires.year == 2099
        assert python.get(sid) == data and loads(node.get(sid) or "null") == data
    python.destroy(node_sid)
    node.destroy(py_sid)
    assert python.get(py_sid) is None and node.get(node_sid) is None


def test_wrong_secret_and_tampering(
    pair: tuple[NodeStore, MongoStore, Any, Any], client: Any
) -> None:
    node, python, collection, options = pair
    sid = uuid.uuid4().hex
    node.set(sid, dumps(session()))
    before = collection.find_one({"_id": sid})
    wrong = {k: v for k, v in options.items() if k not in ("crypto", "crypto_adapter")}
    if "crypto" in options:
        wrong["crypto"] = {**options["crypto"], "secret": OTHER}
    elif isinstance(options["crypto_adapter"], dict):
        wrong["crypto_adapter"] = {**options["crypto_adapter"], "secret": OTHER}
    else:
        adapter = options["crypto_adapter"]
        kind = (
            create_webcrypto_adapter if hasattr(adapter, "iterations") else create_kruptein_adapter
        )
        settings = (
            {}
            if kind is create_kruptein_adapter
            else {"algorithm": adapter.algorithm, "encoding": adapter.encoding}
        )
        wrong["crypto_adapter"] = kind(OTHER, **settings)
    other = MongoStore(client, db_name=DB, collection_name=collection.name, **wrong)
    with pytest.raises(SessionDecodeError) as raised:
        other.get(sid)
    assert "wrong secret" in raised.value.reason and raised.value.sid == sid
    assert collection.find_one({"_id": sid}) == before  # left alone

    # one byte of the ciphertext changed: both refuse it
    text = stored(collection, sid)
    decode, encode = _codec_of(options)
    raw = bytearray(decode(text))
    if "crypto" in options or "webcrypto" not in repr(options.get("crypto_adapter")).lower():
        fields = der_read_octets(bytes(raw))  # kruptein: one character of the ct text
        ct = bytearray(fields[0])
        middle = len(ct) // 2
        ct[middle] = ord("A") if ct[middle] != ord("A") else ord("B")
        raw = bytearray(der_octets([bytes(ct), *fields[1:]]))
    else:  # WebCrypto: the last byte of the next-to-last block (CBC: the padding breaks)
        raw[-17] ^= 0xFF
    collection.update_one({"_id": sid}, {"$set": {"session": encode(bytes(raw))}})
    with pytest.raises(SessionDecodeError) as raised:
        python.get(sid)
    assert "tampered" in raised.value.reason
    assert not node.call_answer("get", sid=sid)["ok"]


def _codec_of(options: dict[str, Any]) -> tuple[Any, Any]:
    adapter = options.get("crypto_adapter")
    if options.get("crypto", {}).get("encodeas") == "hex":
        return bytes.fromhex, bytes.hex
    encoding = (
        adapter.get("encoding") if isinstance(adapter, dict) else getattr(adapter, "encoding", None)
    )
    if encoding == "hex":
        return bytes.fromhex, bytes.hex
    if encoding == "base64url":
        return (
            lambda t: base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)),
            lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="),
        )
    return base64.b64decode, lambda b: base64.b64encode(b).decode()


def test_kruptein_3_4_records(node_stores: NodeStoreDriver, mongo_url: str, client: Any) -> None:
    """connect-mongo 4.6.0 over kruptein 3.4.0 (what its ^3.0.0 resolves to today) writes
    records it cannot read back (kruptein 3.4 unwraps what connect-mongo then parses again);
    we read them, and write them when asked for that version."""
    collection = "c_" + uuid.uuid4().hex[:10]
    crypto = {"secret": SECRET}
    node = node_stores.open(
        "connect-mongo-4", mongoUrl=url_with_db(mongo_url), collectionName=collection, crypto=crypto
    )
    python = MongoStore(client, db_name=DB, collection_name=collection, crypto=crypto)
    sid, data = uuid.uuid4().hex, session()
    node.set(sid, dumps(data))
    # kruptein 3.4.0 decrypts it, then connect-mongo parses the session JSON once too often
    broken = {"ok": False, "error": '"[object Object]" is not valid JSON'}
    assert node.call_answer("get", sid=sid) == broken
    assert python.get(sid) == data
    newer = MongoStore(
        client, db_name=DB, collection_name=collection, crypto={**crypto, "kruptein": "3.4.0"}
    )
    py_sid = uuid.uuid4().hex
    newer.set(py_sid, data)
    assert node.call_answer("get", sid=py_sid) == broken  # past kruptein's HMAC and tag
    assert python.get(py_sid) == data
    node.close()


@pytest.fixture
def redis_prefix_url(redis_url: str) -> Iterator[str]:
    import redis

    prefix = f"ts-crypto-{secrets.token_hex(4)}:"
    yield f"{redis_url}{'&' if '?' in redis_url else '?'}prefix={prefix}"
    with redis.Redis.from_url(redis_url) as client:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    status = main([*argv, "--json"])
    out = capsys.readouterr().out
    return status, json.loads(out)


def test_the_command_on_encrypted_collections(
    node_stores: NodeStoreDriver,
    mongo_url: str,
    client: Any,
    redis_prefix_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ls, get, stats and doctor read a collection connect-mongo encrypted; migrate copies it
    to Redis in clear and back into a collection encrypted with the WebCrypto adapter,
    which connect-mongo then reads."""
    source, target = "c_" + uuid.uuid4().hex[:10], "c_" + uuid.uuid4().hex[:10]
    node = node_stores.open(
        "connect-mongo-6",
        mongoUrl=url_with_db(mongo_url),
        collectionName=source,
        crypto={"secret": SECRET},
    )
    sessions = {uuid.uuid4().hex: session(n=i) for i in range(5)}
    for sid, data in sessions.items():
        node.set(sid, dumps(data))
    url = url_with_db(mongo_url) + ("&" if "?" in mongo_url else "?") + f"collection_name={source}"
    crypto = "crypto=" + json.dumps({"secret": SECRET})

    status, listed = run(capsys, "ls", "--store", url, "-o", crypto)
    assert status == 0 and sorted(row["sid"] for row in listed["sessions"]) == sorted(sessions)
    sid = next(iter(sessions))
    status, got = run(capsys, "get", sid, "--store", url, "-o", crypto)
    assert status == 0 and got["session"] == sessions[sid]
    status, stats = run(capsys, "stats", "--store", url, "-o", crypto)
    assert status == 0 and stats["count"] == 5 and not stats["failed"]
    status, doctor = run(capsys, "doctor", url, "-o", crypto)
    found = {f["check"]: f for f in doctor["findings"]}
    assert found["sessions decode (encrypted)"]["level"] == "ok"
    status, doctor = run(capsys, "doctor", url)  # no secret given: doctor says what to give
    found = {f["check"]: f for f in doctor["findings"]}
    assert status == 1 and "crypto=" in found["sessions decode"]["fix"]

    status, moved = run(
        capsys, "migrate", "--from", url, "--from-option", crypto, "--to", redis_prefix_url
    )
    assert status == 0, moved
    adapter = json.dumps({"adapter": "webcrypto", "secret": SECRET, "algorithm": "AES-CBC"})
    back = url_with_db(mongo_url) + ("&" if "?" in mongo_url else "?") + f"collection_name={target}"
    status, moved = run(
        capsys,
        "migrate",
        "--from",
        redis_prefix_url,
        "--to",
        back,
        "--to-option",
        f"crypto_adapter={adapter}",
    )
    assert status == 0, moved
    for document in client[DB][target].find():
        assert not set(document["session"]) & set('{":, ')
    reader = node_stores.open(
        "connect-mongo-6",
        mongoUrl=url_with_db(mongo_url),
        collectionName=target,
        webcrypto={"secret": SECRET, "algorithm": "AES-CBC"},
    )
    for sid, data in sessions.items():
        assert loads(reader.get(sid) or "null") == data
    reader.close()
    node.close()


async def test_the_asyncio_store_encrypts(mongo_url: str, node_stores: NodeStoreDriver) -> None:
    from token_session.stores import AsyncMongoStore

    name = "c_" + uuid.uuid4().hex[:10]
    store = AsyncMongoStore.from_url(
        url_with_db(mongo_url),
        collection_name=name,
        crypto_adapter=create_webcrypto_adapter(SECRET),
    )
    node = node_stores.open(
        "connect-mongo-6",
        mongoUrl=url_with_db(mongo_url),
        collectionName=name,
        webcrypto={"secret": SECRET},
    )
    async with store:
        sid, data = uuid.uuid4().hex, session()
        await store.set(sid, data)
        assert await store.get(sid) == data
        assert loads(node.get(sid) or "null") == data
    node.close()


async def longest_stall(work: Any) -> tuple[Any, float]:
    """``await work``'s result, and the longest the event loop went without running a task
    meanwhile (a ticker yielding to it every turn)."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    longest, last = 0.0, loop.time()
    while not task.done():
        await asyncio.sleep(0)
        now = loop.time()
        longest, last = max(longest, now - last), now
    return task.result(), longest


async def test_the_asyncio_store_derives_keys_off_the_event_loop(
    mongo_url: str, node_stores: NodeStoreDriver
) -> None:
    from token_session.stores import AsyncMongoStore

    name = "c_" + uuid.uuid4().hex[:10]
    node = node_stores.open(
        "connect-mongo-6",
        mongoUrl=url_with_db(mongo_url),
        collectionName=name,
        crypto={"secret": SECRET},
    )
    # kruptein 3.0.8 draws a salt per record: reading each derives a key (PBKDF2-SHA512,
    # 15,000 iterations, 5 to 15 ms), 80 of them 0.4 s at least
    sessions = {f"n{i}": session(n=i) for i in range(80)}
    for sid, data in sessions.items():
        node.set(sid, dumps(data))
    store = AsyncMongoStore.from_url(
        url_with_db(mongo_url), collection_name=name, crypto={"secret": SECRET}
    )
    async with store:
        found, stall = await longest_stall(store.all())
        assert found == sessions
        assert stall < 0.3, f"the event loop stood still for {stall:.3f} s"
    node.close()
    # the WebCrypto adapter derives its key on first use: here 3,000,000 iterations, 0.5 s
    # at least
    options = {"adapter": "webcrypto", "secret": SECRET, "iterations": 3_000_000}
    store = AsyncMongoStore.from_url(
        url_with_db(mongo_url), collection_name=name, crypto_adapter=options
    )
    async with store:
        written = session(n="w")
        _, stall = await longest_stall(store.set("w", written))
        assert stall < 0.3, f"the event loop stood still for {stall:.3f} s"
        assert await store.get("w") == written
